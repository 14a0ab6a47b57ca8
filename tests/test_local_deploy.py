"""The README's main command, `make deploy`, on this machine: the deployment a newcomer gets.

inventory/local.yml: a local connection, Debian's docker.io, and on this machine kind no systemd, so
that docker_engine starts dockerd itself; the admin password generated into .secrets/admin_password.
`.ci/run` runs `make deploy` before `make test`, as the README says; where it did not run, the first
test runs it. Then, against that deployment:

- `make deploy` again, verbose (-vvv), after the admin changed their password in the UI, and in check
  mode with --diff: each changes nothing (the admin's password is kept), and no secret is in its
  output; `backup.yml -vvv`, which stops and starts a server with the operations token, shows no
  secret either;
- the end-to-end suite, with the tests that run the deployment again (tests/e2e/test_safe_change.py
  and the password reset of test_hub.py use this machine's own `ansible-playbook playbooks/site.yml`);
- the admin exists before anyone can sign up (the name is taken), the images leave out
  rfc3987-syntax, and IPv6 from the hub network to this machine is dropped (a probe, with its control);
- after every Molecule scenario has ended (it restarts this machine's engine, whose connections the
  scenarios use): the engine restarts with a changed daemon option while the hub is up (without
  systemd, dockerd makes a new socket file, and the hub must be restarted onto it): the hub answers
  again, its firewall is whole, and the isolation probes run from a new user's kernel.

Needs root and a Docker engine (the deploy installs and starts one).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import BIN, OUTPUT, ROOT, ansible_env, recap, run_playbook

from jhub_testing.hubclient import HubClient

URL = "http://127.0.0.1:8000"
ADMIN_PASSWORD_FILE = ROOT / ".secrets" / "admin_password"
SECRETS_DIR = Path("/srv/jupyterhub/secrets")
DEPLOYED_PASSWORD_FILE = SECRETS_DIR / "admin_password"
COOKIE_SECRET = Path("/var/lib/docker/volumes/jupyterhub-data/_data/jupyterhub_cookie_secret")


@pytest.fixture(scope="module", autouse=True)
def root():
    """make deploy changes this machine (the engine, /srv, the firewall): the tests fail, not skip, without root."""
    assert os.geteuid() == 0, "the tests of this machine's deployment need root, as make deploy does"


def make_deploy(log: str, **env: str) -> subprocess.CompletedProcess:
    """`make deploy` as the README gives it; its output also goes to tests/output/<log>."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["make", "deploy"], cwd=ROOT, env=ansible_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=3600, check=False,
    )
    (OUTPUT / log).write_text(result.stdout)
    return result


def hub_exists() -> bool:
    return subprocess.run(["docker", "inspect", "jupyterhub"], capture_output=True, check=False).returncode == 0


def healthy(timeout: float = 180) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{URL}/hub/health", timeout=5).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(1)
    return False


@pytest.fixture(scope="module")
def deployed() -> str:
    """The deployment made by `make deploy` (made here when it is missing); the admin's password."""
    if not (hub_exists() and DEPLOYED_PASSWORD_FILE.is_file()):
        result = make_deploy("local-deploy-first.log")
        assert result.returncode == 0, result.stdout[-4000:]
    assert healthy(), f"{URL}/hub/health does not answer after make deploy"
    # The deployment's own copy: the checkout's .secrets, or, when this checkout came after the
    # deployment, the password that the local inventory took over from it.
    return DEPLOYED_PASSWORD_FILE.read_text().strip()


def secrets(admin_password: str) -> dict[str, str]:
    """Every secret of the deployment, by where it is kept."""
    found = {"admin password (.secrets)": admin_password}
    found.update({f"secrets/{path.name}": path.read_text().strip() for path in SECRETS_DIR.iterdir()})
    found["cookie secret"] = COOKIE_SECRET.read_text().strip()
    return found


