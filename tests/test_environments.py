"""Profiles, groups and their limits on the hub that `make deploy` made, switched with `site.yml` runs.

Three profiles (small for everyone, large for the group project-week, gpu for the group lab) and the
groups' members as variables; two users of NativeAuthenticator, ann (in both groups) and bo (in none):

- the spawn page offers each the profiles open to them; ann starts large through the form and bo small
  through the API: each container has its profile's memory and CPU limits and the collection's hardening,
  and a kernel runs in each;
- bo asking for large is refused with the hub's message, through the form and through the API;
- ann's gpu start fails at once with the message that this host has no GPU, and her large server is not
  touched (this machine has no GPU);
- shared volumes: a data set that everyone's server mounts read-only, and a project volume of the group lab
  (ann and cy): ann writes a file, cy changes it, bo (in no group) does not have the volume;
- named servers: ann's server "work" has its own container and volume, and neither her default server's
  files nor its volume are touched; a kernel runs in it;
- backups.yml and restore.yml round-trip the named server's and the project volume's files; the restore of a
  shared volume that a server uses is refused, and changes nothing;
- ann removed from project-week (a site.yml run) is refused large at her next start;
- at the end, the deployment as make deploy made it (no profiles, no groups, the groups deleted, the test's
  volumes and backups removed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

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
HOME = "/home/jovyan/work"
SHARED = [
    {"name": "jhub-test-datasets", "path": f"{HOME}/datasets"},
    {"name": "jhub-test-lab", "path": f"{HOME}/lab", "mode": "rw", "groups": ["lab"]},
]
BACKUPS = "/var/backups/jhub-docker-test-environments"
# The hub's message (its page escapes the quotes around the name).
REFUSED = "is for the groups project-week, and you are in none of them."


def site(name: str, extra_vars: dict | None) -> None:
    result = run_playbook("playbooks/site.yml", extra_vars)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / f"environments-{name}.log").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-4000:]
    assert recap(result.stdout)["failed"] == 0


def groups(ann_in_project_week: bool = True) -> list[dict]:
    return [{"name": "project-week", "users": ["ann"] if ann_in_project_week else []}, {"name": "lab", "users": ["ann", "cy"]}]


def environment(ann_in_project_week: bool = True) -> dict:
    return {"jupyterhub_profiles": PROFILES, "jupyterhub_groups": groups(ann_in_project_week),
            "jupyterhub_shared_volumes": SHARED, "jupyterhub_named_server_limit": 2}


def in_volume(volume: str, script: str) -> str:
    """Run a shell script as root in a one-off container with the volume at /v; its output."""
    return subprocess.run(["docker", "run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "sh", "-v", f"{volume}:/v", IMAGE,
                           "-c", script], capture_output=True, text=True, check=True, timeout=120).stdout


@pytest.fixture(scope="module")
def users(deployed):  # noqa: F811 (the fixture imported above)
    """ann and bo, signed up and approved under native; the profiles and groups set; at the end, none."""
    admin = HubClient(URL)
    assert admin.login("admin", deployed).status_code == 302
    shutil.rmtree(BACKUPS, ignore_errors=True)  # an earlier run's
    clients = {}
    for name in ("ann", "bo", "cy"):
        assert admin.api("DELETE", f"/users/{name}").status_code in (204, 404)  # an earlier run's
        clients[name] = HubClient(URL)
        password = f"{name.title()}-Environments-{os.getpid()}"
        assert "Your information has been sent to the admin" in clients[name].signup(name, password)
        admin.authorize(name)
        assert clients[name].login(name, password).status_code == 302
    site("profiles", environment())
    yield {**clients, "admin": admin}
    for name, client in clients.items():
        for server in client.api("GET", f"/users/{name}").json().get("servers", {}):
            client.stop_server(name, server=server)
    site("none", None)
    assert {group["name"] for group in admin.api("GET", "/groups").json()} & {"project-week", "lab"} == set()
    subprocess.run(["docker", "volume", "rm", "jupyterhub-user-ann--work", *(volume["name"] for volume in SHARED)], check=True)
    shutil.rmtree(BACKUPS, ignore_errors=True)


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


def test_shared_data_is_read_only_and_a_project_volume_is_its_groups_only(users):
    assert in_volume("jhub-test-lab", "stat -c %u:%g:%a /v").strip() == "1000:1000:2775"
    in_volume("jhub-test-datasets", "echo 'shared data' > /v/readme.txt")
    bo = users["bo"]  # his small server runs, in no group
    seen = bo.execute("bo", "import errno, os, pathlib\n"
                      f"data = pathlib.Path('{HOME}/datasets')\n"
                      "print(data.joinpath('readme.txt').read_text().strip())\n"
                      "try:\n    data.joinpath('mine.txt').write_text('x')\n"
                      "except OSError as error:\n    print(errno.errorcode[error.errno])\n"
                      f"print(os.path.exists('{HOME}/lab'))")
    assert seen.split("\n")[:3] == ["shared data", "EROFS", "False"], seen
    ann, cy = users["ann"], users["cy"]
    for client, name in ((ann, "ann"), (cy, "cy")):
        response = client.api("POST", f"/users/{name}/server", json={"profile": "small"})
        assert response.status_code in (201, 202), response.text
        client.wait_ready(name)
        client.open_server(name)
    ann.execute("ann", f"open('{HOME}/lab/notes.txt', 'w').write('from ann\\n')")
    cy.execute("cy", f"open('{HOME}/lab/notes.txt', 'a').write('and cy\\n'); import os; os.mkdir('{HOME}/lab/results')")
    assert ann.execute("ann", f"print(open('{HOME}/lab/notes.txt').read(), end='')") == "from ann\nand cy\n"
    ann.execute("ann", f"open('{HOME}/lab/results/table.csv', 'w').write('1,2\\n')")  # in the directory cy made
    assert in_volume("jhub-test-lab", "stat -c '%n %u:%g' /v/notes.txt /v/results").split("\n")[:2] == [
        "/v/notes.txt 1000:1000", "/v/results 1000:1000"]
    mounts = {mount.get("Name"): mount for mount in inspect("jupyter-ann")["Mounts"]}
    assert not mounts["jhub-test-datasets"]["RW"] and mounts["jhub-test-lab"]["RW"]
    assert inspect("jupyter-ann")["HostConfig"]["CapDrop"] == ["ALL"]  # the hardening stays


def test_a_named_server_has_its_own_volume(users):
    ann = users["ann"]
    ann.execute("ann", f"open('{HOME}/default.txt', 'w').write('the default server')")
    response = ann.api("POST", "/users/ann/servers/work", json={"profile": "small"})
    assert response.status_code in (201, 202), response.text
    ann.wait_ready("ann", server="work")
    ann.open_server("ann/work")
    seen = ann.execute("ann/work", "import os\n"
                       f"open('{HOME}/named.txt', 'w').write('the named server')\n"
                       f"print(sorted(os.listdir('{HOME}')))")
    assert "default.txt" not in seen and "named.txt" in seen and "lab" in seen, seen
    mounts = {mount.get("Name"): mount["Destination"] for mount in inspect("jupyter-ann--work")["Mounts"]}
    assert mounts["jupyterhub-user-ann--work"] == HOME and "jupyterhub-user-ann" not in mounts, mounts
    assert in_volume("jupyterhub-user-ann", "cat /v/default.txt; test ! -e /v/named.txt && echo untouched") == "the default serveruntouched\n"
    assert inspect("jupyter-ann")["State"]["Running"]


def test_backup_and_restore_round_trip_a_named_servers_and_a_shared_volumes_files(users):
    common = {"jupyterhub_backup_root": BACKUPS}
    result = run_playbook("playbooks/backup.yml", {**common, "jupyterhub_backup_users": ["ann--work"]})
    (OUTPUT / "environments-backup.log").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-4000:]
    (name,) = [path.name for path in Path(BACKUPS).iterdir()]
    manifest = json.loads((Path(BACKUPS) / name / "manifest.json").read_text())
    assert {(archive["kind"], archive["volume"]) for archive in manifest["archives"]} >= {
        ("user", "jupyterhub-user-ann--work"), ("shared", "jhub-test-lab"), ("shared", "jhub-test-datasets")}
    in_volume("jupyterhub-user-ann--work", "rm /v/named.txt")
    in_volume("jhub-test-lab", "echo lost > /v/notes.txt")
    users["ann"].stop_server("ann", server="work")
    restore = {**common, "jupyterhub_backup_restore_users": ["ann--work"], "jupyterhub_backup_restore_shared": ["jhub-test-lab"]}
    # ann's and cy's default servers mount the project volume: refused, and nothing changes.
    result = run_playbook("playbooks/restore.yml", restore)
    assert result.returncode != 0 and "jhub-test-lab is in use by" in result.stdout, result.stdout[-3000:]
    assert in_volume("jhub-test-lab", "cat /v/notes.txt") == "lost\n"
    assert in_volume("jupyterhub-user-ann--work", "test -e /v/named.txt || echo gone") == "gone\n"
    for client, name in ((users["ann"], "ann"), (users["cy"], "cy")):
        client.stop_server(name)
    result = run_playbook("playbooks/restore.yml", restore)
    (OUTPUT / "environments-restore.log").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-4000:]
    assert in_volume("jhub-test-lab", "cat /v/notes.txt; stat -c %a /v") == "from ann\nand cy\n2775\n"
    assert in_volume("jupyterhub-user-ann--work", "cat /v/named.txt") == "the named server"


def test_a_user_removed_from_the_group_is_refused_its_profile_at_the_next_start(users):
    site("ann-removed", environment(ann_in_project_week=False))
    ann = users["ann"]
    assert users["admin"].api("GET", "/users/ann").json()["groups"] == ["lab"]
    response = ann.api("POST", "/users/ann/server", json={"profile": "large"})
    assert response.status_code == 403 and REFUSED in response.json()["message"], response.text
