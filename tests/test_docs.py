"""The README's variable tables are generated from meta/argument_specs.yml and must not drift."""

from __future__ import annotations

import subprocess
import sys

import yaml

from conftest import ROOT


def test_readme_tables_match_argument_specs():
    result = subprocess.run(
        [sys.executable, "tools/role_docs.py", "--check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_every_default_is_documented_in_argument_specs():
    for defaults in sorted(ROOT.glob("roles/*/defaults/main.yml")):
        role = defaults.parent.parent
        options = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
        names = set(yaml.safe_load(defaults.read_text()) or {})
        assert names == set(options), f"{role.name}: defaults and argument_specs differ: {names ^ set(options)}"
