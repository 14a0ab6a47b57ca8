"""End to end on a Docker Swarm: the hub on the manager, users' servers as swarm services on the workers.

Real sign-ups through the forms, real services on real nested engines, real kernels over the proxied
websocket. Configured by the environment (the Molecule scenario swarm sets it), with test_hub.py's:
  JHUB_HOST_EXEC        shell prefix that runs a command on the swarm's manager, e.g. "docker exec NAME"
  JHUB_SWARM_WORKERS    the workers' node names, space-separated
  JHUB_SWARM_NODE_EXEC  shell prefix that runs a command on a node, with {node} for its name
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import uuid

import pytest

import test_hub
from hubclient import HubClient
from test_hub import RUN, URL

# The logged-in admin (a fixture of test_hub.py).
admin = test_hub.admin

MANAGER_EXEC = os.environ.get("JHUB_HOST_EXEC", "")
WORKERS = os.environ.get("JHUB_SWARM_WORKERS", "").split()
NODE_EXEC = os.environ.get("JHUB_SWARM_NODE_EXEC", "")
USERS = 6

pytestmark = pytest.mark.skipif(not (WORKERS and NODE_EXEC and MANAGER_EXEC), reason="not a swarm (JHUB_SWARM_*)")


def on(prefix: str, command: str, check: bool = True) -> str:
    """Run command on a node through its shell prefix; its stdout."""
    result = subprocess.run(f"{prefix} sh -c {shlex.quote(command)}", shell=True, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0 or not check, (command, result.stdout, result.stderr)
    return result.stdout.strip()


def node_of(name: str) -> str:
    """The node that runs the task of the user's service."""
    return on(MANAGER_EXEC, f"docker service ps --filter desired-state=running --format '{{{{.Node}}}}' jupyter-{name}")


def node_state(node: str) -> str:
    return on(MANAGER_EXEC, f"docker node inspect --format '{{{{.Status.State}}}}' {node}")


def wait_node(node: str, state: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while node_state(node) != state:
        assert time.monotonic() < deadline, f"node {node} is {node_state(node)}, not {state}, after {timeout} s"
        time.sleep(2)


@pytest.fixture(scope="module")
def crowd(admin) -> list[tuple[HubClient, str]]:
    """Six users who signed up, were approved and logged in through the forms; their servers asked for at once."""
    people = []
    for number in range(USERS):
        name, password = f"swarm{number}{RUN}", f"Correct-Horse-{RUN}-Battery-{number}"
        client = HubClient(URL)
        assert "Your information has been sent to the admin" in client.signup(name, password)
        admin.authorize(name)
        assert client.login(name, password).status_code == 302
        response = client.api("POST", f"/users/{name}/server")
        assert response.status_code in (201, 202), (response.status_code, response.text)
        people.append((client, name))
    for client, name in people:
        client.wait_ready(name)
        client.open_server(name)
    return people


def test_servers_are_services_spread_over_the_workers(crowd):
    nodes = {name: node_of(name) for _client, name in crowd}
    assert set(nodes.values()) == set(WORKERS), nodes


def test_every_user_runs_code_in_a_kernel_on_a_worker(crowd):
    for client, name in crowd:
        out = client.execute(name, "import getpass, os; print(6 * 7, getpass.getuser(), os.getcwd())").split()
        assert out == ["42", "jovyan", "/home/jovyan/work"], (name, out)


def test_servers_have_their_limits_and_no_capabilities(crowd):
    client, name = crowd[0]
    probe = (
        "s = open('/proc/self/status').read(); f = dict(l.split(':', 1) for l in s.splitlines());"
        "print(f['CapBnd'].strip(), open('/sys/fs/cgroup/pids.max').read().strip() if __import__('os').path.exists("
        "'/sys/fs/cgroup/pids.max') else 'n/a')"
    )
    bounding_set, pids_max = client.execute(name, probe).split()
    assert int(bounding_set, 16) == 0, f"capabilities left: {bounding_set}"
    spec = json.loads(on(MANAGER_EXEC, f"docker service inspect --format '{{{{json .Spec.TaskTemplate}}}}' jupyter-{name}"))
    assert spec["ContainerSpec"]["CapabilityDrop"] == ["ALL"], spec["ContainerSpec"]
    assert spec["Resources"]["Limits"]["Pids"] == 1024 and pids_max in ("1024", "n/a"), (spec["Resources"], pids_max)


def test_a_users_files_stay_with_them_on_their_node(crowd):
    """Three stops and starts: each time on the node of the first start, with the file written there."""
    client, name = crowd[0]
    first = node_of(name)
    content = f"kept {uuid.uuid4().hex}"
    client.execute(name, f"open('kept.txt', 'w').write({content!r})")
    for _round in range(3):
        client.stop_server(name)
        client.start_server(name)
        client.open_server(name)
        assert node_of(name) == first
        response = client.server_api(name, "GET", "/contents/kept.txt")
        assert response.status_code == 200 and response.json()["content"] == content, response.text[:300]
    record = on(MANAGER_EXEC, f"docker config inspect --format '{{{{json .Spec.Labels}}}}' jhub-node-{name}")
    assert json.loads(record)["io.jhub-docker.node-hostname"] == first, record


def _start_error(client: HubClient, name: str) -> str:
    """Ask for the user's server, which cannot start: the hub's answer, or its failed progress event."""
    response = client.api("POST", f"/users/{name}/server")
    if response.status_code >= 400:
        return response.text
    assert response.status_code == 202, (response.status_code, response.text)
    events = client.api("GET", f"/users/{name}/server/progress", stream=True)
    for line in events.iter_lines(decode_unicode=True):
        if line.startswith("data:"):
            event = json.loads(line[5:])
            if event.get("failed"):
                return event.get("message", "")
    raise AssertionError(f"{name}'s start neither failed nor was refused")


def test_a_stopped_worker_stops_its_users_only_and_says_why(crowd):
    (client, name), *others = crowd
    worker = node_of(name)
    neighbour_client, neighbour = next((c, n) for c, n in others if node_of(n) != worker)
    client.stop_server(name)
    engine = NODE_EXEC.format(node=worker)
    on(engine, "systemctl stop docker.socket docker.service")
    try:
        wait_node(worker, "down")
        message = _start_error(client, name)
        assert worker in message and "files" in message, message
        assert neighbour_client.execute(neighbour, "print('still here')").strip() == "still here"
    finally:
        on(engine, "systemctl start docker.service", check=False)
        wait_node(worker, "ready")
    client.start_server(name)
    client.open_server(name)
    assert node_of(name) == worker
