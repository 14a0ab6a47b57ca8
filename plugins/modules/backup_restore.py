#!/usr/bin/python
# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_restore
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: Restore one archive of a backup into a volume, or the hub state into the hub's data volume
description:
  - Runs the backup role's helper script in a one-off container of the hub image, without network. It checks the
    archive's SHA-256 against the manifest's (C(sha256) of O(archive)) before it writes, extracts the archive whole
    into the volume and only then replaces the volume's content, so that a failed restore leaves the volume as it was.
  - The volume is created when missing. With O(hub_state), the archive's database and cookie secret replace the
    hub's (the hub is stopped by the caller).
options:
  dir:
    description: The directory on the managed host that holds the archive.
    type: path
    required: true
  archive:
    description: The archive's entry of the backup's manifest (C(file), C(sha256), C(data_bytes)).
    type: dict
    required: true
  volume:
    description: The volume restored into (with O(hub_state), the hub's data volume).
    type: str
    required: true
  hub_state:
    description: Whether the archive is the hub state.
    type: bool
    default: false
extends_documentation_fragment: [jhub.docker.backup_helper]
attributes:
  check_mode:
    support: none
    description: A restore cannot be simulated; P(jhub.docker.backup_restore_plan#module) checks everything first.
"""

EXAMPLES = r"""
- name: Restore alice's volume
  jhub.docker.backup_restore:
    dir: /var/backups/jhub-docker/jhub-backup-20261206T031500Z
    archive: "{{ plan.users[0] }}"
    volume: jupyterhub-user-alice
    image: jhub/hub:latest
    script: /usr/local/lib/jhub-docker/jhub-backup.py
"""

RETURN = r"""
database_sha256:
  description: With O(hub_state), the SHA-256 of the database restored.
  returned: success and hub_state
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jhub.docker.plugins.module_utils.backup import BackupError, restore


def main() -> None:
    module = AnsibleModule(
        argument_spec={"dir": {"type": "path", "required": True}, "archive": {"type": "dict", "required": True},
                       "volume": {"type": "str", "required": True}, "hub_state": {"type": "bool", "default": False},
                       "image": {"type": "str", "required": True}, "script": {"type": "path", "required": True}},
    )
    params = module.params
    try:
        result = restore(params["dir"], params["archive"], params["volume"], image=params["image"], script=params["script"],
                         hub_state=params["hub_state"])
    except (BackupError, OSError, KeyError) as error:
        module.fail_json(msg=str(error))
    module.exit_json(**dict(result, changed=True))


if __name__ == "__main__":
    main()
