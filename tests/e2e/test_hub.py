"""End to end, against a deployed hub: real login form, real sign-up, real servers and kernels.

Configured by the environment (the full-stack Molecule scenario sets it):
  JHUB_URL               the hub, e.g. http://127.0.0.1:8000
  JHUB_ADMIN_USER        the bootstrapped admin (default admin)
  JHUB_ADMIN_PASSWORD    its password
  JHUB_SERVICE_TOKEN     token of a service that has the admin role
  JHUB_RESTART_HUB       shell command that restarts the hub container
  JHUB_REDEPLOY          shell command that runs the deployment again (extra -e arguments are appended)
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid

import pytest
import requests

from jhub_testing.hubclient import HubClient

URL = os.environ.get("JHUB_URL", "")
ADMIN = os.environ.get("JHUB_ADMIN_USER", "admin")
ADMIN_PASSWORD = os.environ.get("JHUB_ADMIN_PASSWORD", "")
SERVICE_TOKEN = os.environ.get("JHUB_SERVICE_TOKEN", "")
RESTART_HUB = os.environ.get("JHUB_RESTART_HUB", "")
REDEPLOY = os.environ.get("JHUB_REDEPLOY", "")
RUN = uuid.uuid4().hex[:6]  # new user names on every run: the tests never depend on old state


@pytest.fixture(scope="module")
def admin() -> HubClient:
    client = HubClient(URL)
    response = client.login(ADMIN, ADMIN_PASSWORD)
    assert response.status_code == 302, (response.status_code, response.text[:500])
    return client


@pytest.fixture(scope="module")
def user(admin) -> tuple[HubClient, str]:
    """A user who signed up, was approved by the admin, and logged in; their server started."""
    name = f"alice{RUN}"
    password = f"Correct-Horse-{RUN}-Battery"
    client = HubClient(URL)
    page = client.signup(name, password)
    assert "Your information has been sent to the admin" in page
    client.login(name, password)
    admin.authorize(name)
    response = client.login(name, password)
    assert response.status_code == 302, (response.status_code, response.text[:500])
    client.start_server(name)
    client.open_server(name)
    return client, name


def wait_health(timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{URL}/hub/health", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)
    raise AssertionError(f"{URL}/hub/health did not answer within {timeout} s")


def test_health():
    assert requests.get(f"{URL}/hub/health", timeout=10).status_code == 200


def test_admin_logs_in_through_the_form(admin):
    me = admin.api("GET", "/user").json()
    assert me["name"] == ADMIN and me["admin"] is True


def test_wrong_password_is_refused():
    response = HubClient(URL).login(ADMIN, ADMIN_PASSWORD + "-wrong")
    assert response.status_code == 200 and "Invalid username or password" in response.text


def test_admin_starts_a_server_and_runs_code(admin):
    admin.start_server(ADMIN)
    admin.open_server(ADMIN)
    assert admin.execute(ADMIN, "print(sum(range(10)))").strip() == "45"
    admin.stop_server(ADMIN)


def test_new_user_cannot_log_in_before_approval(admin):
    name, password = f"bob{RUN}", f"Purple-Monkey-{RUN}-Dishwasher"
    client = HubClient(URL)
    assert "Your information has been sent to the admin" in client.signup(name, password)
    refused = client.login(name, password)
    assert refused.status_code == 200 and "has not been authorized" in refused.text
    admin.authorize(name)
    assert client.login(name, password).status_code == 302


def test_admin_pages_answer_the_admin_only(admin, user):
    """The admin page and NativeAuthenticator's authorize page (which lists every user) for the admin;
    a user gets neither."""
    client, name = user
    assert admin.http.get(f"{URL}/hub/admin", timeout=30).status_code == 200
    page = admin.http.get(f"{URL}/hub/authorize", timeout=30)
    assert page.status_code == 200 and name in page.text, page.status_code
    for path in ("/hub/admin", "/hub/authorize"):
        assert client.http.get(f"{URL}{path}", timeout=30).status_code == 403, path


def test_user_runs_code_in_a_kernel_through_the_proxy(user):
    client, name = user
    assert client.execute(name, "import getpass, os; print(6 * 7, getpass.getuser(), os.getcwd())").split() == [
        "42", "jovyan", "/home/jovyan/work"]


def test_user_container_is_hardened(user):
    client, name = user
    probe = (
        "import os; s = open('/proc/self/status').read();"
        "f = dict(l.split(':', 1) for l in s.splitlines());"
        "print(f['NoNewPrivs'].strip(), f['CapBnd'].strip(), os.path.exists('/var/run/docker.sock'),"
        " open('/sys/fs/cgroup/pids.max').read().strip() if os.path.exists('/sys/fs/cgroup/pids.max') else 'n/a')"
    )
    no_new_privs, bounding_set, has_socket, pids_max = client.execute(name, probe).split()
    assert no_new_privs == "1"
    assert int(bounding_set, 16) == 0, f"capabilities left: {bounding_set}"
    assert has_socket == "False"
    assert pids_max in ("1024", "n/a"), pids_max


def test_files_survive_a_server_stop_and_start(user):
    client, name = user
    content = f"kept {uuid.uuid4().hex}"
    client.execute(name, f"open('kept.txt', 'w').write({content!r})")
    client.stop_server(name)
    client.start_server(name)
    client.open_server(name)
    response = client.server_api(name, "GET", "/contents/kept.txt")
    assert response.status_code == 200 and response.json()["content"] == content


@pytest.mark.skipif(not RESTART_HUB, reason="JHUB_RESTART_HUB is not set")
def test_hub_restart_keeps_the_users_server(user):
    client, name = user
    before = client.api("GET", f"/users/{name}").json()["servers"][""]
    subprocess.run(RESTART_HUB, shell=True, check=True, timeout=120)
    wait_health()
    after = client.api("GET", f"/users/{name}").json()["servers"][""]
    assert after["ready"] and after["started"] == before["started"], (before, after)
    assert client.execute(name, "print('still here')").strip() == "still here"


def test_idle_culler_is_registered(admin):
    services = admin.api("GET", "/services").json()
    assert "idle-culler" in services, services


@pytest.mark.skipif(not SERVICE_TOKEN, reason="JHUB_SERVICE_TOKEN is not set")
def test_service_token_creates_a_user_and_starts_a_server():
    client = HubClient(URL)
    name = f"robot{RUN}"
    created = client.api("POST", f"/users/{name}", token=SERVICE_TOKEN)
    assert created.status_code == 201, (created.status_code, created.text)
    client.start_server(name, token=SERVICE_TOKEN)
    client.stop_server(name, token=SERVICE_TOKEN)
    assert client.api("DELETE", f"/users/{name}", token=SERVICE_TOKEN).status_code == 204


def _redeploy(*extra: str) -> None:
    result = subprocess.run(
        " ".join([REDEPLOY, *map(shlex.quote, extra)]), shell=True, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


@pytest.mark.skipif(not REDEPLOY, reason="JHUB_REDEPLOY is not set")
def test_redeploy_with_the_reset_sets_the_inventorys_admin_password_again(admin):
    """Last test of the module: the admin changes their password in the UI; a run with
    jupyterhub_admin_password_reset sets the inventory's again. (A run without it keeps the UI's: the README's
    command run again checks that, tests/test_local_deploy.py.)"""
    changed = f"{ADMIN_PASSWORD}-changed-in-the-ui"
    assert "changed successfully" in admin.change_password(ADMIN_PASSWORD, changed)
    assert HubClient(URL).login(ADMIN, changed).status_code == 302
    _redeploy("-e", '{"jupyterhub_admin_password_reset": true}')
    assert HubClient(URL).login(ADMIN, ADMIN_PASSWORD).status_code == 302
    assert HubClient(URL).login(ADMIN, changed).status_code == 200
