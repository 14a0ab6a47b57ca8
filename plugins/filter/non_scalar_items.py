# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Jinja filter: the items of a mapping whose value is not a string or a number."""

from __future__ import annotations

DOCUMENTATION = """
name: non_scalar_items
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.3.0
short_description: The items of a mapping whose value is not a string or a number
description:
  - For settings whose values end up as text (environment variables, labels), returns the items whose
    value is a boolean, a list, a mapping or null; empty when every value is a string or a number.
  - A boolean is not taken as a number - C(true) would become C(True) in an environment variable.
options:
  _input:
    description: The mapping.
    type: dict
    required: true
"""

EXAMPLES = """
- ansible.builtin.assert:
    that: jupyterhub_spawner_environment | jhub.docker.non_scalar_items | length == 0
"""

RETURN = """
_value:
  description: The offending items, as a mapping.
  type: dict
"""


def non_scalar_items(mapping) -> dict:
    """The items whose value is neither a string nor a number (booleans excluded)."""
    return {key: value for key, value in dict(mapping).items()
            if isinstance(value, bool) or not isinstance(value, (str, int, float))}


class FilterModule:
    """Ansible filter plugins of jhub.docker."""

    def filters(self):
        return {"non_scalar_items": non_scalar_items}
