#!/usr/bin/env python
"""Start a candidate hub (this image, a candidate configuration) against a copy of the live database.

The jhub.docker jupyterhub role runs it in a throwaway container of the new hub image before a
changed configuration or image goes live. The container has no network but its own loopback,
no published port and no Docker socket, and the live data volume is mounted read-only: the
candidate cannot touch users' servers, the live proxy's routes or the live database. It runs
the admin bootstrap and then JupyterHub, as the hub container does, and succeeds once JupyterHub
has loaded its roles, services and tokens, started its proxy and answered /hub/health. If
JupyterHub exits or does not get there in time, it prints the hub's own error lines and fails.

A database at an older revision than this image's JupyterHub is upgraded first (jupyterhub
upgrade-db, on the copy), and the upgrade is announced as "preflight: database upgrade OLD -> NEW"
for the role, which then upgrades the live database the same way. A database at a revision this
image does not know (a newer JupyterHub made it) is refused: JupyterHub has no downgrade.
"""

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import deque
from contextlib import closing
from pathlib import Path
from threading import Thread

READY = "JupyterHub is now running"
HUB_API = "http://127.0.0.1:8081"
# What the candidate changes for its run: its own copy of the state, its own loopback, no cleanup.
OVERRIDES = """
from urllib.parse import urlsplit
c = get_config()  # noqa: F821
load_subconfig({config!r})  # noqa: F821
c.JupyterHub.db_url = {db_url!r}
c.JupyterHub.cookie_secret_file = {cookie_secret!r}
# The proxy on the loopback (the container has no other interface), under the same path.
c.JupyterHub.bind_url = "http://127.0.0.1:8000" + urlsplit(c.JupyterHub.get("bind_url", "")).path
c.JupyterHub.hub_bind_url = {hub_api!r}
c.JupyterHub.hub_connect_url = {hub_api!r}
c.JupyterHub.cleanup_servers = False
c.ConfigurableHTTPProxy.pid_file = {proxy_pid!r}
# Its own proxy, on the loopback: the live proxy's routes are not the candidate's to change.
c.ConfigurableHTTPProxy.should_start = True
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:8001"
"""


def copy_state(live_db: Path, live_secret: Path, work: Path) -> None:
    """The live database through SQLite's backup API (consistent while the live hub writes), and
    the cookie secret; a first deployment has neither and starts from nothing, as the hub would."""
    if live_db.is_file():
        source = sqlite3.connect(f"file:{live_db}?mode=ro", uri=True, timeout=30)
        target = sqlite3.connect(work / "jupyterhub.sqlite")
        with target:
            source.backup(target)
        source.close()
        target.close()
    if live_secret.is_file():
        shutil.copyfile(live_secret, work / "cookie_secret")
        os.chmod(work / "cookie_secret", 0o600)


def db_revision(db: Path) -> str | None:
    """The database's alembic revision (None: no database yet, or one JupyterHub has not stamped)."""
    if not db.is_file():
        return None
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            return None
    return row[0] if row else None


def known_revisions() -> tuple[str, str, set[str]]:
    """This image's JupyterHub: its version, its newest database revision and every revision it knows."""
    import jupyterhub  # pylint: disable=import-outside-toplevel
    from alembic.script import ScriptDirectory  # pylint: disable=import-outside-toplevel

    script = ScriptDirectory(str(Path(jupyterhub.__file__).parent / "alembic"))
    return jupyterhub.__version__, script.get_current_head(), {rev.revision for rev in script.walk_revisions()}


