"""The hub's Docker proxy (jhub_docker.guard): its policy on request bodies, and the proxy itself in
front of this machine's real engine, called with docker-py as DockerSpawner calls it.

The attacks are a compromised hub's: each is refused by the proxy with the rule that refused it, and
the same call straight to the engine succeeds (where that is safe to try: a container is created,
never started, and removed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import docker
import pytest

from jhub_docker.guard import LABEL, LABEL_VALUE, POLICY_ENV, Policy, Refused, route

IMAGE = "jhub/debian:bookworm"
NETWORK = "jhub-test-guard"
POLICY = {
    "images": [IMAGE],
    "network": NETWORK,
    "container": "jhub-test-guard-{username}",
    "volume": "jhub-test-guard-user-{username}",
    "shared_volumes": ["jhub-test-guard-data"],
    "node_record": "jhub-node-{username}",
    "cap_drop": ["ALL"],
    "no_new_privileges": True,
    "pids_limit": 1024,
}
HOST = {
    "NetworkMode": NETWORK, "CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"], "PidsLimit": 1024,
    "Binds": ["jhub-test-guard-user-ann:/home/jovyan/work:rw"], "Memory": 1 << 30,
}
SERVER = {"Image": IMAGE, "Labels": {LABEL: LABEL_VALUE}, "Cmd": ["sleep", "60"], "HostConfig": HOST}


def refused(call, *args) -> str:
    with pytest.raises(Refused) as caught:
        call(*args)
    return str(caught.value)


@pytest.mark.parametrize("change, words", [
    ({"HostConfig": {**HOST, "Privileged": True}}, "host settings not allowed: ['Privileged']"),
    ({"HostConfig": {**HOST, "Binds": ["/:/host"]}}, "'/' is neither a user volume"),
    ({"HostConfig": {**HOST, "Mounts": [{"Type": "bind", "Source": "/", "Target": "/host"}]}}, "of type 'bind'"),
    ({"HostConfig": {**HOST, "NetworkMode": "host"}}, "network 'host' is not the hub network"),
    ({"HostConfig": {**HOST, "PidMode": "host"}}, "['PidMode']"),
    ({"HostConfig": {**HOST, "IpcMode": "host"}}, "['IpcMode']"),
    ({"HostConfig": {**HOST, "MaskedPaths": []}}, "['MaskedPaths']"),
    ({"HostConfig": {**HOST, "Devices": [{"PathOnHost": "/dev/sda"}]}}, "['Devices']"),
    ({"HostConfig": {**HOST, "CapAdd": ["SYS_ADMIN"]}}, "capabilities added: ['SYS_ADMIN']"),
    ({"HostConfig": {**HOST, "CapDrop": []}}, "capabilities not dropped: ['ALL']"),
    ({"HostConfig": {**HOST, "SecurityOpt": ["no-new-privileges", "seccomp=unconfined"]}}, "security options"),
    ({"HostConfig": {**HOST, "PidsLimit": 0}}, "process limit 0"),
    ({"HostConfig": {**HOST, "DeviceRequests": [{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}]}},
     "device request"),
    ({"HostConfig": {**HOST, "LogConfig": {"Type": "gelf", "Config": {"gelf-address": "udp://127.0.0.1:22"}}}},
     "['LogConfig']"),
    ({"HostConfig": {**HOST, "OomScoreAdj": -1000}}, "['OomScoreAdj']"),
    ({"NetworkingConfig": {"EndpointsConfig": {NETWORK: {"IPAMConfig": {"IPv4Address": "172.31.252.2"}}}}},
     "a fixed address on the hub network: ['IPAMConfig']"),
    ({"Image": "docker:dind"}, "image 'docker:dind' is not one of the notebook images"),
    ({"Labels": {}}, f"no label {LABEL}={LABEL_VALUE}"),
    ({"User": "0"}, "user '0'"),
    ({"NetworkingConfig": {"EndpointsConfig": {"bridge": {}}}}, "networks ['bridge']"),
])
def test_a_container_that_is_not_a_hardened_user_server_is_refused(change, words):
    policy = Policy(**POLICY)
    policy.container_create({"name": "jhub-test-guard-ann"}, SERVER)  # the user server itself passes
    assert words in refused(policy.container_create, {"name": "jhub-test-guard-ann"}, {**SERVER, **change})


def test_names_follow_the_templates():
    policy = Policy(**POLICY)
    assert "is not a user server's" in refused(policy.container_create, {"name": "jupyterhub"}, SERVER)
    policy.container_create({"name": "jhub-test-guard-ann--work"}, SERVER)  # a named server
    policy.volume_create({"Name": "jhub-test-guard-user-ann--work"})
    assert "is not a user volume's" in refused(policy.volume_create, {"Name": "jupyterhub-data"})
    # A local volume with bind options would be a host bind.
    assert "driver options" in refused(
        policy.volume_create, {"Name": "jhub-test-guard-user-ann", "DriverOpts": {"type": "none", "o": "bind", "device": "/"}})
    nfs = Policy(**POLICY, volume_driver_options={"type": "nfs", "device": ":/export/{username}"})
    nfs.volume_create({"Name": "jhub-test-guard-user-ann", "DriverOpts": {"type": "nfs", "device": ":/export/ann"}})
    assert "driver options" in refused(
        nfs.volume_create, {"Name": "jhub-test-guard-user-ann", "DriverOpts": {"type": "nfs", "device": ":/export/bo"}})
    assert "is not a node record" in refused(policy.config_name, "db-password", "config")
    latest = Policy(**{**POLICY, "images": ["jhub/debian", "jhub/notebook@sha256:" + "0" * 64]})
    latest.image("jhub/debian:latest", "image")
    latest.image("jhub/notebook@sha256:" + "0" * 64, "image")
    assert "is not one of the notebook images" in refused(latest.image, "jhub/debian:12", "image")
    assert route("GET", "/containers/jupyter-ann/json") == ("container_label", {"id": "jupyter-ann"})
    for method, path in [("POST", "/containers/x/exec"), ("GET", "/secrets"), ("GET", "/configs"),
                         ("DELETE", "/volumes/jupyterhub-data"), ("POST", "/build"), ("GET", "/containers/json")]:
        assert f"{method} {path} is not a call that the hub makes" in refused(route, method, path)


def test_a_user_server_is_known_by_its_label_or_as_one_started_before_the_label():
    policy = Policy(**POLICY)
    env = ["JUPYTERHUB_API_URL=http://jupyterhub:8081/hub/api", "PATH=/usr/bin"]
    assert policy.user_server({"Name": "/jupyterhub", "Config": {"Labels": {LABEL: LABEL_VALUE}}})
    assert policy.user_server({"Name": "/jhub-test-guard-ann", "Config": {"Labels": {}, "Env": env}})
    assert not policy.user_server({"Name": "/jhub-test-guard-ann", "Config": {"Labels": {}, "Env": env[1:]}})
    assert not policy.user_server({"Name": "/jupyterhub-proxy", "Config": {"Labels": {}, "Env": env}})
    service = {"Spec": {"Name": "jhub-test-guard-ann", "TaskTemplate": {"ContainerSpec": {"Env": env}}}}
    assert policy.user_server(service)
    assert policy.user_server({"Spec": {"Name": "x", "Labels": {LABEL: LABEL_VALUE}}})
    assert not policy.user_server({"Spec": {"Name": "x", "Labels": {}}})


def test_a_service_that_is_not_a_hardened_user_server_is_refused():
    policy = Policy(**POLICY)
    spec = {"Image": IMAGE, "CapabilityDrop": ["ALL"], "Privileges": {"NoNewPrivileges": True},
            "Mounts": [{"Type": "volume", "Source": "jhub-test-guard-user-ann", "Target": "/home/jovyan/work"}]}
    task = {"ContainerSpec": spec, "Resources": {"Limits": {"Pids": 1024}}, "Networks": [{"Target": NETWORK}]}
    service = {"Name": "jhub-test-guard-ann", "Labels": {LABEL: LABEL_VALUE}, "TaskTemplate": task}
    policy.service_create(service)
    bad = [
        ({**spec, "Mounts": [{"Type": "bind", "Source": "/", "Target": "/host"}]}, "of type 'bind'"),
        ({**spec, "Privileges": {"NoNewPrivileges": True, "SELinuxContext": {"Disable": True}}}, "privileges"),
        ({**spec, "CapabilityAdd": ["SYS_ADMIN"]}, "capabilities added"),
        ({**spec, "Image": "alpine"}, "image 'alpine'"),
        ({**spec, "Sysctls": {"net.ipv4.ip_forward": "1"}}, "container settings not allowed: ['Sysctls']"),
    ]
    for changed, words in bad:
        assert words in refused(policy.service_create, {**service, "TaskTemplate": {**task, "ContainerSpec": changed}})
    assert "published ports" in refused(policy.service_create, {**service, "EndpointSpec": {"Ports": [{"TargetPort": 22}]}})
    assert "networks" in refused(policy.service_create, {**service, "TaskTemplate": {**task, "Networks": [{"Target": "ingress"}]}})


# --- The proxy in front of the real engine ---------------------------------------------------------

@pytest.fixture(scope="module")
def engine():
    if not shutil.which("docker") or subprocess.run(["docker", "info"], capture_output=True, check=False).returncode:
        pytest.skip("no Docker engine")
    client = docker.APIClient()
    client.create_network(NETWORK)
    yield client
    for name in client.containers(all=True, filters={"name": "jhub-test-guard"}):
        client.remove_container(name["Id"], force=True)
    for volume in ("jhub-test-guard-user-ann", "jhub-test-guard-data"):
        subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True, check=False)
    client.remove_network(NETWORK)


@pytest.fixture(scope="module")
def hub(engine, tmp_path_factory):
    """docker-py on the proxy's socket: what the hub has."""
    folder = tmp_path_factory.mktemp("guard")
    socket = folder / "docker.sock"
    log = (folder / "guard.log").open("w")
    proxy = subprocess.Popen(
        [sys.executable, "-m", "jhub_docker.guard", "--listen", str(socket)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, POLICY_ENV: json.dumps(POLICY)},
    )
    for _attempt in range(100):
        if socket.exists():
            break
        time.sleep(0.05)
    yield docker.APIClient(base_url=f"unix://{socket}"), folder / "guard.log"
    proxy.terminate()
    proxy.wait(10)


