# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Jinja filter: what a backup takes, node by node."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.jhub.docker.plugins.module_utils.backup import BackupError, plan

DOCUMENTATION = """
name: backup_plan
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: What a backup takes, node by node
description:
  - From the volumes of each node (the registered results of a loop of C(community.docker.docker_host_info) over the
    nodes, with C(volumes=true)), the users' volumes to back up (by the users' volume naming), the node of each,
    the shared volumes and the hub state, as the backup role's modules take them.
  - Fails, naming the problem, when a user asked for has no volume, a user to back up has volumes on two nodes,
    or the hub state is asked for and the hub's node has no data volume.
options:
  _input:
    description: The loop's results (C(item) the node, C(volumes) its volumes).
    type: list
    elements: dict
    required: true
  users:
    description: The users asked for; empty for every user with a volume.
    type: list
    elements: str
    required: true
  template:
    description: The users' volume naming, with C({username}).
    type: str
    required: true
  hub:
    description: The hub's node.
    type: str
    required: true
  data_volume:
    description: The hub's data volume.
    type: str
    required: true
  user_volumes:
    description: Whether the users' volumes are backed up.
    type: bool
    default: true
  hub_state:
    description: Whether the hub state is backed up.
    type: bool
    default: true
  shared:
    description: The shared volumes backed up (on the hub's node).
    type: list
    elements: str
    default: []
"""

EXAMPLES = """
- ansible.builtin.set_fact:
    backup_plan: >-
      {{ hosts.results | jhub.docker.backup_plan([], 'jupyterhub-user-{username}', inventory_hostname, 'jupyterhub-data') }}
"""

RETURN = """
_value:
  description: >-
    C(users) ({user: volume}), C(owners) (the hub users), C(shared), C(found) ({user: [nodes]}) and C(nodes) (the hub's
    node first, then each node with users: C(node), C(users), C(shared), C(hub_state)).
  type: dict
"""


def backup_plan(results, users, template, hub, data_volume, user_volumes=True, hub_state=True, shared=()):
    found = {result["item"]: [volume["Name"] for volume in result.get("volumes") or []] for result in results}
    try:
        return plan(found, list(users), template, hub, data_volume, user_volumes=user_volumes, hub_state=hub_state, shared=list(shared))
    except BackupError as error:
        raise AnsibleFilterError(str(error)) from error


class FilterModule:
    """Ansible filter plugins of jhub.docker."""

    def filters(self):
        return {"backup_plan": backup_plan}
