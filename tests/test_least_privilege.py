"""A compromised hub on the hub that `make deploy` made: its attacks on the host, from inside the hub's container.

Code run in the hub (an authenticator's bug, a JupyterHub advisory) has what the hub has: docker-py, and the
socket of the hub's Docker proxy (jhub_docker.guard) in DOCKER_HOST. The engine's own socket is not in the
container. Each attack below is made from there, with the hub's own Python, and each is refused by the proxy,
with the rule in its answer and in the proxy's log. Where it is safe to try, the same call made from the play's
side, on the engine's socket, succeeds: the refusal was the proxy's, not the engine's.

The hub's normal work through the proxy is what the rest of the suite does: every spawn and stop, named servers
and profiles (test_environments.py), idle culling, backups that stop servers through the hub, the swarm path
(the swarm scenario).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

# deployed is test_local_deploy's fixture: the hub that make deploy made.
from test_local_deploy import deployed, inspect  # noqa: F401 # pylint: disable=unused-import

HUB = "jupyterhub"
GUARD = "jupyterhub-docker-guard"
NOTEBOOK = "jhub-docker/notebook:6.1.1"
# The hardening a user server has: an attack that has it and only breaks one rule shows that rule.
HARDENED = ("network_mode='jupyterhub', cap_drop=['ALL'], security_opt=['no-new-privileges'], pids_limit=1024,"
            " binds=['jupyterhub-user-mallory:/home/jovyan/work']")
LABELS = "{'io.jhub-docker.role': 'user-server'}"

# name: (docker-py call made by the hub's code as `c`, words of the refusal)
ATTACKS = {
    "privileged container": (
        f"c.create_container({NOTEBOOK!r}, name='jupyter-mallory', labels={LABELS},"
        f" host_config=c.create_host_config(privileged=True, {HARDENED}))", "['Privileged']"),
    "bind mount of /": (
        f"c.create_container({NOTEBOOK!r}, name='jupyter-mallory', labels={LABELS},"
        f" host_config=c.create_host_config({HARDENED.replace('jupyterhub-user-mallory:', '/:')}))",
        "'/' is neither a user volume"),
    "host network": (
        f"c.create_container({NOTEBOOK!r}, name='jupyter-mallory', labels={LABELS},"
        f" host_config=c.create_host_config({HARDENED.replace(chr(39) + 'jupyterhub' + chr(39), repr('host'))}))",
        "network 'host' is not the hub network"),
    "host PID namespace": (
        f"c.create_container({NOTEBOOK!r}, name='jupyter-mallory', labels={LABELS},"
        f" host_config=c.create_host_config(pid_mode='host', {HARDENED}))", "['PidMode']"),
    "image that is not a notebook image": (
        f"c.create_container('jhub-docker/jupyterhub:6.1.1', name='jupyter-mallory', labels={LABELS},"
        f" host_config=c.create_host_config({HARDENED}))", "is not one of the notebook images"),
    "exec into the proxy": ("c.exec_create('jupyterhub-proxy', ['sh'])", "is not a call that the hub makes"),
    "exec into the hub": ("c.exec_create('jupyterhub', ['sh'])", "is not a call that the hub makes"),
    "stop the proxy": ("c.stop('jupyterhub-proxy')", "'jupyterhub-proxy' is not a user server"),
    "remove the Docker proxy": ("c.remove_container('jupyterhub-docker-guard', force=True)",
                                "'jupyterhub-docker-guard' is not a user server"),
    "remove the hub's data volume": ("c.remove_volume('jupyterhub-data', force=True)", "is not a call that the hub makes"),
    "a volume that binds /": (
        "c.create_volume('jupyterhub-user-mallory', driver_opts={'type': 'none', 'o': 'bind', 'device': '/'})",
        "volume driver options"),
    "read swarm secrets": ("c.secrets()", "GET /secrets is not a call"),
    "read swarm configs": ("c.configs()", "GET /configs is not a call"),
    "pull an arbitrary image": ("c.pull('alpine', 'latest')", "image 'alpine:latest' is not one of the notebook images"),
    "list every container": ("c.containers(all=True)", "GET /containers/json is not a call"),
}

# The attacks, each in a try, from the hub's Python: {name: [status, message]}.
SCRIPT = textwrap.dedent("""
    import json, os, sys
    import docker
    c = docker.APIClient(base_url=os.environ['DOCKER_HOST'], version='auto')
    seen = {'engine socket in the hub': os.path.exists('/var/run/docker.sock') or os.path.exists('/run/docker.sock')}
    for name, call in json.loads(sys.argv[1]).items():
        try:
            eval(call)
            seen[name] = [200, 'done']
        except docker.errors.APIError as error:
            seen[name] = [error.response.status_code, str(error)]
    print(json.dumps(seen))
