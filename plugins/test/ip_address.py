# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Jinja test: is a value an IPv4 or IPv6 address (no name, no network, no port)?"""

from __future__ import annotations

import ipaddress

DOCUMENTATION = """
name: ip_address
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: Is a value an IP address
description:
  - True for an IPv4 address such as C(127.0.0.1) or C(0.0.0.0) and an IPv6 address such as C(::1),
    false for anything else (C(999.1.1.1), a host name, a network, an address with a port).
options:
  _input:
    description: The value to check.
    type: raw
    required: true
"""

EXAMPLES = """
- ansible.builtin.assert:
    that: "jupyterhub_bind_address is jhub.docker.ip_address"
"""

RETURN = """
_value:
  description: Whether the input is an IP address.
  type: bool
"""


def ip_address(value) -> bool:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


class TestModule:
    """Ansible test plugins of jhub.docker."""

    def tests(self):
        return {"ip_address": ip_address}
