"""JhubSwarmSpawner (roles/jupyterhub/files/jhub_docker/spawner.py) against the real JupyterHub and dockerspawner.

Only the Docker API client is stubbed: it answers as an engine with a swarm would (a service, its
running task with its network attachments and node, the swarm's nodes and configs) and records the
create_service and create_config calls. The spawners are
made by a real jupyterhub.user.User from a traitlets Config, as the hub makes them, and start()
runs the real SwarmSpawner code down to the Docker API calls.
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from docker.errors import APIError, NotFound
from docker.types import RestartPolicy
from dockerspawner import DockerSpawner
from jupyterhub import orm
from jupyterhub.app import JupyterHub
from jupyterhub.user import User
from tornado import web
from traitlets.config import Config

from jhub_docker.slots import StartSlots
from jhub_docker.spawner import JhubDockerSpawner, JhubSpawnerMixin
from jhub_docker.swarm import JhubSwarmSpawner
from test_spawner import make_spawner as make_any_spawner

NETWORK = "jhub"


@pytest.fixture(autouse=True)
def fresh_class_state(monkeypatch):
    """Each test gets its own Docker thread pools and clients, and no start slot taken."""
    for cls in (JhubDockerSpawner, JhubSwarmSpawner):
        monkeypatch.setattr(cls, "_client", None)
        if "_executor" in cls.__dict__:
            monkeypatch.delattr(cls, "_executor")
    monkeypatch.setattr(JhubSpawnerMixin, "waiting", 0)
    monkeypatch.setattr(JhubSpawnerMixin, "slots", StartSlots())
    yield
    for cls in (JhubDockerSpawner, JhubSwarmSpawner):
        pool = cls.__dict__.get("_executor")
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def db():
    return orm.new_session_factory("sqlite:///:memory:")()


def make_spawner(db, name: str = "alice", cls: type = JhubSwarmSpawner, **config: object):
    """The user's default spawner of class cls (test_spawner.py's), by default a JhubSwarmSpawner."""
    return make_any_spawner(db, name, cls, **config)


def attachment(network: str, *addresses: str) -> dict:
    """A task's NetworksAttachments entry, as GET /tasks answers it."""
    return {"Network": {"ID": f"{network}-id", "Spec": {"Name": network}}, "Addresses": list(addresses)}


def node(node_id: str, hostname: str, state: str = "ready", availability: str = "active") -> dict:
    """A node as GET /nodes/{id} answers it."""
    return {
        "ID": node_id,
        "Spec": {"Role": "worker", "Availability": availability},
        "Description": {"Hostname": hostname},
        "Status": {"State": state, "Addr": "192.168.0.2"},
    }


def api_error(status: int, message: str) -> APIError:
    cls = NotFound if status == 404 else APIError
    return cls(message, response=SimpleNamespace(status_code=status, url="http://engine", reason=message))