""")


@pytest.fixture(scope="module")
def attacks(deployed):
    calls = {name: call for name, (call, _words) in ATTACKS.items()}
    since = inspect(GUARD)["State"]["StartedAt"]
    made = subprocess.run(["docker", "exec", HUB, "/opt/jupyterhub/bin/python", "-c", SCRIPT, json.dumps(calls)],
                          capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr[-3000:]
    log = subprocess.run(["docker", "logs", "--since", since, GUARD], capture_output=True, text=True, check=True)
    return json.loads(made.stdout), log.stdout + log.stderr


def test_the_hub_has_no_engine_socket(attacks):
    seen, _log = attacks
    assert seen["engine socket in the hub"] is False
    mounts = [mount.get("Source", "") for mount in inspect(HUB)["Mounts"]]
    assert not [source for source in mounts if source.endswith("docker.sock")], mounts
    assert inspect(HUB)["Config"]["Env"].count("DOCKER_HOST=unix:///run/jhub-docker-guard/docker.sock") == 1


@pytest.mark.parametrize("name", list(ATTACKS))
def test_the_attack_is_refused_by_the_docker_proxy(attacks, name):
    seen, log = attacks
    status, message = seen[name]
    assert status == 403 and "jhub-docker-guard refused" in message and ATTACKS[name][1] in message, (name, seen[name])
    # The proxy's own log names the rule, as the answer did.
    rule = message.split("refused (", 1)[1].split(")", 1)[0]
    assert f"refused ({rule})" in log, log[-3000:]


def engine_call(call: str) -> subprocess.CompletedProcess:
    """The call on the engine's socket, with a wait for the engine's answer that a busy machine does not outlast
    (docker-py's default is 60 s)."""
    return subprocess.run(
        [sys.executable, "-c",
         f"import docker; c = docker.APIClient(timeout=600); r = {call}; print(r.get('Id', r) if isinstance(r, dict) else r)"],
        capture_output=True, text=True, check=False)


@pytest.mark.parametrize("name", ["privileged container", "bind mount of /", "host network", "host PID namespace",
                                  "image that is not a notebook image", "exec into the hub"])
def test_the_same_call_on_the_engine_socket_succeeds(attacks, name):
    """Containers made (never started) and removed, an exec made and not started: the refusal above was the proxy's."""
    made = engine_call(ATTACKS[name][0])
    try:
        assert made.returncode == 0, made.stderr[-2000:]
    finally:
        subprocess.run(["docker", "rm", "-f", "jupyter-mallory"], capture_output=True, check=False)
        subprocess.run(["docker", "volume", "rm", "-f", "jupyterhub-user-mallory"], capture_output=True, check=False)


def test_nothing_was_changed_by_the_attacks(attacks):
    for container in (HUB, "jupyterhub-proxy", GUARD):
        assert inspect(container)["State"]["Running"], container
    volumes = subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True, text=True, check=True).stdout.split()
    assert "jupyterhub-data" in volumes and "jupyterhub-user-mallory" not in volumes
    assert subprocess.run(["docker", "inspect", "jupyter-mallory"], capture_output=True, check=False).returncode != 0


