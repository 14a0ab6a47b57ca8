"""Benchmark of a jhub.docker deployment on the Molecule test host of molecule/bench.

Phases (each one recorded in one JSON file under bench/results/):
  deploy       cold site.yml (fresh test host, nothing built), warm site.yml (images present, hub
               removed), no-change re-run; wall times, PLAY RECAP and the ten slowest tasks
               (ansible.posix.profile_tasks).
  spawn        N sequential spawns of one user through the REST API with a service token: start
               request to ready, and to the result of the first kernel execution; interleaved with
               the same notebook image started by plain `docker run` in the test host until its
               Jupyter server answers /api (the physical reference, the plain floor); then what the
               single-user server's own imports cost beyond the plain server's, in the same image
               (`import jupyterhub.singleuser` against `import jupyter_server.serverapp`, fresh
               interpreters, alternating) and its import chain: the plain floor plus that cost is
               the JupyterHub floor.
  concurrency  25, 50, 100 users start at the same moment, each then waiting on its server's progress
               event stream as the spawn page does, while one client polls the users list; for each
               client: success rate, first and last ready, against both floors of the same run (a
               floor × users ÷ cores: the time the machine needs to start that many servers without
               any hub, or with JupyterHub's own imports), docker stats of the hub during the run
               (CPU, memory), memory per user server, hub log errors and event-loop warnings with
               their longest stall.
Usage: bench/bench.py [--skip-deploy] [--keep] [--spawns 20] [--users 25,50,100] [--out DIR]

With BENCH_SCENARIO=swarm, the spawn and concurrency phases run against the Molecule scenario swarm
(converged beforehand: molecule converge -s swarm; then --skip-deploy): the hub on the manager, the
users' servers as services on the two workers, and the plain `docker run` on the first worker.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
from jhub_testing.hubclient import HubClient

SCENARIO = os.environ.get("BENCH_SCENARIO") or "bench"
DISTRO = os.environ.get("MOLECULE_DISTRO") or "bookworm"
SWARM = SCENARIO == "swarm"
# The hub's test host, named as in .config/molecule/config.yml (jhub-SCENARIO-DISTRO) or, on the swarm,
# its manager; the hosts that run users' servers; the one where the plain `docker run` is measured.
HOST = f"jhub-swarm-manager-{DISTRO}" if SWARM else f"jhub-{SCENARIO}-{DISTRO}"
SERVER_HOSTS = [f"jhub-swarm-w1-{DISTRO}", f"jhub-swarm-w2-{DISTRO}"] if SWARM else [HOST]
FLOOR_HOST = SERVER_HOSTS[0]
BIN = Path(sys.executable).parent
HUB = "jupyterhub"
# The test host is a container on this machine: it has the machine's cores.
CORES = os.cpu_count() or 1
READY_TIMEOUT = 180
# A burst waits in the hub's start queue for up to jupyterhub_spawner_queue_timeout (300 s) first.
BURST_TIMEOUT = 480


def merge(base: dict, over: dict) -> dict:
    """Molecule's merge of a scenario's molecule.yml over the shared base: mappings key by key, the rest replaced."""
    merged = dict(base)
    for key, value in over.items():
        merged[key] = merge(base[key], value) if isinstance(base.get(key), dict) and isinstance(value, dict) else value
    return merged


# The scenario's group_vars as Molecule sees them: the shared base with the scenario's own file over it.
MOLECULE = merge(yaml.safe_load((ROOT / ".config" / "molecule" / "config.yml").read_text()),
                 yaml.safe_load((ROOT / "molecule" / SCENARIO / "molecule.yml").read_text()) or {})
GROUP_VARS = MOLECULE["provisioner"]["inventory"]["group_vars"]["jupyterhub"]
TOKEN = GROUP_VARS["jupyterhub_services"][0]["api_token"]
PORT = GROUP_VARS["jupyterhub_port"]


def url() -> str:
    """The hub at the test host's address on the controller's Docker network (nothing is published)."""
    address = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", HOST],
                             capture_output=True, text=True, check=True).stdout.split()[0]
    return f"http://{address}:{PORT}"


def notebook_image() -> str:
    """The image the deployed hub spawns (its default), read from its configuration on the test host."""
    config = host_sh("cat /srv/jupyterhub/jupyterhub_config.py")
    match = re.search(r"^c\.DockerSpawner\.image = (.+)$", config, re.M)
    if not match:
        raise RuntimeError("no c.DockerSpawner.image in the hub's configuration on the test host")
    return ast.literal_eval(match.group(1))


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e.update(PATH=f"{BIN}{os.pathsep}{e.get('PATH', '')}", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
             ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PY_COLORS="0", NO_COLOR="1")
    e.update(extra)
    return e


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load() -> dict:
    """The machine's load at this moment: it is shared, so every number comes with it."""
    names = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True, check=False).stdout.split()
    inner = [host_sh("docker ps -q | wc -l", check=False, host=host).strip() for host in dict.fromkeys([HOST, *SERVER_HOSTS])]
    return {"loadavg": Path("/proc/loadavg").read_text().split()[:3], "docker_ps": len(names),
            "molecule_hosts": sorted(n for n in names if n.startswith("jhub-")),
            "test_host_containers": sum(int(n) for n in inner if n.isdigit()) if any(n.isdigit() for n in inner) else None}