class FakeSwarmClient:
    """The docker.APIClient methods SwarmSpawner's start() and stop() call, answering as a swarm manager:
    no service until create_service, then the service and its running task on node task_node; the
    swarm's nodes (node-a on worker-a, node-b on worker-b), and its configs (none at first)."""

    def __init__(
        self, api_version: str = "1.47", attachments: list[dict] | None = None, task_node: str = "node-b"
    ) -> None:
        self.api_version = api_version
        if attachments is None:
            attachments = [attachment("ingress", "10.0.0.7/24"), attachment(NETWORK, "10.0.1.5/24")]
        self.task = {
            "ID": "task-id", "NodeID": task_node, "Status": {"State": "running"}, "NetworksAttachments": attachments
        }
        self.created: list[dict] = []  # the keyword arguments of each create_service call
        self.running = False  # whether the service exists
        self.nodes = {"node-a": node("node-a", "worker-a"), "node-b": node("node-b", "worker-b")}
        self.configs: dict[str, dict] = {}  # name: {"data": bytes, "labels": dict}
        self.config_calls: list[tuple] = []  # (name, data, labels) of each create_config call
        self.config_reads: list[str] = []  # the name of each inspect_config call
        # A record that another start writes between this start's reading and writing: (name, data, labels).
        self.written_meanwhile: tuple | None = None

    def inspect_image(self, name: str) -> dict:
        return {"Config": {"Cmd": ["jupyterhub-singleuser"]}}

    def inspect_service(self, name: str) -> dict:
        if not self.running:
            raise NotFound(f"service {name} not found", response=SimpleNamespace(status_code=404))
        return {"ID": "service-id", "Spec": {"Name": name}}

    def create_service(self, **kwargs) -> dict:
        self.created.append(kwargs)
        self.running = True
        return {"ID": "service-id"}

    def remove_service(self, service_id: str) -> bool:
        self.running = False
        return True

    def tasks(self, filters: dict) -> list[dict]:
        return [self.task] if self.running else []

    def inspect_node(self, node_id: str) -> dict:
        if node_id not in self.nodes:
            raise api_error(404, f"node {node_id} not found")
        return self.nodes[node_id]

    def record(self, name: str, node_id: str, hostname: str, user: str = "alice") -> None:
        """A node record as the spawner, or Ansible's docker_config, writes it."""
        labels = {"io.jhub-docker.user": user, "io.jhub-docker.node-hostname": hostname}
        self.configs[name] = {"data": node_id.encode(), "labels": labels}

    def inspect_config(self, name: str) -> dict:
        self.config_reads.append(name)
        if name not in self.configs:
            raise api_error(404, f"config {name} not found")
        config = self.configs[name]
        # The engine gives the data base64-encoded.
        data = base64.b64encode(config["data"]).decode("ascii")
        return {"ID": f"{name}-id", "Spec": {"Name": name, "Labels": config["labels"], "Data": data}}

    def create_config(self, name: str, data: bytes, labels: dict | None = None, templating: dict | None = None):
        self.config_calls.append((name, data, labels))
        if self.written_meanwhile is not None:
            other_name, other_data, other_labels = self.written_meanwhile
            self.configs[other_name] = {"data": other_data, "labels": other_labels}
        if name in self.configs:
            raise api_error(409, f"config {name} already exists")
        self.configs[name] = {"data": data, "labels": labels}
        return {"ID": f"{name}-id"}


def start(spawner, client: FakeSwarmClient) -> tuple[str, int]:
    """Run spawner.start() against client."""
    type(spawner)._client = client  # the fixture puts it back
    return asyncio.run(spawner.start())


def started_spec(db, client: FakeSwarmClient | None = None, name: str = "alice", **config: object) -> dict:
    """The create_service call of a start of the user's server with this configuration."""
    client = client or FakeSwarmClient()
    start(make_spawner(db, name, check_interval=0, network_name=NETWORK, **config), client)
    assert len(client.created) == 1
    return client.created[0]


# --- The service: no virtual IP, the task's own address ----------------------------------------------


def test_start_returns_the_tasks_own_address_on_the_network(db):
    client = FakeSwarmClient()
    spawner = make_spawner(db, check_interval=0, network_name=NETWORK)

    assert start(spawner, client) == ("10.0.1.5", 8888)
    service = client.created[0]
    assert service["name"] == "jupyter-alice"
    assert service["endpoint_spec"] == {"Mode": "dnsrr"}  # no VIP, and no published port
    assert service["task_template"]["Networks"] == [{"Target": NETWORK}]


@pytest.mark.parametrize(
    "attachments",
    [[attachment("ingress", "10.0.0.7/24")], [attachment(NETWORK)], []],
    ids=["other-network-only", "no-address", "no-attachment"],
)
def test_no_address_on_the_network_is_a_clear_error(db, attachments):
    client = FakeSwarmClient(attachments=attachments)
    spawner = make_spawner(db, check_interval=0, network_name=NETWORK)

    with pytest.raises(RuntimeError) as error:
        start(spawner, client)

    assert str(error.value).startswith("The task of service jupyter-alice has no address on network 'jhub'")
    # The slot and the phase are given back as after any failed start.
    assert (JhubSpawnerMixin.slots.busy, spawner._phase) == (0, None)


def test_the_internal_hostname_is_the_service_name(db):
    # As with internal_ssl: dnsrr makes the service's name resolve to the task's address.
    spawner = make_spawner(db, check_interval=0, network_name=NETWORK, use_internal_hostname=True)

    assert start(spawner, FakeSwarmClient()) == ("jupyter-alice", 8888)


