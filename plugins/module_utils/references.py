# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Docker image references: one grammar for every check of the collection."""

from __future__ import annotations

import re

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
# A first component is a registry only when it has a dot or a port, or is localhost.
_DOMAIN = (
    r"(?:(?:[a-zA-Z0-9-]+\.)+[a-zA-Z0-9-]+(?::[0-9]+)?/"
    r"|[a-zA-Z0-9-]+:[0-9]+/|localhost/)"
)
_TAG = r"(?::[\w][\w.-]{0,127})"
_DIGEST = r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})"
_REFERENCE = re.compile(rf"^{_DOMAIN}?{_COMPONENT}(?:/{_COMPONENT})*{_TAG}?{_DIGEST}?$")


def is_image_reference(value) -> bool:
    """True when value is a string that Docker accepts as an image reference."""
    return isinstance(value, str) and len(value) <= 255 and bool(_REFERENCE.match(value))


def image_list_errors(images, variable: str) -> list[str]:
    """Problems of a list of image items ({name, ...}), each naming the variable and the item."""
    if not isinstance(images, list) or not images:
        return [f"{variable} is empty (or not a list); users need at least one image to start a server."]
    errors = []
    names = [item.get("name") if isinstance(item, dict) else None for item in images]
    for index, name in enumerate(names):
        if not is_image_reference(name):
            errors.append(
                f"{variable}[{index}].name: {name!r} is not a valid image reference "
                "(lowercase name[:tag], for example quay.io/jupyter/minimal-notebook:2026-05-31)"
            )
        elif names.count(name) > 1 and names.index(name) == index:
            errors.append(f"{variable}[{index}].name: {name!r} is listed {names.count(name)} times; list each image once")
    return errors
