# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Jinja filter: the problems of a list of user-server images, as messages."""

from __future__ import annotations

from ansible_collections.jhub.docker.plugins.module_utils.references import image_list_errors

DOCUMENTATION = """
name: image_list_errors
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.1.0
short_description: Problems of a list of user-server images
description:
  - Returns one message per problem of a list of image items (C({name, ...})) - an empty list,
    an invalid image reference, an image listed twice. Each message names the variable and the item.
options:
  _input:
    description: The list of image items.
    type: list
    required: true
  variable:
    description: Name of the variable, for the messages.
    type: str
    required: true
"""

EXAMPLES = """
- ansible.builtin.assert:
    that: jhub_notebook_images | jhub.docker.image_list_errors('jhub_notebook_images') | length == 0
"""

RETURN = """
_value:
  description: The messages; empty when the list is fine.
  type: list
  elements: str
"""


class FilterModule:
    """Ansible filter plugins of jhub.docker."""

    def filters(self):
        return {"image_list_errors": image_list_errors}
