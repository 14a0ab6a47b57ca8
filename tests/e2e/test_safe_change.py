"""A change goes live only after a real hub has started with it; a change that fails after the switch rolls back.

Each test runs the deployment again with one bad change (JHUB_REDEPLOY, as the operator would) against
the hub under test, and watches what a user sees meanwhile. Configured by the environment:
  JHUB_URL, JHUB_ADMIN_USER, JHUB_ADMIN_PASSWORD  the hub and its admin
  JHUB_REDEPLOY                                   shell command that runs the deployment again
  JHUB_HOST_EXEC                                  command prefix that runs a command on the hub's host
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
import uuid

import pytest
import requests

from jhub_testing.hubclient import HealthWatch, HubClient, KeepAlive, Watcher

URL = os.environ.get("JHUB_URL", "")
ADMIN = os.environ.get("JHUB_ADMIN_USER", "admin")
ADMIN_PASSWORD = os.environ.get("JHUB_ADMIN_PASSWORD", "")
REDEPLOY = os.environ.get("JHUB_REDEPLOY", "")
HOST_EXEC = shlex.split(os.environ.get("JHUB_HOST_EXEC", ""))
RUN = uuid.uuid4().hex[:6]
# The test user's password.
PASSWORD = f"Stable-Table-{RUN}-Lamp"
# The bars. A hub that hangs instead of failing would hold the play for the health timeout (180 s by
# default), in the candidate's check or in the wait after the switch. Each failed play says which it
# was, in its own words, whatever the machine's load: the candidate "exited with status N" (not "was
# not ready within 180 s"), and the live hub's wait after the switch failed within FAIL_AT_ONCE. The
# plays' own times are printed only: a wall-clock bar on them measures the machine's load as much as the
# play (one that failed at once took 50 to 90 s here beside the Molecule scenarios, 160 s on a slow day).
FAIL_AT_ONCE = 30

pytestmark = pytest.mark.skipif(not (REDEPLOY and HOST_EXEC), reason="JHUB_REDEPLOY or JHUB_HOST_EXEC is not set")


def on_host(*argv: str) -> str:
    return subprocess.run([*HOST_EXEC, *argv], capture_output=True, text=True, timeout=120, check=True).stdout.strip()


def hub_log(lines: int = 40) -> str:
    """The end of the hub's log, for a failure's message: why the hub took a server for stopped, for instance."""
    done = subprocess.run([*HOST_EXEC, "docker", "logs", "--tail", str(lines), "jupyterhub"], capture_output=True,
                          text=True, timeout=120, check=False)
    return done.stdout + done.stderr


def assert_server_answers(client: HubClient, name: str) -> None:
    status = client.server_api(name, "GET", "/status").status_code
    assert status == 200, f"{name}'s server answers {status}; the end of the hub's log:\n{hub_log()}"


def started(container: str) -> dict:
    return json.loads(on_host("docker", "inspect", "--format",
                              '{"id": {{json .Id}}, "started": {{json .State.StartedAt}}, "image": {{json .Image}}}',
                              container))


def live_hub() -> dict:
    """The hub's and the proxy's containers and the live configuration on disk."""
    state = started("jupyterhub")
    state["proxy"] = started("jupyterhub-proxy")
    state["config"] = on_host("sha256sum", "/srv/jupyterhub/jupyterhub_config.py").split()[0]
    return state


def redeploy(extra_vars: dict | None, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    command = " ".join([REDEPLOY, *(["-e", shlex.quote(json.dumps(extra_vars))] if extra_vars else []), *map(shlex.quote, args)])
    result = subprocess.run(command, shell=True, capture_output=True,
                            text=True, timeout=900, check=False, env={**os.environ, "ANSIBLE_NOCOLOR": "1"})
    return result, time.monotonic() - started


@pytest.fixture(scope="module")
def user() -> tuple[HubClient, str]:
    admin = HubClient(URL)
    assert admin.login(ADMIN, ADMIN_PASSWORD).status_code == 302
    name = f"carl{RUN}"
    client = HubClient(URL)
    client.join(admin, name, PASSWORD)
    return client, name


@pytest.mark.parametrize(("extra_vars", "args", "error"), [
    # The whole play, as an operator runs it.
    ({"jupyterhub_roles": [{"name": "x", "scopes": ["read:users"]}]}, (), "Invalid role name: 'x'"),
    ({"jupyterhub_roles": [{"name": "reader", "scopes": ["read:nothing"]}]}, ("--tags", "config"),
     "Scope 'read:nothing' for role reader does not exist"),
], ids=["role-name", "unknown-scope"])
def test_redeploy_with_a_change_the_hub_refuses_leaves_the_live_hub_serving(user, extra_vars, args, error):
    """Valid Python that JupyterHub refuses at start: the candidate hub fails, the live one is not touched,
    and the user's server answers through the proxy during the whole play."""
    client, name = user
    before = live_hub()
    watcher = Watcher(client, name)
    watcher.start()
    result, took = redeploy(extra_vars, *args)
    watcher.stop()
    print(f"{error}: the play failed after {took:.1f} s; the user's server answered {watcher.ok} times meanwhile")
    assert result.returncode != 0, result.stdout[-3000:]
    flat = " ".join(result.stdout.split())
    assert "The hub does not start with the new configuration" in flat, result.stdout[-3000:]
    assert error in flat, result.stdout[-3000:]
    assert "preflight: the candidate hub exited with status" in flat, result.stdout[-3000:]
    assert live_hub() == before
    assert watcher.ok >= 5 and not watcher.failed, (watcher.ok, watcher.failed)


