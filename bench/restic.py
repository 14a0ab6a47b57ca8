"""Off-site backups with restic: the scheduled backup's copy against plain `restic backup`, on this machine.

Needs the hub deployed here (`make deploy`: the backup's tool image) and restic (`make test-packages`).
Fills one user volume, jupyterhub-user-jhbench-restic, with about 1 GB of generated data (bench/backup.py's
mix: half incompressible, half hex text; big and small files), then, in one run and on the same data:
  - plain: `restic backup VOLUME_DIR` into a new local repository, as an operator would by hand;
  - ours:  jhub-backup-run.py (the program that the backup timer or cron runs) with a new local
           repository: the whole run (the local zstd archive, then the off-site copy) and the copy alone;
first on the full volume, then again after one new 1 MiB file (the second, incremental backup). Both
repositories are on this machine's disk, so that the figures are restic's and ours, not a network's.
Writes bench/results/restic-<time>.json and prints a markdown table with the machine's load. Removes its
volume, repositories and backups at the end.

  .venv/bin/python bench/restic.py
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backup import MIB, RESULTS, ROOT, data_bytes, fill, run, volume_dir  # noqa: E402 pylint: disable=wrong-import-position

WORK = Path("/var/tmp/jhub-bench-restic")
USER = "jhbench-restic"
PASSWORD = "bench-restic-password"
PROGRAM = ROOT / "roles" / "jupyterhub_backup" / "files" / "jhub-backup-run.py"
HELPER = ROOT / "roles" / "jupyterhub_backup" / "files" / "jhub-backup.py"


def plain(directory: Path) -> dict:
    env = dict(os.environ, RESTIC_REPOSITORY=str(WORK / "plain-repo"), RESTIC_PASSWORD=PASSWORD, RESTIC_CACHE_DIR=str(WORK / "cache"))
    if not (WORK / "plain-repo").exists():
        run(["restic", "init"], env=env)
    started = time.monotonic()
    out = run(["restic", "backup", "--json", str(directory)], env=env).stdout
    seconds = time.monotonic() - started
    summary = [json.loads(line) for line in out.splitlines() if '"summary"' in line][-1]
    return {"seconds": round(seconds, 2), "data_added": summary["data_added"]}


def ours(config: Path) -> dict:
    started = time.monotonic()
    said = json.loads(run(["/usr/bin/python3", str(PROGRAM), "--config", str(config)]).stdout.strip().splitlines()[-1])
    seconds = time.monotonic() - started
    return {"seconds": round(seconds, 2), "offsite_seconds": said["offsite"]["seconds"], "data_added": said["offsite"]["data_added"]}


def settings() -> Path:
    """The settings that the role would write for this deployment's defaults, with the bench's volume and repository."""
    (WORK / "secrets.json").write_text(json.dumps({"RESTIC_PASSWORD": PASSWORD}))
    config = {"root": str(WORK / "backups"), "keep": 2, "compression": "zstd", "parallel": 2, "space_check": True, "users": [USER],
              "user_volumes": True, "user_volume": "jupyterhub-user-{username}", "shared_volumes": False, "shared_label": "io.jhub-docker.shared",
              "hub_state": True, "data_volume": "jupyterhub-data", "image": "jhub-docker/jupyterhub:6.1.1", "script": str(HELPER),
              "host": "bench", "stop_servers": False, "api": "", "token_file": "", "timeout": 60, "metrics_dir": "",
              "restic": {"repository": str(WORK / "ours-repo"), "options": [], "secrets_file": str(WORK / "secrets.json"),
                         "cache_dir": str(WORK / "cache")}}
    path = WORK / "backup.json"
    path.write_text(json.dumps(config))
    run(["/usr/bin/python3", str(PROGRAM), "--config", str(path), "restic-init"])  # as the role does
    return path


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    load = os.getloadavg()
    directory = volume_dir(f"jupyterhub-user-{USER}")
    try:
        fill(directory, 1000 * MIB)
        total = data_bytes(directory)
        config = settings()
        results = {"first": {"plain": plain(directory), "ours": ours(config)}}
        (directory / "notebooks" / "new.ipynb").write_bytes(os.urandom(MIB))
        results["second"] = {"plain": plain(directory), "ours": ours(config)}
    finally:
        subprocess.run(["docker", "volume", "rm", "-f", f"jupyterhub-user-{USER}"], capture_output=True, check=False)
        shutil.rmtree(WORK, ignore_errors=True)
    restic_version = run(["restic", "version"]).stdout.split()[1]
    report = {"when": time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime()), "machine": platform.node(), "cores": os.cpu_count(),
              "load_at_start": [round(value, 2) for value in load], "restic": restic_version, "data_mib": round(total / MIB, 1), **results}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"restic-{report['when']}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['data_mib']} MiB in one volume; {report['cores']} cores, load {report['load_at_start']} at the start; restic {restic_version}\n")
    print("| backup | plain `restic backup` | ours, off-site copy | ratio (copy / plain) | ours, whole run (local archive + copy) | added: plain / ours |")
    print("|---|---|---|---|---|---|")
    for name in ("first", "second"):
        row = results[name]
        print(f"| {name} | {row['plain']['seconds']} s | {row['ours']['offsite_seconds']:.2f} s | "
              f"{row['ours']['offsite_seconds'] / row['plain']['seconds']:.2f} | {row['ours']['seconds']} s | "
              f"{row['plain']['data_added'] / MIB:.1f} / {row['ours']['data_added'] / MIB:.1f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
