#!/usr/bin/env python
"""Start a candidate hub (this image, a candidate configuration) against a copy of the live database.

The jhub.docker jupyterhub role runs it in a throwaway container of the new hub image before a
changed configuration or image goes live. The container has no network but its own loopback,
no published port and no Docker socket, and the live data volume is mounted read-only: the
candidate cannot touch users' servers, the live proxy's routes or the live database. It runs
the admin bootstrap and then JupyterHub, as the hub container does, and succeeds once JupyterHub
has loaded its roles, services and tokens, started its proxy and answered /hub/health. If
JupyterHub exits or does not get there in time, it prints the hub's own error lines and fails.
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