def test_an_endpoint_spec_of_ones_own_replaces_dnsrr(db):
    service = started_spec(db, extra_endpoint_spec={"mode": "vip"})

    assert service["endpoint_spec"] == {"Mode": "vip"}


# --- Mounts -------------------------------------------------------------------------------------------


def mounts_of(service: dict) -> dict[str, dict]:
    return {mount["Target"]: mount for mount in service["task_template"]["ContainerSpec"]["Mounts"]}


def test_named_volumes_are_volumes_and_host_paths_binds(db):
    service = started_spec(
        db,
        volumes={"jhub-user-{username}": "/home/jovyan/work", "/srv/shared": {"bind": "/shared", "mode": "ro"}},
        read_only_volumes={"jhub-datasets": "/datasets"},
    )

    assert mounts_of(service) == {
        "/home/jovyan/work": {
            "Target": "/home/jovyan/work", "Source": "jhub-user-alice", "Type": "volume", "ReadOnly": False
        },
        "/shared": {"Target": "/shared", "Source": "/srv/shared", "Type": "bind", "ReadOnly": True},
        "/datasets": {"Target": "/datasets", "Source": "jhub-datasets", "Type": "volume", "ReadOnly": True},
    }


def test_the_volume_driver_applies_to_named_volumes_only(db):
    service = started_spec(
        db,
        volumes={"jhub-user-{username}": "/home/jovyan/work", "/srv/shared": "/shared"},
        volume_driver="nfs-driver",
        volume_driver_options={"share": "files:/export"},
    )

    mounts = mounts_of(service)
    driver = {"Name": "nfs-driver", "Options": {"share": "files:/export"}}
    assert mounts["/home/jovyan/work"]["VolumeOptions"] == {"DriverConfig": driver}
    # SwarmSpawner gives the bind the driver too, which docker-py refuses for a bind.
    assert mounts["/shared"] == {"Target": "/shared", "Source": "/srv/shared", "Type": "bind", "ReadOnly": False}


# Docker's local volume driver with NFS options, as the role's jhub_user_volume_driver_options gives them.
NFS_OPTIONS = {"type": "nfs", "o": "addr=10.0.0.5,rw,nfsvers=4.1", "device": ":/export/jupyterhub/{username}"}


def test_the_volume_driver_options_are_rendered_for_each_user(db):
    config = {"volumes": {"jupyterhub-user-{username}": "/home/jovyan/work"}, "volume_driver": "local",
              "volume_driver_options": NFS_OPTIONS}
    services = {name: started_spec(db, name=name, **config) for name in ("alice", "anna.b")}

    for name, escaped in (("alice", "alice"), ("anna.b", "anna-2eb")):
        options = {**NFS_OPTIONS, "device": f":/export/jupyterhub/{escaped}"}
        assert mounts_of(services[name])["/home/jovyan/work"] == {
            "Target": "/home/jovyan/work", "Source": f"jupyterhub-user-{escaped}", "Type": "volume", "ReadOnly": False,
            "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": options}},
        }


# --- Security settings and placement --------------------------------------------------------------


def test_security_settings_and_constraints_are_in_the_service_spec(db):
    service = started_spec(
        db,
        cap_drop=["ALL"],
        pids_limit=256,
        no_new_privileges=True,
        placement_constraints=["node.role == worker", "node.labels.jhub-home-{username} == true"],
        mem_limit="1G",
    )

    task = service["task_template"]
    assert task["ContainerSpec"]["CapabilityDrop"] == ["ALL"]
    assert task["ContainerSpec"]["Privileges"] == {"NoNewPrivileges": True}
    # Next to the limit SwarmSpawner sets itself.
    assert task["Resources"]["Limits"] == {"MemoryBytes": 1024**3, "Pids": 256}
    assert task["Placement"]["Constraints"] == ["node.role == worker", "node.labels.jhub-home-alice == true"]
    # Never restarted by the swarm, on another node least of all: the user starts it again through the hub.
    assert task["RestartPolicy"] == {"Condition": "none"}


