#!/usr/bin/python
# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_archive
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: Archive one node's part of a backup (users' volumes, shared volumes, the hub state)
description:
  - Runs the backup role's helper script in a one-off container of the hub image, without network, with each
    volume mounted read-only (the hub's data volume writable, for SQLite's online backup), and writes one
    compressed archive per volume into O(partial), root's alone (0700). The helper checks the free space first.
  - O(node) is one node's entry of the plan that the filter P(jhub.docker.backup_plan#filter) makes. A node with
    nothing to archive gets the directory alone.
  - On failure O(partial) is removed on that node, so that nothing half-made is kept, and no container is left.
  - The scheduled backup's program runs the same code (module_utils C(backup)).
options:
  partial:
    description: The directory the archives are written into (created, with its parent).
    type: path
    required: true
  node:
    description: The node's part of the plan (C(node), C(users) as C({user, volume}) pairs, C(shared), C(hub_state)).
    type: dict
    required: true
  data_volume:
    description: The hub's data volume (its state is archived when the node's C(hub_state) is true).
    type: str
    required: true
  compression:
    description: The archives' compression.
    type: str
    choices: [zstd, gzip, none]
    default: zstd
  parallel:
    description: How many volumes are archived at once.
    type: int
    default: 2
  space_check:
    description: Whether the free space is checked against the volumes' size first.
    type: bool
    default: true
extends_documentation_fragment: [jhub.docker.backup_helper]
attributes:
  check_mode:
    support: none
    description: An archive cannot be simulated; the backup role says what it would do instead.
"""

EXAMPLES = r"""
- name: Archive the volumes on this host
  jhub.docker.backup_archive:
    partial: /var/backups/jhub-docker/jhub-backup-20261206T031500Z.partial
    node: {node: hub.example.org, users: {alice: jupyterhub-user-alice}, shared: [], hub_state: true}
    image: jhub/hub:latest
    script: /usr/local/lib/jhub-docker/jhub-backup.py
    data_volume: jupyterhub-data
"""

RETURN = r"""
archives:
  description: Each archive made (C(file), C(kind), C(username), C(volume), C(size), C(sha256), C(files), C(node), ...).
  returned: success
  type: list
  elements: dict
seconds:
  description: How long the archives took.
  returned: success
  type: float
jupyterhub_version:
  description: The hub image's JupyterHub version, when the hub state was archived.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jhub.docker.plugins.module_utils.backup import BackupError, archive


def main() -> None:
    module = AnsibleModule(
        argument_spec={"partial": {"type": "path", "required": True}, "node": {"type": "dict", "required": True},
                       "image": {"type": "str", "required": True}, "script": {"type": "path", "required": True},
                       "data_volume": {"type": "str", "required": True},
                       "compression": {"type": "str", "default": "zstd", "choices": ["zstd", "gzip", "none"]},
                       "parallel": {"type": "int", "default": 2}, "space_check": {"type": "bool", "default": True}},
    )
    params = module.params
    try:
        result = archive(params["partial"], params["node"], image=params["image"], script=params["script"],
                         data_volume=params["data_volume"], compression=params["compression"], parallel=params["parallel"],
                         space_check=params["space_check"])
    except (BackupError, OSError, KeyError, ValueError) as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
