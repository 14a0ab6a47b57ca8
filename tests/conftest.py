"""Shared helpers: run the collection's playbooks on this machine and snapshot its state."""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from jhub_testing import cpu

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUTPUT = ROOT / "tests" / "output"
DISTROS = os.environ.get("JHUB_DISTROS", "bookworm trixie").split()

# The end-to-end suite needs a deployed hub; the full-stack Molecule scenario runs it
# with JHUB_URL set (see molecule/default/verify.yml).
collect_ignore = [] if os.environ.get("JHUB_URL") else ["e2e"]
# The HTTPS checks need a hub behind the HTTPS front (the default scenario's switch to HTTPS).
if not os.environ.get("JHUB_URL", "").startswith("https://"):
    collect_ignore.append("e2e/test_https.py")


def ansible_env(**extra: str) -> dict[str, str]:
    """Environment for ansible and molecule run from the repository."""
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PY_COLORS="0",
        NO_COLOR="1",
    )
    env.update(extra)
    return env


def run_playbook(playbook: str, extra_vars: dict | None = None, *args: str) -> subprocess.CompletedProcess:
    """Run a playbook of the repository against the local inventory; output is text (stdout+stderr)."""
    cmd = [str(BIN / "ansible-playbook"), str(ROOT / playbook), *args]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    return subprocess.run(
        cmd, cwd=ROOT, env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800,
        check=False,
    )


LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}


def local_inventory(path: Path, groups: dict[str, list[str]]) -> list[str]:
    """The -i arguments of an inventory of these groups (name: host names) whose hosts are all this machine."""
    children = {name: {"hosts": {host: LOCAL for host in hosts}} for name, hosts in groups.items()}
    path.write_text(json.dumps({"all": {"children": children}}))
    return ["-i", str(path)]


@dataclass
class HostResult:
    """What one host of a run got: its recap counters, the tasks that failed on it (name, message with
    its white space folded), and every result it got as text."""

    stats: dict[str, int]
    failed: list[tuple[str, str]] = field(default_factory=list)
    text: str = ""

    def refused(self, words: list[str]) -> str | None:
        """None when the host failed on exactly one task, changed nothing, and that task's message holds
        each of words (line breaks aside); otherwise what is wrong."""
        counters = {key: self.stats.get(key) for key in ("failures", "changed", "unreachable")}
        if counters != {"failures": 1, "changed": 0, "unreachable": 0} or len(self.failed) != 1:
            return f"not one failed task and no change: {counters}, failed {self.failed}"
        missing = [word for word in words if " ".join(word.split()) not in self.failed[0][1]]
        return f"{missing} not in the error of {self.failed[0][0]!r}: {self.failed[0][1]}" if missing else None


