"""The linters, as `make lint` runs them: yamllint --strict and ansible-lint (production profile, offline).

They run inside the pytest session (not before it) so that the Molecule scenarios, started before the
first test, do not wait for them."""

import subprocess

import pytest
from conftest import BIN, ROOT, ansible_env


@pytest.mark.parametrize("command", [["yamllint", "--strict", "."], ["ansible-lint", "--offline"]], ids=["yamllint", "ansible-lint"])
def test_linter_is_clean(command):
    result = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, env=ansible_env(), capture_output=True, text=True,
                            timeout=1800, check=False)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
