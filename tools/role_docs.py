#!/usr/bin/env python3
"""Generate the README's variable tables from each role's meta/argument_specs.yml.

    python tools/role_docs.py --write   # rewrite the tables in README.md
    python tools/role_docs.py --check   # exit 1 when README.md has drifted

A table lives between `<!-- BEGIN role_vars: ROLE -->` and `<!-- END role_vars: ROLE -->`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(
    r"(<!-- BEGIN role_vars: (?P<role>[a-z_]+) -->\n).*?(<!-- END role_vars: (?P=role) -->)",
    re.S,
)


def _cell(value) -> str:
    """Render a value for a markdown table cell."""
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool, int, float)):
        text = json.dumps(value, sort_keys=True)
    else:
        text = str(value)
    text = re.sub(r"[OVCI]\(([^)]*)\)", r"\1", text)  # ansible-doc markup
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(options: dict, prefix: str = "") -> list[str]:
    rows = []
    for name, spec in options.items():
        description = spec.get("description", "")
        if isinstance(description, list):
            description = " ".join(description)
        default = "" if spec.get("required") else f"`{_cell(spec.get('default'))}`"
        kind = spec.get("type", "str")
        if kind == "list" and spec.get("elements"):
            kind = f"list of {spec['elements']}"
        choices = ", ".join(f"`{c}`" for c in spec.get("choices", []))
        required = "yes" if spec.get("required") else ""
        rows.append(
            f"| `{prefix}{name}` | {kind} | {required} | {default} | {choices} | {_cell(description)} |"
        )
        if spec.get("options"):
            rows.extend(_rows(spec["options"], prefix=f"{prefix}{name}[]."))
    return rows


def table(role: str) -> str:
    """The markdown table of a role's entry point `main`."""
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    main = specs["argument_specs"]["main"]
    lines = [
        f"{main['short_description']}",
        "",
        "| Variable | Type | Required | Default | Choices | Description |",
        "| --- | --- | --- | --- | --- | --- |",
        *_rows(main.get("options", {})),
    ]
    return "\n".join(lines) + "\n"


def render(text: str) -> str:
    """README text with every role table regenerated."""
    return BLOCK.sub(lambda m: m.group(1) + table(m.group("role")) + m.group(3), text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite README.md")
    mode.add_argument("--check", action="store_true", help="fail when README.md has drifted")
    args = parser.parse_args()

    current = README.read_text()
    roles_with_specs = sorted(p.parent.parent.name for p in ROOT.glob("roles/*/meta/argument_specs.yml"))
    documented = sorted(m.group("role") for m in BLOCK.finditer(current))
    missing = [r for r in roles_with_specs if r not in documented]
    if missing:
        print(f"README.md has no variable table for: {', '.join(missing)}", file=sys.stderr)
        return 1
    wanted = render(current)
    if args.write:
        README.write_text(wanted)
        return 0
    if wanted != current:
        print("README.md variable tables differ from meta/argument_specs.yml; run `make docs`.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
