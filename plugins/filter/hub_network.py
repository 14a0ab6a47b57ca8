# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Jinja filter: the fixed addresses of the hub network, derived from its subnet."""

from __future__ import annotations

import ipaddress

DOCUMENTATION = """
name: hub_network
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.1.0
short_description: Gateway, hub and proxy addresses and user range of the hub network
description:
  - From an IPv4 subnet such as 172.31.252.0/22 (the network address, /16 to /28), returns the
    bridge gateway (first address), the hub's fixed address (second address), the proxy's fixed
    address (third address) and the range Docker allocates user containers from (the upper half
    of the subnet), so that no user container can ever get the hub's or the proxy's address.
  - Returns an empty dict when the input is not such a subnet (validate with C(length > 0)).
options:
  _input:
    description: The subnet in CIDR notation.
    type: str
    required: true
"""

EXAMPLES = """
- name: Show the hub's address
  ansible.builtin.debug:
    msg: "{{ ('172.31.252.0/22' | jhub.docker.hub_network).hub }}"  # 172.31.252.2
"""

RETURN = """
_value:
  description: C(subnet), C(gateway), C(hub), C(proxy) and C(ip_range), as strings; empty when the input is invalid.
  type: dict
"""


def hub_network(subnet) -> dict:
    """Fixed addresses of the hub network, or {} for anything but an IPv4 /16-/28 network address."""
    try:
        network = ipaddress.IPv4Network(str(subnet), strict=True)
    except ValueError:
        return {}
    if "/" not in str(subnet) or not 16 <= network.prefixlen <= 28:
        return {}
    return {
        "subnet": str(network),
        "gateway": str(network[1]),
        "hub": str(network[2]),
        "proxy": str(network[3]),
        "ip_range": str(list(network.subnets(prefixlen_diff=1))[1]),
    }


class FilterModule:
    """Ansible filter plugins of jhub.docker."""

    def filters(self):
        return {"hub_network": hub_network}