def host_sh(script: str, check: bool = True, stdin: str | None = None, host: str = HOST) -> str:
    """Run a shell script inside the test host (or another test host)."""
    result = subprocess.run(["docker", "exec", "-i", host, "sh", "-c", script], input=stdin,
                            capture_output=True, text=True, check=False)
    if check and result.returncode:
        raise RuntimeError(f"{script}: {result.stderr}")
    return result.stdout


# --- deploy -----------------------------------------------------------------------------------
def molecule(step: str) -> None:
    log(f"molecule {step} -s {SCENARIO}")
    subprocess.run([str(BIN / "molecule"), step, "-s", SCENARIO], cwd=ROOT, env=env(), check=True,
                   stdout=subprocess.DEVNULL if step == "destroy" else None)


def inventory() -> Path:
    """Molecule's generated inventory of the bench scenario (its ephemeral directory)."""
    for path in sorted(Path.home().glob(f".ansible/tmp/molecule.*.{SCENARIO}/inventory/ansible_inventory.yml"),
                       key=lambda p: p.stat().st_mtime, reverse=True):
        if HOST in path.read_text():
            return path.parent
    raise RuntimeError("no inventory of the bench scenario: run `molecule create -s bench` first")


def site(label: str, out: Path) -> dict:
    """Run site.yml (through the scenario's converge) against the test host; time and profile it."""
    inv = inventory()
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inv), str(ROOT / "molecule" / SCENARIO / "converge.yml")]
    log(f"site.yml ({label})")
    before = load()
    start = time.monotonic()
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, env=env(
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_TASK_OUTPUT_LIMIT="10",
        PROFILE_TASKS_SORT_ORDER="descending", MOLECULE_EPHEMERAL_DIRECTORY=str(inv.parent),
        MOLECULE_SCENARIO_DIRECTORY=str(ROOT / "molecule" / SCENARIO)))
    wall = time.monotonic() - start
    (out / f"site-{label}.log").write_text(result.stdout + result.stderr)
    if result.returncode:
        raise RuntimeError(f"site.yml ({label}) failed:\n{result.stdout[-4000:]}")
    match = re.search(r"PLAY RECAP \**\n\S+\s*: (.*)", result.stdout)
    recap = {k: int(v) for k, v in (f.split("=") for f in match.group(1).split())}
    summary = result.stdout.split("PLAY RECAP")[-1]
    slowest = [{"task": t.strip(), "seconds": float(s)}
               for t, s in re.findall(r"^(\S.*?) -{2,} (\d+\.\d+)s$", summary, re.M)][:10]
    tasks = recap["ok"] + recap["changed"] + recap.get("skipped", 0) + recap.get("failed", 0)
    log(f"site.yml ({label}): {wall:.1f} s, {recap}")
    return {"wall_s": round(wall, 2), "recap": recap, "tasks": tasks, "slowest": slowest,
            "load_before": before, "load_after": load()}


