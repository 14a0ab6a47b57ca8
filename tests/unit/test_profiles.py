"""Profiles and group limits (roles/jupyterhub/files/jhub_docker/profiles.py) against the real JupyterHub and
dockerspawner: which profile a user gets, what the spawn page offers, the limits that win, and the create
request of a GPU profile as DockerSpawner's own code makes it (this machine has no GPU)."""

from __future__ import annotations

import asyncio

import docker
import pytest
from docker.errors import APIError
from dockerspawner import DockerSpawner
from jupyterhub import orm
from tornado import web
from traitlets.config import Config

from jhub_docker.profiles import choose, device_requests, limits, size_bytes
from jhub_docker.spawner import JhubDockerSpawner
from jhub_docker.swarm import JhubSwarmSpawner
from jhub_testing.render import render_hub_config
from test_spawner import db, fresh_class_state, make_spawner  # noqa: F401 # pylint: disable=unused-import

IMAGE = "jhub-docker/notebook:6.1.1"
PROFILES = [
    {"name": "small", "display_name": "Small", "description": "Exercises", "image": IMAGE, "mem_limit": "1G", "cpu_limit": 0.5},
    {"name": "large", "display_name": "Large", "image": "jhub-docker/notebook:big", "mem_limit": "4G", "cpu_limit": 2.0,
     "groups": ["project-week"]},
    {"name": "gpu", "display_name": "GPU", "image": IMAGE, "gpus": "all", "groups": ["lab"]},
]


def with_groups(spawner, *names: str):
    for name in names:
        spawner.user.orm_user.groups.append(orm.Group(name=name))
    spawner.user.db.commit()
    return spawner


def refusal(function, *args) -> tuple[int, str]:
    with pytest.raises(web.HTTPError) as raised:
        function(*args)
    return raised.value.status_code, raised.value.jupyterhub_message


def test_the_first_open_profile_is_the_default_and_a_named_one_is_taken():
    assert choose(PROFILES, set(), None)["name"] == "small"
    assert choose(PROFILES, {"project-week"}, "large")["name"] == "large"
    assert choose(PROFILES[1:], {"lab"}, "")["name"] == "gpu"


def test_a_profile_of_another_group_or_none_is_refused_with_the_hubs_message():
    assert refusal(choose, PROFILES, {"lab"}, "large") == (
        403, "The profile 'large' is for the groups project-week, and you are in none of them.")
    assert refusal(choose, PROFILES, set(), "huge") == (400, "There is no profile 'huge'. Profiles: small.")
    assert refusal(choose, PROFILES[1:], set(), None)[0] == 403


@pytest.mark.parametrize(("profile", "groups", "expected"), [
    # The profile's own limits win over every group's.
    (PROFILES[0], {"project-week"}, {"mem_limit": "1G", "cpu_limit": 0.5}),
    # Without them, the largest among the user's groups (each measure on its own).
    (PROFILES[2], {"lab", "project-week"}, {"mem_limit": "3G", "cpu_limit": 1.5}),
    (None, {"lab"}, {"mem_limit": "512M", "cpu_limit": 1.5}),
    # No group with limits: nothing is set (the spawner's own limits stay).
    (None, {"other"}, {}),
])
def test_which_limit_wins(profile, groups, expected):
    group_limits = {"lab": {"mem_limit": "512M", "cpu_limit": 1.5}, "project-week": {"mem_limit": "3G", "cpu_limit": 1.0}}
    assert limits(profile, groups, group_limits) == expected


def test_sizes_compare_by_bytes():
    assert [size_bytes(size) for size in ("512M", "2g", "1.5G", "1024")] == [512 * 2**20, 2 * 2**30, 3 * 2**29, 1024]


def test_gpus_become_device_requests():
    assert device_requests("all") == [{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}]
    assert device_requests(2)[0]["Count"] == 2 and device_requests(None) == []


def test_the_spawn_page_lists_only_the_profiles_open_to_the_user(db):
    spawner = with_groups(make_spawner(db, "ann", profiles=PROFILES), "project-week")
    form = spawner.options_form(spawner)
    assert 'value="small" checked' in form and 'value="large"' in form and 'value="gpu"' not in form
    assert "<strong>Large</strong>" in form and "(4G memory, 2 CPU)" in form
    assert spawner.options_from_form({"profile": ["large"]}) == {"profile": "large"}


def test_one_open_profile_shows_no_page(db):
    assert make_spawner(db, "bo", profiles=PROFILES).options_form(None) == ""
    assert make_spawner(db, "cy", profiles=PROFILES[:1]).options_form(None) == ""


