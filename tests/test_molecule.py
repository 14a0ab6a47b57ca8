"""The Molecule scenarios, run through pytest so that one command reports every result.

They run two at a time (MOLECULE_PARALLEL): much of a scenario waits rather than computes (a test
host's systemd boots, its engine starts, a hub answers, a lockout ends), and each scenario has a
test host and an engine of its own. The test-host images are built once before any scenario.
"""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from conftest import BIN, DISTROS, OUTPUT, ROOT, ansible_env

# (scenario, suite, the steps that must have run successfully), in the order they start: each full
# stack first, next to the light ones, so that two full stacks overlap as little as possible.
SCENARIOS = [
    # The full stack, with the end-to-end suite in its verify step; also the backup and restore
    # checks (molecule/backup/checks.yml) on the same host: the backup scenario would deploy the
    # same stack once more only for them.
    ("default", DISTROS[0], ["converge", "idempotence", "verify"]),
    # The engine alone on the first suite: the full stack installs it on both (default, upgrade).
    ("docker_engine", DISTROS[0], ["converge", "idempotence", "verify"]),
    # The hub on a swarm of three test hosts, users' servers on its workers (the images of this machine's
    # deployment: no image build), beside the engine.
    ("swarm", DISTROS[0], ["converge", "idempotence", "verify"]),
    ("base_image", DISTROS[0], ["converge", "idempotence", "verify", "side_effect"]),
    ("pull", DISTROS[0], ["converge", "idempotence", "verify", "side_effect"]),
    # The same stack deployed with JupyterHub 5.5.4 and upgraded to 6.1.1 in its verify, then the default
    # scenario's verify (its second suite's part) on the upgraded host. Its idempotence is the upgrade
    # test's second run, after the upgrade (the default scenario checks the stack's idempotence).
    ("upgrade", DISTROS[-1], ["converge", "verify"]),
    # HTTPS from an ACME server (pebble on the test host), the end-to-end suite over HTTPS.
    ("tls", DISTROS[0], ["converge", "idempotence", "verify", "side_effect"]),
]
PARALLEL = int(os.environ.get("MOLECULE_PARALLEL", "2"))


def run_scenario(scenario: str, distro: str) -> tuple[int, Path]:
    log = OUTPUT / f"molecule-{scenario}-{distro}.log"
    with log.open("w") as out:
        result = subprocess.run(
            [str(BIN / "molecule"), "test", "-s", scenario],
            cwd=ROOT, env=ansible_env(MOLECULE_DISTRO=distro), stdout=out, stderr=subprocess.STDOUT,
            timeout=1800, check=False,
        )
    return result.returncode, log


@pytest.fixture(scope="module")
def scenario_runs():
    """Every scenario, started at once on a pool of PARALLEL workers: {(scenario, suite): its run}."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    # What each scenario's dependency step does, once per suite before any starts: two scenarios
    # must not build the same test-host image at the same time.
    for distro in sorted({distro for _scenario, distro, _steps in SCENARIOS}):
        subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", str(ROOT / "inventory" / "local.yml"), str(ROOT / "molecule" / "resources" / "testhost.yml")],
            cwd=ROOT, env=ansible_env(MOLECULE_DISTRO=distro), capture_output=True, timeout=1800, check=True,
        )
    with ThreadPoolExecutor(PARALLEL) as pool:
        runs: dict[tuple[str, str], Future] = {
            (scenario, distro): pool.submit(run_scenario, scenario, distro) for scenario, distro, _steps in SCENARIOS
        }
        yield runs


@pytest.mark.molecule
@pytest.mark.parametrize(("scenario", "distro", "steps"), SCENARIOS, ids=[f"{s}-{d}" for s, d, _steps in SCENARIOS])
def test_molecule_scenario(scenario_runs, scenario, distro, steps):
    returncode, log = scenario_runs[(scenario, distro)].result()
    text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text())
    assert returncode == 0, f"molecule test -s {scenario} failed (log {log}):\n{text[-6000:]}"
    for step in steps:
        # "[scenario > step] Executed: Successful" (plain) or "scenario ➜ step: Executed: Successful" (colour)
        pattern = rf"{scenario}\s*(?:>|➜)\s*{step}\]?:?\s+Executed: Successful"
        assert re.search(pattern, text), f"step {step} did not run (log {log})"


@pytest.mark.parametrize("distro", DISTROS)
def test_every_scenario_has_its_own_test_host(distro):
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
