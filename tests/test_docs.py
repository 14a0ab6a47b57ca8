"""Each role's README is generated from its meta/argument_specs.yml and must not drift."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
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


# The top-level README is what a newcomer reads first; the rest lives in docs/ and bench/README.md.
README_MAX_BYTES = 12 * 1024
# Inline links and images, [text](target) or ![alt](target), and reference definitions, [id]: target.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
# "issue 6", "issue #6", "(issue 5)", "issues 4-6", "issues 4 and 5": a reader cannot open them.
# ("pebble issues 120-second certificates" is a verb, not a reference.)
ISSUE_NUMBER = re.compile(r"\bissue\s*#?\s*\d+|\bissues\s+#?\d+\s*(?:-|–|,|and|&)\s*#?\d+", re.IGNORECASE)


def _doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]


def _without_code(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def test_readme_is_short():
    size = (ROOT / "README.md").stat().st_size
    assert size < README_MAX_BYTES, f"README.md is {size} bytes; keep it under {README_MAX_BYTES} and move details to docs/"


def test_docs_exist():
    for path in _doc_files():
        assert path.is_file(), path.relative_to(ROOT)


def test_relative_links_point_to_files_that_exist():
    broken = []
    for path in _doc_files():
        for match in LINK.finditer(_without_code(path.read_text(encoding="utf-8"))):
            target = match.group(1) or match.group(2)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
                continue  # a URL (http:, mailto:) or an anchor in the same file
            file_part = unquote(target.split("#", 1)[0].split("?", 1)[0])
            if not (path.parent / file_part).resolve().exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)


def test_link_checker_sees_links():
    text = "See [a](docs/a.md#x), ![b](results/b.png \"B\") and <https://x.org>.\n[c]: ../c.md\n`[d](not/a/link)`"
    found = [m.group(1) or m.group(2) for m in LINK.finditer(_without_code(text))]
    assert found == ["docs/a.md#x", "results/b.png", "../c.md"]


def _text_files() -> list[Path]:
    """Every file of the repository that git tracks, but the bench's recorded results and binary files."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    paths = [ROOT / name for name in listed.split("\0") if name and not name.startswith("bench/results/")]
    return [path for path in paths if path.is_file() and b"\0" not in path.read_bytes()[:4096]]


def test_no_file_points_to_an_issue_number():
    """Documentation, comments, messages: a reader cannot open an issue; say what the thing is and why.
    (This file holds the pattern's examples.)"""
    found = []
    for path in _text_files():
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            for match in ISSUE_NUMBER.finditer(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)!r}")
    assert len(_text_files()) > 200, "the search sees too few files"
    assert not found, "say what the thing is instead of an issue number:\n" + "\n".join(found)


def _table_names(text: str, heading: str) -> set[str]:
    """The jhub_* names in the first column of the table whose header line starts with heading."""
    rows = text[text.index(heading):].split("\n\n", 1)[0]
    return {name for row in rows.splitlines()[2:] for name in re.findall(r"`(jhub_[a-z_]+)`", row.split("|")[1])}


def test_the_shared_values_table_is_the_jhub_spec():
    """docs/variables.md lists every input of the jhub role (its spec) and every value it derives (its vars/)."""
    text = (ROOT / "docs" / "variables.md").read_text()
    spec = yaml.safe_load((ROOT / "roles/jhub/meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    derived = yaml.safe_load((ROOT / "roles/jhub/vars/main.yml").read_text())
    assert _table_names(text, "| Value | Read by |") == set(spec)
    assert _table_names(text, "| Derived value |") == set(derived)


@pytest.mark.parametrize(
    ("text", "refers"),
    [("Bars (issue 6):", True), ("issue #12", True), ("after the merge of issues 4-6", True), ("issues 4 and 5", True),
     ("Security (Issue 5)", True), ("pebble issues 120-second certificates", False), ("a known issue with 6 users", False)],
)
def test_issue_number_pattern(text, refers):
    assert bool(ISSUE_NUMBER.search(text)) is refers
