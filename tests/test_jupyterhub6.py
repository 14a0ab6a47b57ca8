"""The hub's own Python (tests/unit: the spawner, the NativeAuthenticator layer) under JupyterHub 6 too.

requirements.txt pins JupyterHub 5.5.4, the older release the hub image still builds (and upgrades start
from); this runs the same unit tests in a virtualenv of their own with JupyterHub 6.1.1, the default
(tests/unit/requirements-jupyterhub6.txt), made once inside .venv (ignored like it by the linters) and
made again when that file changes.
"""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

REQUIREMENTS = ROOT / "tests" / "unit" / "requirements-jupyterhub6.txt"
VENV = ROOT / ".venv" / "jupyterhub6"


def test_unit_tests_pass_under_jupyterhub_6():
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
    version = subprocess.run([python, "-c", "import jupyterhub; print(jupyterhub.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == "6.1.1", version
    # The Docker proxy's tests (test_guard.py) use no JupyterHub: they run once, in the main session.
    result = subprocess.run([python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "tests/unit",
                             "--ignore=tests/unit/test_guard.py"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]