# A fact cache (Ansible's jsonfile) in which every host of run_cases has this machine's facts, gathered once: the
# cases are this machine under other names, and the roles gather facts only where a host has none (each gathering
# costs about a second of CPU per host, and a batch has dozens of hosts).
FACTS = OUTPUT / "facts"
FACT_CACHE = {"ANSIBLE_CACHE_PLUGIN": "ansible.builtin.jsonfile", "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(FACTS),
              "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "0"}
_GATHERED: list[Path] = []  # the cache's file of this machine, once this session gathered its facts


def cached_facts(hosts: list[str]) -> dict[str, str]:
    """The environment of a run whose hosts (this machine under these names) find this machine's facts cached."""
    if not _GATHERED:
        shutil.rmtree(FACTS, ignore_errors=True)
        FACTS.mkdir(parents=True)
        # The subsets that the roles gather: min (every role), hardware (jupyterhub), network (docker_swarm).
        result = subprocess.run(
            [str(BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=/usr/bin/python3",
             "-m", "ansible.builtin.setup", "-a", "gather_subset=min,hardware,network"],
            cwd=ROOT, env=ansible_env(**FACT_CACHE), capture_output=True, text=True, timeout=300, check=False,
        )
        found = list(FACTS.iterdir())
        assert result.returncode == 0 and len(found) == 1 and found[0].name.endswith("localhost"), (
            f"{found}\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
        _GATHERED.append(found[0])
    # The cache's file of a host is its name after a prefix of the plugin's own.
    gathered = _GATHERED[0]
    prefix = gathered.name[:-len("localhost")]
    for host in hosts:
        shutil.copyfile(gathered, FACTS / f"{prefix}{host}")
    return FACT_CACHE


def run_cases(playbook: str, cases: dict[str, dict], *args: str, workers: list[str] = ()) -> dict[str, HostResult]:
    """One run of a playbook whose hosts are the cases: each case is a host of the group jupyterhub (this
    machine, by a local connection, named after the case) with the case's variables as host variables,
    next to the local inventory's group variables (inventory/local.yml, whose own host is left out);
    workers, if any, are hosts of jupyterhub_workers. The results by case, from Ansible's JSON output.

    A value given as a host variable has the type it has here: "true" is the string that -e name=true
    gives. The plays must not stop every host at one host's failure (any_errors_fatal). Each host has this
    machine's facts from the start (cached_facts).
    """
    OUTPUT.mkdir(parents=True, exist_ok=True)
    name = Path(playbook).stem
    inventory = OUTPUT / f"cases-{name}.json"
    groups = {"jupyterhub": {"hosts": {case: {**LOCAL, **values} for case, values in cases.items()}}}
    if workers:
        groups["jupyterhub_workers"] = {"hosts": {worker: LOCAL for worker in workers}}
    inventory.write_text(json.dumps({"all": {"children": groups}}, indent=1))
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(ROOT / "inventory" / "local.yml"), "-i", str(inventory),
         "--limit", "jupyterhub:!localhost", str(ROOT / playbook), *args],
        cwd=ROOT, env=ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", **cached_facts([*cases, *workers])),
        capture_output=True, text=True, timeout=1800, check=False,
    )
    (OUTPUT / f"cases-{name}.log").write_text(result.stdout + result.stderr)
    assert result.stdout.lstrip().startswith("{"), f"no JSON from ansible-playbook {playbook}:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    found = {case: HostResult(stats=report["stats"].get(case, {})) for case in cases}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, outcome in task["hosts"].items():
                if host not in found:
                    continue
                found[host].text += json.dumps(outcome) + "\n"
                if outcome.get("failed"):
                    # A loop's failure: its message and each failed item's.
                    messages = [outcome.get("msg", "")] + [item.get("msg", "") for item in outcome.get("results", [])
                                                           if isinstance(item, dict) and item.get("failed")]
                    found[host].failed.append((task["task"]["name"], " ".join(" ".join(map(str, messages)).split())))
    return found


# A swarm of this machine as its manager and a worker (both local), which swarm.yml needs to run at all.
SWARM_GROUPS = {"jupyterhub": ["localhost"], "jupyterhub_workers": ["jhub-test-worker"]}


def recap(output: str, host: str = "localhost") -> dict[str, int]:
    """Counters of one host's line in the last PLAY RECAP (by default the hub's host of the local
    inventory), e.g. {'ok': 3, 'changed': 0, ...}."""
    assert "PLAY RECAP" in output, f"no PLAY RECAP in:\n{output[-2000:]}"
    match = re.search(rf"^{re.escape(host)}\s*: (.*)$", output[output.rindex("PLAY RECAP"):], re.MULTILINE)
    assert match, f"no line of {host} in the PLAY RECAP of:\n{output[-2000:]}"
    return {k: int(v) for k, v in (f.split("=") for f in match.group(1).split())}


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _listing(path: Path) -> list[tuple[str, str | None]] | None:
    """Every file below path with its digest, or None when path does not exist."""
    if not path.exists():
        return None
    return sorted((str(p.relative_to(path)), _digest(p)) for p in path.rglob("*"))


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False).stdout


# What the Molecule scenarios make on this machine's engine while other tests run beside them: their
# test hosts (label owner=molecule), the hosts' anonymous volumes (64 hexadecimal digits), the swarm
# scenario's network, and the images that the scenarios and the test-host builds make here, among them
# the hub and notebook images of the older releases that the upgrade scenario builds (molecule/upgrade/
# prepare.yml): every release the collection deploys but the default, which is make deploy's.
OLDER_RELEASES = [version for version in yaml.safe_load((ROOT / "roles/jhub/vars/main.yml").read_text())["jhub_jupyterhub_locked"]
                  if version != yaml.safe_load((ROOT / "roles/jhub/defaults/main.yml").read_text())["jhub_jupyterhub_version"]]
POOL_IMAGE = re.compile(rf"^(jhub-testhost|jhub-molecule/|jhub-test/|<none>"
                        rf"|jhub-docker/(jupyterhub|notebook):({'|'.join(map(re.escape, OLDER_RELEASES))}) )")
ANONYMOUS_VOLUME = re.compile(r"^[0-9a-f]{64}$")


def _containers() -> list[str]:
    """Each container that is not a Molecule test host: name, image, state, start time and restarts."""
    ids = _docker("ps", "-aq", "--no-trunc").split()
    if not ids:
        return []
    template = ("{{index .Config.Labels \"owner\"}} {{.Name}} {{.Image}} {{.State.Status}} {{.State.StartedAt}}"
                " {{.RestartCount}} {{json .HostConfig.PortBindings}} {{.Config.Image}}")
    # An image build's step runs in a container of the step before's image, by its ID: the pool builds images
    # (the test host with the engine's packages, the older release's) while other tests run.
    return sorted(line for line in _docker("inspect", "--format", template, *ids).splitlines()
                  if not line.startswith("molecule ") and not line.rsplit(" ", 1)[-1].startswith("sha256:"))


