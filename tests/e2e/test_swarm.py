"""End to end on a Docker Swarm: the hub on the manager, users' servers as swarm services on the workers.

Real sign-ups through the forms, real services on real nested engines, real kernels over the proxied
websocket. Configured by the environment (the Molecule scenario swarm sets it), with test_hub.py's:
  JHUB_HOST_EXEC        shell prefix that runs a command on the swarm's manager, e.g. "docker exec NAME"
  JHUB_SWARM_WORKERS    the workers' node names, space-separated
  JHUB_SWARM_NODE_EXEC  shell prefix that runs a command on a node, with {node} for its name
  JHUB_PLAYBOOK         command that runs a playbook of the collection (its path follows) on the swarm's inventory
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
from jhub_testing.hubclient import HubClient
from test_isolation import METADATA, OUTSIDE, from_kernel, probe_code
from test_hub import RUN, URL

# The logged-in admin (a fixture of test_hub.py).
admin = test_hub.admin

MANAGER_EXEC = os.environ.get("JHUB_HOST_EXEC", "")
WORKERS = os.environ.get("JHUB_SWARM_WORKERS", "").split()
NODE_EXEC = os.environ.get("JHUB_SWARM_NODE_EXEC", "")
PLAYBOOK = os.environ.get("JHUB_PLAYBOOK", "")
BACKUPS = "/var/backups/jhub-docker"
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


def test_a_named_server_is_a_service_of_its_own_with_its_volume_and_node_record(crowd):
    """A named server (jupyterhub_named_server_limit): its own service, volume and node record, on a worker,
    without the default server's files."""
    client, name = crowd[3]
    client.execute(name, "open('default.txt', 'w').write('the default server')")
    response = client.api("POST", f"/users/{name}/servers/lab")
    assert response.status_code in (201, 202), (response.status_code, response.text)
    client.wait_ready(name, server="lab")
    client.open_server(f"{name}/lab")
    assert client.execute(f"{name}/lab", "import os; print(os.path.exists('default.txt'), os.getcwd())").split() == [
        "False", "/home/jovyan/work"]
    node = node_of(f"{name}--lab")
    assert node in WORKERS, node
    assert user_volumes(node, f"{name}--lab") == [f"jupyterhub-user-{name}--lab"]
    assert record_node(f"{name}--lab") == node
    client.stop_server(name, server="lab")
    assert read_file(client, name, "default.txt") == "the default server"


def server_address(name: str) -> str:
    """The user's server's address on the overlay network (its task's)."""
    task = on(MANAGER_EXEC, f"docker service ps -q --no-trunc --filter desired-state=running jupyter-{name}")
    attachments = json.loads(on(MANAGER_EXEC, f"docker inspect --format '{{{{json .NetworksAttachments}}}}' {task}"))
    return attachments[0]["Addresses"][0].split("/")[0]


def probe_from(prefix: str, targets: list[str]) -> list[str]:
    return on(prefix, f"python3 -c {shlex.quote(probe_code(targets))}").split()


def test_a_users_kernel_reaches_no_other_server_no_node_service_and_no_metadata(crowd):
    """The firewall on every node, attacked from a kernel on a worker: the other users' servers on the same worker and
    on the other one, the worker's own services on each of its addresses, the cloud metadata service. Each target is
    first reached from where it must be: the servers from the hub's container, the rest from the worker itself."""
    (client, name), *others = crowd
    node = node_of(name)
    assert {node_of(other) for _client, other in others} == set(WORKERS), "no victim on one of the workers"
    servers = [f"{server_address(other)}:8888" for _client, other in others]
    addresses = on(NODE_EXEC.format(node=node), "ip -4 -o addr show scope global | awk '{print $4}'").split()
    services = [f"{address.split('/')[0]}:18081" for address in addresses] + [METADATA]
    assert probe_from(f"{MANAGER_EXEC} docker exec jupyterhub", servers) == ["open"] * len(servers), servers
    assert probe_from(NODE_EXEC.format(node=node), services) == ["open"] * len(services), services
    seen = from_kernel(client, name, servers + services)
    assert "open" not in seen, dict(zip(servers + services, seen))
    # What a server must reach: the hub's API, the proxy's public port (not its REST API), the outside.
    seen = from_kernel(client, name, ["jupyterhub:8081", "jupyterhub-proxy:8000", "jupyterhub-proxy:8001", OUTSIDE])
    assert seen == ["open", "open", "TimeoutError", "open"], seen


