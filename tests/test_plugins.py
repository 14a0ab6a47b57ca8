"""The collection's own plugins, imported the way Ansible imports them."""

from __future__ import annotations

import pytest

from ansible_collections.jhub.docker.plugins.action.check_input import bool_errors
from ansible_collections.jhub.docker.plugins.filter.alert_receiver_errors import alert_receiver_errors
from ansible_collections.jhub.docker.plugins.filter.fill_username import fill_username
from ansible_collections.jhub.docker.plugins.filter.non_scalar_items import non_scalar_items
from ansible_collections.jhub.docker.plugins.filter.retries import retries
from ansible_collections.jhub.docker.plugins.filter.shared_volume_errors import shared_volume_errors
from ansible_collections.jhub.docker.plugins.filter.profile_errors import profile_errors
from ansible_collections.jhub.docker.plugins.filter.python_literal import python_literal
from ansible_collections.jhub.docker.plugins.filter.stale_images import stale_images
from ansible_collections.jhub.docker.plugins.module_utils.references import (
    image_list_errors,
    is_image_reference,
)


@pytest.mark.parametrize(
    "value",
    ["busybox", "busybox:1.36", "jupyter/minimal-notebook", "quay.io/jupyter/minimal-notebook:2026-05-31",
     "127.0.0.1:5000/jhub/notebook:1", "localhost/x", "jhub-test/busybox:1",
     "debian@sha256:" + "a" * 64],
)
def test_valid_image_references(value):
    assert is_image_reference(value)


@pytest.mark.parametrize(
    "value",
    ["", "Busybox", "UPPER/case", "a b", "x:", ":tag", "a//b", "jhub/:1", "name:tag:tag", "-leading", None, 5,
     "x" * 300],
)
def test_invalid_image_references(value):
    assert not is_image_reference(value)


def test_image_list_errors_name_the_variable_and_the_item():
    assert image_list_errors([{"name": "a:1"}, {"name": "b:1"}], "v") == []
    assert image_list_errors([], "v") == ["v is empty (or not a list); users need at least one image to start a server."]
    errors = image_list_errors([{"name": "a:1"}, {"name": "Bad"}, {"name": "a:1"}], "v")
    assert len(errors) == 2
    assert errors[0].startswith("v[0].name: 'a:1' is listed 2 times")
    assert errors[1].startswith("v[1].name: 'Bad' is not a valid image reference")


@pytest.mark.parametrize(
    "value",
    ["plain", "it's \"quoted\"\n'''", True, False, None, 3, 2.5, ["a", 1], {"k": {"n": [True]}}, "\\x00"],
)
def test_python_literal_round_trips(value):
    assert eval(python_literal(value), {"__builtins__": {}}) == value  # noqa: S307 (a literal, no names)


def test_python_literal_cannot_inject_code():
    source = python_literal('"); import os; os.system("id"); ("')
    assert eval(source, {"__builtins__": {}}) == '"); import os; os.system("id"); ("'  # noqa: S307


def test_hub_network_gives_the_hub_and_the_proxy_addresses_outside_the_user_range():
    import ipaddress

    from ansible_collections.jhub.docker.plugins.filter.hub_network import hub_network

    addresses = hub_network("172.31.252.0/22")
    assert addresses == {"subnet": "172.31.252.0/22", "gateway": "172.31.252.1", "hub": "172.31.252.2",
                         "proxy": "172.31.252.3", "ip_range": "172.31.254.0/23"}
    for fixed in ("hub", "proxy"):
        assert ipaddress.ip_address(addresses[fixed]) not in ipaddress.ip_network(addresses["ip_range"])
    for bad in ["172.31.252.1/22", "172.31.252.0", "10.0.0.0/8", "10.0.0.0/30", "fd00::/64", "x", None, 5]:
        assert hub_network(bad) == {}, bad


def test_bool_errors_name_each_option_that_is_not_a_boolean():
    options = {"a": {"type": "bool"}, "b": {"type": "bool"}, "c": {"type": "bool"}, "d": {"type": "str"},
               "auth": {"type": "dict", "options": {"open": {"type": "bool"}}}, "unset": {"type": "bool"}}
    assert bool_errors(options, {"a": True, "b": False, "d": "text", "auth": {"open": False}}) == []
    assert bool_errors(options, {"a": True, "b": "no", "c": 1, "auth": {"open": "yes"}}) == [
        "b must be true or false, not the str 'no'; on the command line give booleans as JSON: -e '{\"b\": false}'.",
        "c must be true or false, not the int '1'; on the command line give booleans as JSON: -e '{\"c\": true}'.",
        "auth.open must be true or false, not the str 'yes'; on the command line give booleans as JSON: -e '{\"auth\": {\"open\": true}}'.",
    ]


