# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Jinja filter: the problems of jupyterhub_shared_volumes, as messages."""

from __future__ import annotations

import posixpath
import re

DOCUMENTATION = """
name: shared_volume_errors
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: Problems of the shared volumes of users' servers
description:
  - Returns one message per problem of a list of shared volumes (C({name, path, mode, groups, driver_options})) -
    a name that is no Docker volume name or that the users' or the hub's volumes would take, a name or path listed
    twice, a path that is not absolute or that holds or hides the notebook directory (the user's own volume), a mode
    other than C(ro) or C(rw), a group that no group list defines, and on a swarm a volume without driver options.
options:
  _input:
    description: The shared volumes (jupyterhub_shared_volumes).
    type: list
    required: true
  home:
    description: The notebook directory, where each server mounts its user's own volume.
    type: str
    required: true
  groups:
    description: The groups that a shared volume may name.
    type: list
    required: true
  reserved:
    description: A regular expression of the volume names that are not free (the users' and the hub's).
    type: str
    required: true
  swarm:
    description: Whether the servers run on a swarm, where a volume without driver options is one per node.
    type: bool
    default: false
"""

EXAMPLES = """
- ansible.builtin.assert:
    that: >-
      jupyterhub_shared_volumes | jhub.docker.shared_volume_errors('/home/jovyan/work', ['lab'], '^jupyterhub-user-')
      | length == 0
"""

RETURN = """
_value:
  description: The messages; empty when the list is fine.
  type: list
  elements: str
"""

VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
VARIABLE = "jupyterhub_shared_volumes"


def shared_volume_errors(volumes, home, groups, reserved, swarm=False):
    """The problems of the shared volumes, one message each (empty: none)."""
    errors = []
    home = posixpath.normpath(home)
    names, paths = [], []
    for volume in volumes:
        name, path = str(volume.get("name", "")), str(volume.get("path", ""))
        where = f"{VARIABLE}: the volume '{name}'"
        if not VOLUME_NAME.fullmatch(name):
            errors.append(f"{where} - a name is a Docker volume name: letters, digits, '_', '.', '-', two or more.")
        elif re.search(reserved, name):
            errors.append(f"{where} - the name is one of the users' or the hub's own volumes; choose another.")
        if not posixpath.isabs(path):
            errors.append(f"{where} - path '{path}' must be an absolute path in the server.")
        else:
            path = posixpath.normpath(path)
            if path == home or home.startswith(path.rstrip("/") + "/"):
                errors.append(
                    f"{where} - path {path} collides with the home directory: it would hide the user's own volume"
                    f" at {home}. Mount it at another path, such as {home}/{name}."
                )
        names.append(name)
        paths.append(path)
        if volume.get("mode", "ro") not in ("ro", "rw"):
            errors.append(f"{where} - mode is ro (read-only data) or rw (a project volume), not '{volume['mode']}'.")
        unknown = [group for group in volume.get("groups") or [] if group not in groups]
        if unknown:
            errors.append(
                f"{where} - the groups {', '.join(map(str, unknown))} are in no group list (jupyterhub_groups, or the login"
                " provider's jupyterhub_auth_allowed_groups and jupyterhub_auth_admin_groups)."
            )
        options = str((volume.get("driver_options") or {}).get("o", "")).split(",")
        if "bind" in options or "rbind" in options:
            errors.append(
                f"{where} - driver_options o asks for a bind mount of a host directory, which the hub's Docker proxy"
                " refuses in users' servers: put the data in the volume, or use shared storage such as NFS."
            )
        if swarm and not volume.get("driver_options"):
            errors.append(
                f"{where} - on a swarm a local volume is a different one on every node: give driver_options of shared"
                " storage (such as NFS), which every node mounts."
            )
    for kind, values in (("name", names), ("path", paths)):
        twice = sorted({value for value in values if values.count(value) > 1})
        if twice:
            errors.append(f"{VARIABLE}: each {kind} must be listed once ({', '.join(twice)} twice).")
    return errors


class FilterModule:
    """Ansible filter plugins of jhub.docker."""

    def filters(self):
        return {"shared_volume_errors": shared_volume_errors}