def test_the_profile_sets_image_limits_and_drops_an_image_asked_for(db):
    spawner = with_groups(make_spawner(db, "dee", profiles=PROFILES, mem_limit="2G", cpu_limit=1.0), "project-week")
    spawner.user_options = {"profile": "large", "image": "evil/image:latest"}
    spawner.apply_profile()
    assert (spawner.image, spawner.mem_limit, spawner.cpu_limit) == ("jhub-docker/notebook:big", 4 * 2**30, 2.0)
    assert spawner.user_options == {"profile": "large"}


def test_group_limits_apply_without_profiles(db):
    spawner = with_groups(make_spawner(db, "eve", group_limits={"lab": {"mem_limit": "3G"}}, mem_limit="2G", cpu_limit=1.0), "lab")
    spawner.user_options = {}
    spawner.apply_profile()
    assert (spawner.mem_limit, spawner.cpu_limit, spawner.profile) == (3 * 2**30, 1.0, None)


class RecordingClient(docker.APIClient):
    """docker-py's real client (its real create_host_config), recording create_container instead of calling the engine."""

    def __init__(self) -> None:
        super().__init__(base_url="unix:///nonexistent/docker.sock", version="1.43")
        self.created: list[dict] = []

    def create_container(self, *args, **kwargs) -> dict:
        self.created.append(kwargs)
        return {"Id": "0123456789abcdef", "Warnings": []}


def test_a_gpu_profiles_create_request_carries_the_device_request(db, monkeypatch):
    client = RecordingClient()
    monkeypatch.setattr(JhubDockerSpawner, "_client", client)
    spawner = with_groups(make_spawner(db, "fay", profiles=PROFILES, extra_host_config={"pids_limit": 512},
                                       cmd=["jupyterhub-singleuser"]), "lab")
    spawner.user_options = {"profile": "gpu"}
    spawner.apply_profile()
    asyncio.run(spawner.create_object())
    host_config = client.created[0]["host_config"]
    assert host_config["DeviceRequests"] == [{"Driver": "", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}]
    assert host_config["PidsLimit"] == 512  # the hardening stays


def test_a_gpu_start_on_a_host_without_gpus_fails_with_a_message(db, monkeypatch):
    async def no_gpu(_self):
        raise APIError("500 Server Error", explanation='could not select device driver "" with capabilities: [[gpu]]')

    removed = []

    async def remove(_self):
        removed.append(True)

    monkeypatch.setattr(DockerSpawner, "start", no_gpu)
    monkeypatch.setattr(DockerSpawner, "remove_object", remove)
    spawner = with_groups(make_spawner(db, "gus", profiles=PROFILES), "lab")
    spawner.user_options = {"profile": "gpu"}
    with pytest.raises(web.HTTPError) as raised:
        asyncio.run(spawner.start())
    assert raised.value.status_code == 503 and "The profile 'gpu' asks for GPUs" in raised.value.jupyterhub_message
    assert removed == [True]  # the container that cannot start is not left behind


def test_the_swarm_spawner_has_profiles_too(db):
    spawner = make_spawner(db, "hal", cls=JhubSwarmSpawner, profiles=PROFILES)
    spawner.user_options = {"profile": "small"}
    spawner.apply_profile()
    assert (spawner.image, spawner.mem_limit) == (IMAGE, 2**30)


def test_the_rendered_config_gives_profiles_group_limits_and_groups(db, tmp_path):
    """jupyterhub_profiles and jupyterhub_groups as an inventory sets them (-e strings too), rendered by the role."""
    variables = {
        "jupyterhub_profiles": [{"name": "small", "image": IMAGE, "mem_limit": "1G", "cpu_limit": "0.5"},
                                {"name": "gpu", "display_name": "GPU", "image": IMAGE, "gpus": "all", "groups": ["lab"]}],
        "jupyterhub_groups": [{"name": "lab", "users": ["ann"], "mem_limit": "3G"}, {"name": "staff", "cpu_limit": 2}],
    }
    text = render_hub_config(tmp_path, {"profiles": variables})["profiles"]
    lines = [line for line in text.splitlines() if line.startswith(("c.JhubDockerSpawner.profiles", "c.JhubDockerSpawner.group_limits",
                                                                    "c.JupyterHub.load_groups"))]
    assert len(lines) == 3, lines
    block = text[text.index("c.JhubDockerSpawner.profiles"):text.index("# --- Services and roles")]
    c = Config()
    exec(block, {"c": c})  # noqa: S102 (the role's own template: data only)
    assert c.JupyterHub.load_groups == {"lab": {"users": ["ann"], "properties": {"jhub.docker": "managed"}}}
    assert "allowed_images" not in text
    spawner = with_groups(make_spawner(db, "ann", **{key: c.JhubDockerSpawner[key] for key in ("profiles", "group_limits")}), "lab", "staff")
    spawner.user_options = {"profile": "gpu"}
    spawner.apply_profile()
    assert (spawner.mem_limit, spawner.cpu_limit) == (3 * 2**30, 2.0)
    assert spawner.extra_host_config["device_requests"][0]["Count"] == -1
    spawner.user_options = {"profile": "small"}
    spawner.apply_profile()
    assert (spawner.mem_limit, spawner.cpu_limit, spawner.extra_host_config["device_requests"]) == (2**30, 0.5, [])


