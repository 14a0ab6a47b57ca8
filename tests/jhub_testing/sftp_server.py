"""A real SFTP server (Debian's OpenSSH) in a container, for the tests of the off-site backups with restic.

tests/providers/sftp builds its image. The server lets the account restic log in with a key made for the
test (ssh-keygen), and nothing else; its port is published on this machine's loopback. `repository` and
`options` are what an inventory sets for restic's sftp backend (jupyterhub_backup_restic_repository and
jupyterhub_backup_restic_options). No mocks: the docker CLI, as in the rest of tests/.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

CONTEXT = Path(__file__).resolve().parent.parent / "providers" / "sftp"


class SftpServer:
    """One sshd container with the test's key; start() it, stop() it."""

    IMAGE = "jhub-test/sftp:1"

    def __init__(self, keys: Path, port: int = 22022, name: str = "jhub-test-sftp") -> None:
        self.keys, self.port, self.name = keys, port, name
        self.key = keys / "id_ed25519"
        self.repository = "sftp:restic@127.0.0.1:/home/restic/repo"

    def ssh(self, port: int | None = None) -> list[str]:
        return ["ssh", "-i", str(self.key), "-p", str(port or self.port), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "restic@127.0.0.1"]

    def options(self, port: int | None = None) -> list[str]:
        """restic's -o option that makes its sftp backend use this server (PORT: another, e.g. a closed one)."""
        return ["sftp.command=" + " ".join(self.ssh(port) + ["-s", "sftp"])]

    def start(self) -> None:
        """Build the image (cached when unchanged), make a key, run the server and wait until the key logs in."""
        subprocess.run(["docker", "build", "-q", "-t", self.IMAGE, str(CONTEXT)], check=True, capture_output=True)
        self.keys.mkdir(parents=True, exist_ok=True)
        if not self.key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        (self.keys / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        (self.keys / "authorized_keys").chmod(0o644)
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True, check=False)
        subprocess.run(["docker", "run", "-d", "--name", self.name, "-p", f"127.0.0.1:{self.port}:22",
                        "-v", f"{self.keys / 'authorized_keys'}:/keys/authorized_keys:ro", self.IMAGE],
                       check=True, capture_output=True)
        deadline = time.monotonic() + 60
        while subprocess.run([*self.ssh(), "true"], capture_output=True, check=False).returncode != 0:
            if time.monotonic() > deadline:
                logs = subprocess.run(["docker", "logs", self.name], capture_output=True, text=True, check=False)
                raise RuntimeError(f"the SFTP server does not let the key in: {(logs.stdout + logs.stderr)[-2000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True, check=False)
