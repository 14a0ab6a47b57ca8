"""The layout's own rules: no copied YAML blocks inside roles/, no task that shows a secret it makes."""

from __future__ import annotations

from jhub_tools import yaml_duplicates

from conftest import ROOT


def test_no_block_of_six_yaml_lines_is_repeated():
    """tools/yaml_duplicates.py over roles/, molecule/ and playbooks/: a copied block is a second place to change."""
    blocks = yaml_duplicates.repeated_blocks(yaml_duplicates.files(list(yaml_duplicates.DIRS)))
    assert len(yaml_duplicates.files(list(yaml_duplicates.DIRS))) > 100
    assert not blocks, "the same lines stand in several places: " + "; ".join(" ~ ".join(where) for where in blocks)


def test_the_duplicate_finder_sees_a_copied_block(tmp_path, monkeypatch):
    """Its control: six lines copied into a second file (with other comments and indentation) are found,
    five are not."""
    block = "".join(f"  key{i}: value{i}\n" for i in range(6))
    (tmp_path / "a.yml").write_text("---\n# one\n" + block)
    (tmp_path / "b.yml").write_text("---\n- name: x\n" + block.replace("  ", "    "))
    (tmp_path / "c.yml").write_text("".join(f"other{i}: 1\n" for i in range(5)) + "".join(block.splitlines(True)[:5]))
    monkeypatch.setattr(yaml_duplicates, "ROOT", tmp_path)
    found = yaml_duplicates.repeated_blocks(sorted(tmp_path.glob("*.yml")))
    assert found == [["a.yml:3", "b.yml:3"]], found


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
