# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Jinja filter: which workers lack which of the manager's images (missing, or another image ID)."""

from __future__ import annotations

DOCUMENTATION = """
name: stale_images
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.3.0
short_description: The images a worker lacks, compared by image ID with the manager's
description:
  - Takes the images of C(community.docker.docker_image_info) on the manager and the registered
    results of the same module looped over the workers (each result's C(item) is the worker), and
    returns one entry per worker and image name whose image on the worker is missing or has
    another ID than the manager's. An image keeps its ID through C(docker save) and C(docker load),
    so a worker that loaded the manager's image is not stale.
options:
  _input:
    description: The image names (C(name:tag)) to compare.
    type: list
    elements: str
    required: true
  manager_images:
    description: The C(images) returned by C(community.docker.docker_image_info) on the manager.
    type: list
    elements: dict
    required: true
  worker_results:
    description: The C(results) of C(community.docker.docker_image_info) looped over the workers.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = """
- name: Say which images each worker lacks
  ansible.builtin.debug:
    msg: "{{ ['jhub-docker/notebook:6.1.1'] | jhub.docker.stale_images(manager_info.images, worker_info.results) }}"
"""

RETURN = """
_value:
  description: One C({host, name}) per worker and image to load there, in the order of the workers, then the names.
  type: list
  elements: dict
"""


def image_ids(images: list[dict]) -> dict[str, str]:
    """{name:tag: image ID} for every tag of every image."""
    return {tag: image["Id"] for image in images for tag in image.get("RepoTags") or []}


def stale_images(names: list[str], manager_images: list[dict], worker_results: list[dict]) -> list[dict]:
    """[{"host": worker, "name": name}] where the worker's image of that name is not the manager's."""
    wanted = image_ids(manager_images)
    stale = []
    for result in worker_results:
        present = image_ids(result.get("images") or [])
        stale += [{"host": result["item"], "name": name} for name in names if present.get(name) != wanted.get(name)]
    return stale


class FilterModule:
    """Ansible filter plugins of jhub.docker."""

    def filters(self):
        return {"stale_images": stale_images}