@pytest.mark.parametrize(("timeout", "delay", "expected"), [(180, 2, 90), (181, 2, 91), (1, 2, 1), (0, 2, 1), (90, 5, 18), ("60", 2, 30)])
def test_retries_cover_the_timeout(timeout, delay, expected):
    assert retries(timeout, delay) == expected


def test_stale_images_are_the_workers_missing_or_other_images():
    manager = [{"Id": "sha256:new", "RepoTags": ["jhub/nb:1", "jhub/nb:latest"]}, {"Id": "sha256:b", "RepoTags": ["jhub/b:1"]}]
    workers = [
        {"item": "w1", "images": [{"Id": "sha256:new", "RepoTags": ["jhub/nb:1"]}, {"Id": "sha256:b", "RepoTags": ["jhub/b:1"]}]},
        {"item": "w2", "images": [{"Id": "sha256:old", "RepoTags": ["jhub/nb:1"]}]},
        {"item": "w3", "images": []},
    ]
    assert stale_images(["jhub/nb:1", "jhub/b:1"], manager, workers) == [
        {"host": "w2", "name": "jhub/nb:1"}, {"host": "w2", "name": "jhub/b:1"},
        {"host": "w3", "name": "jhub/nb:1"}, {"host": "w3", "name": "jhub/b:1"},
    ]
    assert stale_images([], manager, workers) == []
    # A worker whose read was skipped (nothing to compare) has no images.
    assert stale_images(["jhub/b:1"], manager, [{"item": "w1", "skipped": True}]) == [{"host": "w1", "name": "jhub/b:1"}]


def test_fill_username_fills_one_name_or_each_of_a_list():
    assert fill_username("jupyterhub-user-{username}", "alice") == "jupyterhub-user-alice"
    assert fill_username("{username}-{username}", "bob") == "bob-bob"
    assert fill_username("inspect-{username}", ["alice", "bob"]) == ["inspect-alice", "inspect-bob"]
    assert fill_username("no-placeholder", "alice") == "no-placeholder"


def test_non_scalar_items_are_what_would_not_stay_text():
    values = {"A": "x", "B": 1, "C": 2.5, "D": True, "E": [1], "F": {"g": 1}, "G": None}
    assert non_scalar_items(values) == {"D": True, "E": [1], "F": {"g": 1}, "G": None}
    assert non_scalar_items({}) == {}


RESERVED = "^jupyterhub-user-.*$|^jupyterhub-data$"


def test_shared_volumes_without_problems_have_no_message():
    volumes = [{"name": "datasets", "path": "/home/jovyan/work/datasets"},
               {"name": "thesis", "path": "/srv/thesis", "mode": "rw", "groups": ["thesis"], "driver_options": {"type": "nfs"}}]
    assert shared_volume_errors(volumes, "/home/jovyan/work", ["thesis"], RESERVED) == []
    assert shared_volume_errors(volumes[1:], "/home/jovyan/work", ["thesis"], RESERVED, swarm=True) == []


@pytest.mark.parametrize(("volume", "words"), [
    ({"name": "d", "path": "/data"}, ["'d'", "Docker volume name"]),
    ({"name": "jupyterhub-user-ann", "path": "/data"}, ["users' or the hub's own volumes"]),
    ({"name": "jupyterhub-data", "path": "/data"}, ["users' or the hub's own volumes"]),
    ({"name": "data", "path": "data"}, ["path 'data' must be an absolute path"]),
    ({"name": "data", "path": "/home/jovyan/work/"}, ["path /home/jovyan/work collides with the home directory"]),
    ({"name": "data", "path": "/home/jovyan"}, ["path /home/jovyan collides with the home directory", "/home/jovyan/work/data"]),
    ({"name": "data", "path": "/"}, ["path / collides with the home directory"]),
    ({"name": "data", "path": "/data", "mode": "wr"}, ["mode is ro (read-only data) or rw", "not 'wr'"]),
    ({"name": "data", "path": "/data", "groups": ["thesis", "nobody"]}, ["the groups nobody are in no group list"]),
])
def test_each_shared_volume_problem_is_named(volume, words):
    errors = shared_volume_errors([volume], "/home/jovyan/work", ["thesis"], RESERVED)
    assert len(errors) == 1 and all(word in errors[0] for word in words), errors


def test_shared_volumes_twice_and_on_a_swarm_without_shared_storage_are_refused():
    volumes = [{"name": "data", "path": "/data"}, {"name": "data", "path": "/data"}]
    errors = shared_volume_errors(volumes, "/home/jovyan/work", [], RESERVED, swarm=True)
    assert errors[-2:] == ["jupyterhub_shared_volumes: each name must be listed once (data twice).",
                           "jupyterhub_shared_volumes: each path must be listed once (/data twice)."]
    assert sum("different one on every node" in error for error in errors) == 2


