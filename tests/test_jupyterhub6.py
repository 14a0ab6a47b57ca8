"""The hub's own Python (tests/unit: the spawner, the NativeAuthenticator layer) under JupyterHub 6 too.

requirements.txt pins JupyterHub 5.5.4, the older release the hub image still builds (and upgrades start
from); this runs the same unit tests in a virtualenv of their own with JupyterHub 6.1.1, the default
(tests/unit/requirements-jupyterhub6.txt), made once inside .venv (ignored like it by the linters) and
made again when that file changes. It starts with the session (conftest.early): it uses neither this
machine's deployment nor its state.
"""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, ansible_env, early, early_result, run_counted

REQUIREMENTS = ROOT / "tests" / "unit" / "requirements-jupyterhub6.txt"
VENV = ROOT / ".venv" / "jupyterhub6"


@early("test_unit_tests_pass_under_jupyterhub_6")
def unit_tests_under_jupyterhub_6():
    """[the version of JupyterHub in the virtualenv, the unit tests' run] (the virtualenv made first if needed)."""
    stamp = VENV / ".installed"
    # The requirements, and this repository's packages (pyproject.toml: jhub_docker), without their dependencies.
    wanted = REQUIREMENTS.read_text() + "-e . --no-deps\n"
    if not stamp.is_file() or stamp.read_text() != wanted:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, timeout=300)
        pip = [str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True, timeout=900)
        subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True, timeout=300)
        stamp.write_text(wanted)
    python = str(VENV / "bin" / "python")
    version = run_counted([python, "-c", "import jupyterhub; print(jupyterhub.__version__)"], timeout=120)
    # The Docker proxy's tests (test_guard.py) use no JupyterHub: they run once, in the main session. The
    # hub's configuration is rendered with this repository's ansible-playbook (on PATH).
    tests = run_counted([python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "tests/unit",
                         "--ignore=tests/unit/test_guard.py"], cwd=ROOT, env=ansible_env(), timeout=600)
    return [version, tests]


def test_unit_tests_pass_under_jupyterhub_6():
    version, result = early_result(unit_tests_under_jupyterhub_6)
    assert version.stdout.strip() == "6.1.1", version.stdout + version.stderr
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]
