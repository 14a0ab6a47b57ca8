# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Jinja filter: render data as a Python literal, for templated Python such as jupyterhub_config.py."""

from __future__ import annotations

import json

DOCUMENTATION = """
name: python_literal
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.1.0
short_description: Render data as a Python literal
description:
  - Turns strings, numbers, booleans, None, lists and dicts into the Python source
    that evaluates to them (True, not true), so that values from the inventory cannot
    break out of a templated Python file.
options:
  _input:
    description: JSON-compatible data.
    type: raw
    required: true
"""

EXAMPLES = """
- name: Render a value for a Python file
  ansible.builtin.debug:
    msg: "c.Authenticator.admin_users = {{ ['admin'] | jhub.docker.python_literal }}"
"""

RETURN = """
_value:
  description: Python source of the value.
  type: str
"""


def python_literal(value) -> str:
    """Python source that evaluates to value (plain JSON types only)."""
    return repr(json.loads(json.dumps(value)))


class FilterModule:
    """Ansible filter plugins of jhub.docker."""

    def filters(self):
        return {"python_literal": python_literal}
