"""The linters, as `make lint` runs them: yamllint --strict and ansible-lint (production profile, offline).

They run inside the pytest session (not before it) so that the Molecule scenarios, started before the
first test, do not wait for them; ansible-lint, which takes minutes, starts with the session (conftest.early)."""

import subprocess

from conftest import BIN, ROOT, ansible_env, early, early_result, run_counted


def test_yamllint_is_clean():
    result = subprocess.run([str(BIN / "yamllint"), "--strict", "."], cwd=ROOT, env=ansible_env(), capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]


@early("test_ansible_lint_is_clean")
def ansible_lint():
    return run_counted([str(BIN / "ansible-lint"), "--offline"], cwd=ROOT, env=ansible_env(), timeout=1800)


def test_ansible_lint_is_clean():
    result = early_result(ansible_lint)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
