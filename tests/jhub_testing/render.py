"""jupyterhub_config.py as the jupyterhub role renders it, for unit tests of the hub's configuration."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "roles/jupyterhub/templates/srv/jupyterhub/jupyterhub_config.py.j2"


def render_hub_config(out: Path, cases: dict[str, dict]) -> dict[str, str]:
    """The configuration for each case's variables (over the jhub and jupyterhub roles' defaults and vars, without
    facts), rendered by Ansible's template module in one playbook run: {case: text}."""
    vars_files = [str(ROOT / "roles" / role / kind / "main.yml") for role in ("jhub", "jupyterhub") for kind in ("defaults", "vars")]
    tasks = [{"ansible.builtin.template": {"src": str(TEMPLATE), "dest": str(out / f"{case}.py"), "mode": "0600"}, "vars": values}
             for case, values in cases.items()]
    playbook = out / "render.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "vars_files": vars_files, "tasks": tasks}]))
    result = subprocess.run(
        # The project's ansible-playbook (on PATH under make), also when this runs in another JupyterHub's venv.
        [shutil.which("ansible-playbook") or str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {case: (out / f"{case}.py").read_text() for case in cases}