def test_a_restart_policy_of_ones_own_stands(db):
    policy = RestartPolicy(condition="on-failure", max_attempts=2)
    task = started_spec(db, extra_task_spec={"restart_policy": policy})["task_template"]

    assert task["RestartPolicy"] == policy


def test_settings_are_added_to_the_extra_specs(db):
    extra_placement = {"constraints": ["node.platform.os == linux"]}
    extra_container = {"cap_drop": ["NET_RAW"], "privileges": {"SELinuxContext": {"Disable": True}}}
    client = FakeSwarmClient()
    spawner = make_spawner(
        db,
        check_interval=0,
        network_name=NETWORK,
        cap_drop=["ALL"],
        no_new_privileges=True,
        placement_constraints=["node.role == worker"],
        extra_placement_spec=extra_placement,
        extra_container_spec=extra_container,
    )

    start(spawner, client)

    task = client.created[0]["task_template"]
    assert task["ContainerSpec"]["CapabilityDrop"] == ["NET_RAW", "ALL"]
    assert task["ContainerSpec"]["Privileges"] == {"SELinuxContext": {"Disable": True}, "NoNewPrivileges": True}
    assert task["Placement"]["Constraints"] == ["node.platform.os == linux", "node.role == worker"]
    # The spawner's configuration itself is unchanged, for its next start.
    assert (spawner.extra_placement_spec, spawner.extra_container_spec) == (extra_placement, extra_container)


def test_by_default_no_setting_is_added(db):
    task = started_spec(db)["task_template"]

    assert not {"CapabilityDrop", "Privileges"} & task["ContainerSpec"].keys()
    assert "Pids" not in task.get("Resources", {}).get("Limits", {})
    assert "Constraints" not in task.get("Placement", {})


@pytest.mark.parametrize(
    ("setting", "value", "version"),
    [("no_new_privileges", True, "1.44"), ("pids_limit", 100, "1.41"), ("cap_drop", ["ALL"], "1.41")],
)
def test_an_engine_that_would_ignore_a_setting_is_refused(db, setting, value, version):
    client = FakeSwarmClient(api_version="1.40")
    spawner = make_spawner(db, check_interval=0, network_name=NETWORK, **{setting: value})

    refusal = rf"^{setting} needs Docker Engine API {version} or later: the engine speaks 1\.40"
    with pytest.raises(RuntimeError, match=refusal):
        start(spawner, client)
    assert client.created == []


def test_no_new_privileges_needs_api_1_44_only(db):
    assert started_spec(db, FakeSwarmClient(api_version="1.43"), "ann", cap_drop=["ALL"], pids_limit=100)
    with pytest.raises(RuntimeError, match="^no_new_privileges needs Docker Engine API 1.44"):
        started_spec(db, FakeSwarmClient(api_version="1.43"), "bob", no_new_privileges=True)
    assert started_spec(db, FakeSwarmClient(api_version="1.44"), "cid", no_new_privileges=True)


# --- Node affinity: the user's server stays on the node of the user's files ---------------------------


def constraints_of(service: dict) -> list[str]:
    return service["task_template"].get("Placement", {}).get("Constraints", [])


def test_a_first_start_records_the_node_its_task_runs_on(db):
    client = FakeSwarmClient(task_node="node-b")
    spawner = make_spawner(db, check_interval=0, network_name=NETWORK)

    assert start(spawner, client) == ("10.0.1.5", 8888)

    # The swarm's scheduler chose the node: no constraint of the spawner's.
    assert constraints_of(client.created[0]) == []
    labels = {"io.jhub-docker.user": "alice", "io.jhub-docker.node-hostname": "worker-b"}
    assert client.config_calls == [("jhub-node-alice", b"node-b", labels)]


def test_a_recorded_node_is_where_the_server_starts(db):
    client = FakeSwarmClient(task_node="node-a")
    client.record("jhub-node-alice", "node-a", "worker-a")

    service = started_spec(db, client, placement_constraints=["node.role == worker"])

    assert constraints_of(service) == ["node.role == worker", "node.id == node-a"]
    assert client.config_calls == []  # the record stays as it is


