"""The layout's own rules: no copied YAML blocks inside roles/, no comment that points to an issue number."""

from __future__ import annotations

import re
from collections import defaultdict

from conftest import ROOT

BLOCK = 6  # lines


def _lines(path):
    """Numbered lines that carry content: no blank lines, comments or document markers; white space folded."""
    numbered = ((number, " ".join(line.split())) for number, line in enumerate(path.read_text().splitlines(), 1))
    return [(number, line) for number, line in numbered if line and not line.startswith("#") and line != "---"]


def test_no_block_of_six_lines_is_repeated_inside_roles():
    places = defaultdict(set)
    for path in sorted((ROOT / "roles").rglob("*")):
        if path.suffix in (".yml", ".j2") and path.is_file():
            lines = _lines(path)
            for start in range(len(lines) - BLOCK + 1):
                block = tuple(line for _number, line in lines[start:start + BLOCK])
                places[block].add(f"{path.relative_to(ROOT)}:{lines[start][0]}")
    repeated = sorted(sorted(where) for where in places.values() if len(where) > 1)
    assert not repeated, "the same lines stand in several places: " + "; ".join(" ~ ".join(w) for w in repeated)


def test_no_comment_points_to_an_issue_number():
    pattern = re.compile(r"\bissue #?\d+\b(?!-)", re.IGNORECASE)
    found = []
    for folder in ("roles", "playbooks", "plugins", "molecule", "tests", "tools", "bench", "inventory", ".ci"):
        for path in sorted((ROOT / folder).rglob("*")):
            # The tests of this very rule hold examples of what it refuses.
            if path.name in ("test_layout.py", "test_docs.py"):
                continue
            if path.is_file() and path.suffix in (".yml", ".py", ".j2", ".sh", "") and "results" not in path.parts:
                found += [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
                          if pattern.search(line)]
    for name in ("Makefile", "ansible.cfg", "galaxy.yml", "requirements.txt"):
        found += [f"{name}:{n}" for n, line in enumerate((ROOT / name).read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, f"a reader cannot open an issue; say what the code does and why: {found}"