def _firewall(command: str) -> list[str]:
    """The collection's own chains and the jumps into them (iptables-save without counters); Docker's own
    rules change with every network that a Molecule scenario makes."""
    saved = subprocess.run([command], capture_output=True, text=True, check=False).stdout
    return [line for line in saved.splitlines() if "JHUB" in line]


def host_state() -> dict:
    """What the roles could change on this machine: files and directories they write (by content), apt
    sources, the collection's firewall chains, the engine (daemon.json, its process), images, containers,
    volumes and networks, but the Molecule pool's own."""
    images = _docker("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    volumes = _docker("volume", "ls", "-q")
    networks = _docker("network", "ls", "--no-trunc", "--format", "{{.Name}} {{.ID}} {{.Driver}}")
    paths = ["/etc/docker", "/etc/apt/sources.list.d", "/etc/apt/keyrings", "/srv/jupyterhub", "/srv/jupyterhub-tls", "/srv/jupyterhub-monitoring",
             "/opt/jhub-docker", "/var/tmp/jhub-docker-build", "/var/tmp/jhub-base-image", "/var/backups/jhub-docker",
             "/usr/local/lib/jhub-docker", "/usr/local/sbin", "/etc/systemd/system", "/etc/init.d", "/nonexistent"]
    return {
        **{path: _listing(Path(path)) for path in paths},
        "group file": _digest(Path("/etc/group")),
        "engine process": _digest(Path("/run/docker.pid")),
        "iptables": _firewall("iptables-save"),
        "ip6tables": _firewall("ip6tables-save"),
        "images": sorted(line for line in images.splitlines() if not POOL_IMAGE.match(line)),
        "containers": _containers(),
        "volumes": sorted(name for name in volumes.split() if not ANONYMOUS_VOLUME.match(name)),
        "networks": sorted(line for line in networks.splitlines() if not line.startswith("jhub-swarm-")),
    }


@pytest.fixture
def unchanged_host():
    """Fails the test when the host differs after it from before it."""
    before = host_state()
    yield
    assert host_state() == before, "the host changed"


# --- The Molecule pool beside the other tests ---------------------------------------------------
# When the session runs Molecule scenarios, conftest starts them before the first test (the test-host
# images first, then the pool of tests/test_molecule.py) and the other tests run meanwhile: they use
# this machine (its deployment, its engine) but not the pool's test hosts, which host_state leaves out.
# The tests marked after_molecule (an engine restart of this machine, which would cut the pool's
# connections to its test hosts) run last, once every scenario has ended; the Molecule tests just
# before them.


def pytest_configure(config):
    config.addinivalue_line("markers", "after_molecule: runs after every Molecule scenario has ended (it restarts this machine's engine)")


def pytest_collection_modifyitems(session, config, items):
    rank = {"plain": 0, "molecule": 1, "after_molecule": 2}

    def kind(item):
        if item.get_closest_marker("after_molecule"):
            return "after_molecule"
        return "molecule" if item.get_closest_marker("molecule") else "plain"

    items.sort(key=lambda item: rank[kind(item)])


# --- Checks started with the session ----------------------------------------------------------
# The checks that use neither this machine's deployment nor its state (ansible-lint, ansible-test sanity,
# the unit tests under JupyterHub 6) take minutes each. When their tests are in the session, they start
# before the first test, one after the other on a thread of their own, beside the tests that use this
# machine; each test then takes its check's result. Their CPU is theirs in the CPU report.
EARLY: dict[Callable, Future] = {}


@dataclass
class Checked:
    """A finished command: its exit code, its output, and its CPU seconds (its own and its descendants')."""

    returncode: int
    stdout: str
    stderr: str
    cpu: float


def run_counted(argv: list[str], *, timeout: float, **kwargs) -> Checked:
    """subprocess.run for the checks started with the session: reaped with its CPU time (cpu.wait), which the
    test that runs meanwhile leaves out of its own."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, text=True, **kwargs)
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        process.returncode, used = cpu.wait(process.pid)
        timer.cancel()
        out.seek(0)
        err.seek(0)
        return Checked(process.returncode, out.read(), err.read(), used)


def early(test_name: str) -> Callable:
    """Decorator of a check (a function of no argument) that the test test_name takes the result of."""
    def register(check: Callable) -> Callable:
        check.early_test = test_name
        EARLY[check] = None
        return check
    return register


def early_result(check: Callable):
    """The check's result (it raises what the check raised); run here when it was not started with the session."""
    future = EARLY.get(check)
    result = future.result() if future else check()
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    _CPU["early"][test] = _CPU["early"].get(test, 0.0) + sum(
        value.cpu for value in (result if isinstance(result, list) else [result]) if isinstance(value, Checked))
    return result


@pytest.fixture(scope="session", autouse=True)
def early_checks(request):
    """Starts the checks of the session's tests (see early) on a thread of their own."""
    wanted = {item.originalname for item in request.session.items}
    checks = [check for check in EARLY if check.early_test in wanted]
    if checks:
        lane = ThreadPoolExecutor(1, thread_name_prefix="early")
        for check in checks:
            EARLY[check] = lane.submit(check)
        lane.shutdown(wait=False)
    yield


@pytest.fixture(scope="session", autouse=True)
def molecule_pool(request):
    """The scenarios' runs, started before the first test of a session that has any: {(scenario, suite): its run}."""
    import test_molecule  # pylint: disable=import-outside-toplevel

    # The items left after every selection (-m, -k): a session without a scenario starts none.
    if test_molecule.DRY or not any(item.name.startswith("test_molecule_scenario") for item in request.session.items):
        yield {}
        return
    started = time.monotonic()
    runs = test_molecule.start_pool()
    _CPU["runs"] = runs
    yield runs
    for future in runs.values():
        future.result()
    times = test_molecule.write_times(runs)
    request.config.jhub_molecule_times = f"Molecule, {time.monotonic() - started:.0f} s in all:\n{times}"


@pytest.fixture
def molecule_ended(molecule_pool):
    """Waits until every scenario has ended."""
    for future in molecule_pool.values():
        future.exception()


# Where the session's CPU went (tests/output/cpu.txt, printed at its end): each test's own and its subprocesses'
# CPU time on this machine, each scenario's (tests/test_molecule.py), and this machine's busy CPU time in all.
_CPU: dict = {"tests": {}, "runs": {}, "early": {}}


def _finished_runs() -> list:
    """The Molecule scenarios' runs that have ended (tests/test_molecule.py's Run)."""
    return [future.result() for future in _CPU["runs"].values() if future.done() and not future.exception()]


def _own_cpu() -> float:
    """The CPU seconds of this process (every thread) and of the subprocesses it has waited for."""
    usages = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    return sum(usage.ru_utime + usage.ru_stime for usage in usages)


def pytest_sessionstart(session):
    # The outermost session reports; the sessions it starts (the end-to-end suites, the unit tests under
    # JupyterHub 6) inherit the mark and do not.
    if not os.environ.get("JHUB_CPU_REPORTED"):
        os.environ["JHUB_CPU_REPORTED"] = "1"
        _CPU.update(machine=cpu.machine(), started=time.monotonic())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    before, began = _own_cpu(), time.monotonic()
    yield
    # A scenario or a check started with the session, reaped meanwhile (in their threads), is theirs, not this
    # test's; the check whose result this test took is its.
    others = sum(used for reaped, used in cpu.REAPED if began <= reaped)
    _CPU["tests"][item.nodeid] = _own_cpu() - before - others + _CPU["early"].get(item.nodeid, 0.0)


def cpu_report() -> str:
    """The session's CPU time: in all on this machine, the scenarios', the tests', the rest (containers: the test
    hosts, this machine's hub and servers; the engine), and the tests that took most."""
    seconds = time.monotonic() - _CPU["started"]
    used = cpu.machine() - _CPU["machine"]
    scenarios = sum(run.cpu for run in _finished_runs())
    tests = sum(_CPU["tests"].values())
    lines = [f"{used:.0f} s of CPU in {seconds:.0f} s ({used / seconds:.2f} of {os.cpu_count()} cores busy, on average): "
             f"the Molecule scenarios here {scenarios:.0f} s, the other tests here {tests:.0f} s, "
             f"in containers and the engine {used - scenarios - tests:.0f} s",
             "The tests that took most CPU here (their containers aside):"]
    top = sorted(_CPU["tests"].items(), key=lambda item: -item[1])[:15]
    lines += [f"  {test_cpu:7.1f} s  {nodeid}" for nodeid, test_cpu in top]
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    times = getattr(config, "jhub_molecule_times", "")
    if times:
        terminalreporter.write_sep("=", "Molecule scenarios and their steps (seconds)")
        terminalreporter.write_line(times)
    if _CPU.get("started") and _CPU["tests"]:
        report = cpu_report()
        OUTPUT.mkdir(parents=True, exist_ok=True)
        (OUTPUT / "cpu.txt").write_text(report + "\n")
        terminalreporter.write_sep("=", "CPU time (seconds)")
        terminalreporter.write_line(report)
