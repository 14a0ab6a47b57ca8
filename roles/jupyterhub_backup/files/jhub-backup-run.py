"""Make one backup of the hub's host by itself, with no controller: the scheduled backup.

Installed by the jhub.docker jupyterhub_backup role (tasks_from schedule) with its settings in a JSON
file (root's, 0600), and run by a systemd timer or, on a host without systemd, by cron:

  jhub-backup-run [--config /etc/jhub-docker/backup.json]

It makes the same backup as playbooks/backup.yml on a single host, in the same layout (a timestamped
directory with manifest.json and SHA256SUMS, built in NAME.partial and renamed when complete; the
archives made by jhub-backup.py in a one-off container of the hub image), so that playbooks/restore.yml
restores either. It finds the users' volumes by the spawner's naming and the shared volumes by their
label, stops the users' servers through the hub's REST API first when asked (and starts them again,
also after a failure), then keeps the newest `keep` backups.

Every run, good or failed, is recorded: ROOT/last-run.json, and node-exporter's textfile collector
format in METRICS_DIR/jhub_backup.prom (the newest good backup's time, size and duration stay there
after a failed run). Prints one JSON line; exits 1 on failure, so that the journal or cron shows it.
Only the standard library and the docker command line are used: this runs with the host's python3.
"""

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

NAME_REGEX = re.compile(r"^jhub-backup-[0-9]{8}T[0-9]{6}Z$")
HELPER = "jhub-backup-archive"
CONTAINER_SCRIPT = "/usr/local/lib/jhub-docker/jhub-backup.py"


class BackupError(Exception):
    """A reason to stop, said to the operator as it is."""


def docker(*args, timeout=None):
    """Run the docker command line; its standard output, or BackupError with its standard error."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise BackupError(f"docker {args[0]} {args[1] if len(args) > 1 else ''} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def volume_names(label=None):
    args = ["volume", "ls", "--format", "{{.Name}}"] + (["--filter", f"label={label}"] if label else [])
    return sorted(line for line in docker(*args).splitlines() if line)


def user_volume_regex(template):
    """The user volume's template (with {username}) as a regular expression capturing the name."""
    return re.compile("^" + "([a-zA-Z0-9][a-zA-Z0-9_.-]*)".join(re.escape(part) for part in template.split("{username}")) + "$")


def choose(config, volumes, shared):
    """(users, shared volumes) to back up: {user: volume} and [volume]; BackupError if one asked for is missing."""
    found = {}
    if config["user_volumes"]:
        regex = user_volume_regex(config["user_volume"])
        found = {match.group(1): name for name in volumes if name != config["data_volume"] for match in [regex.match(name)] if match}
    missing = sorted(set(config["users"]) - set(found))
    if missing:
        raise BackupError(f"users: no volume for {', '.join(missing)}; the users with a volume are: {', '.join(sorted(found)) or 'none'}.")
    if config["users"]:
        found = {user: found[user] for user in config["users"]}
    if config["hub_state"] and config["data_volume"] not in volumes:
        raise BackupError(f"there is no hub data volume '{config['data_volume']}' on this host.")
    return found, (shared if config["user_volumes"] and config["shared_volumes"] else [])


def complete_backups(root):
    """The complete backups under ROOT (a backup's name and a manifest inside), oldest first."""
    return sorted(name for name in os.listdir(root) if NAME_REGEX.match(name) and os.path.isfile(os.path.join(root, name, "manifest.json")))


def to_remove(complete, keep, new):
    """The backups beyond the newest KEEP (0: none), never NEW."""
    return [name for name in (complete[:-keep] if keep and len(complete) > keep else []) if name != new]


