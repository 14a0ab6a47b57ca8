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
# plain `docker run` of the notebook image; one user against the JupyterHub floor (the plain run plus the
# single-user server's own imports); bursts, read from the progress event streams, against the JupyterHub
# burst floor (that floor x users / cores).
BARS = {"rerun_s": 25, "reference_p50_s": 1.8, "jupyterhub_ratio_p50": 1.1, "burst_users": 50,
        "last_over_jupyterhub_floor": 1.15, "first_ready_s": 5, "big_burst_users": 100, "unresponsive_s": 1.0}


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
                  f"| ratio ready / reference p50 | {spawn['ratio_p50']:.2f} | {spawn['ratio_p95']:.2f} |", ""]
        imports = spawn.get("imports")
        if imports:
            chain = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in imports["chain_cumulative_s"].items())
            lines += [f"The JupyterHub floor: the plain run plus what `import jupyterhub.singleuser` costs beyond the plain "
                      f"server's `import jupyter_server.serverapp` (medians of {imports['repeat']} fresh interpreters each, "
                      f"in the notebook image): {imports['singleuser_import_p50']:.3f} s against "
                      f"{imports['plain_import_p50']:.3f} s, +{imports['extra_import_s']:.3f} s; floor "
                      f"{spawn['jupyterhub_floor_s']:.2f} s, ready p50 = {spawn['jupyterhub_ratio_p50']:.2f} x that floor. "
                      f"The chain after the plain server's modules (cumulative, charged to the first importer): {chain}.", ""]
        lines += [f"Hub log during the spawns: {spawn['hub_log']['errors']} errors, {spawn['hub_log']['unresponsive']} "
                  f"unresponsive-loop warnings, {spawn['hub_log']['http_timeout']} http timeouts.", ""]
    conc = run.get("concurrency")
    if conc:
        streams = [c for c in conc if c.get("stream")]
        if streams:
            lines += ["Users starting at the same moment, each waiting on its progress event stream as the spawn page does; "
                      "the JupyterHub burst floor is the JupyterHub floor x users / cores:", "",
                      "| users | ready | first ready | p50 ready | last ready | JupyterHub floor | last / JupyterHub floor "
                      "| last / plain floor |", "|---|---|---|---|---|---|---|---|"]
            for c in streams:
                st = c["stream"]
                last = f"{st['all_ready_s']:.1f} s" if st["all_ready_s"] is not None else "not all"
                lines.append(f"| {c['users']} | {st['ready']}/{c['users']} | {st['first_ready_s']} s | {st['ready_p50']} s | "
                             f"{last} | {c['jupyterhub_floor_s']} s | {st['last_over_jupyterhub_floor']} | "
                             f"{st['last_over_floor']} |")
            lines += ["", "The same bursts seen by one client polling the users list twice a second; the floor is plain "
                      f"`docker run` p50 x users / {run['machine']['cpus']} cores:", ""]
        else:
            lines += ["Users starting at the same moment through the REST API; the floor is plain `docker run` p50 x "
                      f"users / {run['machine']['cpus']} cores:", ""]
        lines += ["| users | ready | first ready | p50 ready | last ready | floor | last / floor | hub CPU max / mean "
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
        if "jupyterhub_ratio_p50" in spawn:
            lines.append(f"- one user, p50 <= {BARS['jupyterhub_ratio_p50']}x the JupyterHub floor: "
                         f"{spawn['jupyterhub_ratio_p50']}x ({spawn['ratio_p50']}x plain docker run): "
                         f"{mark(spawn['jupyterhub_ratio_p50'] <= BARS['jupyterhub_ratio_p50'])}")
    for c in conc or []:
        st = c.get("stream")
        if not st or c["users"] not in (BARS["burst_users"], BARS["big_burst_users"]):
            continue
        limit = BARS["last_over_jupyterhub_floor"]
        ok = st["ready"] == c["users"] and (st["last_over_jupyterhub_floor"] or 1e9) <= limit
        what = f"- {c['users']} at once: all ready, the last within {limit}x the JupyterHub burst floor"
        seen = f"{st['ready']}/{c['users']}, last {st['all_ready_s']} s = {st['last_over_jupyterhub_floor']}x"
        if c["users"] == BARS["burst_users"]:
            ok = ok and (st["first_ready_s"] or 1e9) <= BARS["first_ready_s"]
            what += f", the first within {BARS['first_ready_s']} s"
            seen += f", first {st['first_ready_s']} s"
        else:
            log = c["hub_log"]
            ok = ok and log["errors"] == 0 and log.get("unresponsive_max_s", 1e9) <= BARS["unresponsive_s"]
            what += f", no hub error, no event-loop stall above {BARS['unresponsive_s']} s"
            seen += f", {log['errors']} errors, longest stall {log.get('unresponsive_max_s')} s"
        lines.append(f"{what}: {seen}: {mark(ok)}")
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
        ax.plot(users, [max(c["ready_times_s"], default=0) for c in conc], "o-", label="last ready (polling)")
        if all(c.get("stream") for c in conc):
            ax.plot(users, [max(c["stream"]["ready_times_s"], default=0) for c in conc], "^-",
                    label="last ready (progress stream)")
            ax.plot(users, [c["jupyterhub_floor_s"] for c in conc], "b:", label="JupyterHub floor")
        ax.plot(users, [c["ready_p50"] or 0 for c in conc], "s--", label="median ready")
        for c in conc:
            ax.annotate(f"{c['ready']}/{c['users']}", (c["users"], max(c["ready_times_s"], default=0)),
                        textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.plot(users, [c.get("floor_s") or 0 for c in conc], "k:", label="machine floor")
        limit = BARS["last_over_jupyterhub_floor"]
        ax.plot(users, [limit * (c.get("jupyterhub_floor_s") or 0) for c in conc], color="grey", linestyle="--",
                label=f"bar {limit} x JupyterHub floor")
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
