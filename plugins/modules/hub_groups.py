#!/usr/bin/python
# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: hub_groups
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: Make the members of the hub's managed groups exactly the ones listed
description:
  - The role's jupyterhub_config.py loads the groups of O(groups) at the hub's start (C(load_groups)), which
    creates them, marks them with the property C(jhub.docker=managed), and adds their members, but never
    removes anyone. This module, through the hub's REST API, removes from each listed group the members that
    are not listed, and deletes the managed groups that are no longer listed. Groups made otherwise (the
    admin page, an identity provider) are left alone.
options:
  api_url:
    description: The hub's API, as the managed host reaches it (C(http://HOST:8081/hub/api)).
    type: str
    required: true
  token:
    description: An API token with the scope C(admin:groups).
    type: str
    required: true
  groups:
    description: Group name to the list of its members' names.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description: Reports what it would change.
"""

EXAMPLES = r"""
- name: Keep the hub's groups as listed
  jhub.docker.hub_groups:
    api_url: http://172.31.252.2:8081/hub/api
    token: "{{ ops_token }}"
    groups:
      project-week: [ann, bo]
  no_log: true
"""

RETURN = r"""
removed:
  description: Group name to the members removed.
  returned: always
  type: dict
deleted:
  description: The managed groups deleted.
  returned: always
  type: list
  elements: str
"""

from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jhub.docker.plugins.module_utils.hub_api import HubApi, HubApiError

# The property that marks the groups that the role made (load_groups sets it).
MARKER = ("jhub.docker", "managed")


def main() -> None:
    module = AnsibleModule(
        argument_spec={"api_url": {"type": "str", "required": True}, "token": {"type": "str", "required": True, "no_log": True},
                       "groups": {"type": "dict", "default": {}}},
        supports_check_mode=True,
    )
    try:
        removed, deleted = apply(module, HubApi(module.params["api_url"], module.params["token"]))
    except HubApiError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=bool(removed or deleted), removed=removed, deleted=deleted)


def apply(module: AnsibleModule, hub: HubApi) -> tuple[dict, list]:
    """The members removed from each listed group, and the managed groups deleted (in check mode: to be)."""
    wanted = {name: set(users or []) for name, users in module.params["groups"].items()}
    existing = {group["name"]: group for group in hub.call("GET", "/groups")[1] or []}
    removed = {}
    for name, members in sorted(wanted.items()):
        if name not in existing:
            module.fail_json(msg=f"The group {name} is not in the hub, which loads the listed groups at its start.")
        extra = set(existing[name].get("users", [])) - members
        if extra:
            removed[name] = sorted(extra)
    deleted = sorted(name for name, group in existing.items()
                     if name not in wanted and group.get("properties", {}).get(MARKER[0]) == MARKER[1])
    if not module.check_mode:
        for name, names in removed.items():
            hub.call("DELETE", f"/groups/{quote(name, safe='')}/users", {"users": names})
        for name in deleted:
            hub.call("DELETE", f"/groups/{quote(name, safe='')}")
    return removed, deleted


if __name__ == "__main__":
    main()