def remove_hub() -> None:
    """Warm start: the hub gone (container, network, data, config), the engine and images kept."""
    host_sh(f"docker rm -f {HUB} >/dev/null 2>&1; docker network rm {HUB} >/dev/null 2>&1; "
            "docker volume rm jupyterhub-data >/dev/null 2>&1; rm -rf /srv/jupyterhub; true")


def deploy(out: Path) -> dict:
    molecule("dependency")
    molecule("destroy")
    molecule("create")
    molecule("prepare")
    result = {"cold": site("cold", out)}
    remove_hub()
    result["warm"] = site("warm", out)
    result["rerun"] = site("rerun", out)
    return result


# --- the hub ------------------------------------------------------------------------------------
def client() -> HubClient:
    hub = HubClient(url(), timeout=60)
    hub.http.headers["Authorization"] = f"token {TOKEN}"
    return hub


def ensure_user(hub: HubClient, name: str) -> None:
    response = hub.api("POST", f"/users/{name}")
    assert response.status_code in (201, 409), (response.status_code, response.text)


def pct(values: list[float], p: float) -> float | None:
    """Percentile by linear interpolation (p in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 3)


REFERENCE = r"""
import json, subprocess, time, urllib.request
name = "bench-reference"
subprocess.run(["docker", "rm", "-f", name], capture_output=True)
start = time.monotonic()
subprocess.run(["docker", "run", "-d", "--rm", "--name", name, "--network", NETWORK, IMAGE,
                "jupyter", "server", "--ServerApp.ip=0.0.0.0", "--ServerApp.port=8888",
                "--IdentityProvider.token="], check=True, capture_output=True)
ip = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name],
                    check=True, capture_output=True, text=True).stdout.strip()
while time.monotonic() - start < 120:
    try:
        urllib.request.urlopen(f"http://{ip}:8888/api", timeout=2).read()
        break
    except Exception:
        time.sleep(0.05)
elapsed = time.monotonic() - start
subprocess.run(["docker", "rm", "-f", name], capture_output=True)
print(json.dumps(elapsed))
"""


def reference_start() -> float:
    # On a worker of the swarm, the default bridge: an overlay address is not reachable from the node itself.
    network = "bridge" if SWARM else HUB
    script = REFERENCE.replace("NETWORK", repr(network)).replace("IMAGE", repr(notebook_image()))
    return float(host_sh("python3 -", stdin=script, host=FLOOR_HOST).strip())


# What the single-user server imports beyond the plain server, in fresh interpreters of one container of the
# notebook image, alternating so that a slower moment of the machine hits both alike. Then the import chain
# (python -X importtime, after the plain server's modules): the cumulative cost of each named module.
IMPORTS = r"""
import json, re, statistics, subprocess, sys
plain = "import jupyter_server.serverapp"
hub = "import jupyterhub.singleuser"
timed = "import time; t = time.perf_counter(); {}; print(time.perf_counter() - t)"
def once(code):
    return float(subprocess.run([sys.executable, "-c", timed.format(code)], check=True, capture_output=True,
                                text=True).stdout)
once(plain), once(hub)  # the page cache, as for every start after the first
times = {"plain": [], "singleuser": []}
for _ in range(REPEAT):
    times["plain"].append(once(plain))
    times["singleuser"].append(once(hub))
chain = subprocess.run([sys.executable, "-X", "importtime", "-c", plain + "; " + hub], check=True,
                       capture_output=True, text=True).stderr
marker = chain.splitlines().index(next(l for l in chain.splitlines() if l.rstrip().endswith("| jupyter_server.serverapp")))
cumulative = {}
for line in chain.splitlines()[marker + 1:]:
    match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
    if match:
        cumulative[match.group(4)] = int(match.group(2)) / 1e6