def assert_rolled_back(user, before: dict, result: subprocess.CompletedProcess, took: float, cause: str) -> None:
    """The play failed in time, said why and that it rolled back; the previous configuration and image
    run again, and the hub and the user's server answer."""
    client, name = user
    print(f"{cause}: the play failed after {took:.1f} s")
    assert result.returncode != 0, result.stdout[-3000:]
    flat = " ".join(result.stdout.split())
    assert "Rolled back" in flat and cause in flat, result.stdout[-4000:]
    waited = re.search(r"The hub container \S+ (?:exited with status \d+|restarted) after (\d+) s", flat)
    assert waited, result.stdout[-4000:]
    print(f"{cause}: the wait after the switch failed after {waited[1]} s")
    assert int(waited[1]) < FAIL_AT_ONCE, f"the wait after the switch failed after {waited[1]} s, not at once"
    after = live_hub()
    assert after["config"] == before["config"] and after["image"] == before["image"], (before, after)
    assert requests.get(f"{URL}/hub/health", timeout=10).status_code == 200
    assert_server_answers(client, name)


def test_redeploy_that_fails_after_the_switch_rolls_back(user):
    """A configuration that only the live hub refuses (it fails where the Docker proxy's socket is): the preflight
    passes, the live hub exits, the wait fails at once, and the previous configuration comes back. The
    proxy's container is not touched: the user's server answers through it during the whole play."""
    _client, name = user
    # A server checks a user's token with the hub at most every five minutes (JupyterHub's HubAuth cache): a
    # check that falls into the hub's downtime fails until the hub is back. The watch logs in anew, so that its
    # token was checked just before the play, whatever the tests before took (as the upgrade test's watch does).
    client = HubClient(URL)
    assert client.login(name, PASSWORD).status_code == 302
    client.open_server(name)
    before = live_hub()
    extra = ("import os\nif os.path.exists('/run/jhub-docker-guard/docker.sock'):\n"
             "    raise SystemExit('jhub-test: this configuration fails in the live hub only')")
    watcher = Watcher(client, name)
    watcher.start()
    result, took = redeploy({"jupyterhub_extra_config": extra})
    watcher.stop()
    assert_rolled_back(user, before, result, took, "fails in the live hub only")
    assert live_hub()["proxy"] == before["proxy"]
    assert watcher.ok >= 5 and not watcher.failed, (watcher.ok, watcher.failed)


