"""Which of the host addresses to publish are taken: run on the Docker host by the jupyterhub role.

    python3 port_probe.py BINDINGS ADDRESS:PORT ...

BINDINGS is a JSON list of the PortBindings of the hub's containers (what they publish now: those are
not taken, the switch hands them over). Every other ADDRESS:PORT must be free to bind here (with
SO_REUSEADDR, as a listening proxy binds it). Prints the taken ones, space-separated; exits 1 if any.
"""

import json
import socket
import sys


def taken(bindings, wanted):
    held = {(b["HostIp"], b["HostPort"]) for ports in bindings for binds in (ports or {}).values() for b in binds or []}
    found = []
    for target in wanted:
        address, port = target.rsplit(":", 1)
        if (address, port) in held:
            continue
        probe = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, int(port)))
        except OSError:
            found.append(target)
        finally:
            probe.close()
    return found


if __name__ == "__main__":
    result = taken(json.loads(sys.argv[1]), sys.argv[2:])
    print(" ".join(result))
    sys.exit(1 if result else 0)
