# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Jinja filter: the boolean options whose value is not a boolean, as messages."""

from __future__ import annotations

DOCUMENTATION = """
name: bool_errors
author: jhub.docker maintainers
version_added: 0.1.0
short_description: Boolean options that hold something else
description:
  - Role argument specs accept C(-e name=true) for a C(type: bool) option but leave the value a
    string, which conditionals then refuse. Given the names of the boolean options and their
    values (in the same order), returns one message per value that is not a boolean, naming the
    option and showing how to pass it.
options:
  _input:
    description: Names of the boolean options.
    type: list
    elements: str
    required: true
  values:
    description: Their values, in the same order.
    type: list
    required: true
"""

EXAMPLES = """
- ansible.builtin.assert:
    that: names | jhub.docker.bool_errors(query('ansible.builtin.vars', *names)) | length == 0
"""

RETURN = """
_value:
  description: The messages; empty when every value is a boolean.
  type: list
  elements: str
"""


def _kind(value):
    """The plain type's name (Ansible wraps strings from -e in a subclass)."""
    return next((kind.__name__ for kind in (str, int, float, list, dict) if isinstance(value, kind)), type(value).__name__)


def bool_errors(names, values):
    return [
        f"{name} must be true or false, not the {_kind(value)} {str(value)!r}; on the command line give "
        f"booleans as JSON: -e '{{\"{name}\": {str(str(value).lower() in ('true', 'yes', 'on', '1')).lower()}}}'."
        for name, value in zip(names, values)
        if not isinstance(value, bool)
    ]


class FilterModule:
    """Ansible filter plugins of jhub.docker."""

    def filters(self):
        return {"bool_errors": bool_errors}