def attack(hub, call) -> str:
    """The proxy's refusal of a call, as docker-py reports it to the hub."""
    with pytest.raises(docker.errors.APIError) as caught:
        call(hub)
    assert caught.value.response.status_code == 403, caught.value
    assert "jhub-docker-guard refused" in str(caught.value), caught.value
    return str(caught.value)


def server_config(client, **changes):
    host = client.create_host_config(
        network_mode=NETWORK, cap_drop=["ALL"], security_opt=["no-new-privileges"], pids_limit=1024,
        binds=["jhub-test-guard-user-ann:/home/jovyan/work"], **changes)
    return {"image": IMAGE, "command": ["sleep", "60"], "labels": {LABEL: LABEL_VALUE}, "host_config": host}


def test_a_user_server_lives_through_the_proxy(hub, engine):
    """A user server's whole life as DockerSpawner calls it: create, start, inspect, wait, logs, stop, remove."""
    client, log = hub
    assert client.version()["ApiVersion"]
    client.create_volume("jhub-test-guard-user-ann")
    assert client.inspect_volume("jhub-test-guard-user-ann")["Name"] == "jhub-test-guard-user-ann"
    assert client.inspect_image(IMAGE)["Id"]
    created = client.create_container(name="jhub-test-guard-ann", **server_config(client))
    client.start(created["Id"])
    state = client.inspect_container("jhub-test-guard-ann")
    assert state["State"]["Running"] and state["HostConfig"]["CapDrop"] == ["ALL"], state["State"]
    assert client.logs(created["Id"]) == b""
    client.stop(created["Id"], timeout=1)
    assert client.wait(created["Id"])["StatusCode"] != 0
    client.remove_container(created["Id"])
    assert not engine.containers(all=True, filters={"name": "^/jhub-test-guard-ann$"})
    assert "POST /containers/create" in log.read_text()


