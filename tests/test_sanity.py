"""ansible-test sanity, the check every collection on Galaxy is held to, on the files of this repository."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

from ansible_test._internal.python_requirements import get_venv_packages
from conftest import BIN, ROOT, ansible_env, early, early_result, run_counted

# The Python that ansible-test runs the checks with: the one of this virtualenv.
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _pip_version() -> str:
    """The pip version ansible-test puts into its virtualenvs (it names the get-pip script it looks for)."""
    return get_venv_packages(SimpleNamespace(version=PYTHON))["pip"]


def _tracked_files() -> list[str]:
    """The files git would commit (tracked and new), as a user's checkout holds them."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()
            and not name.startswith("collections/")]


@early("test_ansible_test_sanity_is_clean")
def sanity():
    """ansible-test sanity on a copy of the repository's files, in a directory of its own (removed after)."""
    with tempfile.TemporaryDirectory(prefix="jhub-sanity-") as folder:
        # ansible-test wants the collection at ansible_collections/<namespace>/<name>, and reads the files it
        # finds there: a copy of the repository's files, without the virtualenv and the build output.
        tree = Path(folder) / "ansible_collections" / "jhub" / "docker"
        for name in _tracked_files():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tree / name)
        # ansible-test downloads get-pip.py into its cache to set up its virtualenvs; this network does not
        # reach that server, so the cache gets a stand-in that installs the same pip (tests/sanity/get_pip.py).
        cache = Path.home() / ".ansible/test/cache" / f"get_pip_{_pip_version().replace('.', '_')}.py"
        if not cache.is_file():
            cache.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / "tests/sanity/get_pip.py", cache)
        env = ansible_env()
        env.pop("ANSIBLE_CONFIG", None)
        return run_counted([str(BIN / "ansible-test"), "sanity", "--python", PYTHON, "--color", "no"], cwd=tree,
                           env=env, timeout=1800)


def test_ansible_test_sanity_is_clean():
    result = early_result(sanity)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-4000:]
    assert "Running sanity test" in result.stdout, result.stdout[-2000:]
    assert not re.search(r"^ERROR: ", result.stdout + result.stderr, re.MULTILINE), result.stdout[-6000:]
