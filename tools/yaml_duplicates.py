"""Repeated blocks of YAML: the same six or more lines (white space folded, blank lines, comments and
document markers left out) in two places of roles/, molecule/ or playbooks/.

    python tools/yaml_duplicates.py [--block N] [DIR...]   # exit 1 and a list when a block repeats

The tool `duplicates` finds repeated Python; this is its counterpart for the YAML and Jinja files of
the collection, where a copied block is a second place to change (tests/test_layout.py runs it).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIRS = ("roles", "molecule", "playbooks")
SUFFIXES = (".yml", ".yaml", ".j2")


def content_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line) of the lines that carry content: no blank lines, comments or document markers."""
    numbered = ((number, " ".join(line.split())) for number, line in enumerate(path.read_text().splitlines(), 1))
    return [(number, line) for number, line in numbered if line and not line.startswith("#") and line != "---"]


def repeated_blocks(paths: list[Path], block: int = 6) -> list[list[str]]:
    """Each block of `block` consecutive content lines found in more than one place, as its places."""
    places: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for path in paths:
        lines = content_lines(path)
        for start in range(len(lines) - block + 1):
            places[tuple(line for _number, line in lines[start:start + block])].add(
                f"{path.relative_to(ROOT)}:{lines[start][0]}")
    found = sorted(sorted(where) for where in places.values() if len(where) > 1)
    # A longer repeated block shows as overlapping ones, a line apart: keep the first places of each run.
    merged: list[list[str]] = []
    previous: list[str] = []
    for where in found:
        if not (len(where) == len(previous) and all(_next_to(a, b) for a, b in zip(previous, where))):
            merged.append(where)
        previous = where
    return merged


def _next_to(first: str, second: str) -> bool:
    """Whether second is a place in the same file a few lines after first (one run of a longer block)."""
    file_a, line_a = first.rsplit(":", 1)
    file_b, line_b = second.rsplit(":", 1)
    return file_a == file_b and 0 < int(line_b) - int(line_a) <= 3


def files(dirs: list[str]) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*") if p.is_file() and p.suffix in SUFFIXES)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--block", type=int, default=6, help="lines of a block (default 6)")
    parser.add_argument("dirs", nargs="*", default=list(DIRS), help=f"directories (default {' '.join(DIRS)})")
    args = parser.parse_args()
    blocks = repeated_blocks(files(args.dirs), args.block)
    for where in blocks:
        print(" ~ ".join(where))
    return 1 if blocks else 0


if __name__ == "__main__":
    sys.exit(main())