print(json.dumps({"times": times, "chain": cumulative}))
"""
# The modules of the import chain that the report names (what the single-user server brings that the plain
# server does not): the hub's database layer and HTTP client, and the modules of jupyterhub that pull them in.
CHAIN = ["jupyterhub.singleuser", "jupyterhub.services.auth", "jupyterhub.scopes", "jupyterhub.orm", "jupyterhub.utils",
         "jupyterhub.log", "sqlalchemy", "alembic", "aiohttp"]


def import_costs(repeat: int = 7) -> dict:
    """The single-user server's own import cost, against the plain server's, in the notebook image."""
    script = IMPORTS.replace("REPEAT", str(repeat))
    out = host_sh(f"docker run --rm -i --entrypoint python3 {notebook_image()} -", stdin=script, host=FLOOR_HOST)
    data = json.loads(out.strip().splitlines()[-1])
    plain, hub = (statistics.median(data["times"][key]) for key in ("plain", "singleuser"))
    return {"repeat": repeat, "plain_import_s": data["times"]["plain"], "singleuser_import_s": data["times"]["singleuser"],
            "plain_import_p50": round(plain, 3), "singleuser_import_p50": round(hub, 3),
            "extra_import_s": round(hub - plain, 3),
            "chain_cumulative_s": {name: round(data["chain"][name], 3) for name in CHAIN if name in data["chain"]}}


def spawn_once(hub: HubClient, name: str) -> tuple[float, float]:
    start = time.monotonic()
    response = hub.api("POST", f"/users/{name}/server")
    assert response.status_code in (201, 202), (response.status_code, response.text)
    ready = None
    while time.monotonic() - start < READY_TIMEOUT:
        model = hub.api("GET", f"/users/{name}").json()
        server = model.get("servers", {}).get("")
        if server and server.get("ready"):
            ready = time.monotonic() - start
            break
        if not server and not model.get("pending"):
            raise AssertionError(f"{name}'s server failed to start: {model}")
        time.sleep(0.05)
    assert ready is not None, f"{name}'s server was not ready after {READY_TIMEOUT} s"
    output = hub.execute(name, "print(6 * 7)")
    assert output.strip() == "42", output
    return ready, time.monotonic() - start


def spawn(spawns: int) -> dict:
    hub = client()
    name = "bench-seq"
    ensure_user(hub, name)
    ready, kernel, reference = [], [], []
    phase_start = time.time()
    before = load()
    for i in range(spawns):
        r, k = spawn_once(hub, name)
        hub.stop_server(name)
        ref = reference_start()
        ready.append(round(r, 3))
        kernel.append(round(k, 3))
        reference.append(round(ref, 3))
        log(f"spawn {i + 1}/{spawns}: ready {r:.2f} s, first kernel result {k:.2f} s, plain docker run {ref:.2f} s")
    imports = import_costs()
    log(f"imports: plain server {imports['plain_import_p50']} s, single-user server {imports['singleuser_import_p50']} s "
        f"(+{imports['extra_import_s']} s)")
    result = {"spawns": spawns, "ready_s": ready, "kernel_s": kernel, "reference_s": reference, "imports": imports,
              "load_before": before, "load_after": load(), "hub_log": hub_log(phase_start)}
    for key in ("ready", "kernel", "reference"):
        result[f"{key}_p50"] = pct(result[f"{key}_s"], 50)
        result[f"{key}_p95"] = pct(result[f"{key}_s"], 95)
    # Two floors: the plain run (the machine's limit), and the JupyterHub floor: the plain run plus what the
    # single-user server's own imports cost (JupyterHub's to take out, not this collection's).
    result["jupyterhub_floor_s"] = round(result["reference_p50"] + max(imports["extra_import_s"], 0), 3)
    result["ratio_p50"] = round(result["ready_p50"] / result["reference_p50"], 2)
    result["ratio_p95"] = round(result["ready_p95"] / result["reference_p50"], 2)
    result["jupyterhub_ratio_p50"] = round(result["ready_p50"] / result["jupyterhub_floor_s"], 2)
    return result


def hub_log(since: float) -> dict:
    text = host_sh(f"docker logs --since {int(since)} {HUB} 2>&1")
    errors = [line for line in text.splitlines() if re.match(r"\[[EC] ", line)]
    return {"errors": len(errors), "error_lines": errors[:20],
            "http_timeout": text.count("never showed up"),
            "unresponsive": len(re.findall(r"Event loop was unresponsive", text)),
            "unresponsive_max_s": max((float(s) for s in re.findall(r"Event loop was unresponsive for (?:at least )?([\d.]+)s", text)),
                                      default=0.0),
            "proxy_599": len(re.findall(r"(?im)^.*proxy.*\b599\b(?!\.\d+ms).*$", text))}


def parse_size(text: str) -> float:
    """'123.4MiB' -> MiB."""
    number, unit = re.match(r"([\d.]+)\s*([A-Za-z]+)", text).groups()
    return float(number) * {"B": 1 / 2**20, "KiB": 1 / 1024, "kB": 1 / 1024, "MiB": 1, "MB": 1,
                            "GiB": 1024, "GB": 1024}[unit]


class HubStats(threading.Thread):
    """docker stats of the hub container, sampled until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[dict] = []
        self.done = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self.done.is_set():
            line = host_sh(f"docker stats --no-stream --format '{{{{.CPUPerc}}}} {{{{.MemUsage}}}}' {HUB}",
                           check=False).strip()
            if line:
                cpu, mem = line.split()[0], line.split()[1]
                self.samples.append({"t": round(time.monotonic() - start, 1), "cpu_pct": float(cpu.rstrip("%")),
                                     "mem_mib": round(parse_size(mem), 1)})