def test_make_deploy_again_changes_nothing_keeps_the_admins_password_and_prints_no_secret(deployed):
    """The README's command a second time, at -vvv (every task's module arguments are printed), after the admin
    changed their password in the hub's UI: the run changes nothing and keeps that password (the inventory's
    sets the admin's password at the admin's creation only; jupyterhub_admin_password_reset, which sets it
    again, is tests/e2e/test_hub.py's)."""
    changed = f"{deployed}-changed-in-the-ui"
    admin = HubClient(URL)
    assert admin.login("admin", deployed).status_code == 302
    assert "changed successfully" in admin.change_password(deployed, changed)
    try:
        result = make_deploy("local-deploy-vvv.log", ANSIBLE_VERBOSITY="3")
        assert result.returncode == 0, result.stdout[-4000:]
        counts = recap(result.stdout)
        assert counts["changed"] == 0 and counts["failed"] == 0, counts
        assert HubClient(URL).login("admin", changed).status_code == 302
        assert HubClient(URL).login("admin", deployed).status_code == 200
    finally:
        again = HubClient(URL)
        if again.login("admin", changed).status_code == 302:
            assert "changed successfully" in again.change_password(changed, deployed)
    assert len(result.stdout) > 100_000, len(result.stdout)
    assert {"secrets/ops.token", "secrets/metrics.token", "secrets/proxy.token", "secrets/admin_password"} <= secrets(deployed).keys()
    log = subprocess.run(["docker", "logs", "jupyterhub"], capture_output=True, text=True, check=True)
    assert_no_secret(result.stdout + log.stdout + log.stderr, deployed)


def assert_no_secret(output: str, admin_password: str) -> None:
    # The search is real: a whole verbose run, and secrets long enough not to match by chance.
    assert "module_args" in output, output[-2000:]
    found = secrets(admin_password)
    assert not [name for name, value in found.items() if len(value) < 20], found.keys()
    leaked = [name for name, value in found.items() if value in output]
    assert not leaked, f"in the output: {leaked}"


def test_check_diff_run_changes_nothing_and_prints_no_secret(deployed):
    """`--check --diff` prints the diff of every file it would change: no secret, and nothing to change."""
    result = run_playbook("playbooks/site.yml", None, "--check", "--diff", "-vvv")
    (OUTPUT / "local-check-diff.log").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-4000:]
    counts = recap(result.stdout)
    assert counts["changed"] == 0 and counts["failed"] == 0, counts
    assert_no_secret(result.stdout, deployed)


def test_verbose_backup_stops_and_starts_a_server_and_prints_no_secret(deployed):
    """backup.yml -vvv stops a running server through the hub's API with the operations token (in a header),
    backs up, and starts it again: the token and the other secrets stay out of its output."""
    admin = HubClient(URL)
    assert admin.login("admin", deployed).status_code == 302
    name = f"backup{os.getpid()}"
    client = HubClient(URL)
    client.join(admin, name, f"Backed-Up-Server-{os.getpid()}")
    try:
        before = admin.api("GET", f"/users/{name}").json()["servers"][""]
        result = run_playbook("playbooks/backup.yml", {"jupyterhub_backup_users": [name], "jupyterhub_backup_stop_servers": True},
                              "-vvv")
        (OUTPUT / "local-backup-vvv.log").write_text(result.stdout)
        assert result.returncode == 0, result.stdout[-4000:]
        assert_no_secret(result.stdout, deployed)
        # The backup stopped the server (a consistent volume) and started it again.
        after = admin.api("GET", f"/users/{name}").json()["servers"][""]
        assert after["ready"] and after["started"] != before["started"], (before, after)
    finally:
        client.stop_server(name)


def test_secret_files_are_0600_and_roots(deployed):
    """The host's secrets are root's; the cookie secret, on the hub's data volume, is the hub's user's (10081)."""
    owners = {path: 0 for path in [*SECRETS_DIR.iterdir(), *[ADMIN_PASSWORD_FILE] * ADMIN_PASSWORD_FILE.is_file()]}
    owners[COOKIE_SECRET] = 10081
    wrong = {str(path): (oct(path.stat().st_mode & 0o777), path.stat().st_uid) for path, uid in owners.items()
             if path.stat().st_mode & 0o777 != 0o600 or path.stat().st_uid != uid}
    assert not wrong, wrong


def test_a_new_checkout_takes_over_the_deployed_admin_password(deployed, tmp_path):
    """A checkout without .secrets on a machine already deployed (CI's fresh clone is one) uses the deployment's
    admin password rather than generating one that the hub, which keeps the admin in its database, would refuse."""
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "local.yml").write_text((ROOT / "inventory" / "local.yml").read_text())
    env = {key: value for key, value in ansible_env().items() if key != "JHUB_ADMIN_PASSWORD"}
    result = subprocess.run(
        [str(BIN / "ansible"), "-i", str(tmp_path / "inventory" / "local.yml"), "localhost", "-o", "-m",
         "ansible.builtin.debug", "-a",
         json.dumps({"msg": "{{ local_admin_password_file }} {{ jupyterhub_admin_password | hash('sha256') }}"})],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    digest = hashlib.sha256(DEPLOYED_PASSWORD_FILE.read_text().strip().encode()).hexdigest()
    assert f"{DEPLOYED_PASSWORD_FILE} {digest}" in result.stdout, result.stdout
    assert not (tmp_path / ".secrets").exists()


def test_end_to_end_suite_against_this_machine(deployed):
    """The end-to-end tests that run `ansible-playbook playbooks/site.yml` again, against the local hub: the
    README's command is the one an operator runs again to change a setting.

    The rest of tests/e2e runs in the Molecule scenarios (the default scenario runs test_hub.py, the login
    hardening and the firewall probes on a new host); the other tests of this machine's deployment log in,
    spawn and run kernels on this hub."""
    env = ansible_env(
        JHUB_URL=URL,
        JHUB_ADMIN_USER="admin",
        JHUB_ADMIN_PASSWORD=deployed,
        JHUB_HOST_EXEC="env",
        JHUB_REDEPLOY=f"{BIN / 'ansible-playbook'} {ROOT / 'playbooks' / 'site.yml'}",
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-s", "--durations=0",
         "tests/e2e/test_hub.py::test_redeploy_with_the_reset_sets_the_inventorys_admin_password_again",
         "tests/e2e/test_safe_change.py"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=2400, check=False,
    )
    (OUTPUT / "local-e2e.log").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-6000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-3000:]