def test_redeploy_onto_a_taken_port_changes_nothing(user):
    """The new port is held by another container: the play fails before anything changes, naming the port;
    the hub and the proxy keep running as they were, and the user's server answers during the whole play."""
    client, name = user
    before = live_hub()
    on_host("docker", "run", "--detach", "--name", "jhub-test-port-taker", "--publish", "18999:9",
            "--entrypoint", "sleep", before["image"], "600")
    watcher = Watcher(client, name)
    watcher.start()
    try:
        result, took = redeploy({"jupyterhub_port": 18999})
    finally:
        watcher.stop()
        on_host("docker", "rm", "--force", "jhub-test-port-taker")
    print(f"taken port: the play failed after {took:.1f} s")
    assert result.returncode != 0, result.stdout[-3000:]
    flat = " ".join(result.stdout.split())
    assert ":18999 is in use on the host" in flat and "Nothing changed" in flat, result.stdout[-3000:]
    assert live_hub() == before
    assert watcher.ok >= 5 and not watcher.failed, (watcher.ok, watcher.failed)


def test_redeploy_with_a_new_setting_keeps_users_connected(user):
    """A changed setting restarts the hub, not the proxy: a user's requests to their server through the proxy
    all succeed, and a kernel websocket opened before the change still works after it, with its state. The
    hub's own downtime is measured (it is down while it restarts)."""
    client, name = user
    before = live_hub()
    kernel = client.server_api(name, "POST", "/kernels", json={"name": "python3"})
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]
    ws = client.connect_kernel(name, kernel_id)
    try:
        client.run_on(ws, name, "kept = 41")
        watcher, health = Watcher(client, name), HealthWatch(URL)
        watcher.start()
        health.start()
        with KeepAlive(ws):
            result, took = redeploy({"jupyterhub_idle_culler_timeout": 3601})
        watcher.stop()
        health.stop()
        assert result.returncode == 0, result.stdout[-3000:]
        after = live_hub()
        # The hub restarted with the new configuration; the proxy's container did not.
        assert after["started"] != before["started"] and after["config"] != before["config"], (before, after)
        assert after["proxy"] == before["proxy"], (before, after)
        print(f"new setting: the play took {took:.1f} s; the hub did not answer /hub/health for {health.down:.1f} s; "
              f"the user's server answered {watcher.ok} requests meanwhile, {len(watcher.failed)} failed")
        assert health.down > 0, "the hub never stopped answering: it did not restart"
        # A request whose token check with the hub (at most every five minutes, JupyterHub's HubAuth
        # cache) falls into the hub's restart fails: allowed only while /hub/health does not answer.
        assert watcher.ok >= 5 and watcher.last_ok and not watcher.failed_outside(health), (watcher.ok, watcher.failed)
        assert client.run_on(ws, name, "print(kept + 1)").strip() == "42"
    finally:
        ws.close()
        client.server_api(name, "DELETE", f"/kernels/{kernel_id}")


def published() -> dict:
    return json.loads(on_host("docker", "inspect", "--format", "{{json .HostConfig.PortBindings}}", "jupyterhub-proxy")) or {}


def test_redeploy_publishes_exactly_the_wanted_port_and_address(user):
    """A changed port and bind address, given as an operator types them (-e name=value, strings): the proxy's
    container publishes the hub there and nowhere else; the next run without them puts the scenario's own back."""
    client, name = user
    before = published()
    result, _took = redeploy(None, "-e", "jupyterhub_port=18998", "-e", "jupyterhub_bind_address=127.0.0.1")
    assert result.returncode == 0, result.stdout[-3000:]
    assert published() == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18998"}]}, published()
    health = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:18998/hub/health').status)"
    assert on_host("python3", "-c", health) == "200"
    result, _took = redeploy(None)
    assert result.returncode == 0, result.stdout[-3000:]
    assert published() == before, published()
    assert requests.get(f"{URL}/hub/health", timeout=10).status_code == 200
    assert_server_answers(client, name)
