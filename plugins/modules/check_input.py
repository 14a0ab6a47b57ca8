# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
# The work is done by the action plugin of the same name (plugins/action/check_input.py);
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: check_input
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.2.0
short_description: Check a role's input beyond its argument spec, in one task
description:
  - Fails, before anything changes, with one message per problem, each naming the variable.
  - Run from a task file that is not an entry point of the role (a C(validate.yml) that playbooks run
    with C(tasks_from) before anything changes), it first checks the role's variables against the main
    entry point's argument spec, as Ansible does when the role runs from an entry point.
  - Every option of type C(bool) of the calling role's entry point (its C(meta/argument_specs.yml)),
    also inside dict options, must hold a boolean. Argument specs let C(-e name=true) through as a
    string, which conditionals refuse later; the message shows the JSON form instead.
  - Each rule whose C(that) is false adds its C(msg).
  - Each file named in O(files) must be a regular file on the managed host.
options:
  rules:
    description:
      - Checks, each a boolean C(that) (templated by the task) and the C(msg) reported when it is false.
      - An item may also be a list of such checks (shared checks kept in a variable).
    type: list
    elements: raw
    default: []
  files:
    description: Variable name to a path that must be a regular file on the managed host; empty paths are skipped.
    type: dict
    default: {}
  entry_point:
    description:
      - Entry point of the role's argument spec whose options are checked; by default the one running,
        or C(main) when the running task file is not an entry point.
    type: str
attributes:
  check_mode:
    support: full
    description: Reads only.
  action:
    support: full
    description: Runs on the controller; only the file checks run a module (stat) on the host.
notes:
  - Runs only inside a role; outside one there is no argument spec to read the booleans from.
"""

EXAMPLES = r"""
- name: Check the role's input
  jhub.docker.check_input:
    rules:
      - that: "{{ jupyterhub_port | int >= 1 and jupyterhub_port | int <= 65535 }}"
        msg: "jupyterhub_port must be 1-65535 (got {{ jupyterhub_port }})."
    files:
      jhub_ca_bundle: "{{ jhub_ca_bundle }}"
"""

RETURN = r"""
errors:
  description: One message per problem (only when the input is wrong).
  returned: failed
  type: list
  elements: str
"""