# Run in the manager's hub as its user, as a compromised hub would: the swarm calls that reach beyond the hub's own
# servers, each through the hub's Docker proxy; the service ones are the spec of a user's running server (argv[1])
# with one change. {attack: [status, message]}.
SWARM_ATTACKS = """
import copy, json, os, sys
import docker
c = docker.APIClient(base_url=os.environ['DOCKER_HOST'], version='auto')
spec = c.inspect_service(sys.argv[1])['Spec']
# The engine keeps the hub network by its ID; the spawner names it, as here.
for network in spec['TaskTemplate'].get('Networks') or []:
    network['Target'] = 'jupyterhub'

def service(change):
    body = copy.deepcopy(spec)
    change(body['TaskTemplate'])
    c._raise_for_status(c._post_json(c._url('/services/create'), data=body))

def worker():
    node = next(node for node in c.nodes() if node['Spec']['Role'] == 'worker')
    c.update_node(node['ID'], node['Version']['Index'], {**node['Spec'], 'Role': 'manager'})

attacks = {
    'the server as it is': lambda: service(lambda task: None),
    'the join tokens': lambda: c.inspect_swarm(),
    'swarm secrets': lambda: c.secrets(),
    'a worker made a manager': worker,
    'a server that binds /': lambda: service(lambda task: task['ContainerSpec'].setdefault('Mounts', []).append(
        {'Type': 'bind', 'Source': '/', 'Target': '/host'})),
    'a server with SYS_ADMIN': lambda: service(lambda task: task['ContainerSpec'].update(CapabilityAdd=['CAP_SYS_ADMIN'])),
    'a server on the host network': lambda: service(lambda task: task.update(Networks=[{'Target': 'host'}])),
}
seen = {}
for name, attack in attacks.items():
    try:
        attack()
        seen[name] = [200, 'done']
    except docker.errors.APIError as error:
        seen[name] = [error.response.status_code, str(error)]
print(json.dumps(seen))
"""


def test_a_compromised_hub_on_the_manager_gets_nothing_of_the_swarm_but_its_servers(crowd):
    """The hub on the manager runs as its user and reaches the manager's engine only through its Docker proxy. From
    inside it: the swarm's join tokens, its secrets, a worker made a manager, and a user's own server spec with a bind
    of /, an added capability or the host's network are each refused by the proxy (its words, 403). The same spec
    unchanged passes the proxy (the engine refuses it: the name is taken), so each refusal is the change's; the
    manager's engine itself, from the play's side, gives the tokens and the secrets' list."""
    _client, name = crowd[0]
    assert on(MANAGER_EXEC, "docker exec jupyterhub grep -E '^(Uid|CapEff):' /proc/1/status").split() == [
        "Uid:", "10081", "10081", "10081", "10081", "CapEff:", "0000000000000000"]
    out = on(MANAGER_EXEC, "docker exec --user 10081:10081 jupyterhub /opt/jupyterhub/bin/python -c "
                           f"{shlex.quote(SWARM_ATTACKS)} jupyter-{name}")
    seen = json.loads(out)
    # Not the proxy's refusal: the engine's own answer (the name is taken), and nothing made.
    status, message = seen.pop("the server as it is")
    assert status >= 400 and status != 403 and "jhub-docker-guard" not in message, out
    words = {"the join tokens": "GET /swarm is not a call", "swarm secrets": "GET /secrets is not a call",
             "a worker made a manager": "/update is not a call",
             "a server that binds /": "mount '/' of type 'bind' (only volumes)",
             "a server with SYS_ADMIN": "capabilities added", "a server on the host network": "are not the hub network"}
    for attack, expected in words.items():
        status, message = seen[attack]
        assert status == 403 and "jhub-docker-guard refused" in message and expected in message, (attack, seen[attack])
    assert on(MANAGER_EXEC, "docker swarm join-token -q worker").startswith("SWMTKN-")
    on(MANAGER_EXEC, "docker secret ls --quiet")
    assert on(MANAGER_EXEC, "docker node ls --filter role=manager --quiet").count("\n") == 0


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
    # The engine's restart made the overlay's namespace anew: the node's firewall service put its rules there again.
    on(engine, "/usr/local/sbin/jhub-network-isolation check")
    # No server of that worker was started again on the other one meanwhile (with an empty home there).
    assert {user: [n for n in WORKERS if user_volumes(n, user)] for _c, user in crowd} == {
        user: [record_node(user)] for _c, user in crowd}