@pytest.mark.parametrize("name, call, words", [
    ("a privileged container",
     lambda c: c.create_container(name="jhub-test-guard-x", **server_config(c, privileged=True)), "Privileged"),
    ("a bind mount of /",
     lambda c: c.create_container(name="jhub-test-guard-x", **{**server_config(c), "host_config": c.create_host_config(
         network_mode=NETWORK, cap_drop=["ALL"], security_opt=["no-new-privileges"], pids_limit=1024,
         binds=["/:/host"])}), "'/' is neither"),
    ("the host's network",
     lambda c: c.create_container(name="jhub-test-guard-x", **{**server_config(c), "host_config": c.create_host_config(
         network_mode="host", cap_drop=["ALL"], security_opt=["no-new-privileges"], pids_limit=1024)}), "'host'"),
    ("the host's PID namespace",
     lambda c: c.create_container(name="jhub-test-guard-x", **server_config(c, pid_mode="host")), "PidMode"),
    ("an image that is not a notebook image",
     lambda c: c.create_container(name="jhub-test-guard-x", **{**server_config(c), "image": "jhub-test/busybox:1"}),
     "'jhub-test/busybox:1' is not one of"),
])
def test_a_container_made_to_own_the_host_is_refused_by_the_proxy_alone(hub, engine, name, call, words):
    client, log = hub
    assert words in attack(client, call), name
    # The same call straight to the engine makes the container (never started): the refusal was the proxy's.
    made = call(engine)
    engine.remove_container(made["Id"])
    assert "refused (container create)" in log.read_text()


def test_the_proxy_refuses_what_is_not_a_user_servers(hub, engine):
    client, _log = hub
    other = engine.create_container(IMAGE, ["sleep", "60"], name=f"jhub-test-guard-other-{uuid.uuid4().hex[:6]}")
    try:
        assert "is not a user server" in attack(client, lambda c: c.stop(other["Id"]))
        assert "is not a user server" in attack(client, lambda c: c.remove_container(other["Id"], force=True))
        assert "is not a user server" in attack(client, lambda c: c.inspect_container(other["Id"]))
        assert "is not a call" in attack(client, lambda c: c.exec_create(other["Id"], ["id"]))
        engine.inspect_container(other["Id"])  # untouched
    finally:
        engine.remove_container(other["Id"], force=True)
    engine.create_volume("jhub-test-guard-data")
    assert "is not a call" in attack(client, lambda c: c.remove_volume("jhub-test-guard-data"))
    assert "is not one of the notebook images" in attack(client, lambda c: c.pull("jhub-test/busybox", "1"))
    assert "is not a call" in attack(client, lambda c: c.secrets())
    assert "is not a call" in attack(client, lambda c: c.configs())
    assert "is not a call" in attack(client, lambda c: c.containers())
    assert Path("/var/run/docker.sock").exists()
