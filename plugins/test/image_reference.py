# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Jinja test: is a string a valid Docker image reference (name[:tag][@digest])?"""

from __future__ import annotations

import re

DOCUMENTATION = """
name: image_reference
author: jhub.docker maintainers
version_added: 0.1.0
short_description: Is a string a valid Docker image reference
description:
  - True for C(name), C(name:tag), C(registry[:port]/path/name:tag) and digests,
    following the grammar of the distribution reference (lowercase path components).
options:
  _input:
    description: The string to check.
    type: str
    required: true
"""

EXAMPLES = """
- ansible.builtin.assert:
    that: "'quay.io/jupyter/minimal-notebook:2025-01-01' is jhub.docker.image_reference"
"""

RETURN = """
_value:
  description: Whether the input is a valid image reference.
  type: bool
"""

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
# A first component is a registry only when it has a dot or a port, or is localhost.
_DOMAIN = (
    r"(?:(?:[a-zA-Z0-9-]+\.)+[a-zA-Z0-9-]+(?::[0-9]+)?/"
    r"|[a-zA-Z0-9-]+:[0-9]+/|localhost/)"
)
_TAG = r"(?::[\w][\w.-]{0,127})"
_DIGEST = r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})"
_REFERENCE = re.compile(
    rf"^{_DOMAIN}?{_COMPONENT}(?:/{_COMPONENT})*{_TAG}?{_DIGEST}?$"
)


def image_reference(value) -> bool:
    """Return True when value is a string that Docker accepts as an image reference."""
    return isinstance(value, str) and len(value) <= 255 and bool(_REFERENCE.match(value))


class TestModule:
    """Ansible test plugins of jhub.docker."""

    def tests(self):
        return {"image_reference": image_reference}
