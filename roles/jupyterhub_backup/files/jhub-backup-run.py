"""Make one backup of the hub's host by itself, with no controller: the scheduled backup.

Installed by the jhub.docker jupyterhub_backup role (tasks_from schedule) with its settings in a JSON
file (root's, 0600), and run by a systemd timer or, on a host without systemd, by cron:

  jhub-backup-run [--config FILE] [backup]          the backup (and its off-site copy, with restic)
  jhub-backup-run [--config FILE] restic-init       make the restic repository when there is none
  jhub-backup-run [--config FILE] restic-check      prune and check the restic repository (recorded like a backup)
  jhub-backup-run [--config FILE] restore-restic --user NAME [--backup NAME] [--volume VOLUME]
  jhub-backup-run [--config FILE] fetch-restic [--backup NAME]   a backup's manifest and hub state, from restic

It makes the same backup as playbooks/backup.yml on a single host, in the same layout (a timestamped
directory with manifest.json and SHA256SUMS, built in NAME.partial and renamed when complete; the
archives made by jhub-backup.py in a one-off container of the hub image), so that playbooks/restore.yml
restores either. It finds the users' volumes by the spawner's naming and the shared volumes by their
label, stops the users' servers through the hub's REST API first when asked (and starts them again,
also after a failure), then keeps the newest `keep` backups.

With a restic repository in the settings, the backup is also copied off-site, while the servers are still
stopped: a snapshot of each volume's files (restic reads them in the volume's directory on this host, and
skips the files unchanged since the last snapshot), and one of the hub state's archive and the manifest, all
tagged by kind, user, volume and backup; then restic forgets all but the newest `keep` snapshots of each
(restic-check prunes their data). A failed off-site copy keeps the local backup, and the run is failed.

Every run, good or failed, is recorded: ROOT/last-run.json, and node-exporter's textfile collector
format in METRICS_DIR/jhub_backup.prom (the newest good backup's and off-site copy's figures stay there
after a failed run). Prints one JSON line; exits 1 on failure, so that the journal or cron shows it.
Only the standard library and the docker and restic command lines are used: this runs with the host's python3.
"""

