# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""The backups' logic, in one place: what a backup takes on each node, its archives, its completion and
retention, and the choice and checks of a restore.

The backup role's modules and filter run it (the modules on each node), and so does the scheduled backup's
program on the hub's host (roles/jupyterhub_backup/files/jhub-backup-run.py, beside which the role installs
this file): only the standard library and the docker command line, so that it runs with the host's python3
as well as in a module. The archives themselves are made and restored by the helper script, jhub-backup.py,
in one-off containers of the hub image (GNU tar, zstd, SQLite's online backup).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time

# A backup's directory name; a complete backup has a manifest.json inside.
NAME_REGEX = re.compile(r"^jhub-backup-[0-9]{8}T[0-9]{6}Z$")
NAME_FORMAT = "jhub-backup-%Y%m%dT%H%M%SZ"
# Where the one-off containers see the helper script.
CONTAINER_SCRIPT = "/usr/local/lib/jhub-docker/jhub-backup.py"
# An archive's file name in a backup (a manifest names nothing else).
FILE_REGEX = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class BackupError(Exception):
    """A reason to stop, said to the operator as it is."""


def user_volume_regex(template: str) -> re.Pattern:
    """The users' volume name (jhub_user_volume, with {username}) as a regular expression capturing the user.

    The captured name is the user's as it appears in the volume name: a named server's volume is USER--SERVER.
    """
    return re.compile("^" + "([a-zA-Z0-9][a-zA-Z0-9_.-]*)".join(re.escape(part) for part in template.split("{username}")) + "$")


def owner(user: str) -> str:
    """The hub user of a volume's user part (USER, or USER--SERVER for a named server's volume)."""
    return user.split("--")[0]


def plan(found: dict, users: list, template: str, hub: str, data_volume: str, *, user_volumes: bool = True,
         hub_state: bool = True, shared: list = ()) -> dict:
    """What a backup takes, node by node.

    FOUND is {node: [its volume names]}, HUB the node of the hub (and of the hub state and the shared volumes).
    USERS are the users asked for (none: every user with a volume). Returns {users: {user: volume}, owners:
    [hub users], shared: [volumes], found: {user: [nodes]}, nodes: [{node, users, shared, hub_state}]}: the hub's
    node first (the backup is completed there), then each node with users to back up. BackupError names a user asked for without a volume, a
    user with volumes on two nodes, and a missing hub data volume.
    """
    regex = user_volume_regex(template)
    on = {}
    for node, names in found.items():
        for name in names:
            match = regex.match(name) if name != data_volume else None
            if match:
                on.setdefault(match.group(1), []).append(node)
    missing = sorted(set(users) - set(on))
    if missing:
        raise BackupError(f"jupyterhub_backup_users: no volume for {', '.join(missing)} (volumes named {template}) on "
                          f"{', '.join(found)}; the users with a volume are: {', '.join(sorted(on)) or 'none'}.")
    selected = sorted(users or on) if user_volumes else []
    twice = [user for user in selected if len(on[user]) > 1]
    if twice:
        raise BackupError(f"{', '.join(twice)}: a volume on more than one node ("
                          + "; ".join(f"{user} on {' and '.join(on[user])}" for user in twice)
                          + "). Remove the one that is not the user's (docker volume rm on that node), or leave the user out "
                          "with jupyterhub_backup_users. Nothing was changed.")
    if hub_state and data_volume not in found.get(hub, []):
        raise BackupError(f"jhub_data_volume: there is no volume '{data_volume}' on {hub}; set jupyterhub_backup_hub_state: "
                          "false to back up the user volumes only.")
    shared = sorted(shared) if user_volumes else []
    nodes = []
    for node in sorted(found, key=lambda name: name != hub):
        node_users = {user: template.replace("{username}", user) for user in selected if on[user] == [node]}
        node_shared = shared if node == hub else []
        if node == hub or node_users:
            nodes.append({"node": node, "users": node_users, "shared": node_shared, "hub_state": hub_state and node == hub})
    return {"users": {user: template.replace("{username}", user) for user in selected}, "owners": sorted({owner(user) for user in selected}),
            "shared": shared, "found": {user: on[user] for user in sorted(on)}, "nodes": nodes}


def docker(*args: str) -> str:
    """Run the docker command line; its standard output, or BackupError with its standard error."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"docker {' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def run_helper(image: str, script: str, name: str, args: list, mounts: list) -> dict:
    """Run the helper script (SCRIPT on this host) with ARGS in a one-off container NAME of IMAGE, without network,
    with MOUNTS (docker's volume syntax); the JSON line it prints. The container is removed whatever happens."""
    # The hub image is built here: a backup never pulls.
    command = ["docker", "run", "--rm", "--pull", "never", "--name", name, "--network", "none", "--entrypoint", "python3"]
    command += [option for mount in [*mounts, f"{script}:{CONTAINER_SCRIPT}:ro"] for option in ("--volume", mount)]
    done = subprocess.run([*command, image, CONTAINER_SCRIPT, *args], capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    if done.returncode != 0 or result.get("failed"):
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)
        raise BackupError(result.get("msg") or f"the helper container exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return result


def make_dir(path: str) -> None:
    """PATH and its parent, root's alone (0700); both may exist."""
    for directory in (os.path.dirname(path), path):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)


def archive(partial: str, node: dict, *, image: str, script: str, data_volume: str, compression: str = "zstd",
            parallel: int = 2, space_check: bool = True) -> dict:
    """Archive NODE's part of a plan (its users' volumes, shared volumes and hub state) into the directory PARTIAL on
    this host, in one helper container; {archives (each with its node), seconds, jupyterhub_version}. On failure
    PARTIAL is removed, so that nothing half-made is kept."""
    make_dir(partial)
    users, shared = node["users"], node["shared"]
    if not (users or shared or node["hub_state"]):
        return {"archives": [], "seconds": 0, "jupyterhub_version": None}
    mounts = [f"{volume}:/volumes/{volume}:ro" for volume in [*users.values(), *shared]]
    args = ["backup", "--out", "/backup", "--compression", compression, "--parallel", str(parallel),
            "--space-check" if space_check else "--no-space-check"]
    args += [f"--user={user}={volume}" for user, volume in users.items()] + [f"--shared={volume}" for volume in shared]
    if node["hub_state"]:
        # Not read-only: SQLite's online backup takes the database's locks.
        mounts.append(f"{data_volume}:/volumes/{data_volume}")
        args += ["--hub-state", data_volume]
    try:
        result = run_helper(image, script, "jhub-backup-archive", args, [*mounts, f"{partial}:/backup"])
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    archives = [dict(item, node=node["node"]) for item in result["archives"]]
    return {"archives": archives, "seconds": result["seconds"],
            "jupyterhub_version": next((item["jupyterhub_version"] for item in archives if item.get("jupyterhub_version")), None)}


def write(path: str, text: str, mode: int = 0o600) -> None:
    """Write PATH whole or not at all (a temporary file renamed), with MODE."""
    temporary = f"{path}.tmp"
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def read_json(path: str) -> dict:
    """The JSON in PATH; {} when there is no such file."""
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def complete_backups(root: str) -> list:
    """The complete backups under ROOT (a backup's name and a manifest inside), oldest first."""
    if not os.path.isdir(root):
        return []
    return sorted(name for name in os.listdir(root) if NAME_REGEX.match(name) and os.path.isfile(os.path.join(root, name, "manifest.json")))


def to_remove(complete: list, keep: int, new: str) -> list:
    """The backups beyond the newest KEEP (0: none), never NEW."""
    return [name for name in (complete[:-keep] if keep and len(complete) > keep else []) if name != new]


def finish(root: str, name: str, *, host: str, image: str, template: str, archives: list, seconds: float, keep: int,
           now: float | None = None) -> dict:
    """Complete the backup NAME: its manifest and SHA256SUMS written into ROOT/NAME.partial, which is renamed to
    ROOT/NAME; then the backups beyond the newest KEEP (0: none) are removed. {name, dir, manifest, removed}."""
    partial, final = os.path.join(root, name + ".partial"), os.path.join(root, name)
    if os.path.exists(final):
        raise BackupError(f"{final} exists already; run the backup again in a second.")
    absent = [item["file"] for item in archives if not os.path.isfile(os.path.join(partial, item["file"]))]
    if absent:
        raise BackupError(f"{partial} lacks the archives {', '.join(absent)}.")
    manifest = {"format": "jhub.docker backup", "format_version": 1, "name": name,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "host": host,
                "jupyterhub_version": next((item["jupyterhub_version"] for item in archives if item.get("jupyterhub_version")), None),
                "jupyterhub_image": image, "user_volume": template, "archive_seconds": seconds, "archives": archives}
    write(os.path.join(partial, "manifest.json"), json.dumps(manifest, indent=4) + "\n")
    write(os.path.join(partial, "SHA256SUMS"), "".join(f"{item['sha256']}  {item['file']}\n" for item in archives))
    os.rename(partial, final)
    removed = to_remove(complete_backups(root), keep, name)
    for old in removed:
        shutil.rmtree(os.path.join(root, old))
    return {"name": name, "dir": final, "manifest": manifest, "removed": removed}


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def restore_plan(root: str, host: str, name: str = "", *, users: list = (), all_users: bool = False, shared: list = (),
                 hub_state: bool = False, volume: str = "", node: str = "", nodes: list = (), server: str = "", swarm: bool = False,
                 stop_servers: bool = False) -> dict:
    """The archives of backup NAME under ROOT (default: the newest) that a restore takes, each checked against
    the manifest's SHA-256: {name, dir, backups, users: [archive], shared: [archive], hub_state: archive or None}.

    Each archive of users and shared gets its `target` volume (a user's: VOLUME with {username} filled in) and
    its `target_node`: a shared volume's is HOST; a user's is NODE if given, else on a swarm (NODES, more than
    one) the node it was made on, else HOST. With SERVER (the users' server names, with {username}), `running`
    lists the users' servers that run (on a swarm, SWARM, their services). BackupError, before anything changes,
    when the backup is missing, does not hold what is asked for, an archive it takes is missing or damaged, its
    node is not in NODES, a user's server runs (unless STOP_SERVERS) or a shared volume is in use."""
    complete = complete_backups(root)
    if not complete or (name and name not in complete):
        raise BackupError(f"jupyterhub_backup_name: {f'backup {name!r} does not exist' if name else 'there is no backup'} in {root} on "
                          f"{host} (complete backups: {', '.join(complete) or 'none'}). Nothing was changed.")
    name = name or complete[-1]
    directory = os.path.join(root, name)
    archives = read_json(os.path.join(directory, "manifest.json")).get("archives", [])
    of_users = [item for item in archives if item["kind"] == "user"]
    of_shared = [item for item in archives if item["kind"] == "shared"]
    hub = [item for item in archives if item["kind"] == "hub-state"]
    problems = []
    missing = [user for user in users if user not in {item["username"] for item in of_users}]
    if missing:
        problems.append(f"jupyterhub_backup_restore_users: {', '.join(missing)} not in backup {name} "
                        f"(its users: {', '.join(item['username'] for item in of_users) or 'none'}).")
    missing = [volume for volume in shared if volume not in {item["volume"] for item in of_shared}]
    if missing:
        problems.append(f"jupyterhub_backup_restore_shared: {', '.join(missing)} not in backup {name} "
                        f"(its shared volumes: {', '.join(item['volume'] for item in of_shared) or 'none'}).")
    if hub_state and len(hub) != 1:
        problems.append(f"jupyterhub_backup_restore_hub_state: backup {name} has no hub state.")
    if problems:
        raise BackupError(" ".join(problems) + " Nothing was changed.")
    chosen = {"users": [item for item in of_users if all_users or item["username"] in users],
              "shared": [item for item in of_shared if item["volume"] in shared], "hub_state": hub[0] if hub_state else None}
    for item in chosen["users"]:
        item.update(target=volume.replace("{username}", item["username"]),
                    target_node=node or (item.get("node") or host if len(nodes) > 1 else host))
    for item in chosen["shared"]:
        item.update(target=item["volume"], target_node=host)
    elsewhere = [item for item in chosen["users"] if nodes and item["target_node"] not in nodes]
    if elsewhere:
        raise BackupError("".join(f"{item['username']}'s archive was made on node {item['target_node']}, " for item in elsewhere)
                          + f"which is not a node of the swarm ({', '.join(nodes)}): set jupyterhub_backup_restore_node to restore "
                          "on one of them. Nothing was changed.")
    for item in [*chosen["users"], *chosen["shared"], *([chosen["hub_state"]] if hub_state else [])]:
        path = os.path.join(directory, item["file"])
        digest = file_sha256(path) if FILE_REGEX.match(item["file"]) and os.path.isfile(path) else None
        if digest != item["sha256"]:
            raise BackupError(f"Backup {name}: archive {item['file']} is "
                              + (f"damaged (SHA-256 {digest}, manifest.json says {item['sha256']})" if digest else "missing")
                              + ". Nothing was restored; choose another backup with jupyterhub_backup_name.")
    running = []
    if server and chosen["users"]:
        # On a swarm a server is a service of the same name, whichever node runs it.
        present = set(docker("service", "ls", "--format", "{{.Name}}").split() if swarm else docker("ps", "--format", "{{.Names}}").split())
        running = [name for item in chosen["users"] if (name := server.replace("{username}", item["username"])) in present]
    if running and not stop_servers:
        raise BackupError(f"{', '.join(running)} {'is' if len(running) == 1 else 'are'} running and would see its files replaced "
                          "underneath it. Stop the server(s) in the hub's admin page, or set jupyterhub_backup_restore_stop_servers: "
                          "true. Nothing was changed.")
    # A shared volume is every server's that mounts it: those servers are stopped by their users or the admin.
    busy = {item["volume"]: users for item in chosen["shared"]
            if (users := docker("ps", "--filter", f"volume={item['volume']}", "--format", "{{.Names}}").split())}
    if busy:
        raise BackupError("jupyterhub_backup_restore_shared: " + "; ".join(f"{volume} is in use by {', '.join(users)}" for volume, users in busy.items())
                          + ". Stop those servers first (the hub's admin page). Nothing was changed.")
    return dict(chosen, name=name, dir=directory, backups=complete, running=running)


def restore(directory: str, item: dict, volume: str, *, image: str, script: str, hub_state: bool = False) -> dict:
    """Restore the archive ITEM (a manifest's entry) of DIRECTORY on this host into VOLUME (created when missing), or
    with HUB_STATE the hub's database and cookie secret into the hub's data volume VOLUME; the helper checks the
    archive's SHA-256 again before it writes, and the volume's content is replaced only once the archive is
    extracted whole. The helper's result (for the hub state, the restored database's SHA-256)."""
    archive_path = f"/backup/{item['file']}"
    if hub_state:
        args, mount = ["restore-hub-state", "--archive", archive_path, "--sha256", item["sha256"], "--data", "/data"], f"{volume}:/data"
    else:
        docker("volume", "create", volume)
        args = ["restore", "--archive", archive_path, "--sha256", item["sha256"], "--dest", "/volume", "--need", str(item.get("data_bytes") or 0)]
        mount = f"{volume}:/volume"
    return run_helper(image, script, "jhub-backup-restore", args, [mount, f"{directory}:/backup:ro"])