@pytest.mark.after_molecule
def test_engine_restart_with_a_changed_daemon_option_keeps_the_hub(molecule_ended, deployed):
    """docker_engine restarts dockerd for a changed daemon.json while the hub runs: without systemd the socket
    file is new, and the hub (which bind-mounts it) must be restarted onto it, or no server would start. After
    the restart the hub answers, the firewall's own check passes, and the real probes of the isolation tests run
    from a new user's kernel: a service of this machine on its own address and on the hub network's gateway,
    another user's server and the proxy's API are out of reach (each with its control; the metadata address has
    no listener here, the Molecule default scenario probes it after an engine restart and a boot)."""
    daemon_before = Path("/etc/docker/daemon.json").read_text()
    changed = run_playbook("playbooks/docker_engine.yml", {"docker_engine_daemon_options": {"max-concurrent-downloads": 4}})
    try:
        assert changed.returncode == 0, changed.stdout[-4000:]
        assert recap(changed.stdout)["changed"] > 0
        assert json.loads(Path("/etc/docker/daemon.json").read_text())["max-concurrent-downloads"] == 4
        assert healthy(), "the hub does not answer after the engine restart"
        firewall = subprocess.run(["/usr/local/sbin/jhub-network-isolation", "check"], check=False)
        assert firewall.returncode == 0, "the firewall rules are not whole after the engine restart"
        probes = isolation_probes(deployed)
        assert probes.returncode == 0, probes.stdout[-6000:]
        assert "5 passed" in probes.stdout and "skipped" not in probes.stdout, probes.stdout[-3000:]
    finally:
        restored = run_playbook("playbooks/docker_engine.yml")
        assert restored.returncode == 0, restored.stdout[-4000:]
    assert Path("/etc/docker/daemon.json").read_text() == daemon_before
    assert healthy(), "the hub does not answer after the engine restart that put daemon.json back"


def isolation_probes(admin_password: str) -> subprocess.CompletedProcess:
    """tests/e2e/test_isolation.py's probes that need no listener of their own, with a listener on this machine."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as route:
        route.connect(("192.0.2.1", 9))  # no packet is sent: this picks the address of the default route
        own_address = route.getsockname()[0]
    gateway = json.loads(subprocess.run(["docker", "network", "inspect", "jupyterhub"], capture_output=True,
                                        text=True, check=True).stdout)[0]["IPAM"]["Config"][0]["Gateway"]
    listener = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "0.0.0.0", "18081"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "--durations=0", "-k",
             "reachable_from_the_host or hosts_own or another_users_server or proxy_api or still_reaches",
             "tests/e2e/test_isolation.py"],
            cwd=ROOT, env=ansible_env(JHUB_URL=URL, JHUB_ADMIN_PASSWORD=admin_password, JHUB_HOST_EXEC="env",
                                      JHUB_PROBE_HOST=f"{own_address}:18081 {gateway}:18081",
                                      JHUB_PROBE_OUTSIDE="deb.debian.org:80"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, check=False,
        )
    finally:
        listener.terminate()
        listener.wait()
    (OUTPUT / "local-isolation.log").write_text(result.stdout)
    return result


def inspect(container: str) -> dict:
    return json.loads(subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True).stdout)[0]


def test_spawn_settings_reach_the_hub(deployed):
    """The defaults the README gives for spawns: the hub's CPU weight over user servers, the spawner's check
    interval and Docker threads, the start slots (one per vCPU here) and the cap of pending starts."""
    assert inspect("jupyterhub")["HostConfig"]["CpuShares"] == 8192
    config = Path("/srv/jupyterhub/jupyterhub_config.py").read_text()
    cpus = os.cpu_count()
    for line in ("c.JhubDockerSpawner.check_interval = 0.1", "c.JhubDockerSpawner.docker_threads = 8",
                 f"c.JhubDockerSpawner.concurrent_starts = {cpus}",
                 f"c.JupyterHub.concurrent_spawn_limit = {50 * cpus}"):
        assert f"\n{line}\n" in config, line


def test_the_admin_is_made_before_the_hub_serves(deployed):
    """The hub container runs the admin bootstrap first and JupyterHub only after it (one command, in order), so
    nobody can sign up as the admin: the name is taken, and the admin logs in with the inventory's password."""
    command = inspect("jupyterhub")["Config"]["Cmd"]
    assert command[0] == "jhub-bootstrap-admin" and command[command.index("--") + 1] == "jupyterhub", command
    page = HubClient(URL).signup("admin", f"Someone-Else-{os.getpid()}-Password")
    assert "this username is already in use" in page, page[-2000:]
    assert HubClient(URL).login("admin", deployed).status_code == 302


