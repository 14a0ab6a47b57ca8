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
]


@pytest.mark.parametrize(
    ("playbook", "extra_vars", "words"),
    CASES,
    ids=[f"{c[0].split('/')[-1][:-4]}-{next(iter(c[1]))}-{i}" for i, c in enumerate(CASES)],
)
def test_bad_input_is_refused_and_changes_nothing(unchanged_host, playbook, extra_vars, words):
    result = run_playbook(playbook, extra_vars)
    assert result.returncode != 0, result.stdout
    for word in words:
        assert word in result.stdout, f"{word!r} not in the error:\n{result.stdout[-3000:]}"
    counters = recap(result.stdout)
    assert counters["failed"] == 1 and counters["changed"] == 0, counters
