"""The collection's own Jinja test plugins."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import ROOT

_spec = importlib.util.spec_from_file_location("image_reference", ROOT / "plugins" / "test" / "image_reference.py")
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
image_reference = _module.image_reference


@pytest.mark.parametrize(
    "value",
    ["busybox", "busybox:1.36", "jupyter/minimal-notebook", "quay.io/jupyter/minimal-notebook:2025-01-06",
     "127.0.0.1:5000/jhub/notebook:1", "localhost/x", "jhub-test/busybox:1",
     "debian@sha256:" + "a" * 64],
)
def test_valid_image_references(value):
    assert image_reference(value)


@pytest.mark.parametrize(
    "value",
    ["", "Busybox", "UPPER/case", "a b", "x:", ":tag", "a//b", "jhub/:1", "name:tag:tag", "-leading", None, 5,
     "x" * 300],
)
def test_invalid_image_references(value):
    assert not image_reference(value)
