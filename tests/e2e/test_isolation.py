"""Isolation of user servers, attacked from a user's kernel through the real hub.

Each destination below has a real listener that the test first reaches from the hub's host
(so a pass is not a network that is simply down); then a user's kernel must fail to reach it.
Configured by the environment (the full-stack Molecule scenario sets it), besides JHUB_URL,
JHUB_ADMIN_USER and JHUB_ADMIN_PASSWORD:
  JHUB_HOST_EXEC        command prefix that runs a command on the hub's host (e.g. docker exec HOST)
  JHUB_PROBE_METADATA   host:port of a listener playing the cloud metadata service (169.254.169.254:80)
  JHUB_PROBE_HOST       space-separated host:port listeners on the host's own addresses
  JHUB_PROBE_OUTSIDE    host:port outside that user servers must still reach (deb.debian.org:80)
  JHUB_MEM_LIMIT_BYTES, JHUB_CPU_LIMIT   the limits the deployment sets on user containers
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import uuid

import pytest

from jhub_testing.hubclient import HubClient

URL = os.environ.get("JHUB_URL", "")
ADMIN = os.environ.get("JHUB_ADMIN_USER", "admin")
ADMIN_PASSWORD = os.environ.get("JHUB_ADMIN_PASSWORD", "")
HOST_EXEC = shlex.split(os.environ.get("JHUB_HOST_EXEC", ""))
METADATA = os.environ.get("JHUB_PROBE_METADATA", "")
HOST_LISTENERS = os.environ.get("JHUB_PROBE_HOST", "").split()
OUTSIDE = os.environ.get("JHUB_PROBE_OUTSIDE", "")
MEM_LIMIT = int(os.environ.get("JHUB_MEM_LIMIT_BYTES", "0"))
CPU_LIMIT = float(os.environ.get("JHUB_CPU_LIMIT", "0"))
RUN = uuid.uuid4().hex[:6]

pytestmark = pytest.mark.skipif(not HOST_EXEC, reason="JHUB_HOST_EXEC is not set")

# Connect with a timeout; print open, or why not (a firewall DROP times out). All targets at once,
# so that several dropped ones cost one timeout.
PROBE = """
import socket
from concurrent.futures import ThreadPoolExecutor
def probe(target):
    host, port = target.rsplit(':', 1)
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, int(port))); return 'open'
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()
with ThreadPoolExecutor(len(TARGETS)) as pool:
    print(' '.join(pool.map(probe, TARGETS)))
"""


def probe_code(targets: list[str]) -> str:
    return f"TARGETS = {targets!r}\n{PROBE}"


def on_host(*argv: str) -> str:
    result = subprocess.run([*HOST_EXEC, *argv], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, (argv, result.returncode, result.stderr[-2000:])
    return result.stdout.strip()


def from_host(targets: list[str]) -> list[str]:
    return on_host("python3", "-c", probe_code(targets)).split()


def from_kernel(client: HubClient, name: str, targets: list[str]) -> list[str]:
    return client.execute(name, probe_code(targets), timeout=120).split()


def container(name: str) -> dict:
    return json.loads(on_host("docker", "inspect", f"jupyter-{name}"))[0]


def new_user(admin: HubClient, prefix: str) -> tuple[HubClient, str]:
    name, password = f"{prefix}{RUN}", f"Isolated-Server-{RUN}-Pass"
    client = HubClient(URL)
    client.join(admin, name, password)
    return client, name


@pytest.fixture(scope="module")
def users():
    admin = HubClient(URL)
    assert admin.login(ADMIN, ADMIN_PASSWORD).status_code == 302
    first, second = new_user(admin, "mallory"), new_user(admin, "victim")
    yield first, second
    for client, name in (first, second):
        client.stop_server(name)


def test_user_container_has_its_limits_and_no_privileges(users):
    (client, name), _victim = users
    config = container(name)["HostConfig"]
    assert config["Privileged"] is False
    assert config["Memory"] == MEM_LIMIT and MEM_LIMIT > 0, (config["Memory"], MEM_LIMIT)
    # DockerSpawner sets cpu_limit as a CFS quota per period.
    assert config["CpuQuota"] == int(CPU_LIMIT * config["CpuPeriod"]) and CPU_LIMIT > 0, (config, CPU_LIMIT)
    assert config["PidsLimit"] == 1024 and config["CapDrop"] == ["ALL"], config
    assert "no-new-privileges" in (config["SecurityOpt"] or []), config["SecurityOpt"]
    mounts = " ".join(config["Binds"] or []) + json.dumps(container(name)["Mounts"])
    assert "docker.sock" not in mounts, mounts
    # The same limits, seen from inside (cgroup v2, or v1 on older hosts).
    seen = client.execute(name, (
        "import os; v2 = os.path.exists('/sys/fs/cgroup/memory.max');"
        "print(open('/sys/fs/cgroup/memory.max' if v2 else '/sys/fs/cgroup/memory/memory.limit_in_bytes').read().strip(),"
        " open('/sys/fs/cgroup/cpu.max').read().split()[0] if v2 else"
        " open('/sys/fs/cgroup/cpu/cpu.cfs_quota_us').read().strip())"
    )).split()
    assert seen == [str(MEM_LIMIT), str(config["CpuQuota"])], seen


def test_listeners_are_reachable_from_the_host(users):
    """The control: every target that the kernel must not reach answers from the host."""
    _attacker, (_victim_client, victim) = users
    victim_server = container(victim)["NetworkSettings"]["Networks"]
    address = next(iter(victim_server.values()))["IPAddress"]
    targets = [target for target in (METADATA, *HOST_LISTENERS) if target] + [f"{address}:8888"]
    assert from_host(targets) == ["open"] * len(targets), targets


def test_kernel_cannot_reach_the_cloud_metadata_service(users):
    (client, name), _victim = users
    assert from_kernel(client, name, [METADATA]) != ["open"]


def test_kernel_cannot_reach_the_hosts_own_services(users):
    (client, name), _victim = users
    seen = from_kernel(client, name, HOST_LISTENERS)
    assert "open" not in seen, dict(zip(HOST_LISTENERS, seen))


def test_kernel_cannot_reach_another_users_server(users):
    (client, name), (victim_client, victim) = users
    address = next(iter(container(victim)["NetworkSettings"]["Networks"].values()))["IPAddress"]
    assert from_kernel(client, name, [f"{address}:8888"]) != ["open"]
    # The victim's server still works through the hub's proxy.
    assert victim_client.execute(victim, "print('fine')").strip() == "fine"


def test_kernel_cannot_reach_the_proxy_api(users):
    """The hub's API and the proxy's public port are reachable (as from anywhere), the proxy's REST API is not
    (it would let a user reroute other users' traffic); the hub does reach it, or no server would be routed."""
    (client, name), _victim = users
    seen = from_kernel(client, name, ["jupyterhub:8081", "jupyterhub-proxy:8000", "jupyterhub-proxy:8001"])
    assert seen == ["open", "open", "TimeoutError"], seen


def test_kernel_still_reaches_the_outside(users):
    (client, name), _victim = users
    assert from_kernel(client, name, [OUTSIDE]) == ["open"]
