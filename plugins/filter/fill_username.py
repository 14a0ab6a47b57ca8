# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Jinja filter: a name template of the collection (jhub_user_volume, jhub_user_container, ...) for a user."""

from __future__ import annotations

DOCUMENTATION = """
name: fill_username
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.3.0
short_description: A name template with C({username}) filled in
description:
  - Replaces C({username}) in a template such as C(jupyterhub-user-{username}) with a user's name, or
    with each name of a list (then returns a list, in the same order).
  - The user's name is put in as given (DockerSpawner's escaped name, as in the names it makes).
options:
  _input:
    description: The template.
    type: str
    required: true
  username:
    description: The user's name, or a list of names.
    type: raw
    required: true
"""

EXAMPLES = """
- name: Remove alice's volume
  community.docker.docker_volume:
    name: "{{ jhub_user_volume | jhub.docker.fill_username('alice') }}"  # jupyterhub-user-alice
    state: absent
"""

RETURN = """
_value:
  description: The name, or the list of names.
  type: raw
"""

PLACEHOLDER = "{username}"


def fill_username(template, username):
    """template with {username} replaced by username; a list of names gives a list."""
    if isinstance(username, (list, tuple)):
        return [str(template).replace(PLACEHOLDER, str(name)) for name in username]
    return str(template).replace(PLACEHOLDER, str(username))


class FilterModule:
    """Ansible filter plugins of jhub.docker."""

    def filters(self):
        return {"fill_username": fill_username}
