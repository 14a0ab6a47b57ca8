"""Benchmark of a no-change `make deploy` on this machine (the README's deploy command).

A first `make deploy` brings the machine to the wanted state; then the no-change run is timed
N times (default 3), each required to report changed=0, interleaved with its floor: an
ansible-playbook run of one module (bench/floor.yml) against the same inventory, the fixed
cost of starting Ansible and reaching the host. Every run is recorded with the machine's load
before it. Bar: the median no-change run takes at most 20 s.

Usage: bench/deploy.py [--runs 3] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BAR_SECONDS = 20.0


def loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def timed(cmd: list[str]) -> dict:
    """Run cmd from the repository; wall time, CPU of its process tree, PLAY RECAP."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    before_load = loadavg()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stdout[-4000:]}{result.stderr[-2000:]}")
    match = re.search(r"PLAY RECAP \**\n\S+\s*: (.*)", result.stdout)
    recap = {k: int(v) for k, v in (f.split("=") for f in match.group(1).split())} if match else {}
    return {"wall_s": round(wall, 2), "cpu_user_s": round(after.ru_utime - usage.ru_utime, 2),
            "cpu_sys_s": round(after.ru_stime - usage.ru_stime, 2), "recap": recap,
            "tasks": sum(recap.get(k, 0) for k in ("ok", "changed", "skipped", "failed")), "load_before": before_load}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    deploy = ["make", "--no-print-directory", "deploy"]
    floor = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "bench/floor.yml"]
    print("first make deploy (brings the machine to the wanted state)", flush=True)
    first = timed(deploy)
    runs, floors = [], []
    for index in range(args.runs):
        runs.append(timed(deploy))
        floors.append(timed(floor))
        print(f"run {index + 1}: no-change {runs[-1]['wall_s']} s ({runs[-1]['recap']}), "
              f"floor {floors[-1]['wall_s']} s, load before {runs[-1]['load_before']}", flush=True)
        if runs[-1]["recap"].get("changed") != 0:
            raise SystemExit(f"the no-change run changed something: {runs[-1]['recap']}")
    median = statistics.median(r["wall_s"] for r in runs)
    median_floor = statistics.median(f["wall_s"] for f in floors)
    report = {
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                 check=False).stdout.strip(),
        "cores": os.cpu_count(), "first": first, "no_change": runs, "floor": floors,
        "median_s": median, "median_floor_s": median_floor, "ratio_to_floor": round(median / median_floor, 2),
        "bar_s": BAR_SECONDS, "bar_met": median <= BAR_SECONDS,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"deploy-{report['time'].replace('-', '').replace(':', '')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"no-change make deploy: median {median} s of {args.runs} ({runs[0]['tasks']} tasks, changed=0), "
          f"floor {median_floor} s, ratio {report['ratio_to_floor']}; bar {BAR_SECONDS} s: "
          f"{'met' if report['bar_met'] else 'NOT met'}; {path.relative_to(ROOT)}")
    return 0 if report["bar_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