def upgrade(db: Path, config: Path) -> int:
    """Refuse a database of a newer JupyterHub; upgrade an older one in place (jupyterhub upgrade-db)."""
    revision = db_revision(db)
    version, head, known = known_revisions()
    if revision is None or revision == head:
        return 0
    if revision not in known:
        print(f"preflight: the candidate hub refuses the database: it is at revision {revision}, which JupyterHub "
              f"{version} of this image does not know (its newest is {head}): a newer JupyterHub made it, and "
              "JupyterHub cannot downgrade a database. Keep the newer version, or restore a backup made before "
              "the upgrade (playbooks/restore.yml with the hub state).")
        return 1
    result = subprocess.run(["jupyterhub", "upgrade-db", "-f", str(config)], capture_output=True, text=True, check=False)
    if result.returncode != 0 or db_revision(db) != head:
        lines = (result.stdout + result.stderr).splitlines()
        print("\n".join(lines[-40:]))
        print(f"preflight: the candidate hub could not upgrade a copy of the database from revision {revision} "
              f"to {head} (JupyterHub {version}); its errors:")
        print("\n".join(errors(lines)))
        return 1
    print(f"preflight: database upgrade {revision} -> {head}")
    return 0


def healthy() -> bool:
    try:
        with urllib.request.urlopen(f"{HUB_API}/hub/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def errors(lines: list[str]) -> list[str]:
    """What went wrong, in the hub's words: from its last error or critical log line on, without
    the traceback's frames (the exception's own line and message stay)."""
    last = max((index for index, line in enumerate(lines) if line.startswith(("[E ", "[C "))), default=None)
    if last is None:
        return lines[-5:]
    picked, in_frame = [], False
    for line in lines[last:]:
        stripped = line.strip()
        if stripped.startswith("Traceback (most recent call last)") or stripped.startswith('File "'):
            in_frame = stripped.startswith('File "')
            continue
        if in_frame:  # the source line under a frame
            in_frame = False
            continue
        if stripped:
            picked.append(stripped)
    return picked[-15:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the candidate jupyterhub_config.py")
    parser.add_argument("--data-dir", required=True, type=Path, help="the live data volume (read-only)")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("bootstrap", nargs="*", help="the admin bootstrap's arguments, without --db-url (after --)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="jhub-preflight-"))
    os.chdir(work)
    copy_state(args.data_dir / "jupyterhub.sqlite", args.data_dir / "jupyterhub_cookie_secret", work)
    db_url = f"sqlite:///{work}/jupyterhub.sqlite"
    (work / "preflight_config.py").write_text(OVERRIDES.format(
        config=args.config, db_url=db_url, cookie_secret=str(work / "cookie_secret"), hub_api=HUB_API,
        proxy_pid=str(work / "proxy.pid")))

    started = time.monotonic()
    if upgrade(work / "jupyterhub.sqlite", work / "preflight_config.py") != 0:
        return 1
    if args.bootstrap:
        bootstrap = subprocess.run(["jhub-bootstrap-admin", "--db-url", db_url, *args.bootstrap],
                                   capture_output=True, text=True, check=False)
        if bootstrap.returncode != 0:
            print(bootstrap.stdout + bootstrap.stderr)
            print("preflight: the admin bootstrap failed on a copy of the hub database")
            return 1

    hub = subprocess.Popen(["jupyterhub", "-f", str(work / "preflight_config.py")], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    output: deque[str] = deque(maxlen=400)
    reader = Thread(target=lambda: output.extend(line.rstrip("\n") for line in hub.stdout), daemon=True)
    reader.start()
    outcome = None
    while outcome is None:
        time.sleep(0.2)
        if any(READY in line for line in list(output)) and healthy():
            outcome = "ready"
        elif hub.poll() is not None:
            reader.join(timeout=2)
            outcome = f"exited with status {hub.returncode}"
        elif time.monotonic() - started > args.timeout:
            outcome = f"was not ready within {args.timeout:.0f} s"
    if hub.poll() is None:
        hub.terminate()
        try:
            hub.wait(timeout=15)
        except subprocess.TimeoutExpired:
            hub.kill()
    lines = list(output)
    if outcome == "ready":
        print(f"preflight: the candidate hub loaded its roles, services and tokens and answered /hub/health "
              f"in {time.monotonic() - started:.1f} s")
        return 0
    print("\n".join(lines[-40:]))
    print(f"preflight: the candidate hub {outcome}; its errors:")
    print("\n".join(errors(lines)))
    return 1


if __name__ == "__main__":
    sys.exit(main())