def test_the_next_start_goes_where_the_first_one_ran(db):
    client = FakeSwarmClient(task_node="node-b")
    spawner = make_spawner(db, check_interval=0, network_name=NETWORK)

    start(spawner, client)
    asyncio.run(spawner.stop())
    start(spawner, client)

    assert [constraints_of(service) for service in client.created] == [[], ["node.id == node-b"]]
    assert [name for name, _data, _labels in client.config_calls] == ["jhub-node-alice"]


def test_a_record_written_from_a_file_may_end_in_a_newline(db):
    # As Ansible's docker_config may write it, from a file's content.
    client = FakeSwarmClient(task_node="node-a")
    client.record("jhub-node-alice", "node-a\n", "worker-a")

    assert constraints_of(started_spec(db, client)) == ["node.id == node-a"]


def test_a_record_without_a_node_id_is_a_clear_error(db):
    client = FakeSwarmClient()
    client.record("jhub-node-alice", "", "worker-a")
    spawner = make_spawner(db, check_interval=0, network_name=NETWORK)

    with pytest.raises(RuntimeError, match="^The node record jhub-node-alice holds no node ID$"):
        start(spawner, client)
    assert client.created == []


@pytest.mark.parametrize(
    ("recorded", "status"),
    [
        (node("node-a", "worker-a", state="down"), "its state is down, its availability active"),
        (node("node-a", "worker-a", state="disconnected"), "its state is disconnected, its availability active"),
        (node("node-a", "worker-a", availability="drain"), "its state is ready, its availability drain"),
        (node("node-a", "worker-a", availability="pause"), "its state is ready, its availability pause"),
        (None, "it is no longer in the swarm"),
    ],
    ids=["down", "disconnected", "drained", "paused", "gone"],
)
def test_a_recorded_node_that_cannot_take_the_server_refuses_the_start(db, recorded, status):
    client = FakeSwarmClient(task_node="node-b")
    client.record("jhub-node-alice", "node-a", "worker-a")
    if recorded is None:
        del client.nodes["node-a"]  # the hostname comes from the record's label
    else:
        client.nodes["node-a"] = recorded
    spawner = make_spawner(db, check_interval=0, network_name=NETWORK)

    with pytest.raises(web.HTTPError) as error:
        start(spawner, client)

    assert error.value.status_code == 503
    assert error.value.jupyterhub_message == (
        f"Your server cannot start now: your files are on node worker-a, and {status}."
        " Your server can start when that node is back: ask the administrator."
    )
    assert client.created == []  # no service elsewhere, with an empty home
    assert set(client.configs) == {"jhub-node-alice"} and client.config_calls == []
    assert (JhubSpawnerMixin.slots.busy, spawner._phase) == (0, None)


def test_a_record_of_the_same_node_written_meanwhile_is_accepted(db):
    client = FakeSwarmClient(task_node="node-b")
    labels = {"io.jhub-docker.user": "alice", "io.jhub-docker.node-hostname": "worker-b"}
    client.written_meanwhile = ("jhub-node-alice", b"node-b", labels)
    spawner = make_spawner(db, check_interval=0, network_name=NETWORK)

    assert start(spawner, client) == ("10.0.1.5", 8888)
    assert len(client.config_calls) == 1
    assert client.configs["jhub-node-alice"]["data"] == b"node-b"


def test_a_record_of_another_node_written_meanwhile_stops_the_start(db):
    client = FakeSwarmClient(task_node="node-b")
    labels = {"io.jhub-docker.user": "alice", "io.jhub-docker.node-hostname": "worker-a"}
    client.written_meanwhile = ("jhub-node-alice", b"node-a", labels)
    spawner = make_spawner(db, check_interval=0, network_name=NETWORK)

    with pytest.raises(web.HTTPError) as error:
        start(spawner, client)

    assert error.value.status_code == 409
    assert error.value.jupyterhub_message == (
        "Your server started on node worker-b, but your files are recorded on node worker-a"
        " (by another start at the same moment). Start your server again: it will start on that node."
    )
    # The other start's record stands.
    assert client.configs == {"jhub-node-alice": {"data": b"node-a", "labels": labels}}