def test_without_profiles_several_images_keep_dockerspawners_choice(db):
    images = {"Python": IMAGE, "R": "jhub-docker/notebook-r:1"}
    spawner = make_spawner(db, "jo", allowed_images=images)
    assert 'name="image"' in spawner.options_form and 'value="R"' in spawner.options_form
    assert spawner.options_from_form({"image": ["R"]}) == {"image": "R"}


HOME = "/home/jovyan/work"
SHARED = [
    {"name": "jhub-datasets", "path": "/home/jovyan/work/datasets", "mode": "ro", "groups": []},
    {"name": "jhub-thesis", "path": "/home/jovyan/work/thesis", "mode": "rw", "groups": ["thesis"]},
]


def server_of(spawner, server: str):
    """The user's named server's spawner, made as the hub makes it when the user asks for the server."""
    if not server:
        return spawner
    user = spawner.user
    if server not in user.orm_spawners:
        # JupyterHub 5 takes the server's name; 6 its display name too.
        user._new_orm_spawner(*([server, server] if user._new_orm_spawner.__code__.co_argcount > 2 else [server]))
    return user.spawners[server]


@pytest.mark.parametrize("cls", [JhubDockerSpawner, JhubSwarmSpawner])
def test_shared_volumes_are_mounted_for_their_groups_only(db, cls):
    config = {"volumes": {"jupyterhub-user-{username}": HOME}, "shared_volumes": SHARED}
    member = with_groups(make_spawner(db, "kim", cls=cls, **config), "thesis")
    other = make_spawner(db, "lou", cls=cls, **config)
    for spawner in (member, other):
        spawner.user_options = {}
        spawner.apply_profile()
    assert member.volume_binds == {
        "jupyterhub-user-kim": {"bind": HOME, "mode": "rw"},
        "jhub-datasets": {"bind": f"{HOME}/datasets", "mode": "ro"},
        "jhub-thesis": {"bind": f"{HOME}/thesis", "mode": "rw"},
    }
    assert set(other.volume_binds) == {"jupyterhub-user-lou", "jhub-datasets"}


def test_a_named_server_has_its_own_container_and_volume(db):
    default = make_spawner(db, "max", name_template="jupyter-{username}", volumes={"jupyterhub-user-{username}": HOME},
                           shared_volumes=SHARED[:1])
    named = server_of(default, "Work-1")
    for spawner in (default, named):
        spawner.user_options = {}
        spawner.apply_profile()
    assert (default.object_name, named.object_name) == ("jupyter-max", "jupyter-max--work-2d1")
    assert set(default.volume_binds) == {"jupyterhub-user-max", "jhub-datasets"}
    assert set(named.volume_binds) == {"jupyterhub-user-max--work-2d1", "jhub-datasets"}  # the shared one is the same


def test_user_and_server_names_never_collide(db):
    """USER--SERVER with escaped parts: no two (user, server) pairs, default servers included, share a name."""
    pairs = [("a", ""), ("a-b", ""), ("a--b", ""), ("a", "b"), ("a", "b-c"), ("a-b", "c"), ("a", "b--c"), ("a--b", "c"),
             ("a-2db", ""), ("a", "-"), ("a-", "")]
    defaults: dict = {}
    names = set()
    for user, server in pairs:
        if user not in defaults:
            defaults[user] = make_spawner(db, user, name_template="jupyter-{username}")
        names.add(server_of(defaults[user], server).object_name)
    assert len(names) == len(pairs), sorted(names)


def test_a_named_server_on_the_swarm_has_its_own_record_and_driver_device(db):
    options = {"type": "nfs", "o": "addr=10.0.0.5", "device": ":/export/{username}"}
    default = make_spawner(db, "ned", cls=JhubSwarmSpawner, volume_driver="local", volume_driver_options=options,
                           volumes={"jupyterhub-user-{username}": HOME}, shared_volumes=SHARED[:1])
    named = server_of(default, "gpu")
    assert (default.node_record_name, named.node_record_name) == ("jhub-node-ned", "jhub-node-ned--gpu")
    named.user_options = {}
    named.apply_profile()
    mounts = {mount["Source"]: mount for mount in named.mounts}
    assert mounts["jupyterhub-user-ned--gpu"]["VolumeOptions"]["DriverConfig"]["Options"]["device"] == ":/export/ned--gpu"
    # The shared volume exists on every node already, with its own options: the mount names it only.
    assert "DriverConfig" not in mounts["jhub-datasets"].get("VolumeOptions", {}) and mounts["jhub-datasets"]["ReadOnly"]
