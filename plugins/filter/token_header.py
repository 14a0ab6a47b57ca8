# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Jinja filter: a JupyterHub API token file, read with slurp, as a request header."""

from __future__ import annotations

import base64

DOCUMENTATION = """
name: token_header
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.3.0
short_description: A slurped token file as an Authorization header
description:
  - Takes the result of C(ansible.builtin.slurp) of a file that holds a JupyterHub API token and
    returns the headers of a request made with that token. The file's surrounding whitespace is
    not part of the token.
options:
  _input:
    description: The registered result of C(ansible.builtin.slurp).
    type: dict
    required: true
"""

EXAMPLES = """
- name: Read the operations token
  ansible.builtin.slurp:
    src: /srv/jupyterhub/secrets/ops.token
  register: ops_token
  no_log: true

- name: List the users
  ansible.builtin.uri:
    url: http://127.0.0.1:8000/hub/api/users
    headers: "{{ ops_token | jhub.docker.token_header }}"
  no_log: true
"""

RETURN = """
_value:
  description: The request headers, one header C(Authorization) whose value is C(token) and the token.
  type: dict
"""


def token_header(slurped: dict) -> dict:
    """{"Authorization": "token <the file's content, stripped>"}."""
    token = base64.b64decode(slurped["content"]).decode().strip()
    return {"Authorization": f"token {token}"}


class FilterModule:
    """Ansible filter plugins of jhub.docker."""

    def filters(self):
        return {"token_header": token_header}
