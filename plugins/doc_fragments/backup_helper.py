# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""The options of the modules that run the backup role's helper script in a container."""

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    """Options image and script of backup_archive and backup_restore."""

    DOCUMENTATION = r"""
options:
  image:
    description: The tool image (the hub image, built on the hub's host and copied to workers).
    type: str
    required: true
  script:
    description: The helper script on the managed host.
    type: path
    required: true
"""
