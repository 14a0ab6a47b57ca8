#!/usr/bin/python
# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_restore_plan
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: Choose a backup and what a restore takes from it, and check every archive taken
description:
  - Finds the complete backups under O(root) (a backup's directory name and a C(manifest.json) inside), chooses
    O(name) or the newest, and the archives of O(users) (or every user's, O(all_users)), of the O(shared) volumes
    and of the hub state (O(hub_state)).
  - Fails, naming what is wrong, when the backup does not exist, does not hold what is asked for, an archive it
    takes is missing or does not match the manifest's SHA-256, a user's server runs (unless O(stop_servers)), or a
    shared volume restored is in use. It changes nothing, so that a restore refuses before anything is stopped or
    written.
options:
  root:
    description: The backup root.
    type: path
    required: true
  host:
    description: The host's name, for the messages.
    type: str
    required: true
  name:
    description: The backup's name; empty for the newest.
    type: str
    default: ""
  users:
    description: The users whose volumes are restored.
    type: list
    elements: str
    default: []
  all_users:
    description: Whether every user's volume in the backup is restored.
    type: bool
    default: false
  shared:
    description: The shared volumes restored.
    type: list
    elements: str
    default: []
  hub_state:
    description: Whether the hub state is restored.
    type: bool
    default: false
  volume:
    description: The volume each user's archive is restored into, with C({username}).
    type: str
    required: true
  node:
    description: The node every user's archive is restored on; empty for the node each was made on.
    type: str
    default: ""
  nodes:
    description: The nodes (on a swarm, more than one); a user's archive made on another node is refused.
    type: list
    elements: str
    default: []
  server:
    description: >-
      The users' server containers' name, with C({username}) (on a swarm, their services'); empty when the restore
      goes into other volumes, which no server uses.
    type: str
    default: ""
  swarm:
    description: Whether the users' servers are swarm services.
    type: bool
    default: false
  stop_servers:
    description: Whether running servers of the users are to be stopped (listed in RV(running)) rather than refused.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: It only reads.
"""

EXAMPLES = r"""
- name: Choose and check alice's archive in the newest backup
  jhub.docker.backup_restore_plan:
    root: /var/backups/jhub-docker
    host: "{{ inventory_hostname }}"
    users: [alice]
    volume: jupyterhub-user-{username}
  register: plan
"""

RETURN = r"""
name:
  description: The backup chosen.
  returned: success
  type: str
dir:
  description: Its directory.
  returned: success
  type: str
backups:
  description: The complete backups, oldest first.
  returned: success
  type: list
  elements: str
users:
  description: The users' archives taken (their manifest's entries, with C(target) and C(target_node)).
  returned: success
  type: list
  elements: dict
shared:
  description: The shared volumes' archives taken (with C(target) and C(target_node)).
  returned: success
  type: list
  elements: dict
running:
  description: The users' servers (containers, or on a swarm services) that run, to be stopped first.
  returned: success
  type: list
  elements: str
hub_state:
  description: The hub state's archive, when taken.
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jhub.docker.plugins.module_utils.backup import BackupError, restore_plan


def main() -> None:
    module = AnsibleModule(
        argument_spec={"root": {"type": "path", "required": True}, "host": {"type": "str", "required": True},
                       "name": {"type": "str", "default": ""}, "users": {"type": "list", "elements": "str", "default": []},
                       "all_users": {"type": "bool", "default": False}, "shared": {"type": "list", "elements": "str", "default": []},
                       "hub_state": {"type": "bool", "default": False}, "volume": {"type": "str", "required": True},
                       "node": {"type": "str", "default": ""}, "nodes": {"type": "list", "elements": "str", "default": []},
                       "server": {"type": "str", "default": ""}, "swarm": {"type": "bool", "default": False},
                       "stop_servers": {"type": "bool", "default": False}},
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = restore_plan(params["root"], params["host"], params["name"], users=params["users"], all_users=params["all_users"],
                              shared=params["shared"], hub_state=params["hub_state"], volume=params["volume"], node=params["node"],
                              nodes=params["nodes"], server=params["server"], swarm=params["swarm"], stop_servers=params["stop_servers"])
    except (BackupError, OSError, KeyError, ValueError) as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
