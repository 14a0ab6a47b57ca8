"""The Molecule scenarios, run through pytest so that one command reports every result.

The plan (below) puts each scenario on a suite of DISTROS, the suite of its test hosts: the default
scenario (the whole stack, reached over SSH) and the base image (debootstrap on the controller) on the
last suite, every other on the first, so that both suites get the whole stack's behaviour tests (the
default scenario, with its switch to HTTPS, on one, the upgrade and swarm scenarios on the other); with one suite, all run on
it. The images' suite is the collection's default on every test host (.config/molecule/config.yml), so
that each scenario loads the images that make deploy built instead of building them again. No check of a scenario depends on its suite
(test_no_molecule_check_depends_on_the_suite), so a plan of any DISTROS runs every check.

The scenarios run on a pool of MOLECULE_PARALLEL workers (conftest.py starts it before the first test,
when the session has Molecule tests, so that the tests of the controller run beside it); each has a
test host and an engine of its own, and a time budget: a scenario over it is stopped, its test hosts
destroyed, and its test fails with its log. The test-host images are built once, before any scenario.
Each scenario's log (tests/output/molecule-SCENARIO-SUITE.log) has the seconds since its start on
every line; tests/output/molecule-times.txt, printed at the end, the time of each of its steps and its CPU
time on this machine (its test hosts' aside).

JHUB_MOLECULE_DRY=1 runs nothing: each scenario's test prints its plan (its suite and every play its
steps would run) and passes, e.g. `make molecule DISTROS=trixie JHUB_MOLECULE_DRY=1 PYTEST_ARGS=-s`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from conftest import BIN, DISTROS, OUTPUT, ROOT, ansible_env
from jhub_testing import cpu

FULL_STACK = ("default", "upgrade", "swarm")
# The scenarios whose hosts are the test host with the engine's packages (molecule/resources/testhost.yml): the
# default scenario tests the engine's installation, these what runs on it.
ENGINE_HOSTS = ("swarm", "upgrade")
DRY = os.environ.get("JHUB_MOLECULE_DRY") == "1"
# Three at a time: the three long scenarios (default, swarm, upgrade) each on a worker of their own, so that no
# two of them run one after the other while the machine has room; the short ones follow.
PARALLEL = int(os.environ.get("MOLECULE_PARALLEL", "3"))
STEPS = ["converge", "idempotence", "verify"]
# The scenarios' niceness: the tests of this machine, one after the other, are the session's longest lane (in a
# run on this machine kind the scenarios ended 16 minutes before them, while the machine was busy throughout), so
# the scenarios' processes here yield some CPU to them. Their test hosts' processes keep theirs.
NICENESS = 3
# Minutes a scenario may take before it is stopped, so that a hung step does not hold a worker of the pool:
# above its time on a loaded day on this machine kind, three at a time beside the rest of make test (default with
# its HTTPS switches 54, swarm 47, upgrade 49 minutes at a load of 6 to 9 on 2 cores), and under .ci/run's budget.
BUDGET = {"default": 75, "swarm": 70, "upgrade": 70, "pull": 15, "base_image": 15}


def plan(distros: list[str]) -> list[tuple[str, str, list[str]]]:
    """(scenario, suite, the steps that must succeed), longest first, in the order they start."""
    first, last = distros[0], distros[-1]
    return [
        ("default", last, STEPS),
        ("swarm", first, STEPS),
        # Converged with JupyterHub 5.5.4 (and again, no change); its verify runs the backup and restore
        # checks, then the upgrade to 6.1.1.
        ("upgrade", first, ["converge", "verify"]),
        # The engine (docker_engine) and the registry pull path of notebook_images.
        ("pull", first, [*STEPS, "side_effect"]),
        ("base_image", last, ["converge", "idempotence", "verify", "side_effect"]),
    ]


SCENARIOS = plan(DISTROS)
# The suites whose test host with the engine's packages a scenario uses.
ENGINE_SUITES = sorted({distro for scenario, distro, _steps in SCENARIOS if scenario in ENGINE_HOSTS})


def _playbook_plays(path: Path) -> list[str]:
    """The names of the plays of a playbook, those of the playbooks it imports in their place."""
    names = []
    for play in yaml.safe_load(path.read_text()) or []:
        if "ansible.builtin.import_playbook" in play:
            names += _playbook_plays((path.parent / play["ansible.builtin.import_playbook"]).resolve())
        else:
            names.append(play["name"])
    return names


def scenario_plays(scenario: str) -> dict[str, list[str]]:
    """The plays each step of a scenario runs (prepare, converge, verify, side_effect), by step."""
    folder = ROOT / "molecule" / scenario
    config = yaml.safe_load((folder / "molecule.yml").read_text()) or {}
    configured = ((config.get("provisioner") or {}).get("playbooks") or {})
    found = {}
    for step in ("prepare", "converge", "verify", "side_effect"):
        path = folder / configured.get(step, f"{step}.yml")
        if path.is_file():
            found[step] = _playbook_plays(path.resolve())
    return found


class Run:
    """One scenario's `molecule test`: its log with the seconds since the start on each line, the start
    time of each step, and its end."""

    def __init__(self, scenario: str, distro: str) -> None:
        self.scenario, self.distro = scenario, distro
        self.log = OUTPUT / f"molecule-{scenario}-{distro}.log"
        self.steps: list[tuple[str, float]] = []
        self.seconds = 0.0
        # The CPU seconds of `molecule test` and everything it ran on this machine (not in the test hosts).
        self.cpu = 0.0
        self.returncode: int | None = None
        self.timed_out = False
        self.process: subprocess.Popen | None = None
        # What must exist before it starts: the build of its test host's image, when that is not built up front.
        self.needs: Future | None = None

    def __call__(self) -> Run:
        if self.needs:
            self.needs.result()
        start = time.monotonic()
        budget = BUDGET[self.scenario] * 60
        # profile_tasks: each play ends with its slowest tasks and their seconds, in the log.
        env = ansible_env(MOLECULE_DISTRO=self.distro, JHUB_TESTHOSTS_BUILT="1",
                          ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
                          JHUB_TESTHOST_IMAGE="jhub-testhost-engine" if self.scenario in ENGINE_HOSTS else "jhub-testhost")
        with self.log.open("w") as out:
            self.process = process = subprocess.Popen(
                # No standard input: ansible-core refuses to run on a non-blocking one that it would inherit.
                ["nice", "-n", str(NICENESS), str(BIN / "molecule"), "test", "-s", self.scenario], cwd=ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            )
            timer = threading.Timer(budget, self._stop, (process,))
            timer.start()
            for line in process.stdout:
                elapsed = time.monotonic() - start
                out.write(f"[{elapsed:6.0f}s] {line}")
                step = re.search(rf"\[{self.scenario} > (\w+)\] Executing", line)
                if step:
                    self.steps.append((step.group(1), elapsed))
            # wait4 reaps it with the CPU time of its whole tree (the scenario's side on this machine); the test that
            # ran meanwhile leaves it out of its own (cpu.REAPED).
            self.returncode, self.cpu = cpu.wait(process.pid)
            process.returncode = self.returncode
            timer.cancel()
            self.seconds = time.monotonic() - start
            if self.timed_out:
                out.write(f"\nStopped after {budget / 60:.0f} minutes, its budget; destroying its test hosts.\n")
                out.flush()
                subprocess.run([str(BIN / "molecule"), "destroy", "-s", self.scenario], cwd=ROOT, env=env,
                               stdout=out, stderr=subprocess.STDOUT, timeout=600, check=False)
        return self

    def _stop(self, process: subprocess.Popen) -> None:
        self.timed_out = True
        os.killpg(process.pid, signal.SIGTERM)

    def times(self) -> str:
        """The scenario's time, its CPU time on this machine and each step's time, e.g.
        'default-trixie 812 s (CPU here 300 s): dependency 1, create 20, ...'."""
        marks = [*self.steps, ("end", self.seconds)]
        steps = ", ".join(f"{step} {later - at:.0f}" for (step, at), (_next, later) in zip(marks, marks[1:]))
        return f"{self.scenario}-{self.distro} {self.seconds:.0f} s (CPU here {self.cpu:.0f} s): {steps}"


def build_testhosts(distro: str, *args: str) -> None:
    """molecule/resources/testhost.yml for a suite, with args (e.g. --tags engine)."""
    built = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(ROOT / "inventory" / "local.yml"),
         str(ROOT / "molecule" / "resources" / "testhost.yml"), *args],
        cwd=ROOT, env=ansible_env(MOLECULE_DISTRO=distro), capture_output=True, text=True, timeout=1800, check=False,
    )
    assert built.returncode == 0, f"the {distro} test hosts were not built:\n{built.stdout[-4000:]}"


def start_pool() -> dict[tuple[str, str], Future]:
    """Build the test-host images (once per suite, before any scenario: two scenarios must not build the
    same image at the same time), then start every scenario on the pool: {(scenario, suite): its run}. The
    image with the engine's packages is built while the first scenario (default, which does not use it) runs:
    the scenarios on it wait for it."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for distro in sorted({distro for _scenario, distro, _steps in SCENARIOS}):
        build_testhosts(distro, "--skip-tags", "engine")
    builder = ThreadPoolExecutor(1, thread_name_prefix="testhost-engine")
    engine_built = builder.submit(lambda: [build_testhosts(distro, "--tags", "engine") for distro in ENGINE_SUITES])
    builder.shutdown(wait=False)
    (OUTPUT / "molecule-times.txt").write_text("")
    pool = ThreadPoolExecutor(PARALLEL, thread_name_prefix="molecule")
    scenario_runs = [Run(scenario, distro) for scenario, distro, _steps in SCENARIOS]
    for run in scenario_runs:
        if run.scenario in ENGINE_HOSTS:
            run.needs = engine_built

    # Each scenario runs in a session of its own (its budget stops it as a whole): a pytest that is stopped
    # (.ci/run's budget sends SIGTERM) stops them too, rather than leaving them running.
    def stop(_signal, _frame):
        for run in scenario_runs:
            if run.process and run.process.poll() is None:
                os.killpg(run.process.pid, signal.SIGTERM)
        raise KeyboardInterrupt("stopped (SIGTERM): the Molecule scenarios that ran were stopped")

    signal.signal(signal.SIGTERM, stop)
    runs = {(run.scenario, run.distro): pool.submit(run) for run in scenario_runs}
    for future in runs.values():
        future.add_done_callback(lambda _future: write_times(runs))
    pool.shutdown(wait=False)
    return runs