import argparse
import fcntl
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name, *paths):
    """The module in the first of PATHS that exists."""
    path = next(path for path in paths if os.path.isfile(path))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The helper script, beside this program (its remove(), as the archives' restores use it), and the
# collection's backup logic and client of the hub's API, installed beside it by the role (in the
# repository, in plugins/module_utils): the same code as the role's modules run.
helper = load("jhub_backup", os.path.join(HERE, "jhub-backup.py"))
UTILS = os.path.join(HERE, "..", "..", "..", "plugins", "module_utils")
lib = load("jhub_backup_lib", os.path.join(HERE, "backup.py"), os.path.join(UTILS, "backup.py"))
hub_api = load("hub_api", os.path.join(HERE, "hub_api.py"), os.path.join(UTILS, "hub_api.py"))
BackupError, docker, read_json, write = lib.BackupError, lib.docker, lib.read_json, lib.write


def volume_names(label=None):
    args = ["volume", "ls", "--format", "{{.Name}}"] + (["--filter", f"label={label}"] if label else [])
    return sorted(line for line in docker(*args).splitlines() if line)


class Restic:
    """restic (the host's) with the repository, its password and the backend's variables of the settings."""

    def __init__(self, config):
        self.config = config["restic"]
        self.host = config["host"]
        # The password and the backend's variables: from the secrets file (root's, 0600), or given with the
        # settings on standard input (the role's first check of a repository, before it writes any file).
        secrets = self.config.get("secrets") or read_json(self.config["secrets_file"])
        self.env = dict(os.environ, RESTIC_REPOSITORY=self.config["repository"], RESTIC_CACHE_DIR=self.config["cache_dir"], **secrets)

    @property
    def command(self):
        """restic with the settings' extended options (-o)."""
        return ["restic", *(option for value in self.config["options"] for option in ("-o", value))]

    def run(self, *args, what="restic", check=True):
        done = subprocess.run([*self.command, *args], env=self.env, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise BackupError(f"{what}: restic {args[0]} failed on {self.config['repository']}: {done.stderr.strip()[-1500:]}")
        return done

    def init(self):
        """Make the repository when there is none; True when made. A wrong password is refused, not re-made."""
        done = self.run("cat", "config", check=False)
        if done.returncode == 0:
            return False
        if "wrong password" in done.stderr:
            raise BackupError(f"the restic password does not open the repository {self.config['repository']} "
                              "(restic: wrong password or no key found); nothing was changed.")
        if "Is there a repository at the following location?" not in done.stderr and "does not exist" not in done.stderr:
            raise BackupError(f"restic cannot reach the repository {self.config['repository']}: {done.stderr.strip()[-1500:]}")
        self.run("init", what="the repository could not be made")
        return True

    def backup(self, paths, tags):
        """One snapshot of PATHS, tagged; restic's summary of it."""
        done = self.run("backup", "--json", "--host", self.host, *(f"--tag={tag}" for tag in ["jhub-docker", *tags]), "--", *paths, check=False)
        summary = [json.loads(line) for line in done.stdout.splitlines() if '"summary"' in line]
        if done.returncode != 0 or not summary:
            raise BackupError(f"restic backup of {', '.join(paths)} failed: {done.stderr.strip()[-1500:]}")
        return summary[-1]

    def dump(self, snapshot, path, out):
        """Write the file PATH of SNAPSHOT into OUT (a new file, 0600)."""
        with os.fdopen(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            done = subprocess.run([*self.command, "dump", snapshot, path], env=self.env, stdout=handle, stderr=subprocess.PIPE,
                                  check=False)
        if done.returncode != 0:
            raise BackupError(f"restic dump of {path} failed: {done.stderr.decode(errors='replace').strip()[-1500:]}")

    def newest(self, tags, what):
        """The newest snapshot with TAGS; BackupError naming WHAT when there is none."""
        found = self.snapshots(tags)
        if not found:
            raise BackupError(f"no restic snapshot of {what} for the host {self.host} in {self.config['repository']}; nothing was changed.")
        return max(found, key=lambda item: item["time"])

    def snapshots(self, tags):
        return json.loads(self.run("snapshots", "--json", "--host", self.host, "--tag", ",".join(["jhub-docker", *tags])).stdout or "[]")

    def forget(self, keep):
        """Keep the newest KEEP snapshots of each volume and of the backups; the rest are forgotten (not yet pruned)."""
        self.run("forget", "--host", self.host, "--tag", "jhub-docker", "--group-by", "host,paths", "--keep-last", str(keep))


def mountpoints(volumes):
    """{volume: its directory on this host} (local volumes: restic reads and writes their files there)."""
    if not volumes:
        return {}
    found = json.loads(docker("volume", "inspect", *volumes))
    return {item["Name"]: item["Mountpoint"] for item in found}


def offsite(config, name, final, users, shared):
    """Snapshots of the users' and shared volumes (their files, so that unchanged files cost nothing), and one of
    the backup itself: its manifest and the hub state's archive, linked into ROOT/.offsite (a path that every
    backup's snapshot shares, so that retention sees one series). Then the snapshots beyond the newest `keep` of
    each series are forgotten (their data is pruned by the check's job)."""
    started = time.monotonic()
    restic = Restic(config)
    added, snapshots = 0, 0
    paths = mountpoints(list(users.values()) + shared)
    for user, volume in users.items():
        added += restic.backup([paths[volume]], ["kind:user", f"user:{user}", f"volume:{volume}", f"backup:{name}"])["data_added"]
        snapshots += 1
    for volume in shared:
        added += restic.backup([paths[volume]], ["kind:shared", f"volume:{volume}", f"backup:{name}"])["data_added"]
        snapshots += 1
    staging = os.path.join(config["root"], ".offsite")
    shutil.rmtree(staging, ignore_errors=True)
    os.mkdir(staging, 0o700)
    try:
        for file in os.listdir(final):
            if file == "manifest.json" or file.startswith("hub-state"):
                os.link(os.path.join(final, file), os.path.join(staging, file))
        added += restic.backup([staging], ["kind:backup", f"backup:{name}"])["data_added"]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    restic.forget(config["keep"])
    return {"repository": config["restic"]["repository"], "snapshots": snapshots + 1, "data_added": added,
            "seconds": round(time.monotonic() - started, 3)}


def backup(config, now):
    """Make the backup, as playbooks/backup.yml makes it on a single host; its summary. Stopped servers are
    started again whatever happens."""
    plan = lib.plan({config["host"]: volume_names()}, config["users"], config["user_volume"], config["host"], config["data_volume"],
                    user_volumes=config["user_volumes"], hub_state=config["hub_state"],
                    shared=volume_names(config["shared_label"]) if config["shared_volumes"] else [])
    users, shared = plan["users"], plan["shared"]
    name = time.strftime(lib.NAME_FORMAT, time.gmtime(now))
    partial = os.path.join(config["root"], name + ".partial")
    hub = None
    if config["stop_servers"]:
        with open(config["token_file"], encoding="utf-8") as handle:
            hub = hub_api.HubApi(config["api"], handle.read(), config["timeout"])
    stopped = hub.servers_of(set(plan["owners"])) if hub else []
    copy = None
    try:
        if stopped:
            hub.stop(stopped)
        try:
            result = lib.archive(partial, plan["nodes"][0], image=config["image"], script=config["script"], data_volume=config["data_volume"],
                                 compression=config["compression"], parallel=config["parallel"], space_check=config["space_check"])
            done = lib.finish(config["root"], name, host=config["host"], image=config["image"], template=config["user_volume"],
                              archives=result["archives"], seconds=result["seconds"], keep=config["keep"], now=now)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        # The off-site copy while the servers are still stopped; its failure keeps the local backup.
        if config.get("restic"):
            try:
                copy = dict(offsite(config, name, done["dir"], users, shared), success=1)
            except (BackupError, OSError, ValueError, KeyError) as failure:
                copy = {"repository": config["restic"]["repository"], "success": 0, "error": str(failure)}
    finally:
        if stopped:
            hub.start(stopped)
    archives = done["manifest"]["archives"]
    return {"name": name, "archives": len(archives), "size": sum(item["size"] for item in archives),
            "users": sorted(users), "shared": shared, "hub_state": config["hub_state"],
            "servers_stopped": [f"{server['user']}/{server['name']}" for server in stopped], "removed": done["removed"],
            "warnings": [item["warning"] for item in archives if item.get("warning")], "offsite": copy}


METRICS = (
    ("jhub_backup_last_run_success", "Whether the last backup run succeeded (1) or failed (0), its off-site copy included.", "success"),
    ("jhub_backup_last_run_timestamp_seconds", "When the last backup run ended (Unix time).", "ended"),
    ("jhub_backup_last_success_timestamp_seconds", "When the newest good backup ended (Unix time).", "last_success_ended"),
    ("jhub_backup_last_success_size_bytes", "Size of the newest good backup's archives.", "last_success_size"),
    ("jhub_backup_last_success_duration_seconds", "How long the newest good backup took.", "last_success_seconds"),
    ("jhub_backup_last_offsite_success_timestamp_seconds", "When the newest good off-site copy (restic) ended (Unix time).",
     "last_offsite_ended"),
    ("jhub_backup_last_offsite_added_bytes", "Data the newest good off-site copy added to the restic repository.", "last_offsite_added"),
)
LOCAL = ("last_success_ended", "last_success_size", "last_success_seconds", "last_success_name")
OFFSITE = ("last_offsite_ended", "last_offsite_added")


def record(previous, started, ended, summary, error):
    """This run's record. The newest good backup's and off-site copy's figures are carried over from PREVIOUS
    when this run did not make one; a run is good when its backup and its off-site copy (if any) are."""
    copy = (summary or {}).get("offsite")
    failed_copy = copy is not None and not copy["success"]
    entry = {"success": int(error is None and not failed_copy), "started": round(started, 3), "ended": round(ended, 3),
             "error": error or (f"the off-site copy failed: {copy['error']}" if failed_copy else None)}
    if error is None:
        entry.update(last_success_ended=entry["ended"], last_success_size=summary["size"], last_success_seconds=round(ended - started, 3),
                     last_success_name=summary["name"], summary=summary)
    else:
        entry.update({key: previous.get(key) for key in LOCAL})
    if copy and copy["success"]:
        entry.update(last_offsite_ended=entry["ended"], last_offsite_added=copy["data_added"])
    else:
        entry.update({key: previous.get(key) for key in OFFSITE})
    return entry


def metrics(entry, table=METRICS):
    """ENTRY in node-exporter's textfile format; a figure never recorded is left out."""
    lines = []
    for metric, text, key in table:
        if entry.get(key) is not None:
            lines += [f"# HELP {metric} {text}", f"# TYPE {metric} gauge", f"{metric} {entry[key]}"]
    return "\n".join(lines) + "\n"


def read_json(path):
    """The JSON in PATH; {} when there is no such file."""
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def restore_restic(config, user, backup_name, volume):
    """Restore USER's volume (or VOLUME) from the newest restic snapshot of it (of the backup BACKUP_NAME if given).

    As the helper restores an archive: refused while a running container uses the volume; the snapshot is
    restored (and its files verified by restic) into a new directory in the volume, and only then replaces
    the volume's content, its root taking the snapshot's owner and mode. On any failure, the volume is as it was.
    """
    restic = Restic(config)
    snapshot = restic.newest(["kind:user", f"user:{user}"] + ([f"backup:{backup_name}"] if backup_name else []),
                             f"{user}'s volume" + (f" from {backup_name}" if backup_name else ""))
    volume = volume or config["user_volume"].replace("{username}", user)
    running = docker("ps", "--filter", f"volume={volume}", "--format", "{{.Names}}").split()
    if running:
        raise BackupError(f"{volume} is in use by {', '.join(running)}: stop it first; nothing was changed.")
    docker("volume", "create", volume)
    dest = mountpoints([volume])[volume]
    staging = tempfile.mkdtemp(prefix=".jhub-restore-", dir=dest)
    try:
        restic.run("restore", snapshot["id"], "--target", staging, "--verify", what=f"the restore of {user}")
        source = staging + snapshot["paths"][0]
        for name in os.listdir(dest):
            if os.path.join(dest, name) != staging:
                helper.remove(os.path.join(dest, name))
        for name in os.listdir(source):
            os.rename(os.path.join(source, name), os.path.join(dest, name))
        root = os.lstat(source)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging)
    os.chown(dest, root.st_uid, root.st_gid)
    os.chmod(dest, stat.S_IMODE(root.st_mode))
    return {"changed": True, "user": user, "volume": volume, "snapshot": snapshot["short_id"],
            "backup": next((tag[7:] for tag in snapshot.get("tags", []) if tag.startswith("backup:")), None)}


def fetch_restic(config, backup_name):
    """Make the backup BACKUP_NAME (default: the newest) under the backup root again from its restic snapshots: its
    manifest and its hub state's archive, checked against the manifest's SHA-256, so that playbooks/restore.yml
    restores the hub state after the host and its local backups are lost. The users' volumes: restore-restic."""
    restic = Restic(config)
    snapshot = restic.newest(["kind:backup"] + ([f"backup:{backup_name}"] if backup_name else []),
                             f"the backup {backup_name}" if backup_name else "a backup")
    name, where = next(tag[7:] for tag in snapshot["tags"] if tag.startswith("backup:")), snapshot["paths"][0]
    final, partial = os.path.join(config["root"], name), os.path.join(config["root"], name + ".partial")
    if os.path.exists(final):
        raise BackupError(f"{final} exists already: it is here, nothing to fetch.")
    os.mkdir(partial, 0o700)
    try:
        restic.dump(snapshot["id"], f"{where}/manifest.json", os.path.join(partial, "manifest.json"))
        manifest = read_json(os.path.join(partial, "manifest.json"))
        archives = [item for item in manifest["archives"] if item["kind"] == "hub-state"]
        for item in archives:
            restic.dump(snapshot["id"], f"{where}/{item['file']}", os.path.join(partial, item["file"]))
            digest = lib.file_sha256(os.path.join(partial, item["file"]))
            if digest != item["sha256"]:
                raise BackupError(f"{item['file']} from restic is damaged: sha256 {digest}, the manifest says {item['sha256']}.")
        write(os.path.join(partial, "SHA256SUMS"), "".join(f"{item['sha256']}  {item['file']}\n" for item in archives))
        os.rename(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return {"changed": True, "backup": name, "dir": final, "archives": [item["file"] for item in archives]}


def run_backup(config):
    """The scheduled backup, recorded for monitoring; (exit status, what to print)."""
    started, summary, error = time.time(), None, None
    try:
        summary = backup(config, started)
    except (BackupError, hub_api.HubApiError, OSError, subprocess.SubprocessError, ValueError, KeyError) as failure:
        error = str(failure) or type(failure).__name__
    last = os.path.join(config["root"], "last-run.json")
    entry = record(read_json(last), started, time.time(), summary, error)
    write(last, json.dumps(entry, indent=2) + "\n")
    write_metrics(config, "jhub_backup.prom", metrics(entry))
    if error:
        return 1, {"failed": True, "msg": f"The backup failed, nothing half-made is kept: {error}"}
    if not entry["success"]:
        return 1, dict(summary, failed=True, msg=f"The backup {summary['name']} was made here, but {entry['error']}")
    return 0, dict(summary, changed=True)


def run_check(config):
    """restic prune (the data of forgotten snapshots goes) and check of the repository, recorded for monitoring."""
    try:
        restic = Restic(config)
        restic.run("prune", what="the repository's prune")
        restic.run("check", what="the repository's check")
        error = None
    except BackupError as failure:
        error = str(failure)
    write_metrics(config, "jhub_backup_restic_check.prom", metrics({"success": int(error is None), "ended": round(time.time(), 3)}, (
        ("jhub_backup_restic_check_success", "Whether the last restic check of the repository passed (1) or not (0).", "success"),
        ("jhub_backup_restic_check_timestamp_seconds", "When the last restic check ended (Unix time).", "ended"))))
    return (1, {"failed": True, "msg": error}) if error else (0, {"changed": True, "msg": "restic prune and check passed."})


def write_metrics(config, name, text):
    if config.get("metrics_dir"):
        os.makedirs(config["metrics_dir"], mode=0o755, exist_ok=True)
        write(os.path.join(config["metrics_dir"], name), text, mode=0o644)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="/srv/jupyterhub/backup.json", help="the settings file; - reads them from standard input")
    parser.add_argument("command", nargs="?", default="backup",
                        choices=["backup", "restic-init", "restic-check", "restore-restic", "fetch-restic"])
    parser.add_argument("--user", help="restore-restic: the user whose volume is restored")
    parser.add_argument("--backup", default="", help="restore-restic, fetch-restic: the backup's name (its snapshots); default the newest")
    parser.add_argument("--volume", default="", help="restore-restic: the volume restored into; default the user's own")
    args = parser.parse_args(argv)
    if args.config == "-":
        config = json.load(sys.stdin)
    elif os.path.isfile(args.config):
        config = read_json(args.config)
    else:
        print(json.dumps({"failed": True, "msg": f"{args.config}: no such settings file; playbooks/site.yml writes it "
                                                 "when jupyterhub_backup_schedule is set."}))
        return 1
    if args.command == "restore-restic" and not args.user:
        parser.error("restore-restic needs --user")
    if args.command != "backup" and not config.get("restic"):
        print(json.dumps({"failed": True, "msg": f"{args.command}: no restic repository is set (jupyterhub_backup_restic_repository)."}))
        return 1
    os.makedirs(config["root"], mode=0o700, exist_ok=True)
    # One run at a time on this host: a second one waits for nothing, it fails and says why.
    with os.fdopen(os.open(os.path.join(config["root"], ".lock"), os.O_WRONLY | os.O_CREAT, 0o600), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(json.dumps({"failed": True, "msg": f"another backup is running on this host ({config['root']}/.lock is held)."}))
            return 1
        if args.command == "backup":
            status, said = run_backup(config)
        elif args.command == "restic-check":
            status, said = run_check(config)
        else:
            try:
                if args.command == "restic-init":
                    said = {"changed": Restic(config).init()}
                elif args.command == "fetch-restic":
                    said = fetch_restic(config, args.backup)
                else:
                    said = restore_restic(config, args.user, args.backup, args.volume)
                status = 0
            except (BackupError, OSError, subprocess.SubprocessError, ValueError, KeyError) as failure:
                status, said = 1, {"failed": True, "msg": str(failure)}
    print(json.dumps(said))
    return status


if __name__ == "__main__":
    sys.exit(main())
