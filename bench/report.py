"""Render a bench/bench.py result: a markdown table and two PNG plots next to the JSON.

Usage: bench/report.py [RESULT.json]   (default: the newest bench/results/bench-*.json)
Writes bench/results/latest.md (naming the JSON it shows), latency.png (spawn latency
distribution) and concurrency.png (ready time against the number of users) into bench/results,
or into BENCH_RESULTS. It writes nothing else: bench/README.md links to these files and keeps
the figures of the recorded runs it discusses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__import__("os").environ.get("BENCH_RESULTS", Path(__file__).resolve().parent / "results"))
# The bars the deployment is held to on the 2-core machine (bench/README.md): a no-change re-run;
# plain `docker run` of the notebook image; one user against it; bursts against the machine's floor.
BARS = {"rerun_s": 25, "reference_p50_s": 1.8, "ratio_p50": 1.3, "burst_users": 50, "last_over_floor": 1.5,
        "first_ready_s": 10, "big_burst_users": 100, "unresponsive_s": 1.0}


def mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def table(run: dict) -> str:
    lines = [f"Run `bench-{run['started']}.json` ({run.get('label') or 'unlabelled'}, {run['git']}), "
             f"{run['machine']['cpus']} cores, {run['machine']['mem_gib']} GiB.", ""]
    deploy = run.get("deploy")
    if deploy:
        lines += ["| site.yml | wall time | tasks | changed | load before (1/5/15 min) |", "|---|---|---|---|---|"]
        for key, what in (("cold", "cold (fresh host, nothing built)"), ("warm", "warm (images present, hub removed)"),
                          ("rerun", "no-change re-run")):
            d = deploy[key]
            lines.append(f"| {what} | {d['wall_s']:.1f} s | {d['tasks']} | {d['recap']['changed']} | "
                         f"{' '.join(d['load_before']['loadavg'])} |")
        lines += ["", "Ten slowest tasks of the cold run:", "", "| task | s |", "|---|---|"]
        lines += [f"| {t['task']} | {t['seconds']:.1f} |" for t in deploy["cold"]["slowest"]]
        lines += ["", "Ten slowest tasks of the no-change re-run:", "", "| task | s |", "|---|---|"]
        lines += [f"| {t['task']} | {t['seconds']:.1f} |" for t in deploy["rerun"]["slowest"]]
        lines.append("")
    spawn = run.get("spawn")
    if spawn:
        lines += [f"Spawn latency, {spawn['spawns']} sequential spawns of one user (load "
                  f"{' '.join(spawn['load_before']['loadavg'])}, {spawn['load_before']['docker_ps']} containers on the machine):", "",
                  "| | p50 | p95 |", "|---|---|---|",
                  f"| REST start to ready | {spawn['ready_p50']:.2f} s | {spawn['ready_p95']:.2f} s |",
                  f"| REST start to first kernel result | {spawn['kernel_p50']:.2f} s | {spawn['kernel_p95']:.2f} s |",
                  f"| plain `docker run` to /api (reference) | {spawn['reference_p50']:.2f} s | {spawn['reference_p95']:.2f} s |",
                  f"| ratio ready / reference p50 | {spawn['ratio_p50']:.2f} | {spawn['ratio_p95']:.2f} |", "",
                  f"Hub log during the spawns: {spawn['hub_log']['errors']} errors, {spawn['hub_log']['unresponsive']} "
                  f"unresponsive-loop warnings, {spawn['hub_log']['http_timeout']} http timeouts.", ""]
    conc = run.get("concurrency")
    if conc:
        lines += ["Users starting at the same moment through the REST API; the floor is plain `docker run` p50 x users / "
                  f"{run['machine']['cpus']} cores:", "",
                  "| users | ready | first ready | p50 ready | last ready | floor | last / floor | hub CPU max / mean "
                  "| hub memory max | memory per user server | hub log errors / event-loop warnings (longest) / http timeouts "
                  "| load before |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in conc:
            last = f"{c['all_ready_s']:.1f} s" if c["all_ready_s"] is not None else "not all"
            log = c["hub_log"]
            lines.append(f"| {c['users']} | {c['ready']}/{c['users']} | {c.get('first_ready_s')} s | {c['ready_p50']} s | {last} | "
                         f"{c.get('floor_s')} s | {c.get('last_over_floor')} | "
                         f"{c['hub_cpu_pct_max']} % / {c['hub_cpu_pct_mean']} % | {c['hub_mem_mib_max']} MiB | "
                         f"{c['user_server_mem_mib_mean']} MiB | {log['errors']} / {log['unresponsive']} "
                         f"({log.get('unresponsive_max_s', 0)} s) / {log['http_timeout']} | {' '.join(c['load_before']['loadavg'])} |")
        lines.append("")
    lines += ["Bars:", ""]
    if deploy:
        r = deploy["rerun"]
        lines.append(f"- no-change re-run <= {BARS['rerun_s']} s and changed=0: {r['wall_s']:.1f} s, changed={r['recap']['changed']}: "
                     f"{mark(r['wall_s'] <= BARS['rerun_s'] and r['recap']['changed'] == 0)}")
    if spawn:
        lines.append(f"- plain docker run p50 <= {BARS['reference_p50_s']} s: {spawn['reference_p50']:.2f} s: "
                     f"{mark(spawn['reference_p50'] <= BARS['reference_p50_s'])}")
        lines.append(f"- one user, p50 <= {BARS['ratio_p50']}x plain docker run: {spawn['ratio_p50']}x: "
                     f"{mark(spawn['ratio_p50'] <= BARS['ratio_p50'])}")
    for c in conc or []:
        if c["users"] == BARS["burst_users"]:
            ok = (c["ready"] == c["users"] and (c.get("last_over_floor") or 1e9) <= BARS["last_over_floor"]
                  and (c.get("first_ready_s") or 1e9) <= BARS["first_ready_s"])
            lines.append(f"- {c['users']} at once: all ready, the last within {BARS['last_over_floor']}x the floor, the first "
                         f"within {BARS['first_ready_s']} s: {c['ready']}/{c['users']}, last {c['all_ready_s']} s = "
                         f"{c.get('last_over_floor')}x, first {c.get('first_ready_s')} s: {mark(ok)}")
        if c["users"] == BARS["big_burst_users"]:
            log = c["hub_log"]
            ok = (c["ready"] == c["users"] and log["errors"] == 0
                  and log.get("unresponsive_max_s", 1e9) <= BARS["unresponsive_s"])
            lines.append(f"- {c['users']} at once: all ready, no hub error, no event-loop warning above {BARS['unresponsive_s']} s: "
                         f"{c['ready']}/{c['users']}, {log['errors']} errors, longest stall {log.get('unresponsive_max_s')} s: "
                         f"{mark(ok)}")
    return "\n".join(lines) + "\n"


def plots(run: dict, out: Path) -> None:
    spawn = run.get("spawn")
    if spawn:
        fig, ax = plt.subplots(figsize=(6, 3.2), dpi=80)
        data = [spawn["reference_s"], spawn["ready_s"], spawn["kernel_s"]]
        labels = ["plain docker run\nto /api", "REST start\nto ready", "REST start to\nkernel result"]
        ax.boxplot(data, orientation="horizontal", tick_labels=labels)
        for i, values in enumerate(data, start=1):
            ax.plot(values, [i] * len(values), "o", alpha=0.4, markersize=3)
        ax.set_xlabel("seconds")
        ax.set_title(f"Spawn latency, {spawn['spawns']} sequential spawns")
        fig.tight_layout()
        fig.savefig(out / "latency.png")
        plt.close(fig)
    conc = run.get("concurrency")
    if conc:
        fig, ax = plt.subplots(figsize=(6, 3.2), dpi=80)
        users = [c["users"] for c in conc]
        ax.plot(users, [max(c["ready_times_s"], default=0) for c in conc], "o-", label="last ready")
        ax.plot(users, [c["ready_p50"] or 0 for c in conc], "s--", label="median ready")
        for c in conc:
            ax.annotate(f"{c['ready']}/{c['users']}", (c["users"], max(c["ready_times_s"], default=0)),
                        textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.plot(users, [c.get("floor_s") or 0 for c in conc], "k:", label="machine floor")
        ax.plot(users, [BARS["last_over_floor"] * (c.get("floor_s") or 0) for c in conc], color="grey", linestyle="--",
                label=f"bar {BARS['last_over_floor']} x floor")
        ax.set_xlabel("users starting at the same moment")
        ax.set_ylabel("seconds after the start requests")
        ax.set_title("Ready time against the number of users")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "concurrency.png")
        plt.close(fig)


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else max(RESULTS.glob("bench-*.json"))
    run = json.loads(path.read_text())
    (RESULTS / "latest.md").write_text(table(run))
    plots(run, RESULTS)
    print((RESULTS / "latest.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