def stop_all(hub: HubClient, names: list[str], timeout: float = 300) -> None:
    for name in names:
        hub.api("DELETE", f"/users/{name}/server")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        users = {u["name"]: u for u in hub.api("GET", "/users").json()}
        if not any(users.get(n, {}).get("servers") or users.get(n, {}).get("pending") for n in names):
            break
        time.sleep(1)
    # Nothing of the phase left in the test host either.
    if SWARM:
        host_sh("docker service ls -q --filter name=jupyter-bench | xargs -r docker service rm >/dev/null", check=False)
    else:
        host_sh("docker ps -aq --filter name=jupyter-bench | xargs -r docker rm -f >/dev/null", check=False)


def concurrency(count: int, reference_p50: float, jupyterhub_floor: float) -> dict:
    hub = client()
    names = [f"bench-c{count}-{i:02d}" for i in range(count)]
    for name in names:
        ensure_user(hub, name)
    before = load()
    stats = HubStats()
    stats.start()
    time.sleep(2)
    phase_start = time.time()
    barrier = threading.Barrier(count + 1)
    started: dict[str, float] = {}
    codes: dict[str, int] = {}
    streamed: dict[str, float] = {}
    stream_failed: dict[str, str] = {}

    def post(name: str) -> None:
        # As the spawn page: the start request, then the progress event stream until ready or failed.
        session = client()
        barrier.wait()
        started[name] = time.monotonic()
        codes[name] = session.api("POST", f"/users/{name}/server").status_code
        try:
            event = session.wait_progress(name, token=TOKEN, timeout=BURST_TIMEOUT)
        except requests.RequestException as error:
            event = {"failed": True, "message": str(error)}
        if event.get("ready"):
            streamed[name] = round(time.monotonic() - t0, 2)
        else:
            stream_failed[name] = event.get("message", "the stream ended without an event")

    threads = [threading.Thread(target=post, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    barrier.wait()
    t0 = time.monotonic()
    # Two clients of the same burst: each user's progress event stream (above, the bars use it), and one
    # poller of the users list twice a second, from the first request on (a start request itself may take
    # up to the hub's slow_spawn_timeout, 10 s, to answer, while other servers are ready already).
    ready: dict[str, float] = {}
    failed: set[str] = set()
    while time.monotonic() - t0 < BURST_TIMEOUT and len(ready) + len(failed) < count:
        users = {u["name"]: u for u in hub.api("GET", "/users").json()}
        now = time.monotonic() - t0
        for name in names:
            if name in ready or name in failed:
                continue
            model = users.get(name, {})
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                ready[name] = round(now, 2)
            elif not server and not model.get("pending") and codes.get(name) in (201, 202):
                failed.add(name)
        time.sleep(0.5)
    for thread in threads:
        thread.join()
    memory = "".join(host_sh("docker stats --no-stream --format '{{.Name}} {{.MemUsage}}'", check=False, host=host)
                     for host in SERVER_HOSTS)
    user_mem = [parse_size(line.split()[1]) for line in memory.splitlines() if line.startswith("jupyter-bench")]
    stats.done.set()
    stats.join()
    errors = hub_log(phase_start)
    # The machine's floor: one plain start's wall time (measured alone, in this run) for each server,
    # on every core at once.
    # The JupyterHub floor adds the single-user server's own import cost to each start.
    floor = round(reference_p50 * count / CORES, 2)
    hub_floor = round(jupyterhub_floor * count / CORES, 2)
    last = max(ready.values()) if len(ready) == count else None
    stream_last = max(streamed.values()) if len(streamed) == count else None
    result = {
        "users": count, "ready": len(ready), "failed": sorted(failed), "post_status": sorted(set(codes.values())),
        "success_rate": round(len(ready) / count, 3),
        "all_ready_s": last, "first_ready_s": min(ready.values(), default=None),
        "floor_s": floor, "last_over_floor": round(last / floor, 2) if last else None,
        "jupyterhub_floor_s": hub_floor,
        "stream": {"ready": len(streamed), "failed": stream_failed, "all_ready_s": stream_last,
                   "first_ready_s": min(streamed.values(), default=None),
                   "ready_p50": pct(list(streamed.values()), 50),
                   "last_over_floor": round(stream_last / floor, 2) if stream_last else None,
                   "last_over_jupyterhub_floor": round(stream_last / hub_floor, 2) if stream_last else None,
                   "ready_times_s": sorted(streamed.values())},
        "ready_times_s": sorted(ready.values()), "ready_p50": pct(list(ready.values()), 50),
        "hub_cpu_pct_max": max((s["cpu_pct"] for s in stats.samples), default=None),
        "hub_cpu_pct_mean": round(statistics.mean(s["cpu_pct"] for s in stats.samples), 1) if stats.samples else None,
        "hub_mem_mib_max": max((s["mem_mib"] for s in stats.samples), default=None),
        "hub_stats": stats.samples,
        "user_server_mem_mib_mean": round(statistics.mean(user_mem), 1) if user_mem else None,
        "hub_log": errors, "load_before": before, "load_after": load(),
    }
    stream = result["stream"]
    log(f"{count} at once (progress stream): {stream['ready']}/{count} ready, first {stream['first_ready_s']} s, last "
        f"{stream_last} s ({stream['last_over_jupyterhub_floor']} x the JupyterHub floor of {hub_floor} s, "
        f"{stream['last_over_floor']} x the plain floor of {floor} s)")
    log(f"{count} at once (polling): {len(ready)}/{count} ready, first {result['first_ready_s']} s, last {last} s "
        f"({result['last_over_floor']} x the floor of {floor} s), hub CPU max {result['hub_cpu_pct_max']} %, "
        f"hub log errors {errors['errors']}, event-loop warnings {errors['unresponsive']} "
        f"(longest {errors['unresponsive_max_s']} s)")
    stop_all(hub, names)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-deploy", action="store_true", help="use the running test host as it is")
    parser.add_argument("--keep", action="store_true", help="leave the test host up (molecule destroy -s bench)")
    parser.add_argument("--spawns", type=int, default=20)
    parser.add_argument("--users", default="25,50,100")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--label", default="", help="a word for this run, e.g. baseline")
    args = parser.parse_args()
    if SWARM and not args.skip_deploy:
        parser.error("BENCH_SCENARIO=swarm measures the bursts only: run `molecule converge -s swarm`, then --skip-deploy")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out)
    logs = out / "logs" / stamp
    logs.mkdir(parents=True, exist_ok=True)
    run = {"started": stamp, "label": args.label, "scenario": SCENARIO, "git": subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip(),
        "machine": {"cpus": CORES, "mem_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1)}}
    path = out / f"bench-{stamp}.json"

    def save() -> None:
        path.write_text(json.dumps(run, indent=1) + "\n")

    try:
        if not args.skip_deploy:
            run["deploy"] = deploy(logs)
            save()
        requests.get(f"{url()}/hub/health", timeout=10).raise_for_status()
        run["spawn"] = spawn(args.spawns)
        save()
        run["concurrency"] = []
        for count in (int(c) for c in args.users.split(",") if c):
            run["concurrency"].append(concurrency(count, run["spawn"]["reference_p50"], run["spawn"]["jupyterhub_floor_s"]))
            save()
    finally:
        run["finished"] = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        save()
        log(f"results: {path}")
        if not args.keep and not args.skip_deploy:
            molecule("destroy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