def test_with_a_volume_driver_any_node_takes_the_server(db):
    # Every node mounts the same data: a record (even of a drained node) is not read, none is written,
    # and no start is held to a node.
    client = FakeSwarmClient(task_node="node-b")
    client.record("jhub-node-alice", "node-a", "worker-a")
    client.nodes["node-a"] = node("node-a", "worker-a", availability="drain")
    spawner = make_spawner(db, check_interval=0, network_name=NETWORK, placement_constraints=["node.role == worker"],
                           volume_driver="local", volume_driver_options=NFS_OPTIONS)
    assert spawner.node_affinity is False

    assert start(spawner, client) == ("10.0.1.5", 8888)
    asyncio.run(spawner.stop())
    assert start(spawner, client) == ("10.0.1.5", 8888)  # the next start too

    assert [constraints_of(service) for service in client.created] == [["node.role == worker"]] * 2
    assert client.config_reads == [] and client.config_calls == []
    assert client.configs["jhub-node-alice"]["data"] == b"node-a"  # left as it was


def test_the_record_name_has_the_escaped_username_and_the_label_the_users_name(db):
    client = FakeSwarmClient()

    started_spec(db, client, name="anna.b")

    assert [(name, labels["io.jhub-docker.user"]) for name, _data, labels in client.config_calls] == [
        ("jhub-node-anna-2eb", "anna.b")
    ]


def test_the_record_name_follows_node_record_template(db):
    client = FakeSwarmClient(task_node="node-a")
    client.record("homes.alice", "node-a", "worker-a")  # read under the configured name
    started_spec(db, client, node_record_template="homes.{username}")
    other = FakeSwarmClient(task_node="node-a")
    started_spec(db, other, name="bob", node_record_template="homes.{username}")

    assert constraints_of(client.created[0]) == ["node.id == node-a"]
    assert [name for name, _data, _labels in other.config_calls] == ["homes.bob"]


@pytest.mark.parametrize("template", ["-node-{username}", "node/{username}", "n" * 60 + "-{username}"])
def test_a_record_name_that_is_no_docker_config_name_is_refused(db, template):
    client = FakeSwarmClient()
    spawner = make_spawner(db, check_interval=0, network_name=NETWORK, node_record_template=template)

    with pytest.raises(RuntimeError, match="^node_record_template gives .*, which is no Docker config name"):
        start(spawner, client)
    assert client.created == [] and client.config_calls == []


# --- What it shares with JhubDockerSpawner ---------------------------------------------------------


def test_both_classes_share_one_set_of_start_slots(db, monkeypatch):
    assert JhubDockerSpawner.slots is JhubSwarmSpawner.slots is JhubSpawnerMixin.slots
    one_slot = {"concurrent_starts": 1, "check_interval": 0, "queue_timeout": 5}
    docker_spawner = make_spawner(db, "dora", cls=JhubDockerSpawner, **one_slot)
    swarm_spawner = make_spawner(db, "sven", **one_slot)
    log = []

    async def slow_start(self):  # both classes' start() ends in DockerSpawner.start
        log.append(("begin", self.user.name, time.monotonic()))
        await asyncio.sleep(0.2)
        log.append(("end", self.user.name, time.monotonic()))
        return "10.0.1.5", 8888

    monkeypatch.setattr(DockerSpawner, "start", slow_start)

    async def scenario():
        first = asyncio.ensure_future(docker_spawner.start())
        await asyncio.sleep(0)
        second = asyncio.ensure_future(swarm_spawner.start())
        await asyncio.sleep(0.1)
        ahead = JhubSpawnerMixin.slots.ahead(swarm_spawner)
        await asyncio.gather(first, second)
        return ahead

    assert asyncio.run(scenario()) == 0  # in line behind the other class's start
    assert [(what, user) for what, user, _at in log] == [
        ("begin", "dora"), ("end", "dora"), ("begin", "sven"), ("end", "sven")
    ]