def write_times(runs: dict[tuple[str, str], Future]) -> str:
    """tests/output/molecule-times.txt: each finished scenario's times (written again as each one ends, so that
    .ci/run can show them when its own budget runs out)."""
    lines = [future.result().times() for future in runs.values() if future.done() and not future.exception()]
    (OUTPUT / "molecule-times.txt").write_text("".join(line + "\n" for line in lines))
    return "\n".join(lines)


def last_failure(text: str) -> str:
    """The lines around the last failed task of a Molecule log that was not ignored: the one that stopped its
    step (the log's tail shows the destroy step instead)."""
    found = None
    for match in re.finditer(r"^.*(?:fatal|failed): \[.*$", text, re.MULTILINE):
        task_end = text.find("TASK [", match.end())
        if "...ignoring" not in text[match.end():task_end if task_end > 0 else len(text)]:
            found = match
    if not found:
        return "(no failed task in the log)"
    start = text.rfind("TASK [", 0, found.start())
    return text[max(start, found.start() - 1500):found.start() + 3000]


@pytest.mark.molecule
@pytest.mark.parametrize(("scenario", "distro", "steps"), SCENARIOS, ids=[f"{s}-{d}" for s, d, _steps in SCENARIOS])
def test_molecule_scenario(request, scenario, distro, steps):
    if DRY:
        for step, plays in scenario_plays(scenario).items():
            print(f"\nPLAN {scenario} {distro} {step}: {' | '.join(plays)}")
        return
    run = request.getfixturevalue("molecule_pool")[(scenario, distro)].result()
    text = re.sub(r"\x1b\[[0-9;]*m", "", run.log.read_text())
    assert not run.timed_out, f"molecule test -s {scenario} took over {BUDGET[scenario]} minutes (log {run.log}):\n{text[-6000:]}"
    assert run.returncode == 0, f"molecule test -s {scenario} failed (log {run.log}):\n{last_failure(text)}\n[…]\n{text[-3000:]}"
    for step in steps:
        # "[scenario > step] Executed: Successful" (plain) or "scenario ➜ step: Executed: Successful" (colour)
        pattern = rf"{scenario}\s*(?:>|➜)\s*{step}\]?:?\s+Executed: Successful"
        assert re.search(pattern, text), f"step {step} did not run (log {run.log})"