class Hub:
    """The hub's REST API with the operations token, for stopping and starting users' servers."""

    def __init__(self, api, token_file, timeout):
        self.api = api.rstrip("/")
        with open(token_file, encoding="utf-8") as handle:
            self.token = handle.read().strip()
        self.timeout = timeout

    def call(self, method, path, body=None, accept=(200,)):
        request = urllib.request.Request(self.api + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"token {self.token}", "Content-Type": "application/json",
                                                  "Accept": "application/jupyterhub-pagination+json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # nosec B310: the hub's own http address
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as error:
            raise BackupError(f"the hub's API at {self.api} did not answer: {error}") from error
        if status not in accept:
            raise BackupError(f"the hub's API answered {method} {path} with {status}: {text[:300]}")
        return status, json.loads(text) if text.strip() else None

    def servers_of(self, users):
        """The running servers of USERS: [{user, name, user_options}], 200 users a page."""
        servers, offset = [], 0
        while True:
            _status, page = self.call("GET", f"/users?state=active&limit=200&offset={offset}")
            for user in page["items"]:
                if user["name"] in users:
                    servers += [{"user": user["name"], "name": server["name"], "user_options": server.get("user_options") or {}}
                                for server in (user.get("servers") or {}).values()]
            offset += 200
            if offset >= page["_pagination"]["total"]:
                return servers

    @staticmethod
    def path(server):
        return f"/users/{server['user']}/" + (f"servers/{server['name']}" if server["name"] else "server")

    def wait(self, servers, wanted):
        deadline = time.monotonic() + self.timeout
        for server in servers:
            while True:
                _status, user = self.call("GET", f"/users/{server['user']}")
                state = (user.get("servers") or {}).get(server["name"])
                if (state is None) if wanted == "stopped" else (state or {}).get("ready"):
                    break
                if time.monotonic() > deadline:
                    raise BackupError(f"{server['user']}/{server['name']} is not {wanted} after {self.timeout} s.")
                time.sleep(2)

    def stop(self, servers):
        for server in servers:
            self.call("DELETE", self.path(server), accept=(202, 204))
        self.wait(servers, "stopped")

    def start(self, servers):
        """Start SERVERS with their options; 400 is one running already, 429 too many pending: again."""
        deadline = time.monotonic() + self.timeout
        for server in servers:
            while self.call("POST", self.path(server), server["user_options"], accept=(201, 202, 400, 429))[0] == 429:
                if time.monotonic() > deadline:
                    raise BackupError(f"the hub refused to start {server['user']}/{server['name']} for {self.timeout} s (429).")
                time.sleep(10)
        self.wait(servers, "ready")


def archive(config, partial, users, shared):
    """Run jhub-backup.py in a one-off container of the hub image, without network; its JSON result."""
    mounts = [f"{volume}:/volumes/{volume}:ro" for volume in list(users.values()) + shared]
    args = ["backup", "--out", "/backup", "--compression", config["compression"], "--parallel", str(config["parallel"]),
            "--space-check" if config["space_check"] else "--no-space-check"]
    args += [f"--user={user}={volume}" for user, volume in users.items()] + [f"--shared={volume}" for volume in shared]
    if config["hub_state"]:
        mounts.append(f"{config['data_volume']}:/volumes/{config['data_volume']}")
        args += ["--hub-state", config["data_volume"]]
    mounts += [f"{partial}:/backup", f"{config['script']}:{CONTAINER_SCRIPT}:ro"]
    # The hub image is built here: a backup never pulls.
    command = ["run", "--rm", "--pull", "never", "--name", HELPER, "--network", "none", "--entrypoint", "python3"]
    command += [option for mount in mounts for option in ("--volume", mount)]
    done = subprocess.run(["docker", *command, config["image"], CONTAINER_SCRIPT, *args], capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    if done.returncode != 0 or result.get("failed"):
        raise BackupError(result.get("msg") or f"the archive container exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return result


def write(path, text, mode=0o600):
    """Write PATH whole or not at all (a temporary file renamed), with MODE."""
    temporary = f"{path}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def backup(config, now):
    """Make the backup; its summary. Stopped servers are started again whatever happens."""
    os.makedirs(config["root"], mode=0o700, exist_ok=True)
    users, shared = choose(config, volume_names(), volume_names(config["shared_label"]))
    name = time.strftime("jhub-backup-%Y%m%dT%H%M%SZ", time.gmtime(now))
    final, partial = os.path.join(config["root"], name), os.path.join(config["root"], name + ".partial")
    if os.path.exists(final):
        raise BackupError(f"{final} exists already; run the backup again in a second.")
    hub = Hub(config["api"], config["token_file"], config["timeout"]) if config["stop_servers"] else None
    stopped = hub.servers_of({user.split("--")[0] for user in users}) if hub else []
    try:
        os.mkdir(partial, 0o700)
        if stopped:
            hub.stop(stopped)
        result = archive(config, partial, users, shared)
        archives = [dict(item, node=config["host"]) for item in result["archives"]]
        manifest = {"format": "jhub.docker backup", "format_version": 1, "name": name,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "host": config["host"],
                    "jupyterhub_version": next((item["jupyterhub_version"] for item in archives if item.get("jupyterhub_version")), None),
                    "jupyterhub_image": config["image"], "user_volume": config["user_volume"],
                    "archive_seconds": result["seconds"], "archives": archives}
        write(os.path.join(partial, "manifest.json"), json.dumps(manifest, indent=4) + "\n")
        write(os.path.join(partial, "SHA256SUMS"), "".join(f"{item['sha256']}  {item['file']}\n" for item in archives))
        os.rename(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        if stopped:
            hub.start(stopped)
    removed = to_remove(complete_backups(config["root"]), config["keep"], name)
    for old in removed:
        shutil.rmtree(os.path.join(config["root"], old))
    return {"name": name, "archives": len(archives), "size": sum(item["size"] for item in archives),
            "users": sorted(users), "shared": shared, "hub_state": config["hub_state"],
            "servers_stopped": [f"{server['user']}/{server['name']}" for server in stopped], "removed": removed,
            "warnings": [item["warning"] for item in archives if item.get("warning")]}


METRICS = (
    ("jhub_backup_last_run_success", "Whether the last backup run succeeded (1) or failed (0).", "success"),
    ("jhub_backup_last_run_timestamp_seconds", "When the last backup run ended (Unix time).", "ended"),
    ("jhub_backup_last_success_timestamp_seconds", "When the newest good backup ended (Unix time).", "last_success_ended"),
    ("jhub_backup_last_success_size_bytes", "Size of the newest good backup's archives.", "last_success_size"),
    ("jhub_backup_last_success_duration_seconds", "How long the newest good backup took.", "last_success_seconds"),
)


def record(previous, started, ended, summary, error):
    """This run's record; the newest good backup's figures carried over from PREVIOUS after a failure."""
    entry = {"success": int(error is None), "started": round(started, 3), "ended": round(ended, 3), "error": error}
    if error is None:
        entry.update(last_success_ended=entry["ended"], last_success_size=summary["size"], last_success_seconds=round(ended - started, 3),
                     last_success_name=summary["name"], summary=summary)
    else:
        entry.update({key: previous.get(key) for key in ("last_success_ended", "last_success_size", "last_success_seconds", "last_success_name")})
    return entry


def metrics(entry):
    """ENTRY in node-exporter's textfile format; a figure never recorded is left out."""
    lines = []
    for metric, text, key in METRICS:
        if entry.get(key) is not None:
            lines += [f"# HELP {metric} {text}", f"# TYPE {metric} gauge", f"{metric} {entry[key]}"]
    return "\n".join(lines) + "\n"


def read_json(path):
    """The JSON in PATH; {} when there is no such file."""
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="/etc/jhub-docker/backup.json")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.config):
        print(json.dumps({"failed": True, "msg": f"{args.config}: no such settings file; playbooks/site.yml writes it "
                                                 "when jupyterhub_backup_schedule is set."}))
        return 1
    config = read_json(args.config)
    os.makedirs(config["root"], mode=0o700, exist_ok=True)
    started, summary, error = time.time(), None, None
    # One backup at a time on this host: a second run waits for nothing, it fails and says why.
    with os.fdopen(os.open(os.path.join(config["root"], ".lock"), os.O_WRONLY | os.O_CREAT, 0o600), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(json.dumps({"failed": True, "msg": f"another backup is running on this host ({config['root']}/.lock is held)."}))
            return 1
        try:
            summary = backup(config, started)
        except (BackupError, OSError, subprocess.SubprocessError, ValueError, KeyError) as failure:
            error = str(failure) or type(failure).__name__
        last = os.path.join(config["root"], "last-run.json")
        entry = record(read_json(last), started, time.time(), summary, error)
        write(last, json.dumps(entry, indent=2) + "\n")
        if config.get("metrics_dir"):
            os.makedirs(config["metrics_dir"], mode=0o755, exist_ok=True)
            write(os.path.join(config["metrics_dir"], "jhub_backup.prom"), metrics(entry), mode=0o644)
    print(json.dumps({"failed": True, "msg": f"The backup failed, nothing half-made is kept: {error}"} if error else dict(summary, changed=True)))
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