def test_the_waiting_count_is_shared(db, monkeypatch):
    # The count of spawns checking their server paces the checks of both classes.
    spawners = [make_spawner(db, "dora", cls=JhubDockerSpawner), make_spawner(db, "sven")]
    seen = []

    async def wait_answering(self, url, deadline):
        seen.append(JhubSpawnerMixin.waiting)
        await asyncio.sleep(0.1)

    async def started(self):
        return "10.0.1.5", 8888

    monkeypatch.setattr(DockerSpawner, "start", started)
    monkeypatch.setattr(JhubSpawnerMixin, "_wait_answering", wait_answering)

    async def scenario():
        await asyncio.gather(*(spawner.start() for spawner in spawners))

    asyncio.run(scenario())
    assert sorted(seen) == [1, 2]
    assert JhubSpawnerMixin.waiting == JhubDockerSpawner.waiting == JhubSwarmSpawner.waiting == 0


def test_each_class_has_its_own_docker_thread_pool(db):
    docker_pool = make_spawner(db, "dora", cls=JhubDockerSpawner, docker_threads=3).executor
    swarm_pool = make_spawner(db, "sven", docker_threads=5).executor

    assert swarm_pool is not docker_pool
    assert (docker_pool._max_workers, swarm_pool._max_workers) == (3, 5)
    assert make_spawner(db, "tess").executor is swarm_pool


def test_configured_as_the_hub_config_does(db):
    c = Config()
    c.JupyterHub.spawner_class = "jhub_docker.swarm.JhubSwarmSpawner"
    c.JhubSwarmSpawner.check_interval = 0.25
    c.JhubSwarmSpawner.concurrent_starts = 3
    c.JhubSwarmSpawner.queue_timeout = 300
    c.JhubSwarmSpawner.cap_drop = ["ALL"]
    c.JhubSwarmSpawner.pids_limit = 512
    c.JhubSwarmSpawner.no_new_privileges = True
    c.JhubSwarmSpawner.placement_constraints = ["node.role == worker"]
    c.JhubSwarmSpawner.node_record_template = "homes-{username}"
    c.SwarmSpawner.network_name = NETWORK
    c.DockerSpawner.image = "jhub-singleuser:test"

    hub = JupyterHub(config=c)
    assert hub.spawner_class is JhubSwarmSpawner
    orm_user = orm.User(name="carol")
    db.add(orm_user)
    db.commit()
    spawner = User(orm_user, {"config": c, "spawner_class": hub.spawner_class}).spawners[""]

    assert (spawner.check_interval, spawner.concurrent_starts, spawner.queue_timeout) == (0.25, 3, 300)
    assert (spawner.cap_drop, spawner.pids_limit, spawner.no_new_privileges) == (["ALL"], 512, True)
    assert spawner.placement_constraints == ["node.role == worker"]
    assert (spawner.node_record_template, spawner.node_record_name) == ("homes-{username}", "homes-carol")
    assert (spawner.network_name, spawner.image) == (NETWORK, "jhub-singleuser:test")
    assert spawner.extra_endpoint_spec == {"mode": "dnsrr"}


def test_defaults(db):
    spawner = make_spawner(db)

    assert (spawner.cap_drop, spawner.pids_limit, spawner.no_new_privileges) == ([], 0, False)
    assert spawner.placement_constraints == []
    assert spawner.node_record_template == "jhub-node-{username}"
    assert spawner.extra_endpoint_spec == {"mode": "dnsrr"}
    # No volume driver: node-local volumes, and the user's server kept on its node.
    assert (spawner.volume_driver, spawner.mount_driver_config, spawner.node_affinity) == ("", None, True)
    # As JhubDockerSpawner's.
    assert (spawner.check_interval, spawner.docker_threads) == (0.1, 8)
    assert (spawner.concurrent_starts, spawner.queue_timeout) == (0, 0)


def test_the_playbooks_write_records_with_the_spawners_labels():
    """Restores and moves write a user's node record with the labels of roles/jhub/vars/main.yml; the spawner reads
    and writes its own constants. One format: the two must name the same labels."""
    import yaml

    from jhub_docker import swarm

    shared = yaml.safe_load((Path(__file__).parents[2] / "roles/jhub/vars/main.yml").read_text())
    assert shared["jhub_node_record_labels"] == {
        "user": swarm.RECORD_USER_LABEL, "hostname": swarm.RECORD_HOSTNAME_LABEL}
    assert shared["jhub_node_record"] == JhubSwarmSpawner.node_record_template.default_value
