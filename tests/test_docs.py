"""Each role's README is generated from its meta/argument_specs.yml and must not drift."""

from __future__ import annotations

import subprocess
import sys

import yaml

from conftest import ROOT


def test_role_readmes_match_argument_specs():
    result = subprocess.run(
        [sys.executable, "tools/role_docs.py", "--check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_every_default_is_documented_in_argument_specs():
    for defaults in sorted(ROOT.glob("roles/*/defaults/main.yml")):
        role = defaults.parent.parent
        specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        options = {name for spec in specs.values() for name in spec.get("options", {})}
        names = set(yaml.safe_load(defaults.read_text()) or {})
        assert names == options, f"{role.name}: defaults and argument_specs differ: {names ^ options}"


def test_every_role_has_a_spec_and_a_readme():
    for role in sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir()):
        assert (role / "meta" / "argument_specs.yml").is_file(), role.name
        assert (role / "README.md").is_file(), role.name
