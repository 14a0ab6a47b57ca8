# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Jinja filter: the problems of jupyterhub_monitoring_alert_receivers, as messages."""

from __future__ import annotations

import re

DOCUMENTATION = """
name: alert_receiver_errors
author: jhub.docker maintainers (!UNKNOWN)
version_added: 0.3.0
short_description: Problems of the receivers of the monitoring's alerts
description:
  - Returns one message per problem of a list of alert receivers (C({type, url, to})) - a type other than
    C(email) or C(webhook), a webhook without an http(s) URL, an email receiver without an e-mail address, and
    email receivers without a mail server (C(host:port)) or a sender.
options:
  _input:
    description: The receivers (jupyterhub_monitoring_alert_receivers).
    type: list
    required: true
  smarthost:
    description: The mail server of email receivers (jupyterhub_monitoring_smtp_smarthost).
    type: str
    required: true
  sender:
    description: The sender of the e-mails (jupyterhub_monitoring_smtp_from).
    type: str
    required: true
"""

EXAMPLES = """
- ansible.builtin.assert:
    that: "[{'type': 'webhook', 'url': 'https://chat.example.org/hook'}] | jhub.docker.alert_receiver_errors('', '') | length == 0"
"""

RETURN = """
_value:
  description: The messages; empty when the list is fine.
  type: list
  elements: str
"""

VARIABLE = "jupyterhub_monitoring_alert_receivers"
URL = re.compile(r"https?://\S+")
ADDRESS = re.compile(r"[^@\s]+@[^@\s]+")
SMARTHOST = re.compile(r"\S+:[0-9]{1,5}")


def alert_receiver_errors(receivers, smarthost, sender):
    """The problems of the receivers, one message each (empty: none)."""
    errors = []
    for number, receiver in enumerate(receivers, 1):
        where = f"{VARIABLE}: receiver {number}"
        if not isinstance(receiver, dict):
            errors.append(f"{where} must be a dict such as {{type: webhook, url: https://...}} (got {receiver!r}).")
            continue
        kind = receiver.get("type")
        if kind == "webhook" and not URL.fullmatch(str(receiver.get("url", ""))):
            errors.append(f"{where} (webhook) needs url, an http(s) URL (got {receiver.get('url', '')!r}).")
        elif kind == "email" and not ADDRESS.fullmatch(str(receiver.get("to", ""))):
            errors.append(f"{where} (email) needs to, an e-mail address (got {receiver.get('to', '')!r}).")
        elif kind not in ("email", "webhook"):
            errors.append(f"{where} has the type {kind!r}: the types are email and webhook.")
    if any(isinstance(receiver, dict) and receiver.get("type") == "email" for receiver in receivers):
        if not SMARTHOST.fullmatch(str(smarthost)) or not str(sender).strip():
            errors.append(f"{VARIABLE}: email receivers need jupyterhub_monitoring_smtp_smarthost (host:port, got {smarthost!r})"
                          f" and jupyterhub_monitoring_smtp_from (got {sender!r}).")
    return errors


class FilterModule:
    """Ansible filter plugins of jhub.docker."""

    def filters(self):
        return {"alert_receiver_errors": alert_receiver_errors}
