"""Shared helpers: run the collection's playbooks on this machine and snapshot its state."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUTPUT = ROOT / "tests" / "output"
DISTROS = os.environ.get("JHUB_DISTROS", "bookworm trixie").split()

# The end-to-end suite needs a deployed hub; the full-stack Molecule scenario runs it
# with JHUB_URL set (see molecule/default/verify.yml).
collect_ignore = [] if os.environ.get("JHUB_URL") else ["e2e"]
# The HTTPS checks need a hub behind the TLS proxy (molecule/tls).
if not os.environ.get("JHUB_URL", "").startswith("https://"):
    collect_ignore.append("e2e/test_https.py")


def ansible_env(**extra: str) -> dict[str, str]:
    """Environment for ansible and molecule run from the repository."""
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PY_COLORS="0",
        NO_COLOR="1",
    )
    env.update(extra)
    return env


def run_playbook(playbook: str, extra_vars: dict | None = None, *args: str) -> subprocess.CompletedProcess:
    """Run a playbook of the repository against the local inventory; output is text (stdout+stderr)."""
    cmd = [str(BIN / "ansible-playbook"), str(ROOT / playbook), *args]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    return subprocess.run(
        cmd, cwd=ROOT, env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800,
        check=False,
    )


def local_inventory(path: Path, groups: dict[str, list[str]]) -> list[str]:
    """The -i arguments of an inventory of these groups (name: host names) whose hosts are all this machine."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
    children = {name: {"hosts": {host: local for host in hosts}} for name, hosts in groups.items()}
    path.write_text(json.dumps({"all": {"children": children}}))
    return ["-i", str(path)]


# A swarm of this machine as its manager and a worker (both local), which swarm.yml needs to run at all.
SWARM_GROUPS = {"jupyterhub": ["localhost"], "jupyterhub_workers": ["jhub-test-worker"]}


def recap(output: str) -> dict[str, int]:
    """Counters of the first host line in PLAY RECAP, e.g. {'ok': 3, 'changed': 0, ...}."""
    match = re.search(r"PLAY RECAP \**\n\S+\s*: (.*)", output)
    assert match, f"no PLAY RECAP in:\n{output[-2000:]}"
    return {k: int(v) for k, v in (f.split("=") for f in match.group(1).split())}


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _listing(path: Path) -> list[tuple[str, str | None]] | None:
    """Every file below path with its digest, or None when path does not exist."""
    if not path.exists():
        return None
    return sorted((str(p.relative_to(path)), _digest(p)) for p in path.rglob("*"))


def host_state() -> dict:
    """What the roles could change on this machine: files, apt sources, images, groups, scratch dirs."""
    images = subprocess.run(
        ["docker", "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
        capture_output=True, text=True, check=False,
    ).stdout
    containers = subprocess.run(
        ["docker", "ps", "-a", "--no-trunc", "--format", "{{.Names}} {{.ID}} {{.State}}"],
        capture_output=True, text=True, check=False,
    ).stdout
    volumes = subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True, text=True, check=False).stdout
    sources = Path("/etc/apt/sources.list.d")
    keyrings = Path("/etc/apt/keyrings")
    return {
        "daemon.json": _digest(Path("/etc/docker/daemon.json")),
        "apt sources": sorted(p.name for p in sources.iterdir()) if sources.is_dir() else [],
        "apt keyrings": sorted(p.name for p in keyrings.iterdir()) if keyrings.is_dir() else [],
        "images": sorted(images.splitlines()),
        "containers": sorted(containers.splitlines()),
        "volumes": sorted(volumes.splitlines()),
        "hub config": _listing(Path("/srv/jupyterhub")),
        "build dir": _listing(Path("/opt/jhub-docker")),
        "group file": _digest(Path("/etc/group")),
        "base image work dir": _listing(Path("/var/tmp/jhub-base-image")),
        "backup root": _listing(Path("/var/backups/jhub-docker")),
        "backup helper": _listing(Path("/usr/local/lib/jhub-docker")),
        "nonexistent": _listing(Path("/nonexistent")),
    }


@pytest.fixture
def unchanged_host():
    """Fails the test when the host differs after it from before it."""
    before = host_state()
    yield
    assert host_state() == before, "the host changed"
