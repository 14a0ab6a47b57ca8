# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
# The work is done by the action plugin of the same name (plugins/action/wait_for_hub.py);
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: wait_for_hub
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: Wait until the hub answers, and fail at once when its container stops or restarts
description:
  - Polls, once a second, the hub's container (M(community.docker.docker_container_info)) and its health URL
    (M(ansible.builtin.uri)) on the managed host, until the URL answers 200.
  - Fails at once, with the end of the container's log, when the container does not exist, is not running,
    is restarting, or has restarted since the first poll; fails after O(timeout) seconds if it runs but never answers.
options:
  container:
    description: Name of the hub's container.
    type: str
    required: true
  url:
    description: The hub's health URL, as the managed host reaches it.
    type: str
    required: true
  timeout:
    description: Seconds to wait for an answer while the container runs.
    type: int
    default: 180
attributes:
  check_mode:
    support: full
    description: Skipped in check mode.
  action:
    support: full
    description: Runs on the controller and runs M(community.docker.docker_container_info), M(ansible.builtin.uri)
      and, on failure, C(docker logs) on the managed host.
"""

EXAMPLES = r"""
- name: Wait until the hub answers /hub/health
  jhub.docker.wait_for_hub:
    container: jupyterhub
    url: http://127.0.0.1:8000/hub/health
    timeout: 180
"""

RETURN = r"""
elapsed:
  description: Seconds until the hub answered.
  returned: success
  type: float
reason:
  description: Why the wait failed (C(exited with status N), C(restarted), C(does not exist), C(not healthy)).
  returned: failed
  type: str
log:
  description: The last 30 lines of the container's log.
  returned: failed
  type: str
"""
