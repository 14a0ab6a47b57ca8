"""The backups' logic (plugins/module_utils/backup.py) that the backup role's modules and filter and the
scheduled backup's program share: what a backup takes on each node and what it refuses, the completion of a
backup and its retention, and a restore's choice and checks, on real files. The archives themselves (the helper
in a container of the hub image, with the real tar and zstd) are tested in tests/test_backup_script.py, and the
whole backup and restore on a deployment in Molecule and tests/test_backup_schedule.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest

from ansible_collections.jhub.docker.plugins.module_utils.backup import (
    BackupError,
    complete_backups,
    finish,
    plan,
    restore_plan,
    to_remove,
)

TEMPLATE = "jupyterhub-user-{username}"
VOLUMES = ["jupyterhub-data", "jupyterhub-user-ann", "jupyterhub-user-ann--work", "jupyterhub-user-bo.x", "other", "jhub-test-lab"]


def test_plan_on_one_host_takes_every_user_volume_the_shared_ones_and_the_hub_state():
    found = plan({"hub": VOLUMES}, [], TEMPLATE, "hub", "jupyterhub-data", shared=["jhub-test-lab"])
    users = {"ann": "jupyterhub-user-ann", "ann--work": "jupyterhub-user-ann--work", "bo.x": "jupyterhub-user-bo.x"}
    assert found["users"] == users
    # A named server's volume (USER--SERVER) is its user's: the servers to stop are the hub users'.
    assert found["owners"] == ["ann", "bo.x"]
    assert found["nodes"] == [{"node": "hub", "users": users, "shared": ["jhub-test-lab"], "hub_state": True}]


def test_plan_takes_the_users_asked_for_or_the_hub_state_alone():
    assert plan({"hub": VOLUMES}, ["bo.x"], TEMPLATE, "hub", "jupyterhub-data")["users"] == {"bo.x": "jupyterhub-user-bo.x"}
    alone = plan({"hub": VOLUMES}, [], TEMPLATE, "hub", "jupyterhub-data", user_volumes=False, shared=["jhub-test-lab"])
    assert alone["nodes"] == [{"node": "hub", "users": {}, "shared": [], "hub_state": True}]
    # The users with a volume are still found (a move reads them).
    assert alone["found"]["ann"] == ["hub"]


def test_plan_on_a_swarm_archives_each_user_on_the_node_of_the_volume_the_hub_first():
    found = plan({"worker": ["jupyterhub-user-cy"], "hub": VOLUMES[:2], "idle": []}, [], TEMPLATE, "hub", "jupyterhub-data")
    assert [node["node"] for node in found["nodes"]] == ["hub", "worker"]
    assert found["nodes"][1] == {"node": "worker", "users": {"cy": "jupyterhub-user-cy"}, "shared": [], "hub_state": False}
    assert found["found"] == {"ann": ["hub"], "cy": ["worker"]}


@pytest.mark.parametrize("found, users, message", [
    ({"hub": VOLUMES}, ["cy", "ann"],
     "jupyterhub_backup_users: no volume for cy (volumes named jupyterhub-user-{username}) on hub; the users with a volume are: "
     "ann, ann--work, bo.x."),
    ({"hub": VOLUMES[1:]}, [], "jhub_data_volume: there is no volume 'jupyterhub-data' on hub; set jupyterhub_backup_hub_state: false"),
    ({"hub": VOLUMES, "worker": ["jupyterhub-user-ann"]}, [],
     "ann: a volume on more than one node (ann on hub and worker). Remove the one that is not the user's"),
])
def test_plan_refuses(found, users, message):
    with pytest.raises(BackupError) as refused:
        plan(found, users, TEMPLATE, "hub", "jupyterhub-data")
    assert message in str(refused.value)


def test_a_user_on_two_nodes_is_refused_only_when_backed_up():
    found = {"hub": VOLUMES, "worker": ["jupyterhub-user-ann"]}
    assert plan(found, ["bo.x"], TEMPLATE, "hub", "jupyterhub-data")["users"] == {"bo.x": "jupyterhub-user-bo.x"}


def backups(root, *names):
    for name in names:
        (root / name).mkdir()
        (root / name / "manifest.json").write_text("{}")


def test_retention_keeps_the_newest_and_never_the_new_one(tmp_path):
    names = [f"jhub-backup-2026120{day}T000000Z" for day in range(1, 6)]
    backups(tmp_path, *names)
    (tmp_path / "jhub-backup-20261206T000000Z.partial").mkdir()
    (tmp_path / "jhub-backup-20261207T000000Z").mkdir()  # no manifest: not complete, left alone
    (tmp_path / "notes").mkdir()
    complete = complete_backups(str(tmp_path))
    assert complete == names
    assert to_remove(complete, 2, names[-1]) == names[:3]
    assert to_remove(complete, 0, names[-1]) == []
    assert to_remove(complete, 7, names[-1]) == []
    assert to_remove(complete, 1, names[0]) == names[1:4]


def archive_entry(directory, file, content, **fields):
    (directory / file).write_bytes(content)
    return {"file": file, "sha256": hashlib.sha256(content).hexdigest(), "size": len(content), **fields}


def test_finish_writes_the_manifest_and_sums_renames_and_keeps_the_newest(tmp_path):
    backups(tmp_path, "jhub-backup-20261201T000000Z", "jhub-backup-20261202T000000Z")
    partial = tmp_path / "jhub-backup-20261203T000000Z.partial"
    partial.mkdir()
    archives = [archive_entry(partial, "user-ann.tar.zst", b"ann", kind="user", username="ann"),
                archive_entry(partial, "hub-state.tar.zst", b"hub", kind="hub-state", jupyterhub_version="5.4.3")]
    done = finish(str(tmp_path), "jhub-backup-20261203T000000Z", host="hub", image="jhub/hub", template=TEMPLATE, archives=archives,
                  seconds=1.5, keep=2, now=0)
    final = tmp_path / "jhub-backup-20261203T000000Z"
    assert not partial.exists() and done["dir"] == str(final)
    manifest = json.loads((final / "manifest.json").read_text())
    assert manifest["jupyterhub_version"] == "5.4.3" and manifest["created"] == "1970-01-01T00:00:00Z"
    assert manifest["archives"] == archives and manifest["host"] == "hub" and manifest["user_volume"] == TEMPLATE
    assert (final / "SHA256SUMS").read_text() == "".join(f"{item['sha256']}  {item['file']}\n" for item in archives)
    assert oct(os.stat(final / "manifest.json").st_mode & 0o777) == "0o600"
    assert done["removed"] == ["jhub-backup-20261201T000000Z"]
    assert complete_backups(str(tmp_path)) == ["jhub-backup-20261202T000000Z", "jhub-backup-20261203T000000Z"]


def test_finish_refuses_a_name_taken_and_an_archive_missing(tmp_path):
    backups(tmp_path, "jhub-backup-20261201T000000Z")
    with pytest.raises(BackupError, match="jhub-backup-20261201T000000Z exists already"):
        finish(str(tmp_path), "jhub-backup-20261201T000000Z", host="hub", image="i", template=TEMPLATE, archives=[], seconds=0, keep=0)
    (tmp_path / "jhub-backup-20261202T000000Z.partial").mkdir()
    with pytest.raises(BackupError, match="lacks the archives user-ann.tar.zst"):
        finish(str(tmp_path), "jhub-backup-20261202T000000Z", host="hub", image="i", template=TEMPLATE,
               archives=[{"file": "user-ann.tar.zst", "sha256": "0"}], seconds=0, keep=0)


@pytest.fixture(name="root")
def fixture_root(tmp_path):
    """Two backups: the older of ann (made on the hub), the newer of ann and of cy (made on a worker), a shared
    volume and the hub state."""
    for name, entries in [("jhub-backup-20261201T000000Z", [("user-ann.tar.zst", b"ann-1", {"kind": "user", "username": "ann"})]),
                          ("jhub-backup-20261202T000000Z", [
                              ("user-ann.tar.zst", b"ann-2", {"kind": "user", "username": "ann", "node": "hub"}),
                              ("user-cy.tar.zst", b"cy-2", {"kind": "user", "username": "cy", "node": "worker"}),
                              ("shared-lab.tar.zst", b"lab", {"kind": "shared", "volume": "lab"}),
                              ("hub-state.tar.zst", b"db", {"kind": "hub-state", "database_sha256": "d"})])]:
        directory = tmp_path / name
        directory.mkdir()
        archives = [archive_entry(directory, file, content, **fields) for file, content, fields in entries]
        (directory / "manifest.json").write_text(json.dumps({"name": name, "archives": archives}))
    return tmp_path


def test_restore_plan_takes_the_newest_backup_with_targets_and_nodes(root):
    chosen = restore_plan(str(root), "hub", all_users=True, shared=["lab"], hub_state=True, volume=TEMPLATE, nodes=["hub", "worker"])
    assert chosen["name"] == "jhub-backup-20261202T000000Z" and chosen["dir"] == str(root / chosen["name"])
    assert [(item["username"], item["target"], item["target_node"]) for item in chosen["users"]] == [
        ("ann", "jupyterhub-user-ann", "hub"), ("cy", "jupyterhub-user-cy", "worker")]
    assert [(item["target"], item["target_node"]) for item in chosen["shared"]] == [("lab", "hub")]
    assert chosen["hub_state"]["database_sha256"] == "d"
    # On one host every archive goes back to it; a restore node or volume given is taken.
    single = restore_plan(str(root), "hub", users=["cy"], volume="inspect-{username}")
    assert [(item["target"], item["target_node"]) for item in single["users"]] == [("inspect-cy", "hub")]
    moved = restore_plan(str(root), "hub", users=["cy"], volume=TEMPLATE, node="hub", nodes=["hub", "worker"])
    assert moved["users"][0]["target_node"] == "hub"
    older = restore_plan(str(root), "hub", "jhub-backup-20261201T000000Z", users=["ann"], volume=TEMPLATE)
    assert older["users"][0]["sha256"] == hashlib.sha256(b"ann-1").hexdigest() and older["hub_state"] is None


def damage(root, file):
    with open(root / "jhub-backup-20261202T000000Z" / file, "r+b") as handle:
        handle.write(b"X")


@pytest.mark.parametrize("name, asked, change, message", [
    ("jhub-backup-20000101T000000Z", {"users": ["ann"]}, None,
     "jupyterhub_backup_name: backup 'jhub-backup-20000101T000000Z' does not exist in {root} on hub (complete backups: "
     "jhub-backup-20261201T000000Z, jhub-backup-20261202T000000Z). Nothing was changed."),
    ("", {"users": ["erin", "ann"]}, None,
     "jupyterhub_backup_restore_users: erin not in backup jhub-backup-20261202T000000Z (its users: ann, cy)."),
    ("jhub-backup-20261201T000000Z", {"shared": ["lab"], "hub_state": True}, None,
     "jupyterhub_backup_restore_shared: lab not in backup jhub-backup-20261201T000000Z (its shared volumes: none). "
     "jupyterhub_backup_restore_hub_state: backup jhub-backup-20261201T000000Z has no hub state. Nothing was changed."),
    ("", {"users": ["cy"]}, "user-cy.tar.zst",
     "Backup jhub-backup-20261202T000000Z: archive user-cy.tar.zst is damaged (SHA-256 "),
    ("", {"hub_state": True}, "missing:hub-state.tar.zst", "archive hub-state.tar.zst is missing. Nothing was restored"),
    ("", {"users": ["cy"], "nodes": ["hub", "other"]}, None,
     "cy's archive was made on node worker, which is not a node of the swarm (hub, other): set jupyterhub_backup_restore_node"),
])
def test_restore_plan_refuses_before_anything_changes(root, name, asked, change, message):
    if change and change.startswith("missing:"):
        os.remove(root / "jhub-backup-20261202T000000Z" / change[8:])
    elif change:
        damage(root, change)
    with pytest.raises(BackupError) as refused:
        restore_plan(str(root), "hub", name, volume=TEMPLATE, **asked)
    assert message.format(root=root) in str(refused.value)


def test_restore_plan_refuses_an_empty_root(tmp_path):
    with pytest.raises(BackupError, match="jupyterhub_backup_name: there is no backup in .* on hub"):
        restore_plan(str(tmp_path / "none"), "hub", users=["ann"], volume=TEMPLATE)


def test_restore_plan_lists_running_servers_and_refuses_them_or_a_shared_volume_in_use(root):
    """With the real engine: a container named like a user's server, and one that mounts the shared volume."""
    name = "jhub-test-plan-cy"
    # The base image that make deploy builds (jhub_debian_suite's default).
    docker = ["docker", "run", "--detach", "--rm", "--name", name, "--volume", "jhub-test-plan-lab:/lab", "jhub/debian:bookworm", "sleep", "60"]
    subprocess.run(docker, check=True, capture_output=True)
    try:
        asked = {"users": ["cy"], "volume": TEMPLATE, "server": "jhub-test-plan-{username}"}
        with pytest.raises(BackupError, match="jhub-test-plan-cy is running and would see its files replaced underneath it. "
                                              ".*jupyterhub_backup_restore_stop_servers: true. Nothing was changed."):
            restore_plan(str(root), "hub", **asked)
        assert restore_plan(str(root), "hub", stop_servers=True, **asked)["running"] == [name]
        # Into other volumes (no server): nothing runs.
        assert restore_plan(str(root), "hub", users=["cy"], volume="inspect-{username}")["running"] == []
        manifest = root / "jhub-backup-20261202T000000Z" / "manifest.json"
        data = json.loads(manifest.read_text())
        data["archives"][2]["volume"] = "jhub-test-plan-lab"
        manifest.write_text(json.dumps(data))
        with pytest.raises(BackupError, match="jupyterhub_backup_restore_shared: jhub-test-plan-lab is in use by jhub-test-plan-cy. "
                                              "Stop those servers first"):
            restore_plan(str(root), "hub", shared=["jhub-test-plan-lab"], volume=TEMPLATE)
    finally:
        subprocess.run(["docker", "rm", "--force", name], check=False, capture_output=True)
        subprocess.run(["docker", "volume", "rm", "jhub-test-plan-lab"], check=False, capture_output=True)
