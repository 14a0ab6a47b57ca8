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
# The bars the deployment is held to on the 2-core machine (bench/README.md).
BARS = {"rerun_s": 25, "ratio_p50": 1.5, "ratio_p95": 2.0, "users": 50, "all_ready_s": 120}


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
        lines += ["Concurrent starts through the REST API:", "",
                  "| users | ready | all ready after | p50 ready | hub CPU max / mean | hub memory max | memory per user server "
                  "| hub log errors / unresponsive loop / http timeouts | load before |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for c in conc:
            all_ready = f"{c['all_ready_s']:.1f} s" if c["all_ready_s"] is not None else "not all (180 s)"
            lines.append(f"| {c['users']} | {c['ready']}/{c['users']} | {all_ready} | {c['ready_p50']} s | "
                         f"{c['hub_cpu_pct_max']} % / {c['hub_cpu_pct_mean']} % | {c['hub_mem_mib_max']} MiB | "
                         f"{c['user_server_mem_mib_mean']} MiB | {c['hub_log']['errors']} / {c['hub_log']['unresponsive']} / "
                         f"{c['hub_log']['http_timeout']} | {' '.join(c['load_before']['loadavg'])} |")
        lines.append("")
    lines += ["Bars:", ""]
    if deploy:
        r = deploy["rerun"]
        lines.append(f"- no-change re-run <= {BARS['rerun_s']} s and changed=0: {r['wall_s']:.1f} s, changed={r['recap']['changed']}: "
                     f"{mark(r['wall_s'] <= BARS['rerun_s'] and r['recap']['changed'] == 0)}")
    if spawn:
        lines.append(f"- spawn p50 <= {BARS['ratio_p50']}x plain docker run: {spawn['ratio_p50']}x: {mark(spawn['ratio_p50'] <= BARS['ratio_p50'])}")
        lines.append(f"- spawn p95 <= {BARS['ratio_p95']}x plain docker run: {spawn['ratio_p95']}x: {mark(spawn['ratio_p95'] <= BARS['ratio_p95'])}")
    for c in conc or []:
        if c["users"] == BARS["users"]:
            ok = c["ready"] == c["users"] and (c["all_ready_s"] or 1e9) <= BARS["all_ready_s"] and c["hub_log"]["errors"] == 0
            lines.append(f"- {c['users']} concurrent users all ready within {BARS['all_ready_s']} s, no hub error: "
                         f"{c['ready']}/{c['users']} in {c['all_ready_s']} s, {c['hub_log']['errors']} errors: {mark(ok)}")
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
        ax.axhline(BARS["all_ready_s"], color="grey", linestyle=":", label=f"bar {BARS['all_ready_s']} s")
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