def _run_in_image(image: str, *argv: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "run", "--rm", *options, "--entrypoint", argv[0], image, *argv[1:]],
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("image", ["jhub-docker/notebook:6.1.1", "jhub-docker/jupyterhub:6.1.1"])
def test_the_images_leave_out_rfc3987_syntax(deployed, image):
    """rfc3987-syntax (it builds a grammar for a second or two at every start) is not in the built images, and
    what pulled it in (jupyter_events, through jsonschema's format checks) still works without it."""
    probe = ("import importlib.util, jsonschema, sys; "
             "missing = importlib.util.find_spec('rfc3987_syntax') is None; "
             "jsonschema.Draft7Validator({'format': 'iri'}, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)"
             ".validate('https://example.org/x'); print('missing' if missing else 'present')")
    result = _run_in_image(image, "python3", "-c", probe)
    assert result.returncode == 0 and result.stdout.split() == ["missing"], (result.stdout, result.stderr[-2000:])
    if image.startswith("jhub-docker/notebook"):
        imported = _run_in_image(image, "python3", "-c", "import jupyter_events, jupyter_server.serverapp")
        assert imported.returncode == 0, imported.stderr[-2000:]


def test_the_firewall_drops_ipv6_from_the_hub_network(deployed):
    """The hub network has no IPv6, and the engine gives its containers none; a container that turns it on
    (a root container may set its own sysctls) still reaches no service of this machine over IPv6: its packets
    to a listener on the bridge's link-local address are dropped by the firewall's IPv6 rule (whose counter
    shows them), while this machine reaches the same listener (the control)."""
    if not Path("/proc/net/if_inet6").exists():
        pytest.fail("this machine has no IPv6: the IPv6 rules cannot be checked here")
    bridge = subprocess.run(["ip", "-6", "-o", "addr", "show", "br-jupyterhub", "scope", "link"], capture_output=True,
                            text=True, check=True).stdout.split()[3].split("/")[0]
    listener = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "::", "18083"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        control = subprocess.run(["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
                                  f"http://[{bridge}%25br-jupyterhub]:18083/"], capture_output=True, text=True, check=False)
        assert control.stdout == "200", f"this machine does not reach its own IPv6 listener: {control.stdout} {control.stderr}"
        before = _ipv6_drops()
        probe = (f"import socket, time\ntime.sleep(2)\ns = socket.socket(socket.AF_INET6)\ns.settimeout(4)\n"
                 f"try:\n    s.connect(({bridge!r}, 18083, 0, socket.if_nametoindex('eth0')))\n    print('open')\n"
                 f"except OSError as error:\n    print('closed', type(error).__name__)")
        result = _run_in_image("jhub-docker/notebook:6.1.1", "python3", "-c", probe, options=(
            "--network", "jupyterhub", "--sysctl", "net.ipv6.conf.all.disable_ipv6=0",
            "--sysctl", "net.ipv6.conf.default.disable_ipv6=0"))
        assert result.stdout.split() == ["closed", "TimeoutError"], (result.stdout, result.stderr[-2000:])
        assert _ipv6_drops() > before, "the IPv6 rule dropped nothing: the probe did not go where it should"
    finally:
        listener.terminate()
        listener.wait()


def _ipv6_drops() -> int:
    """Packets that the firewall's IPv6 chain for this machine's own services has dropped."""
    rules = subprocess.run(["ip6tables", "-w", "-L", "JHUB-INPUT", "-v", "-x", "-n"], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    return sum(int(line.split()[0]) for line in rules if " DROP " in f" {line} ")
