#!/usr/bin/python
# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_complete
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: Complete a backup (manifest, SHA256SUMS, rename) and apply the retention
description:
  - Writes C(manifest.json) and C(SHA256SUMS) (0600) into O(root)/O(name).partial, which holds every archive of
    O(archives), and renames it to O(root)/O(name); a backup is complete, and found by a restore, only then.
  - Then removes the complete backups beyond the newest O(keep), never the new one. Anything else under O(root)
    is left alone.
  - The scheduled backup's program runs the same code (module_utils C(backup)).
options:
  root:
    description: The backup root.
    type: path
    required: true
  name:
    description: The backup's name (C(jhub-backup-YYYYmmddTHHMMSSZ)).
    type: str
    required: true
  archives:
    description: The archives, as P(jhub.docker.backup_archive#module) returns them.
    type: list
    elements: dict
    required: true
  host:
    description: The hub's host, for the manifest.
    type: str
    required: true
  image:
    description: The hub image, for the manifest.
    type: str
    required: true
  user_volume:
    description: The users' volume naming (with C({username})), for the manifest.
    type: str
    required: true
  seconds:
    description: How long the archives took, for the manifest.
    type: float
    default: 0
  keep:
    description: How many complete backups are kept (0 keeps all).
    type: int
    default: 0
attributes:
  check_mode:
    support: none
    description: The backup role does not run it in check mode.
"""

EXAMPLES = r"""
- name: Complete the backup
  jhub.docker.backup_complete:
    root: /var/backups/jhub-docker
    name: jhub-backup-20261206T031500Z
    archives: "{{ archived.archives }}"
    host: "{{ inventory_hostname }}"
    image: jhub/hub:latest
    user_volume: jupyterhub-user-{username}
    keep: 7
"""

RETURN = r"""
dir:
  description: The complete backup's directory.
  returned: success
  type: str
manifest:
  description: The backup's manifest.
  returned: success
  type: dict
removed:
  description: The older backups removed by the retention.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jhub.docker.plugins.module_utils.backup import BackupError, finish


def main() -> None:
    module = AnsibleModule(
        argument_spec={"root": {"type": "path", "required": True}, "name": {"type": "str", "required": True},
                       "archives": {"type": "list", "elements": "dict", "required": True}, "host": {"type": "str", "required": True},
                       "image": {"type": "str", "required": True}, "user_volume": {"type": "str", "required": True},
                       "seconds": {"type": "float", "default": 0}, "keep": {"type": "int", "default": 0}},
    )
    params = module.params
    try:
        result = finish(params["root"], params["name"], host=params["host"], image=params["image"], template=params["user_volume"],
                        archives=params["archives"], seconds=params["seconds"], keep=params["keep"])
    except (BackupError, OSError, KeyError) as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
