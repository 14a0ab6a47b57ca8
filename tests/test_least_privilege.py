"""A compromised hub on the hub that `make deploy` made: its attacks on the host, from inside the hub's container.

Code run in the hub (an authenticator's bug, a JupyterHub advisory) has what the hub has: docker-py, and the
socket of the hub's Docker proxy (jhub_docker.guard) in DOCKER_HOST. The engine's own socket is not in the
container. Each attack below is made from there, with the hub's own Python, and each is refused by the proxy,
with the rule in its answer and in the proxy's log. Where it is safe to try, the same call made from the play's
side, on the engine's socket, succeeds: the refusal was the proxy's, not the engine's.

The hub's normal work through the proxy is what the rest of the suite does: every spawn and stop, named servers
and profiles (test_environments.py), idle culling (below), backups that stop servers through the hub, the swarm path
(the swarm scenario).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

# deployed is test_local_deploy's fixture: the hub that make deploy made.
from test_local_deploy import URL, deployed, inspect  # noqa: F401 # pylint: disable=unused-import

from jhub_testing.hubclient import HubClient

HUB = "jupyterhub"
# The hub's processes run as its user (jupyterhub_uid); an exec as that user is what code run in the hub can do.
IN_HUB = ["docker", "exec", "--user", "10081:10081", HUB, "/opt/jupyterhub/bin/python", "-c"]
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
    made = subprocess.run([*IN_HUB, SCRIPT, json.dumps(calls)],
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


def container_processes(container: str, user: str, then: str = "") -> tuple[list[dict[str, str]], str]:
    """The status of every process in CONTAINER (read as USER) but the exec's own shell and its children, and what the
    shell command THEN printed after them."""
    script = f"echo $$; for s in /proc/[0-9]*/status; do cat $s; echo ---; done; {then}"
    out = subprocess.run(["docker", "exec", "--user", user, container, "sh", "-c", script],
                         capture_output=True, text=True, check=True).stdout
    own, rest = out.split("\n", 1)
    # A status that could not be read (its process ended meanwhile) is an empty block.
    blocks = [dict(line.split(":", 1) for line in block.strip().splitlines()) for block in rest.split("---\n")[:-1] if block.strip()]
    return ([{key: " ".join(value.split()) for key, value in block.items()} for block in blocks
             if block["PPid"].strip() != own and block["Pid"].strip() != own], rest.split("---\n")[-1])


def assert_confined(processes: list[dict[str, str]], uid: int) -> None:
    """Every process runs as UID (user and group), with no capability left, not even in the bounding set, and no
    privilege gain."""
    for process in processes:
        assert process["Uid"] == process["Gid"] == f"{uid} {uid} {uid} {uid}", process
        assert process["CapPrm"] == process["CapEff"] == process["CapBnd"] == "0000000000000000", process
        assert process["NoNewPrivs"] == "1", process


def test_the_hub_runs_as_its_user_without_capabilities_on_a_read_only_root(deployed):
    """Inside the hub: every process runs as the hub's user with no capability (its start, as root, kept only what
    giving the data volume to that user and dropping to it need, and dropped them); it cannot read the host's
    configuration directory (root's secrets, 0600) that its start copied from; it writes nothing but its data
    volume and its tmpfs, and its data volume is its own."""
    config = inspect(HUB)["HostConfig"]
    assert config["CapDrop"] == ["ALL"] and config["ReadonlyRootfs"] is True, config
    assert sorted(cap.removeprefix("CAP_") for cap in config["CapAdd"]) == [
        "CHOWN", "DAC_READ_SEARCH", "SETGID", "SETPCAP", "SETUID"], config["CapAdd"]
    assert config["SecurityOpt"] == ["no-new-privileges"], config["SecurityOpt"]
    then = ("cat /run/jhub-host-config/secrets/proxy.token 2>&1 | head -c 100;"
            " for path in /usr/local/bin/jhub-test /data/jhub-test /tmp/jhub-test; do"
            " (touch $path && rm $path && echo $path written) 2>&1 | tail -c 100; done;"
            " find /data /srv/jupyterhub '!' -user 10081 | head -3; stat -c %a /srv/jupyterhub/secrets/proxy.token")
    processes, rest = container_processes(HUB, "10081:10081", then)
    assert {p["Name"] for p in processes} >= {"tini", "jupyterhub"}, processes
    assert_confined(processes, 10081)
    lines = rest.strip().splitlines()
    assert "Permission denied" in lines[0], lines
    assert "Read-only file system" in lines[1], lines
    assert lines[2:] == ["/data/jhub-test written", "/tmp/jhub-test written", "600"], lines


def test_the_proxy_runs_as_nobody_without_capabilities(deployed):
    """configurable-http-proxy, the process that users' traffic reaches first: every process of its container runs
    as nobody, with no capability left (not even in the bounding set) and no privilege gain, and cannot read the
    token file it started with (root's); the token reached it: its API answers the hub's token."""
    proxy = inspect("jupyterhub-proxy")
    config = proxy["HostConfig"]
    assert config["CapDrop"] == ["ALL"] and config["ReadonlyRootfs"] is True, config
    assert sorted(cap.removeprefix("CAP_") for cap in config["CapAdd"]) == ["SETGID", "SETPCAP", "SETUID"], config["CapAdd"]
    processes, rest = container_processes("jupyterhub-proxy", "65534:65534", "cat /run/secrets/proxy.token 2>&1 | head -c 100")
    assert {p["Name"] for p in processes} >= {"tini"} and len(processes) >= 2, processes
    assert_confined(processes, 65534)
    assert "Permission denied" in rest, rest[-200:]
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
        seen = json.loads(subprocess.run([*IN_HUB, script],
                                         capture_output=True, text=True, check=True).stdout)
        assert seen["jupyter-before-label"] == "stopped and removed", seen
        assert "'jupyter-not-a-server' is not a user server" in seen["jupyter-not-a-server"], seen
        assert inspect("jupyter-not-a-server")["State"]["Running"]
    finally:
        subprocess.run(["docker", "rm", "-f", *made], capture_output=True, check=False)


# Run in the hub as its user: the idle culler's own code, with the environment (token, API address) of the culler
# service that the hub runs, and a limit of 1 s instead of the configured one; until USER's server is gone (60 s).
CULL = textwrap.dedent("""
    import json, os, subprocess, sys, time, urllib.request
    user = sys.argv[1]
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            if b'jupyterhub_idle_culler' in open(f'/proc/{pid}/cmdline', 'rb').read():
                env = dict(item.split('=', 1) for item in open(f'/proc/{pid}/environ').read().split('\\0') if '=' in item)
                break
        except OSError:
            pass
    culler = subprocess.Popen([sys.executable, '-m', 'jupyterhub_idle_culler', '--timeout=1', '--cull-every=2',
                               '--url=' + env['JUPYTERHUB_API_URL']], env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ask = urllib.request.Request(env['JUPYTERHUB_API_URL'] + '/users/' + user,
                                 headers={'Authorization': 'token ' + env['JUPYTERHUB_API_TOKEN']})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and json.load(urllib.request.urlopen(ask))['servers']:
        time.sleep(1)
    culler.terminate()
    print(json.dumps({'servers': json.load(urllib.request.urlopen(ask))['servers'], 'log': culler.communicate()[0][-3000:]}))
""")


def test_the_idle_culler_stops_an_idle_server_through_the_proxy(deployed):
    """Idle culling, the hub's one stop that no user asks for: the culler's code with the token and role of the hub's
    culler service, run in the hub as the hub's user, with a 1 s limit (the configured hour does not fit a test),
    stops an idle server. The hub stops it through its Docker proxy (its log shows the call); it has no other way.
    It stops any other idle server too: those of the tests before are not needed again."""
    admin = HubClient(URL)
    assert admin.login("admin", deployed).status_code == 302
    name = f"idle{os.getpid()}"
    assert admin.api("POST", f"/users/{name}").status_code in (201, 409)
    admin.start_server(name)
    container = inspect(f"jupyter-{name}")["Id"]
    since = inspect(GUARD)["State"]["StartedAt"]
    try:
        seen = json.loads(subprocess.run([*IN_HUB, CULL, name], capture_output=True, text=True, check=True).stdout)
        assert seen["servers"] == {}, seen
        assert name in seen["log"], seen["log"]
        log = subprocess.run(["docker", "logs", "--since", since, GUARD], capture_output=True, text=True, check=True)
        stops = [line for line in (log.stdout + log.stderr).splitlines() if "/stop" in line and container in line]
        assert stops and "refused" not in stops[-1], stops
    finally:
        admin.api("DELETE", f"/users/{name}")
