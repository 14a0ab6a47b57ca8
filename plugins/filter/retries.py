# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Jinja filter: how many retries of a task with a given delay cover a timeout."""

from __future__ import annotations

import math

DOCUMENTATION = """
name: retries
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: Retries that cover a timeout
description:
  - For a task with C(until), C(delay) and C(retries) that must wait up to a timeout, returns the
    retries that make retries times delay at least the timeout (at least 1).
options:
  _input:
    description: The timeout in seconds.
    type: float
    required: true
  delay:
    description: Seconds between tries, the task's C(delay).
    type: float
    default: 2
"""

EXAMPLES = """
- name: Wait until the hub answers
  ansible.builtin.uri:
    url: http://127.0.0.1:8000/hub/health
  register: health
  until: health.status == 200
  retries: "{{ 180 | jhub.docker.retries(2) }}"  # 90
  delay: 2
"""

RETURN = """
_value:
  description: The number of retries.
  type: int
"""


def retries(timeout, delay=2) -> int:
    """ceil(timeout / delay), at least 1."""
    return max(1, math.ceil(float(timeout) / float(delay)))


class FilterModule:
    """Ansible filter plugins of jhub.docker."""

    def filters(self):
        return {"retries": retries}