IMAGES = ["jhub-docker/notebook:6.1.1"]
SMALL = {"name": "small", "image": IMAGES[0], "mem_limit": "512M", "cpu_limit": 0.5}


def test_profiles_and_groups_without_problems_have_no_message():
    profiles = [SMALL, {"name": "gpu", "image": IMAGES[0], "gpus": "all", "groups": ["lab"], "mem_limit": "1.5G", "cpu_limit": "2"},
                {"name": "two-gpus", "image": IMAGES[0], "gpus": 2, "mem_limit": 134217728}]
    groups = [{"name": "lab", "users": ["ann"], "mem_limit": "4g", "cpu_limit": 1}]
    assert profile_errors(profiles, groups, IMAGES, 2, ["lab"]) == []


@pytest.mark.parametrize(("profiles", "groups", "words"), [
    ([{**SMALL, "name": "Big Box"}], [], ['jupyterhub_profiles: "Big Box" - a profile\'s name is of lowercase letters']),
    ([SMALL, SMALL], [], ["jupyterhub_profiles: each name must be listed once (got small, small)."]),
    ([{**SMALL, "image": "jupyter/scipy-notebook:latest"}], [],
     ["the image of small is not one of the notebook images", "(jhub-docker/notebook:6.1.1)"]),
    ([{**SMALL, "mem_limit": "64M"}], [], ["mem_limit must be a size of at least 128M", "(got 64M)"]),
    ([SMALL], [{"name": "lab", "mem_limit": "lots"}], ["mem_limit must be a size of at least 128M", "(got 512M, lots)"]),
    ([{**SMALL, "cpu_limit": 512}], [], ["cpu_limit must be above 0 and at most this host's 2 vCPUs", "(got 512)"]),
    ([SMALL], [{"name": "lab", "cpu_limit": 0}], ["cpu_limit must be above 0", "(got 0.5, 0)"]),
    ([{**SMALL, "gpus": "some"}], [], ["gpus must be all or a number of GPUs of 1 or more."]),
    ([{**SMALL, "gpus": 0}], [], ["gpus must be all or a number of GPUs of 1 or more."]),
    ([{**SMALL, "groups": ["lab", "nobody"]}], [{"name": "lab"}], ["the groups nobody are in no group list"]),
    ([], [{"name": "lab"}, {"name": "lab"}], ["jupyterhub_groups: each name must be listed once (got lab, lab)."]),
    ([], [{"name": "lab", "users": ["ann", 7]}], ["jupyterhub_groups: users are lists of user names (strings)."]),
])
def test_each_profile_or_group_problem_is_named(profiles, groups, words):
    errors = profile_errors(profiles, groups, IMAGES, 2, [group["name"] for group in groups])
    assert len(errors) == 1 and all(word in errors[0] for word in words), errors


def test_gpu_profiles_are_refused_on_a_swarm():
    errors = profile_errors([{**SMALL, "gpus": "all"}], [], IMAGES, 2, [], swarm=True)
    assert errors == ["jupyterhub_profiles: small asks for GPUs, which a swarm's services get only as the nodes' generic"
                      " resources, which this collection does not set up: GPU profiles are for a single host."]


def test_alert_receivers_are_checked_one_message_each():
    assert alert_receiver_errors([{"type": "webhook", "url": "https://chat.example.org/hook"}], "", "") == []
    assert alert_receiver_errors([{"type": "email", "to": "ops@example.org"}], "mail.example.org:587", "hub@example.org") == []
    errors = alert_receiver_errors([{"type": "webhook", "url": "ftp://x"}, {"type": "email"}, {"type": "sms"}, "ops@example.org"],
                                   "mail.example.org", "")
    assert errors == [
        "jupyterhub_monitoring_alert_receivers: receiver 1 (webhook) needs url, an http(s) URL (got 'ftp://x').",
        "jupyterhub_monitoring_alert_receivers: receiver 2 (email) needs to, an e-mail address (got '').",
        "jupyterhub_monitoring_alert_receivers: receiver 3 has the type 'sms': the types are email and webhook.",
        "jupyterhub_monitoring_alert_receivers: receiver 4 must be a dict such as {type: webhook, url: https://...} (got 'ops@example.org').",
        "jupyterhub_monitoring_alert_receivers: email receivers need jupyterhub_monitoring_smtp_smarthost (host:port, got"
        " 'mail.example.org') and jupyterhub_monitoring_smtp_from (got '').",
    ]
