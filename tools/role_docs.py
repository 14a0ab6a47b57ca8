"""Generate each role's README.md from its meta/argument_specs.yml.

    python tools/role_docs.py --write   # rewrite roles/*/README.md
    python tools/role_docs.py --check   # exit 1 when a README has drifted from its spec

A role's README is generated whole: its description and, per entry point, a table of its
variables (type, required, default, choices, description).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES = ROOT / "roles"


def _cell(value) -> str:
    """Render a value for a markdown table cell."""
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool, int, float)):
        text = json.dumps(value, sort_keys=True)
    else:
        text = str(value)
    text = re.sub(r"[OVCI]\(([^)]*)\)", r"\1", text)  # ansible-doc markup
    return " ".join(text.replace("|", "\\|").split())


def _text(description) -> str:
    return _cell(" ".join(description) if isinstance(description, list) else description or "")


def _rows(options: dict, prefix: str = "") -> list[str]:
    rows = []
    for name, spec in options.items():
        default = "" if spec.get("required") else f"`{_cell(spec.get('default')) or json.dumps(spec.get('default'))}`"
        kind = spec.get("type", "str")
        if kind == "list" and spec.get("elements"):
            kind = f"list of {spec['elements']}"
        choices = ", ".join(f"`{c}`" for c in spec.get("choices", []))
        required = "yes" if spec.get("required") else ""
        rows.append(f"| `{prefix}{name}` | {kind} | {required} | {default} | {choices} | {_text(spec.get('description'))} |")
        if spec.get("options"):
            rows.extend(_rows(spec["options"], prefix=f"{prefix}{name}[]." if kind.startswith("list") else f"{prefix}{name}."))
    return rows


def readme(role: Path) -> str:
    """The README of a role, from its argument specs and its dependencies."""
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    meta = yaml.safe_load((role / "meta" / "main.yml").read_text())
    summary = specs["main"]["short_description"] if "main" in specs else (
        "Entry points: " + ", ".join(f"`{name}` ({spec['short_description'].rstrip('.')})" for name, spec in specs.items()) + ".")
    lines = [
        f"# jhub.docker.{role.name}",
        "",
        "<!-- Generated from meta/argument_specs.yml by tools/role_docs.py (make docs); do not edit. -->",
        "",
        summary,
        "",
    ]
    dependencies = [d["role"] if isinstance(d, dict) else d for d in meta.get("dependencies") or []]
    if dependencies:
        lines += [f"Depends on {', '.join(f'`{d}`' for d in dependencies)} (the shared values).", ""]
    for entry_point, spec in specs.items():
        if len(specs) > 1 or entry_point != "main":
            lines += [f"## Entry point `{entry_point}`", "", f"`tasks_from: {entry_point}`: {spec['short_description']}", ""]
        for paragraph in spec.get("description", []):
            lines += [_text(paragraph), ""]
        heading = "###" if len(specs) > 1 or entry_point != "main" else "##"
        lines += [
            f"{heading} Variables",
            "",
            "| Variable | Type | Required | Default | Choices | Description |",
            "| --- | --- | --- | --- | --- | --- |",
            *_rows(spec.get("options", {})),
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the roles' README.md")
    mode.add_argument("--check", action="store_true", help="fail when a README.md has drifted")
    args = parser.parse_args()

    drifted = []
    for role in sorted(p.parent.parent for p in ROLES.glob("*/meta/argument_specs.yml")):
        path = role / "README.md"
        wanted = readme(role)
        if args.write:
            path.write_text(wanted)
        elif not path.is_file() or path.read_text() != wanted:
            drifted.append(str(path.relative_to(ROOT)))
    if drifted:
        print(f"{', '.join(drifted)} differ from meta/argument_specs.yml; run `make docs`.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
