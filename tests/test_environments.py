"""Profiles, groups and their limits on the hub that `make deploy` made, switched with `site.yml` runs.

Three profiles (small for everyone, large for the group project-week, gpu for the group lab) and the
groups' members as variables; two users of NativeAuthenticator, ann (in both groups) and bo (in none):

- the spawn page offers each the profiles open to them; ann starts large through the form and bo small
  through the API: each container has its profile's memory and CPU limits and the collection's hardening,
  and a kernel runs in each;
- bo asking for large is refused with the hub's message, through the form and through the API;
- ann's gpu start fails at once with the message that this host has no GPU, and her large server is not
  touched (this machine has no GPU);
- ann removed from project-week (a site.yml run) is refused large at her next start;
- at the end, the deployment as make deploy made it (no profiles, no groups, the groups deleted).
"""

from __future__ import annotations

import os
import re
import time

import pytest

from conftest import OUTPUT, recap, run_playbook
# deployed is test_local_deploy's fixture: the hub that make deploy made.
from test_local_deploy import URL, deployed, inspect  # noqa: F401 # pylint: disable=unused-import

from jhub_testing.hubclient import HubClient

IMAGE = "jhub-docker/notebook:6.1.1"
PROFILES = [
    {"name": "small", "display_name": "Small", "description": "Exercises", "image": IMAGE, "mem_limit": "512M", "cpu_limit": 0.5},
    {"name": "large", "display_name": "Large", "image": IMAGE, "mem_limit": "1G", "cpu_limit": 1.0, "groups": ["project-week"]},
    {"name": "gpu", "display_name": "GPU", "image": IMAGE, "gpus": "all", "groups": ["lab"]},
]
# The hub's message (its page escapes the quotes around the name).
REFUSED = "is for the groups project-week, and you are in none of them."


def site(name: str, extra_vars: dict | None) -> None:
    result = run_playbook("playbooks/site.yml", extra_vars)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / f"environments-{name}.log").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-4000:]
    assert recap(result.stdout)["failed"] == 0


def groups(ann_in_project_week: bool = True) -> list[dict]:
    return [{"name": "project-week", "users": ["ann"] if ann_in_project_week else []}, {"name": "lab", "users": ["ann"]}]


@pytest.fixture(scope="module")
def users(deployed):  # noqa: F811 (the fixture imported above)
    """ann and bo, signed up and approved under native; the profiles and groups set; at the end, none."""
    admin = HubClient(URL)
    assert admin.login("admin", deployed).status_code == 302
    clients = {}
    for name in ("ann", "bo"):
        assert admin.api("DELETE", f"/users/{name}").status_code in (204, 404)  # an earlier run's
        clients[name] = HubClient(URL)
        password = f"{name.title()}-Environments-{os.getpid()}"
        assert "Your information has been sent to the admin" in clients[name].signup(name, password)
        admin.authorize(name)
        assert clients[name].login(name, password).status_code == 302
    site("profiles", {"jupyterhub_profiles": PROFILES, "jupyterhub_groups": groups()})
    yield {**clients, "admin": admin}
    for name, client in clients.items():
        if client.api("GET", f"/users/{name}").json().get("servers"):
            client.stop_server(name)
    site("none", None)
    assert {group["name"] for group in admin.api("GET", "/groups").json()} & {"project-week", "lab"} == set()


def spawn_form(client: HubClient, name: str) -> str:
    page = client.http.get(f"{URL}/hub/spawn/{name}", timeout=30)
    assert page.status_code == 200, page.status_code
    return page.text


def submit(client: HubClient, name: str, profile: str):
    token = client.http.cookies.get("_xsrf", path="/hub/") or client.http.cookies.get("_xsrf")
    return client.http.post(f"{URL}/hub/spawn/{name}", data={"profile": profile, "_xsrf": token}, timeout=60)


def limits(name: str) -> tuple[int, int, int, list, list]:
    """The container's memory (bytes) and CPUs (billionths: DockerSpawner sets a quota per period), and its hardening."""
    host = inspect(f"jupyter-{name}")["HostConfig"]
    cpus = host["NanoCpus"] or host["CpuQuota"] * 10**9 // host["CpuPeriod"]
    return host["Memory"], cpus, host["PidsLimit"], host["CapDrop"], host["SecurityOpt"]


def test_each_user_is_offered_the_profiles_open_to_them(users):
    ann, bo = spawn_form(users["ann"], "ann"), spawn_form(users["bo"], "bo")
    assert re.findall(r'name="profile" value="([a-z]+)"', ann) == ["small", "large", "gpu"]
    # bo may use one profile only: no choice to make, no form; as without profiles, the visit starts his server.
    assert 'name="profile"' not in bo
    users["bo"].wait_ready("bo")
    assert limits("bo")[:2] == (512 * 2**20, 5 * 10**8)
    users["bo"].stop_server("bo")


def test_a_member_starts_the_large_profile_through_the_form(users):
    ann = users["ann"]
    submit(ann, "ann", "large")
    ann.wait_ready("ann")
    assert limits("ann")[:2] == (2**30, 10**9)
    assert limits("ann")[2:] == (1024, ["ALL"], ["no-new-privileges"])
    ann.open_server("ann")
    assert ann.execute("ann", "print(6 * 7)").strip() == "42"


def test_a_non_member_is_refused_the_large_profile(users):
    bo = users["bo"]
    response = bo.api("POST", "/users/bo/server", json={"profile": "large"})
    assert response.status_code == 403 and REFUSED in response.json()["message"], (response.status_code, response.text)
    page = submit(bo, "bo", "large")
    assert REFUSED in page.text, page.text[-2000:]
    assert not bo.api("GET", "/users/bo").json()["servers"]


def test_the_small_profile_through_the_api_has_its_limits(users):
    bo = users["bo"]
    response = bo.api("POST", "/users/bo/server", json={"profile": "small"})
    assert response.status_code in (201, 202), response.text
    bo.wait_ready("bo")
    assert limits("bo")[:2] == (512 * 2**20, 5 * 10**8)
    bo.open_server("bo")
    assert bo.execute("bo", "print('small')").strip() == "small"


def test_a_gpu_profile_fails_at_once_on_this_host_and_touches_nothing_else(users):
    ann = users["ann"]
    before = inspect("jupyter-ann")["State"]["StartedAt"]
    ann.stop_server("ann")
    started = time.monotonic()
    response = ann.api("POST", "/users/ann/server", json={"profile": "gpu"})
    took = time.monotonic() - started
    assert response.status_code == 503 and "asks for GPUs, and this host has none" in response.json()["message"], response.text
    assert took < 30, took
    assert inspect("jupyter-bo")["State"]["Running"]
    # Another profile starts again after the failure.
    response = ann.api("POST", "/users/ann/server", json={"profile": "large"})
    assert response.status_code in (201, 202), response.text
    ann.wait_ready("ann")
    assert inspect("jupyter-ann")["State"]["StartedAt"] != before
    ann.stop_server("ann")


def test_a_user_removed_from_the_group_is_refused_its_profile_at_the_next_start(users):
    site("ann-removed", {"jupyterhub_profiles": PROFILES, "jupyterhub_groups": groups(ann_in_project_week=False)})
    ann = users["ann"]
    assert users["admin"].api("GET", "/users/ann").json()["groups"] == ["lab"]
    response = ann.api("POST", "/users/ann/server", json={"profile": "large"})
    assert response.status_code == 403 and REFUSED in response.json()["message"], response.text