def test_a_failed_scenario_reports_the_task_that_stopped_it():
    log = ("TASK [Try] ***\n[ 1s] fatal: [h]: FAILED! => {}\nTASK [Roll back] ***\nok: [h]\nTASK [Probe] ***\n"
           "[ 2s] failed: [h] (item=a) => {}\n...ignoring\nTASK [Run the suite] ***\n[ 3s] fatal: [localhost]: FAILED! => "
           "{\"msg\": \"2 failed\"}\nPLAY RECAP ***\nTASK [Destroy] ***\nok: [localhost]\n")
    assert last_failure(log).startswith("TASK [Run the suite]") and "2 failed" in last_failure(log)
    assert last_failure("TASK [a] ***\nok: [h]\n") == "(no failed task in the log)"


# After the scenarios: `molecule list` writes each scenario's inventory anew, for the suite it is given.
@pytest.mark.after_molecule
@pytest.mark.parametrize("distro", DISTROS)
def test_every_scenario_has_its_own_test_host(molecule_ended, distro):
    """The shared base (.config/molecule/config.yml) names each scenario's test host after the scenario; a scenario with
    several hosts (swarm) names each jhub-SCENARIO-ROLE-SUITE."""
    listing = subprocess.run(
        [str(BIN / "molecule"), "list", "--format", "yaml"],
        cwd=ROOT, env=ansible_env(MOLECULE_DISTRO=distro), capture_output=True, text=True, timeout=300, check=True,
    ).stdout
    instances = yaml.safe_load(listing[listing.index("---"):])
    hosts = [(row["Scenario Name"], row["Instance Name"]) for row in instances if row["Driver Name"] == "docker"]
    assert hosts, listing
    wrong = [(scenario, name) for scenario, name in hosts
             if not re.fullmatch(rf"jhub-{re.escape(scenario)}(-[a-z0-9]+)?-{re.escape(distro)}", name)]
    assert not wrong, wrong
    assert len({name for _scenario, name in hosts}) == len(hosts), hosts
    assert {row["Scenario Name"] for row in instances} >= {scenario for scenario, _distro, _steps in SCENARIOS}


