"""The host port check of the jupyterhub role (roles/jupyterhub/files/port_probe.py) with real sockets: a port
that another process holds is reported, a free one and one that the hub's own containers publish now are not."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from conftest import ROOT

SCRIPT = ROOT / "roles" / "jupyterhub" / "files" / "port_probe.py"


def probe(bindings: list, *wanted: str) -> tuple[int, str]:
    result = subprocess.run([sys.executable, str(SCRIPT), json.dumps(bindings), *wanted],
                            capture_output=True, text=True, timeout=30, check=False)
    return result.returncode, result.stdout.strip()


def test_taken_free_and_handed_over_ports():
    with socket.socket() as holder, socket.socket() as spare:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        spare.bind(("127.0.0.1", 0))
        taken = f"127.0.0.1:{holder.getsockname()[1]}"
        free_port = spare.getsockname()[1]
        spare.close()
        free = f"127.0.0.1:{free_port}"
        assert probe([], free) == (0, "")
        assert probe([], free, taken) == (1, taken)
        # The proxy (or a hub of the old layout) publishes it now: the switch hands it over.
        ours = {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": taken.rsplit(":", 1)[1]}]}
        assert probe([ours, None], taken, free) == (0, "")
        # The same port on another address is not ours.
        assert probe([{"8000/tcp": [{"HostIp": "0.0.0.0", "HostPort": taken.rsplit(":", 1)[1]}]}], taken) == (1, taken)
