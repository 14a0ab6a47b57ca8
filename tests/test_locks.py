"""The images' pip locks (make locks): complete pins, one per JupyterHub release deployed, and what the images drop."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import ROOT

from jhub_tools import pip_lock

# name==version, optionally for one Python only.
PIN = re.compile(r'^[a-z0-9][a-z0-9-]*==[A-Za-z0-9.+!-]+( ; python_version == "3\.\d+")?$')
REMOVED = {"hub": ("jupyterhub", "jupyterhub_pip_remove"), "notebook": ("notebook_images", "notebook_images_pip_remove")}


def _pins(path):
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize("image", sorted(pip_lock.images()))
def test_lock_pins_every_package_exactly(image):
    path, _pins_wanted = pip_lock.images()[image]
    bad = [line for line in _pins(path) if not PIN.match(line)]
    assert not bad, f"{path.name}: not name==version: {bad}"
    names = [line.split("==")[0] for line in _pins(path) if ";" not in line]
    assert len(names) == len(set(names)), f"{path.name}: a package is pinned twice"


@pytest.mark.parametrize("image", sorted(pip_lock.images()))
def test_lock_is_for_its_versions(image):
    # image_build applies a lock only when it holds the image's pins as lines (image_build_locked).
    path, pins = pip_lock.images()[image]
    missing = [pin for pin in pins if pin not in _pins(path)]
    assert not missing, f"{path.name} is not for the default versions {missing}: run make locks"


@pytest.mark.parametrize("image", sorted(pip_lock.images()))
def test_image_drops_rfc3987_syntax(image):
    # Installed as a dependency (jupyter-events -> jsonschema[format-nongpl]), at its locked version, then removed.
    role, variable = REMOVED[image.split("-")[0]]
    path, _pins_wanted = pip_lock.images()[image]
    removed = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())[variable]
    assert "rfc3987-syntax" in removed
    locked = {line.split("==")[0] for line in _pins(path)}
    assert set(removed) <= locked, f"{variable} names packages that the image does not get: {set(removed) - locked}"
    # The role gives them to the one locked build (image_build), whose pip steps remove them.
    tasks = "".join(path.read_text() for path in (ROOT / "roles" / role / "tasks").glob("*.yml"))
    assert f'image_build_pip_remove: "{{{{ {variable} }}}}"' in tasks
    steps = yaml.safe_load((ROOT / "roles/image_build/vars/main.yml").read_text())["image_build_pip_steps"]
    assert "pip uninstall --yes --disable-pip-version-check {{ image_build_pip_remove |" in steps


def test_the_default_release_is_locked():
    default = yaml.safe_load((ROOT / "roles/jhub/defaults/main.yml").read_text())["jhub_jupyterhub_version"]
    assert default in pip_lock.locked_versions(), (default, pip_lock.locked_versions())
