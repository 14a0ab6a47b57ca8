# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""Prometheus metrics of the users' servers' containers on this host: GET /metrics.

Debian packages no cAdvisor, and the engine's own metrics describe the engine, not its containers. So this reads
what the engine and the kernel keep on disk: each container's configuration in the engine's data root (ROOT/*/
config.v2.json: its labels, its name, its JupyterHub user and server, whether it runs), and its cgroup (v1 or v2,
the cgroupfs or the systemd driver) for CPU time, memory and the kernel's OOM kills. Only the containers with the
user-server label are read; of their environment, only JUPYTERHUB_USER and JUPYTERHUB_SERVER_NAME are kept.
Standard library only; no Docker socket.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LABEL, LABEL_VALUE = "io.jhub-docker.role", "user-server"
# Where a container's cgroup is, by cgroup version and driver ({id}: the container's ID).
V2 = ("system.slice/docker-{id}.scope", "docker/{id}")
V1_MEMORY = ("memory/docker/{id}", "memory/system.slice/docker-{id}.scope")
V1_CPU = ("cpuacct/docker/{id}", "cpu,cpuacct/docker/{id}", "cpuacct/system.slice/docker-{id}.scope",
          "cpu,cpuacct/system.slice/docker-{id}.scope")
# A memory limit this high is no limit (cgroup v1 says 2^63 rounded to the page).
NO_LIMIT = 1 << 62
METRICS = (
    ("jhub_server_cpu_seconds_total", "counter", "CPU time used by the server's container.", "cpu"),
    ("jhub_server_memory_bytes", "gauge", "Memory used by the server's container, without the page cache (as docker stats).", "memory"),
    ("jhub_server_memory_limit_bytes", "gauge", "The server container's memory limit (absent: none).", "limit"),
    ("jhub_server_oom_kills_total", "counter", "Processes of the server's container that the kernel killed for memory.", "oom_kills"),
    ("jhub_server_running", "gauge", "Whether the server's container runs (1) or has stopped (0).", "running"),
)


def read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read()
    except OSError:
        return None


def pairs(text: str | None) -> dict[str, int]:
    """The 'name value' lines of a cgroup file (memory.stat, cpu.stat, memory.events, memory.oom_control)."""
    found = {}
    for line in (text or "").splitlines():
        name, _sep, value = line.partition(" ")
        if value.strip().isdigit():
            found[name] = int(value)
    return found


def cgroup_figures(cgroup: str, cid: str) -> dict:
    """CPU seconds, memory, limit and OOM kills of the container CID, from cgroup v2 or v1."""
    for relative in V2:
        where = os.path.join(cgroup, relative.format(id=cid))
        current = read(os.path.join(where, "memory.current"))
        if current is not None:
            limit = (read(os.path.join(where, "memory.max")) or "max").strip()
            return {"memory": max(int(current) - pairs(read(os.path.join(where, "memory.stat"))).get("inactive_file", 0), 0),
                    "limit": None if limit == "max" else int(limit),
                    "cpu": pairs(read(os.path.join(where, "cpu.stat"))).get("usage_usec", 0) / 1e6,
                    "oom_kills": pairs(read(os.path.join(where, "memory.events"))).get("oom_kill", 0)}
    figures = {}
    for relative in V1_MEMORY:
        where = os.path.join(cgroup, relative.format(id=cid))
        usage = read(os.path.join(where, "memory.usage_in_bytes"))
        if usage is not None:
            limit = int(read(os.path.join(where, "memory.limit_in_bytes")) or NO_LIMIT)
            figures.update(memory=max(int(usage) - pairs(read(os.path.join(where, "memory.stat"))).get("total_inactive_file", 0), 0),
                           limit=None if limit >= NO_LIMIT else limit,
                           oom_kills=pairs(read(os.path.join(where, "memory.oom_control"))).get("oom_kill", 0))
            break
    for relative in V1_CPU:
        usage = read(os.path.join(cgroup, relative.format(id=cid), "cpuacct.usage"))
        if usage is not None:
            figures["cpu"] = int(usage) / 1e9
            break
    return figures


def servers(containers: str, cgroup: str) -> list[dict]:
    """Each user-server container of the engine's data root, with its figures."""
    found = []
    for path in sorted(glob.glob(os.path.join(containers, "*", "config.v2.json"))):
        try:
            with open(path, encoding="utf-8") as handle:
                config = json.load(handle)
        except (OSError, ValueError):
            continue  # a container being made or removed
        settings = config.get("Config") or {}
        if (settings.get("Labels") or {}).get(LABEL) != LABEL_VALUE:
            continue
        environment = dict(item.split("=", 1) for item in settings.get("Env") or [] if "=" in item)
        running = bool((config.get("State") or {}).get("Running"))
        server = {"labels": {"user": environment.get("JUPYTERHUB_USER", ""), "server": environment.get("JUPYTERHUB_SERVER_NAME", ""),
                             "container": str(config.get("Name", "")).lstrip("/")},
                  "running": int(running)}
        if running:
            server.update(cgroup_figures(cgroup, config["ID"]))
        found.append(server)
    return found


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(found: list[dict]) -> str:
    """FOUND in Prometheus's text format; a figure not read is left out."""
    lines = []
    for metric, kind, text, key in METRICS:
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}"]
        for server in found:
            if server.get(key) is not None:
                labels = ",".join(f'{name}="{escape(value)}"' for name, value in server["labels"].items())
                lines.append(f"{metric}{{{labels}}} {server[key]}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--listen", default="127.0.0.1:9101", help="address:port to serve /metrics on")
    parser.add_argument("--containers", default="/var/lib/docker/containers", help="the engine's containers directory")
    parser.add_argument("--cgroup", default="/sys/fs/cgroup", help="the cgroup file system")
    options = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = exposition(servers(options.containers, options.cgroup)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    host, _sep, port = options.listen.rpartition(":")
    ThreadingHTTPServer((host.strip("[]"), int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
