"""A real OpenLDAP server (Debian's slapd) in a container, for the end-to-end tests of the hub's LDAP login.

tests/providers/ldap builds its image. Every start configures slapd anew with that folder's seed (seed.ldif):
alice, bob, carol and dave under ou=people; the groups jupyter-users (alice, bob, dave), jupyter-admins (dave)
and staff (carol, a group not allowed to log in) under ou=groups; cn=reader, a read-only search account.
It serves LDAPS on 636 and StartTLS on 389 with a certificate of the test's CA, so that the hub checks the
server's certificate as it would a site's directory (jupyterhub_auth_ca_certificate). No mocks: the docker
CLI, as in the rest of tests/.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path

from .testca import TestCA

# The image's build context: tests/providers/ldap (Dockerfile, entrypoint.sh, config.ldif, seed.ldif).
CONTEXT = Path(__file__).resolve().parent.parent / "providers" / "ldap"


class LdapServer:
    """One slapd container at a fixed address of a Docker network; start() it, stop() it."""

    IMAGE = "jhub-test/slapd:1"
    base_dn = "dc=example,dc=org"
    people_dn = f"ou=people,{base_dn}"
    groups_dn = f"ou=groups,{base_dn}"
    reader_dn = f"cn=reader,{base_dn}"
    reader_password = "Reader-LDAP-Password-5"
    admin_dn = f"cn=admin,{base_dn}"  # the rootdn: only the tests' changes to the directory (modify)
    # The seed's users and their passwords (seed.ldif).
    USERS: dict[str, str] = {
        "alice": "Alice-LDAP-Password-1",
        "bob": "Bob-LDAP-Password-2",
        "carol": "Carol-LDAP-Password-3",
        "dave": "Dave-LDAP-Password-4",
    }

    def __init__(self, ca: TestCA, network: str = "jupyterhub", address: str = "172.31.253.10",
                 name: str = "jhub-test-ldap") -> None:
        self.ca = ca
        self.network = network
        self.address = address
        self.name = name
        # By name: the hub finds the server through Docker's DNS on the network (its certificate has both).
        self.url = f"ldaps://{name}:636"
        self.starttls_url = f"ldap://{name}:389"
        # The rootdn's password: new for every server, it never leaves the test (and the container's env).
        self.admin_password = secrets.token_urlsafe(18)

    def user_dn(self, user: str) -> str:
        """The DN of a user of the seed, e.g. uid=alice,ou=people,dc=example,dc=org."""
        return f"uid={user},{self.people_dn}"

    def group_dn(self, group: str) -> str:
        """The DN of a group of the seed, e.g. cn=jupyter-users,ou=groups,dc=example,dc=org."""
        return f"cn={group},{self.groups_dn}"

    def start(self) -> None:
        """Build the image (every time: with unchanged files it is all cache, under a second), issue the server's
        certificate for its name and address, run the container and wait until it answers an LDAPS bind as the reader."""
        _docker("build", "-q", "-t", self.IMAGE, str(CONTEXT))
        files = self.ca.issue("ldap", self.name, self.address)
        # A container of this name left by an interrupted run would hold the name and the address.
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True, check=False)
        mounts = {files.cert: "server.pem", files.key: "server.key", self.ca.path: "ca.pem"}
        volumes = [arg for path, target in mounts.items() for arg in ("-v", f"{path.resolve()}:/certs/{target}:ro")]
        _docker("run", "-d", "--name", self.name, "--network", self.network, "--ip", self.address,
                "-e", f"LDAP_ROOT_PASSWORD={self.admin_password}", *volumes, self.IMAGE)
        self._wait_until_ready(timeout=60)

    def _wait_until_ready(self, timeout: float) -> None:
        """Until an LDAPS bind as the reader succeeds from inside the container, certificate checked against
        the CA (the certificate's address too): then the seed is loaded and TLS is served."""
        deadline = time.monotonic() + timeout
        whoami = ["docker", "exec", "-e", "LDAPTLS_CACERT=/certs/ca.pem", self.name,
                  "ldapwhoami", "-x", "-H", self.url, "-D", self.reader_dn, "-w", self.reader_password]
        while True:
            result = subprocess.run(whoami, capture_output=True, text=True, check=False)
            if result.returncode == 0:
                return
            running = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", self.name],
                                     capture_output=True, text=True, check=False).stdout.strip()
            if running != "true" or time.monotonic() > deadline:
                logs = subprocess.run(["docker", "logs", "--tail", "60", self.name], capture_output=True, text=True,
                                      check=False)
                raise RuntimeError(f"the LDAP server {self.name} is not ready (running: {running}); last ldapwhoami:"
                                   f" {result.stderr.strip()}\n--- its logs ---\n{logs.stdout}{logs.stderr}")
            time.sleep(0.25)

    def modify(self, ldif: str) -> None:
        """Apply an LDIF of changes (changetype: ...) as the rootdn, with ldapmodify inside the container."""
        _docker("exec", "-i", self.name, "ldapmodify", "-x", "-H", "ldapi:///", "-D", self.admin_dn,
                "-w", self.admin_password, stdin=ldif)

    def remove_from_group(self, user: str, group: str) -> None:
        """Take a user out of a group (its member value). A groupOfNames keeps one member at least: removing
        the last one fails (objectClassViolation)."""
        self.modify(f"dn: {self.group_dn(group)}\nchangetype: modify\ndelete: member\nmember: {self.user_dn(user)}\n")

    def stop(self) -> None:
        """Remove the container (its directory goes with it: the next start begins from the seed again)."""
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True, check=False)


def _docker(*args: str, stdin: str | None = None) -> str:
    """Run a docker command and return its output; raise with its error output if it fails."""
    result = subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"docker {args[0]} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout
