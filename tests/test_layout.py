"""The layout's own rules: no copied YAML blocks inside roles/, no task that shows a secret it makes."""

from __future__ import annotations

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


def _tasks(node, inherited_no_log=False):
    """Every task of a task list, with whether no_log is on for it (its own, or its block's)."""
    for task in node if isinstance(node, list) else []:
        if not isinstance(task, dict):
            continue
        no_log = task.get("no_log", inherited_no_log)
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            yield from _tasks(task.get(key), no_log)
        yield task, no_log


def test_every_task_that_generates_a_secret_hides_it():
    """A secret made by the password lookup is new at every run, even when the file it goes to is kept: a
    verbose run would print the new one (not the kept one, which the leak scan searches for) without no_log."""
    import yaml  # pylint: disable=import-outside-toplevel

    generating, exposed = [], []
    for path in sorted([*(ROOT / "roles").glob("*/tasks/*.yml"), *(ROOT / "roles").glob("*/handlers/*.yml"),
                        *(ROOT / "playbooks").glob("*.yml")]):
        for task, no_log in _tasks(yaml.safe_load(path.read_text())):
            body = {key: value for key, value in task.items() if key not in ("block", "rescue", "always", "tasks")}
            if "ansible.builtin.password" in str(body):
                generating.append(f"{path.relative_to(ROOT)}: {task.get('name')}")
                if no_log is not True:
                    exposed.append(generating[-1])
    assert len(generating) >= 2, generating  # the operations and proxy tokens: the search finds what it must
    assert not exposed, f"no no_log on a task that generates a secret: {exposed}"
