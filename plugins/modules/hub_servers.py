#!/usr/bin/python
# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: hub_servers
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: Stop users' running servers through the hub's REST API, or start servers with their options
description:
  - O(state=stopped) stops every running server (named ones too) of O(users) and waits until the hub says they
    are gone; it returns them with their options, so that O(state=started) can start them again as they were.
  - O(state=stopped) with O(servers) stops exactly those servers (as O(state=started) returns them in RV(started)).
  - O(state=started) starts O(servers) with their options and waits until each is ready. A server that runs
    already is left as it is; while more starts are pending than the hub takes, it asks again 10 s later.
  - The backup role stops and starts servers with it around a backup or a move, the jupyterhub role starts the
    admin's server after an upgrade. The token is read on the managed host and never leaves it.
options:
  api_url:
    description: The hub's API, as the managed host reaches it (C(http://HOST:8081/hub/api)).
    type: str
    required: true
  token_file:
    description: The file on the managed host that holds an API token with the scopes to list users and manage servers.
    type: path
    required: true
  state:
    description: Whether the servers are to be stopped or started.
    type: str
    choices: [stopped, started]
    required: true
  users:
    description: With O(state=stopped), the users whose running servers stop.
    type: list
    elements: str
    default: []
  servers:
    description: >-
      With O(state=started), the servers to start, as O(state=stopped) returns them; with O(state=stopped), the
      servers to stop (besides those of O(users)).
    type: list
    elements: dict
    default: []
  timeout:
    description: Seconds to wait for the servers to stop, or to be ready.
    type: int
    default: 180
attributes:
  check_mode:
    support: full
    description: Reports the servers it would stop or start.
"""

EXAMPLES = r"""
- name: Stop alice's and bob's servers
  jhub.docker.hub_servers:
    api_url: http://172.31.252.2:8081/hub/api
    token_file: /srv/jupyterhub/secrets/ops.token
    state: stopped
    users: [alice, bob]
  register: stopped

- name: Start them again
  jhub.docker.hub_servers:
    api_url: http://172.31.252.2:8081/hub/api
    token_file: /srv/jupyterhub/secrets/ops.token
    state: started
    servers: "{{ stopped.servers }}"
"""

RETURN = r"""
servers:
  description: The servers stopped or started (C(user), C(name), C(user_options)); the default server's name is empty.
  returned: always
  type: list
  elements: dict
started:
  description: With O(state=started), the servers of RV(servers) that were not running already.
  returned: when O(state=started)
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jhub.docker.plugins.module_utils.hub_api import HubApi, HubApiError


def main() -> None:
    module = AnsibleModule(
        argument_spec={"api_url": {"type": "str", "required": True}, "token_file": {"type": "path", "required": True},
                       "state": {"type": "str", "required": True, "choices": ["stopped", "started"]},
                       "users": {"type": "list", "elements": "str", "default": []},
                       "servers": {"type": "list", "elements": "dict", "default": []},
                       "timeout": {"type": "int", "default": 180}},
        supports_check_mode=True,
    )
    params = module.params
    try:
        with open(params["token_file"], encoding="utf-8") as handle:
            hub = HubApi(params["api_url"], handle.read(), params["timeout"])
        given = [{"user": server["user"], "name": server.get("name") or "", "user_options": server.get("user_options") or {}}
                 for server in params["servers"]]
        result = {}
        if params["state"] == "stopped":
            servers = (hub.servers_of(set(params["users"])) if params["users"] else []) + given
            if servers and not module.check_mode:
                hub.stop(servers)
        else:
            servers = given
            result["started"] = hub.start(servers) if servers and not module.check_mode else []
    except (HubApiError, OSError, KeyError) as error:
        module.fail_json(msg=str(error))
    # A start of servers that all ran already changes nothing.
    changed = bool(servers) if module.check_mode or params["state"] == "stopped" else bool(result["started"])
    module.exit_json(changed=changed, servers=servers, **result)


if __name__ == "__main__":
    main()