def test_the_swarm_nodes_are_the_base_test_host():
    """The swarm scenario's platforms replace the base's list (Molecule merges lists whole): its first node
    repeats the base's container settings, which must stay the same."""
    base = yaml.safe_load((ROOT / ".config" / "molecule" / "config.yml").read_text())["platforms"][0]
    node = yaml.safe_load((ROOT / "molecule" / "swarm" / "molecule.yml").read_text())["platforms"][0]
    own = {"name", "groups", "networks"}
    assert {k: v for k, v in node.items() if k not in own} == {k: v for k, v in base.items() if k not in own}


def _when_values(node):
    """Every `when` of a YAML document, as text."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "when":
                yield str(value)
            yield from _when_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from _when_values(item)


def test_no_molecule_check_depends_on_the_suite():
    """A check that runs on one suite only is dropped silently when DISTROS does not hold that suite."""
    found = [f"{path.relative_to(ROOT)}: {when}" for path in sorted((ROOT / "molecule").rglob("*.yml"))
             for when in _when_values(yaml.safe_load(path.read_text()))
             if re.search(r"MOLECULE_DISTRO|bookworm|trixie", when)]
    assert not found, found


def _dry_plan(distros: str) -> dict[tuple[str, str], str]:
    """`make molecule DISTROS=... JHUB_MOLECULE_DRY=1`: {(scenario, step): its plays} with the suite of each."""
    result = subprocess.run(
        ["make", "molecule", f"DISTROS={distros}", "PYTEST_ARGS=-q -s -p no:cacheprovider"],
        cwd=ROOT, env=ansible_env(JHUB_MOLECULE_DRY="1"), capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    found = {}
    for scenario, suite, step, plays in re.findall(r"^PLAN (\S+) (\S+) (\S+): (.*)$", result.stdout, re.MULTILINE):
        found[(scenario, step)] = (suite, plays)
    return found


def test_every_plan_runs_every_check():
    """The dry runs of `make molecule` for each suite alone and for both: the same scenarios and plays in each,
    nothing dropped; with both suites, each gets a scenario that runs the end-to-end suite on the whole stack."""
    plans = {distros: _dry_plan(distros) for distros in ("bookworm", "trixie", "bookworm trixie")}
    expected = {(scenario, step) for scenario, _suite, _steps in plan(["x"]) for step in scenario_plays(scenario)}
    assert len(expected) > 15
    for distros, found in plans.items():
        assert set(found) == expected, (distros, set(found) ^ expected)
        assert {plays for _suite, plays in found.values()} == {plays for _suite, plays in plans["bookworm"].values()}
        assert {suite for suite, _plays in found.values()} == set(distros.split())
    both = plans["bookworm trixie"]
    for suite in ("bookworm", "trixie"):
        end_to_end = [scenario for (scenario, step), (at, plays) in both.items()
                      if at == suite and scenario in FULL_STACK and step == "verify" and "end-to-end" in plays]
        assert end_to_end, f"no scenario runs the end-to-end suite on {suite}: {both}"