def playbook(path: str, *extra: str) -> subprocess.CompletedProcess:
    """Run a playbook of the collection as an operator would, on the swarm's inventory."""
    assert PLAYBOOK, "JHUB_PLAYBOOK is not set"
    return subprocess.run(f"{PLAYBOOK} {path} {shlex.join(extra)}", shell=True, capture_output=True, text=True,
                          timeout=900, check=False, env={**os.environ, "ANSIBLE_NOCOLOR": "1"})


def write_file(client: HubClient, name: str, filename: str) -> str:
    content = f"{name} {uuid.uuid4().hex}"
    client.execute(name, f"open({filename!r}, 'w').write({content!r})")
    return content


def read_file(client: HubClient, name: str, filename: str) -> str:
    response = client.server_api(name, "GET", f"/contents/{filename}")
    assert response.status_code == 200, response.text[:300]
    return response.json()["content"]


def newest_manifest() -> dict:
    name = on(MANAGER_EXEC, f"ls -1 {BACKUPS} | grep -E '^jhub-backup-[0-9TZ]+$' | tail -n 1")
    return json.loads(on(MANAGER_EXEC, f"cat {BACKUPS}/{name}/manifest.json"))


def user_volumes(node: str, name: str) -> list[str]:
    return on(NODE_EXEC.format(node=node), f"docker volume ls -q --filter name=^jupyterhub-user-{name}$").split()


def record_node(name: str) -> str:
    """The node that the user's node record names (the swarm config the spawner and the playbooks write)."""
    record = on(MANAGER_EXEC, f"docker config inspect --format '{{{{json .Spec.Labels}}}}' jhub-node-{name}")
    return json.loads(record)["io.jhub-docker.node-hostname"]


def fresh_server(client: HubClient, name: str) -> None:
    """Stop and start the user's server: a server whose worker stopped in an earlier test runs again."""
    client.stop_server(name)
    client.start_server(name)
    client.open_server(name)


def test_one_backup_holds_every_nodes_volumes_and_restores_each_on_its_node(crowd):
    """playbooks/backup.yml on the manager: every user's archive, each recording its node; then
    playbooks/restore.yml puts a user's files back on that node, refusing while the server runs."""
    client, name = crowd[1]
    fresh_server(client, name)
    node = node_of(name)
    kept = write_file(client, name, "backed-up.txt")
    run = playbook("playbooks/backup.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    archives = {a["username"]: a["node"] for a in newest_manifest()["archives"] if a["kind"] == "user"}
    assert {user: archives.get(user) for _c, user in crowd} == {user: record_node(user) for _c, user in crowd}, archives
    assert set(archives.values()) == set(WORKERS), archives

    # While the server runs the restore is refused, and changes nothing.
    restore = json.dumps({"jupyterhub_backup_restore_users": [name]})
    refused = playbook("playbooks/restore.yml", "-e", restore)
    assert refused.returncode != 0 and "is running" in refused.stdout, refused.stdout[-3000:]
    assert read_file(client, name, "backed-up.txt") == kept
    client.execute(name, "open('backed-up.txt', 'w').write('changed after the backup')")
    client.stop_server(name)
    run = playbook("playbooks/restore.yml", "-e", restore)
    assert run.returncode == 0, run.stdout[-3000:]
    client.start_server(name)
    client.open_server(name)
    assert node_of(name) == node == record_node(name)
    assert read_file(client, name, "backed-up.txt") == kept


def test_a_user_moves_to_another_node_with_their_files(crowd):
    """playbooks/move.yml: the running server stops, the files go to the other worker, the record names
    it, the old volume is gone, and the server runs there again with the files."""
    client, name = crowd[2]
    fresh_server(client, name)
    source = node_of(name)
    target = next(worker for worker in WORKERS if worker != source)
    kept = write_file(client, name, "moved.txt")
    run = playbook("playbooks/move.yml", "-e", f"move_user={name}", "-e", f"move_to={target}")
    assert run.returncode == 0, run.stdout[-3000:]
    assert node_of(name) == target == record_node(name)
    client.open_server(name)
    assert read_file(client, name, "moved.txt") == kept
    assert user_volumes(source, name) == [] and user_volumes(target, name) == [f"jupyterhub-user-{name}"]
    # Moving again to where the files are is refused, and changes nothing.
    again = playbook("playbooks/move.yml", "-e", f"move_user={name}", "-e", f"move_to={target}")
    assert again.returncode != 0 and f"the files are on {target} already" in again.stdout, again.stdout[-3000:]
    # A later start goes to the new node too.
    client.stop_server(name)
    client.start_server(name)
    assert node_of(name) == target
