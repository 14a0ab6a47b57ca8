"""What the hub's Docker proxy (jhub_docker.guard) costs per spawn, on the deployment that `make deploy` made.

In one run, interleaved:
- the floor: a user server's Docker calls as DockerSpawner makes them for one start and one stop (inspect the
  image, look the container up, create, start, inspect, stop, wait, remove), with docker-py on the engine's
  own socket;
- the same calls through the proxy's socket, as the hub makes them;
- spawns through the hub (the admin's server: start request to ready, then stopped), whose median is the
  denominator.
Every run is recorded with the machine's load. Bar: the proxy's added time per spawn is under 5 % of a spawn.

Usage: bench/guard.py [--cycles 20] [--spawns 5] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import docker

from jhub_testing.hubclient import HubClient

ROOT = Path(__file__).resolve().parent.parent
URL = "http://127.0.0.1:8000"
GUARD_SOCKET = "/var/lib/docker/volumes/jupyterhub-docker-guard/_data/docker.sock"
IMAGE = "jhub-docker/notebook:6.1.1"
NAME = "jupyter-bench-guard"
BAR = 0.05


def cycle(client: docker.APIClient) -> float:
    """One start and stop of a user server's container, as DockerSpawner calls Docker; seconds."""
    began = time.perf_counter()
    client.inspect_image(IMAGE)
    try:
        client.inspect_container(NAME)
    except docker.errors.NotFound:
        pass
    host = client.create_host_config(
        network_mode="jupyterhub", cap_drop=["ALL"], security_opt=["no-new-privileges"], pids_limit=1024,
        binds=["jupyterhub-user-bench-guard:/home/jovyan/work"], mem_limit="512M")
    made = client.create_container(IMAGE, ["sleep", "300"], name=NAME, host_config=host,
                                   labels={"io.jhub-docker.role": "user-server"})
    client.start(made["Id"])
    client.inspect_container(made["Id"])
    client.stop(made["Id"], timeout=0)
    client.wait(made["Id"])
    client.remove_container(made["Id"])
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--spawns", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    engine = docker.APIClient()
    guard = docker.APIClient(base_url=f"unix://{GUARD_SOCKET}")
    load_before = os.getloadavg()
    direct, proxied = [], []
    for _round in range(args.cycles):
        direct.append(cycle(engine))
        proxied.append(cycle(guard))
    engine.remove_volume("jupyterhub-user-bench-guard")
    admin = HubClient(URL)
    password = (ROOT / ".secrets" / "admin_password").read_text().strip()
    assert admin.login("admin", password).status_code == 302, "the admin cannot log in"
    spawns = []
    for _round in range(args.spawns):
        began = time.perf_counter()
        admin.start_server("admin")  # the request, then the wait until the hub says ready
        spawns.append(time.perf_counter() - began)
        admin.stop_server("admin")
    added = statistics.median(proxied) - statistics.median(direct)
    spawn = statistics.median(spawns)
    result = {
        "when": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
        "cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg(),
        "cycles": args.cycles, "direct_s": direct, "proxied_s": proxied, "spawns_s": spawns,
        "direct_median_s": statistics.median(direct), "proxied_median_s": statistics.median(proxied),
        "added_per_spawn_s": added, "spawn_median_s": spawn, "added_share": added / spawn, "bar": BAR,
        "passed": added / spawn < BAR,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"guard-{result['when']}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"Docker calls of one start and stop: {result['direct_median_s'] * 1000:.1f} ms on the engine's socket,"
          f" {result['proxied_median_s'] * 1000:.1f} ms through the proxy (median of {args.cycles} each)")
    print(f"spawn through the hub: {spawn:.2f} s (median of {args.spawns}); the proxy adds {added * 1000:.1f} ms"
          f" = {added / spawn:.1%} of a spawn (bar {BAR:.0%}): {'passed' if result['passed'] else 'FAILED'}")
    print(f"load: {load_before} before, {result['load_after']} after, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
