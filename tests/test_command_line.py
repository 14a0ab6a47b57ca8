"""Every number and boolean of every role, given on the command line as `-e name=value` (always a string).

A number must pass: its checks read it as a number (a canary, a wrong value of another variable of the
same role, proves that the play got to those checks and refused only the canary). A boolean is refused
with a message that names the variable and shows the JSON form, since Ansible's conditionals refuse a
string. Either way, nothing changes on the host and no internal error shows.

The options of one playbook run as the hosts of one run (conftest.run_cases), each with its value as the
string that -e gives; the playbooks whose plays set the option from another variable of the command
line (swarm_drain.yml) or stop every host at the first failure (swarm.yml) run one option at a time.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
import yaml

from conftest import ROOT, SWARM_GROUPS, host_state, local_inventory, recap, run_cases, run_playbook

# The playbook that runs each entry point, and the canary that its own checks refuse.
PLAYBOOKS = {
    ("docker_engine", "main"): "docker_engine", ("image_build", "main"): "base_image", ("image_build", "validate"): "base_image",
    ("jhub", "main"): "jupyterhub",
    ("jupyterhub", "main"): "jupyterhub", ("jupyterhub_backup", "backup"): "backup",
    ("jupyterhub_backup", "restore"): "restore", ("jupyterhub_backup", "move"): "move",
    ("jupyterhub_network", "main"): "jupyterhub_network",
    ("jupyterhub_tls", "main"): "jupyterhub_tls", ("docker_swarm", "main"): "swarm", ("docker_swarm", "drain"): "swarm_drain",
    ("jupyterhub_monitoring", "main"): "jupyterhub_monitoring",
}
CANARIES = {
    "docker_engine": ({"docker_engine_users": ["no-such-user-jhub"]}, "no-such-user-jhub"),
    "jupyterhub": ({"jupyterhub_admin_password": ""}, "jupyterhub_admin_password is required"),
    "backup": ({"jupyterhub_backup_root": "backups/jhub"}, "jupyterhub_backup_root must be an absolute path"),
    "restore": ({"jupyterhub_backup_root": "backups/jhub", "jupyterhub_backup_restore_all_users": True},
                "jupyterhub_backup_root must be an absolute path"),
    "move": ({"jupyterhub_backup_root": "backups/jhub"}, "jupyterhub_backup_root must be an absolute path"),
    "jupyterhub_tls": ({"jhub_tls_mode": "selfsigned", "jupyterhub_tls_domain": "Not A Domain"},
                       "needs jupyterhub_tls_domain"),
    "jupyterhub_monitoring": ({"jupyterhub_monitoring_retention": "forever"}, "jupyterhub_monitoring_retention must be a duration"),
    # TEST-NET-3: an address that no host of this kind has.
    "swarm": ({"docker_swarm_advertise_address": "203.0.113.77"}, "is not an address of localhost"),
    "swarm_drain": ({"docker_swarm_drain_node": "no-such-node"}, "is not a host of the group jupyterhub_workers"),
}


def _options() -> list[tuple[str, str, str, str]]:
    """(playbook, option, type, value) of every top-level int, float and bool option of every entry point; an
    option of several entry points of a role (one variable) with the playbook of the first."""
    found, seen = [], set()
    for path in sorted(ROOT.glob("roles/*/meta/argument_specs.yml")):
        role = path.parent.parent.name
        for entry_point, spec in yaml.safe_load(path.read_text())["argument_specs"].items():
            for name, option in spec.get("options", {}).items():
                if option.get("type") in ("int", "float", "bool") and (role, name) not in seen:
                    seen.add((role, name))
                    default = option.get("default")
                    # A derived default is a Jinja expression, not a number: 1000 is in range for those.
                    number = default if isinstance(default, (int, float)) and not isinstance(default, bool) else 1000
                    value = "true" if option["type"] == "bool" else str(number)
                    found.append((PLAYBOOKS[(role, entry_point)], name, option["type"], value))
    return found


def test_every_number_and_boolean_is_covered():
    kinds = {kind for _playbook, _name, kind, _value in _options()}
    assert kinds == {"int", "float", "bool"} and len(_options()) >= 30, _options()


# The playbooks run one option at a time, with -e.
ALONE = ("swarm", "swarm_drain")


def _words(name: str, kind: str) -> list[str]:
    return [f"{name} must be true or false, not the str 'true'", f"-e '{{\"{name}\": true}}'"] if kind == "bool" else []


def _check(error: str, output: str, playbook: str, name: str, kind: str) -> None:
    """One option's run: its error is the boolean's own, or only the canary's (the number passed its checks),
    and its output shows no internal error."""
    for word in _words(name, kind) or [CANARIES[playbook][1]]:
        assert word in error, f"{word!r} not in the error: {error[-3000:]}"
    assert "Error rendering" not in output and "Traceback" not in output, output[-3000:]
    if kind != "bool":
        assert f"{name} must" not in error and f"'{name}'" not in error, error[-3000:]


@pytest.fixture(scope="module")
def batches():
    """Each option's result (one run per playbook, each option a host with the canary); nothing changes."""
    before = host_state()
    runs = defaultdict(dict)
    for playbook, name, kind, value in _options():
        if playbook not in ALONE:
            runs[playbook][name] = {name: value, **({} if kind == "bool" else CANARIES[playbook][0])}
    found = {}
    for playbook, cases in runs.items():
        # The hosts are named after the options (a name of Ansible's inventory: letters, digits, '_').
        results = run_cases(f"playbooks/{playbook}.yml", {f"opt_{name}": values for name, values in cases.items()})
        found.update({(playbook, name): results[f"opt_{name}"] for name in cases})
    assert host_state() == before, "the host changed"
    return found


@pytest.mark.parametrize(("playbook", "name", "kind", "value"), _options(),
                         ids=[f"{name}={value}" for _playbook, name, _kind, value in _options()])
def test_command_line_form(batches, tmp_path, playbook, name, kind, value):
    if playbook in ALONE:
        before = host_state()
        args = local_inventory(tmp_path / "inventory.yml", SWARM_GROUPS) if playbook == "swarm" else []
        result = run_playbook(f"playbooks/{playbook}.yml", None if kind == "bool" else CANARIES[playbook][0], *args,
                              "-e", f"{name}={value}")
        assert result.returncode != 0, result.stdout[-3000:]
        flat = " ".join(result.stdout.split())
        _check(flat[flat.index("[ERROR]"):] if "[ERROR]" in flat else flat, flat, playbook, name, kind)
        counters = recap(result.stdout)
        assert counters["failed"] == 1 and counters["changed"] == 0, counters
        assert host_state() == before, "the host changed"
        return
    result = batches[(playbook, name)]
    assert result.stats.get("failures") == 1 and result.stats.get("changed") == 0, (result.stats, result.failed)
    assert len(result.failed) == 1, result.failed
    _check(result.failed[0][1], result.text, playbook, name, kind)
