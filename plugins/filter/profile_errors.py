# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Jinja filter: the problems of jupyterhub_profiles and jupyterhub_groups, as messages."""

from __future__ import annotations

import json
import re

DOCUMENTATION = """
name: profile_errors
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: Problems of the spawn profiles and the groups' limits
description:
  - Returns one message per problem of the profiles (C({name, image, mem_limit, cpu_limit, gpus, groups})) and the
    groups (C({name, users, mem_limit, cpu_limit})) - a profile's name that is not lowercase, a name listed twice, an
    image that is not a notebook image, a memory limit that is no size of at least 128M, a CPU limit not above 0 or
    above the host's vCPUs, GPUs that are not C(all) or a number, GPUs on a swarm, a profile's group that no group list
    defines, and a group's users that are not names.
options:
  _input:
    description: The profiles (jupyterhub_profiles).
    type: list
    required: true
  groups:
    description: The groups (jupyterhub_groups).
    type: list
    required: true
  images:
    description: The names of the notebook images.
    type: list
    required: true
  vcpus:
    description: The host's vCPUs, the largest CPU limit Docker takes.
    type: float
    required: true
  known_groups:
    description: The groups a profile may name (those of O(groups) and of the login provider's settings).
    type: list
    required: true
  swarm:
    description: Whether the servers run on a swarm, where GPU profiles are refused.
    type: bool
    default: false
"""

EXAMPLES = """
- ansible.builtin.assert:
    that: >-
      jupyterhub_profiles | jhub.docker.profile_errors(jupyterhub_groups, ['jhub-docker/notebook:6.1.1'], 2, ['lab'])
      | length == 0
"""

RETURN = """
_value:
  description: The messages; empty when the profiles and groups are fine.
  type: list
  elements: str
"""

PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([kKmMgGtT]?)")
UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
GPUS = re.compile(r"all|[1-9][0-9]*")


def _size(value) -> int | None:
    """Bytes of a Docker size such as 512M or 2G; None when it is none."""
    match = SIZE.fullmatch(str(value))
    return int(float(match.group(1)) * UNITS[match.group(2).lower()]) if match else None


def _cpus(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _twice(names: list) -> bool:
    return len(set(names)) != len(names)


def profile_errors(profiles, groups, images, vcpus, known_groups, swarm=False):
    """The problems of the profiles and the groups, one message each (empty: none)."""
    errors = []
    names = [str(profile.get("name")) for profile in profiles]
    bad = [name for name in names if not PROFILE_NAME.fullmatch(name)]
    if bad:
        errors.append(f"jupyterhub_profiles: {', '.join(json.dumps(name) for name in bad)} - a profile's name is of lowercase letters,"
                      " digits, '.', '_' or '-'.")
    if _twice(names):
        errors.append(f"jupyterhub_profiles: each name must be listed once (got {', '.join(names)}).")
    foreign = [str(profile.get("name")) for profile in profiles if profile.get("image") not in images]
    if foreign:
        errors.append(f"jupyterhub_profiles: the image of {', '.join(foreign)} is not one of the notebook images"
                      f" ({', '.join(images)}), which are built or pulled on every node.")
    both = list(profiles) + list(groups)
    memory = [item["mem_limit"] for item in both if item.get("mem_limit") is not None]
    if any(_size(value) is None or _size(value) < 128 * 2**20 for value in memory):
        errors.append("jupyterhub_profiles and jupyterhub_groups: mem_limit must be a size of at least 128M, such as 512M or 2G"
                      f" (got {', '.join(map(str, memory))}).")
    cpus = [item["cpu_limit"] for item in both if item.get("cpu_limit") is not None]
    if any(_cpus(value) is None or not 0 < _cpus(value) <= float(vcpus) for value in cpus):
        errors.append(f"jupyterhub_profiles and jupyterhub_groups: cpu_limit must be above 0 and at most this host's {vcpus}"
                      f" vCPUs, which Docker refuses to exceed (got {', '.join(map(str, cpus))}).")
    gpu_profiles = [profile for profile in profiles if profile.get("gpus") is not None]
    if any(not GPUS.fullmatch(str(profile["gpus"])) for profile in gpu_profiles):
        errors.append("jupyterhub_profiles: gpus must be all or a number of GPUs of 1 or more.")
    if swarm and gpu_profiles:
        errors.append(f"jupyterhub_profiles: {', '.join(str(profile.get('name')) for profile in gpu_profiles)} asks for GPUs,"
                      " which a swarm's services get only as the nodes' generic resources, which this collection does not"
                      " set up: GPU profiles are for a single host.")
    unknown = sorted({group for profile in profiles for group in profile.get("groups") or [] if group not in known_groups})
    if unknown:
        errors.append(f"jupyterhub_profiles: the groups {', '.join(unknown)} are in no group list (jupyterhub_groups, or the"
                      " login provider's jupyterhub_auth_allowed_groups and jupyterhub_auth_admin_groups).")
    group_names = [str(group.get("name")) for group in groups]
    if _twice(group_names):
        errors.append(f"jupyterhub_groups: each name must be listed once (got {', '.join(group_names)}).")
    if any(not isinstance(user, str) for group in groups for user in group.get("users") or []):
        errors.append("jupyterhub_groups: users are lists of user names (strings).")
    return errors


class FilterModule:
    """Ansible filter plugins of jhub.docker."""

    def filters(self):
        return {"profile_errors": profile_errors}