def test_the_hub_runs_without_capabilities_on_a_read_only_root(deployed):
    """Inside the hub: no effective or bounding capability, no privilege gain, nothing written but its data
    volume and its tmpfs."""
    config = inspect(HUB)["HostConfig"]
    assert config["CapDrop"] == ["ALL"] and config["ReadonlyRootfs"] is True, config
    assert config["SecurityOpt"] == ["no-new-privileges"], config["SecurityOpt"]
    seen = subprocess.run(["docker", "exec", HUB, "/opt/jupyterhub/bin/python", "-c", textwrap.dedent("""
        import os
        status = dict(line.split(':', 1) for line in open('/proc/self/status'))
        print(status['CapEff'].strip(), status['CapBnd'].strip(), status['NoNewPrivs'].strip())
        for path in ('/usr/local/bin/jhub-test', '/data/jhub-test', '/tmp/jhub-test'):
            try:
                open(path, 'w').close()
                os.unlink(path)
                print(path, 'written')
            except OSError as error:
                print(path, error.strerror)
    """)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert seen == ["0000000000000000 0000000000000000 1", "/usr/local/bin/jhub-test Read-only file system",
                    "/data/jhub-test written", "/tmp/jhub-test written"], seen


def test_the_proxy_runs_as_nobody_without_capabilities(deployed):
    """configurable-http-proxy, the process that users' traffic reaches first: every process of its container runs
    as nobody, with no capability left (not even in the bounding set) and no privilege gain, and cannot read the
    token file it started with (root's); the token reached it: its API answers the hub's token."""
    proxy = inspect("jupyterhub-proxy")
    config = proxy["HostConfig"]
    assert config["CapDrop"] == ["ALL"] and config["ReadonlyRootfs"] is True, config
    assert sorted(cap.removeprefix("CAP_") for cap in config["CapAdd"]) == ["SETGID", "SETPCAP", "SETUID"], config["CapAdd"]
    # Every process's status, as nobody (the exec's own shell and cat are told apart by their pids).
    script = "echo $$; for s in /proc/[0-9]*/status; do cat $s; echo ---; done; cat /run/secrets/proxy.token 2>&1 | head -c 100"
    out = subprocess.run(["docker", "exec", "--user", "65534:65534", "jupyterhub-proxy", "sh", "-c", script],
                         capture_output=True, text=True, check=True).stdout
    own, rest = out.split("\n", 1)
    # A status that could not be read (its process ended meanwhile) is an empty block.
    blocks = [dict(line.split(":", 1) for line in block.strip().splitlines()) for block in rest.split("---\n")[:-1] if block.strip()]
    processes = [{key: " ".join(value.split()) for key, value in block.items()} for block in blocks
                 if block["PPid"].strip() != own and block["Pid"].strip() != own]
    assert {p["Name"] for p in processes} >= {"tini"} and len(processes) >= 2, processes
    for process in processes:
        assert process["Uid"] == process["Gid"] == "65534 65534 65534 65534", process
        assert process["CapPrm"] == process["CapEff"] == process["CapBnd"] == "0000000000000000", process
        assert process["NoNewPrivs"] == "1", process
    assert "Permission denied" in rest.split("---\n")[-1], rest[-200:]
    token = Path("/srv/jupyterhub/secrets/proxy.token").read_text().strip()
    address = next(iter(proxy["NetworkSettings"]["Networks"].values()))["IPAddress"]
    routes = requests.get(f"http://{address}:8001/api/routes", headers={"Authorization": f"token {token}"}, timeout=10)
    assert routes.status_code == 200, routes.text[:300]


def test_a_server_started_before_the_label_is_still_the_hubs(deployed):
    """After an upgrade from a release without the proxy, users' servers run without the label: the hub may still
    poll, stop and remove them (a user server's name and JupyterHub's API address in its environment), and nothing
    else named like one."""
    made = []
    for name, env in (("jupyter-before-label", ["JUPYTERHUB_API_URL=http://jupyterhub:8081/hub/api"]),
                      ("jupyter-not-a-server", [])):
        made.append(subprocess.run(
            ["docker", "run", "-d", "--name", name, "--network", "jupyterhub", *[f"-e{item}" for item in env],
             NOTEBOOK, "sleep", "300"], capture_output=True, text=True, check=True).stdout.strip())
    try:
        script = textwrap.dedent("""
            import json, os, docker
            c = docker.APIClient(base_url=os.environ['DOCKER_HOST'], version='auto')
            seen = {}
            for name in ('jupyter-before-label', 'jupyter-not-a-server'):
                try:
                    c.inspect_container(name)
                    c.stop(name, timeout=1)
                    c.remove_container(name)
                    seen[name] = 'stopped and removed'
                except docker.errors.APIError as error:
                    seen[name] = str(error)
            print(json.dumps(seen))
        """)
        seen = json.loads(subprocess.run(["docker", "exec", HUB, "/opt/jupyterhub/bin/python", "-c", script],
                                         capture_output=True, text=True, check=True).stdout)
        assert seen["jupyter-before-label"] == "stopped and removed", seen
        assert "'jupyter-not-a-server' is not a user server" in seen["jupyter-not-a-server"], seen
        assert inspect("jupyter-not-a-server")["State"]["Running"]
    finally:
        subprocess.run(["docker", "rm", "-f", *made], capture_output=True, check=False)
