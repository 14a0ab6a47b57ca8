"""The test-host image: built by the base_image role, and not built again for the same recipe."""

from __future__ import annotations

import subprocess

import pytest

from conftest import DISTROS, ROOT, ansible_env, recap
from test_molecule import ENGINE_SUITES


def _image_id(distro: str) -> str:
    return subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", f"jhub-testhost:{distro}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()


def _build(distro: str) -> subprocess.CompletedProcess:
    """The test host's images of this suite; the one with the engine's packages only where a scenario uses it."""
    skip = [] if distro in ENGINE_SUITES else ["--skip-tags", "engine"]
    return subprocess.run(
        ["ansible-playbook", "-i", "inventory/local.yml", "molecule/resources/testhost.yml", *skip],
        cwd=ROOT, env=ansible_env(MOLECULE_DISTRO=distro), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=1200, check=False,
    )


@pytest.mark.parametrize("distro", DISTROS)
def test_testhost_image_is_built_once(distro):
    first = _build(distro)  # builds only when the image or its recipe is missing
    assert first.returncode == 0, first.stdout[-4000:]
    image = _image_id(distro)
    second = _build(distro)
    assert second.returncode == 0, second.stdout[-4000:]
    assert recap(second.stdout)["changed"] == 0, second.stdout[-4000:]
    assert _image_id(distro) == image
