# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Jinja test: is a string a valid Docker image reference (name[:tag][@digest])?"""

from __future__ import annotations

from ansible_collections.jhub.docker.plugins.module_utils.references import is_image_reference

DOCUMENTATION = """
name: image_reference
author: jhub.docker maintainers (!UNKNOWN)
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
    that: "'quay.io/jupyter/minimal-notebook:2026-05-31' is jhub.docker.image_reference"
"""

RETURN = """
_value:
  description: Whether the input is a valid image reference.
  type: bool
"""


class TestModule:
    """Ansible test plugins of jhub.docker."""

    def tests(self):
        return {"image_reference": is_image_reference}
