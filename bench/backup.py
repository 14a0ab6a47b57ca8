"""Backup throughput of playbooks/backup.yml against plain `tar --zstd`, on this machine.

Needs the hub deployed here (`make deploy`: the backup's tool image and data volume). Creates
user volumes jupyterhub-user-jhbench-NN with generated data (half incompressible, half hex
text that zstd halves), then, on the same data in one run:
  - ours:  ansible-playbook playbooks/backup.yml for those users (wall time of the whole run,
           and the archive phase the helper container reports in the manifest);
  - plain: `tar --zstd -cf OUT -C VOLUME_DIR .` for each volume, one after the other, as an
           operator would by hand (GNU tar, zstd level 3, the same compression as ours).
Two sets: 10 users with about 1 GB in all, and 50 users with about 1 GB in all. Each
measurement is repeated (--repeat) and the median kept; the page cache is warm for both.
Writes bench/results/backup-<time>.json and prints a markdown table. Removes its volumes
and backups at the end.

  .venv/bin/python bench/backup.py [--repeat 3] [--keep-data]
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WORK = Path("/var/tmp/jhub-bench-backup")
MIB = 1 << 20


def run(cmd, **kwargs):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs)


def volume_dir(name):
    run(["docker", "volume", "create", name])
    return Path(run(["docker", "volume", "inspect", "-f", "{{.Mountpoint}}", name]).stdout.strip())


def fill(directory, size):
    """About SIZE bytes: half random (like images, archives), half hex text; big and small files."""
    directory.mkdir(parents=True, exist_ok=True)
    big, small = size * 3 // 4, size // 4
    for i in range(4):
        (directory / f"data-{i}.bin").write_bytes(os.urandom(big // 8))
        (directory / f"table-{i}.csv").write_text(os.urandom(big // 16).hex())
    notebooks = directory / "notebooks"
    notebooks.mkdir(exist_ok=True)
    count = max(small // (64 * 1024), 1)
    for i in range(count):
        part = small // count
        if i % 2:
            (notebooks / f"analysis {i}.ipynb").write_text(os.urandom(part // 2).hex())
        else:
            (notebooks / f"figure-{i}.png").write_bytes(os.urandom(part))


def data_bytes(directory):
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file() and not p.is_symlink())


def ours(users, root):
    """Wall time of the backup playbook, and the archive phase from its manifest."""
    shutil.rmtree(root, ignore_errors=True)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    extra = {"jupyterhub_backup_users": users, "jupyterhub_backup_hub_state": False,
             "jupyterhub_backup_root": str(root), "jupyterhub_backup_keep": 1}
    started = time.monotonic()
    run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), str(ROOT / "playbooks" / "backup.yml"),
         "-e", json.dumps(extra)], cwd=ROOT, env=env)
    wall = time.monotonic() - started
    manifest = json.loads(next(root.glob("jhub-backup-*/manifest.json")).read_text())
    size = sum(a["size"] for a in manifest["archives"])
    return wall, manifest["archive_seconds"], size


def plain(dirs, out):
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.monotonic()
    for name, directory in dirs:
        run(["tar", "--zstd", "--create", f"--file={out / name}.tar.zst", f"--directory={directory}", "."])
    wall = time.monotonic() - started
    return wall, sum(p.stat().st_size for p in out.iterdir())


def measure(users, per_user, repeat):
    dirs = []
    for user in users:
        directory = volume_dir(f"jupyterhub-user-{user}")
        fill(directory, per_user)
        dirs.append((user, directory))
    total = sum(data_bytes(d) for _volume, d in dirs)
    plain(dirs, WORK / "plain")  # warms the page cache for both
    ours_runs, plain_runs = [], []
    for _round in range(repeat):
        ours_runs.append(ours(users, WORK / "ours"))
        plain_runs.append(plain(dirs, WORK / "plain"))
    wall = statistics.median(r[0] for r in ours_runs)
    phase = statistics.median(r[1] for r in ours_runs)
    tar = statistics.median(r[0] for r in plain_runs)
    return {
        "users": len(users), "data_mib": round(total / MIB, 1),
        "ours_wall_s": round(wall, 2), "ours_archive_s": round(phase, 2),
        "plain_tar_s": round(tar, 2),
        "ours_wall_mib_s": round(total / MIB / wall, 1), "ours_archive_mib_s": round(total / MIB / phase, 1),
        "plain_tar_mib_s": round(total / MIB / tar, 1),
        "ratio_wall": round(tar / wall, 2), "ratio_archive": round(tar / phase, 2),
        "ours_archive_mib": round(ours_runs[-1][2] / MIB, 1), "plain_archive_mib": round(plain_runs[-1][1] / MIB, 1),
        "runs": {"ours": ours_runs, "plain": plain_runs},
    }


def cleanup(users):
    for user in users:
        subprocess.run(["docker", "volume", "rm", "-f", f"jupyterhub-user-{user}"], capture_output=True, check=False)
    shutil.rmtree(WORK, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep-data", action="store_true")
    args = parser.parse_args()
    sets = [("10 users, 1 GiB", [f"jhbench-{i:02d}" for i in range(10)], 100 * MIB),
            ("50 users, 1 GiB", [f"jhbench-{i:02d}" for i in range(50)], 20 * MIB)]
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": platform.node(),
              "cpus": os.cpu_count(), "loadavg_before": os.getloadavg(), "sets": {}}
    try:
        for label, users, per_user in sets:
            cleanup(users)
            result["sets"][label] = measure(users, per_user, args.repeat)
    finally:
        if not args.keep_data:
            cleanup(sets[-1][1])
    result["loadavg_after"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"backup-{result['date'].replace(':', '')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("| set | data | backup.yml wall | its archive phase | plain tar --zstd | ratio (wall) | ratio (archive phase) |")
    print("|---|---|---|---|---|---|---|")
    for label, r in result["sets"].items():
        print(f"| {label} | {r['data_mib']} MiB | {r['ours_wall_s']} s ({r['ours_wall_mib_s']} MiB/s) | "
              f"{r['ours_archive_s']} s ({r['ours_archive_mib_s']} MiB/s) | {r['plain_tar_s']} s ({r['plain_tar_mib_s']} MiB/s) | "
              f"{r['ratio_wall']} | {r['ratio_archive']} |")
    print(f"\nload average before/after: {result['loadavg_before']} / {result['loadavg_after']}; results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
