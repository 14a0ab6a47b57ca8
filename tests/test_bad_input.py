"""Bad input: each role must refuse it with a message that names the variable, and change nothing."""

from __future__ import annotations

import pytest

from conftest import recap, run_playbook

CASES = [
    # (playbook, extra vars, words the error must contain)
    ("playbooks/docker_engine.yml", {"docker_engine_source": "snap"}, ["docker_engine_source", "docker, distro"]),
    ("playbooks/docker_engine.yml", {"docker_engine_channel": "nightly"}, ["docker_engine_channel"]),
    ("playbooks/docker_engine.yml", {"docker_engine_daemon_options": "live-restore=true"}, ["docker_engine_daemon_options", "dict"]),
    ("playbooks/docker_engine.yml", {"docker_engine_wait_timeout": "soon"}, ["docker_engine_wait_timeout", "int"]),
    (
        "playbooks/docker_engine.yml",
        {"docker_engine_image_archives": [{"path": "/nonexistent/images/busybox.tar", "name": "busybox:1"}]},
        ["docker_engine_image_archives[0].path", "/nonexistent/images/busybox.tar", "is not a file"],
    ),
    (
        "playbooks/docker_engine.yml",
        {"docker_engine_image_archives": [{"path": "/etc/hostname", "name": "Not A Valid/Image!"}]},
        ["docker_engine_image_archives[0].name", "not a valid image reference"],
    ),
    (
        "playbooks/docker_engine.yml",
        {"docker_engine_image_archives": [{"name": "busybox:1"}]},
        ["docker_engine_image_archives", "path"],
    ),
    ("playbooks/docker_engine.yml", {"docker_engine_users": ["no-such-user-jhub"]}, ["docker_engine_users", "no-such-user-jhub", "does not exist"]),
    ("playbooks/base_image.yml", {"base_image_variant": "tiny"}, ["base_image_variant", "minbase, buildd, standard"]),
    ("playbooks/base_image.yml", {"base_image_name": "Jhub/Debian Base"}, ["base_image_name", "not a valid image reference"]),
    ("playbooks/base_image.yml", {"base_image_tag": "bad:tag"}, ["base_image_tag", "not a valid image reference"]),
    ("playbooks/base_image.yml", {"base_image_work_dir": "relative/dir"}, ["base_image_work_dir", "absolute path"]),
    ("playbooks/base_image.yml", {"base_image_mirror": "deb.debian.org/debian"}, ["base_image_mirror"]),
    ("playbooks/base_image.yml", {"base_image_packages": ["python3", "rm -rf /"]}, ["base_image_packages", "rm -rf /"]),
    ("playbooks/base_image.yml", {"base_image_cmd": []}, ["base_image_cmd", "not empty"]),
    ("playbooks/base_image.yml", {"base_image_cmd": {"run": "bash"}}, ["base_image_cmd", "list"]),
    ("playbooks/base_image.yml", {"base_image_env": {"NOT-VALID": "x"}}, ["base_image_env", "NOT-VALID"]),
    ("playbooks/notebook_images.yml", {"notebook_images_list": []}, ["notebook_images_list is empty"]),
    (
        "playbooks/notebook_images.yml",
        {"notebook_images_list": [{"name": "jhub/nb:1", "source": "build"}, {"name": "jhub/nb:1", "source": "pull"}]},
        ["notebook_images_list[0].name", "listed 2 times"],
    ),
    ("playbooks/notebook_images.yml", {"notebook_images_list": [{"name": "Jhub/NB"}]}, ["notebook_images_list[0].name", "not a valid image reference"]),
    ("playbooks/notebook_images.yml", {"notebook_images_list": [{"name": "jhub/nb:1", "source": "ftp"}]}, ["notebook_images_list", "source", "pull, build"]),
    ("playbooks/notebook_images.yml", {"notebook_images_ca_bundle": "/nonexistent/corporate-ca.pem"}, ["notebook_images_ca_bundle", "/nonexistent/corporate-ca.pem", "is not a file"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_admin_password": ""}, ["jupyterhub_admin_password is required", "missing"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_admin_password": "short"}, ["jupyterhub_admin_password is required", "too short"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_port": 70000}, ["jupyterhub_port must be 1-65535", "70000"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_port": "http"}, ["jupyterhub_port", "int"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_authenticator": {"open_sigup": True}}, ["jupyterhub_authenticator.open_sigup", "open_signup"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_notebook_images": []}, ["jupyterhub_notebook_images is empty"]),
    (
        "playbooks/jupyterhub.yml",
        {"jupyterhub_notebook_images": [{"name": "jhub/nb:1"}, {"name": "jhub/nb:1"}]},
        ["jupyterhub_notebook_images[0].name", "listed 2 times"],
    ),
    ("playbooks/jupyterhub.yml", {"jupyterhub_mem_limit": "2 gigs"}, ["jupyterhub_mem_limit", "2 gigs"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_ca_bundle": "/nonexistent/corporate-ca.pem"}, ["jupyterhub_ca_bundle", "is not a file"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_version": "6.1.1"}, ["jupyterhub_version 6.1.1", "statsd"]),
    ("playbooks/jupyterhub.yml", {"jupyterhub_log_level": "LOUD"}, ["jupyterhub_log_level", "DEBUG, INFO"]),
    (
        "playbooks/jupyterhub.yml",
        {"jupyterhub_services": [{"name": "monitoring", "api_token": "too-short"}]},
        ["jupyterhub_services", "monitoring", "at least 32 characters"],
    ),
]

# A valid admin password unless a case sets its own, so that each case fails for its own reason only.
for _playbook, _vars, _words in CASES:
    if _playbook == "playbooks/jupyterhub.yml":
        _vars.setdefault("jupyterhub_admin_password", "Test-Admin-Password-123")


@pytest.mark.parametrize(
    ("playbook", "extra_vars", "words"),
    CASES,
    ids=[f"{i:02d}-{c[0].split('/')[-1][:-4]}-{next(iter(c[1]))}" for i, c in enumerate(CASES)],
)
def test_bad_input_is_refused_and_changes_nothing(unchanged_host, playbook, extra_vars, words):
    result = run_playbook(playbook, extra_vars)
    assert result.returncode != 0, result.stdout
    for word in words:
        assert word in result.stdout, f"{word!r} not in the error:\n{result.stdout[-3000:]}"
    counters = recap(result.stdout)
    assert counters["failed"] == 1 and counters["changed"] == 0, counters
