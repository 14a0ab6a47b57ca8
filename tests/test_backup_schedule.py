"""The scheduled backup and its off-site copies on the hub that `make deploy` made, switched on and off with
`site.yml --tags backup` runs, with a real SFTP server (Debian's OpenSSH, in a container built here) as the
restic repository's host.

This machine has no systemd, so the role installs cron and the cron jobs (the Molecule default scenario
checks the systemd timer). The test runs a job's own command line as cron would, rather than waiting:

- the settings file and restic's secrets are root's, 0600, and the settings hold no secret; cron runs, started
  though its pid file named another live process (a pid file that outlived a restart: /run is no tmpfs here);
- a run stops the admin's running server through the hub's API, backs up its volume and the hub state,
  copies them to the SFTP repository, and starts the server again; its record and the metrics file say so;
- a second run adds far less to the repository than the first (the 20 MB file is not sent again), and
  each run's snapshot is there;
- a file deleted from the volume comes back from the off-site snapshot; a lost local backup's manifest and
  hub state come back from restic, for playbooks/restore.yml (in check mode); the local backup restores
  with playbooks/restore.yml;
- a run whose repository cannot be reached makes its local backup and records the run as failed; a run
  that fails (the tool image missing) keeps nothing half-made; both keep the last good figures;
- a local repository is made by the role; the wrong password for it is refused and changes nothing;
- an empty schedule removes the jobs, the settings and the secrets, and the backups stay.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import OUTPUT, recap, run_playbook
# deployed is test_local_deploy's fixture: the hub that make deploy made.
from test_local_deploy import URL, deployed, inspect  # noqa: F401 # pylint: disable=unused-import
from test_environments import in_volume

from jhub_testing.hubclient import HubClient
from jhub_testing.sftp_server import SftpServer

BACKUPS = Path("/var/backups/jhub-docker-test-schedule")
LOCAL_REPOSITORY = Path("/var/backups/jhub-docker-test-restic")
METRICS = Path("/var/tmp/jhub-docker-test-metrics")
KEYS = Path("/var/tmp/jhub-docker-test-sftp-keys")
CRON = Path("/etc/cron.d/jhub-docker-backup")
LOG = Path("/var/log/jhub-docker-backup.log")
CRON_PID_FILE = Path("/run/crond.pid")
SETTINGS = Path("/srv/jupyterhub/backup.json")
SECRETS = Path("/srv/jupyterhub/secrets/restic.json")
PASSWORD = "Restic-Schedule-Password-1"
RESTORED = "jhub-test-restored-admin"
BIG_FILE_MB = 20


def schedule(sftp: SftpServer) -> dict:
    return {"jupyterhub_backup_schedule": "*-*-* 03:15:00", "jupyterhub_backup_schedule_cron": "15 3 * * *",
            "jupyterhub_backup_root": str(BACKUPS), "jupyterhub_backup_metrics_dir": str(METRICS),
            "jupyterhub_backup_users": ["admin"], "jupyterhub_backup_stop_servers": True, "jupyterhub_backup_keep": 2,
            "jupyterhub_backup_restic_repository": sftp.repository, "jupyterhub_backup_restic_options": sftp.options(),
            "jupyterhub_backup_restic_password": PASSWORD}


def site_backup_tag(name: str, extra_vars: dict, succeed: bool = True) -> str:
    result = run_playbook("playbooks/site.yml", extra_vars, "--tags", "backup")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / f"schedule-{name}.log").write_text(result.stdout)
    if succeed:
        assert result.returncode == 0 and recap(result.stdout)["failed"] == 0, result.stdout[-4000:]
    return result.stdout


def cron_commands() -> list[str]:
    """The commands of the cron file's jobs (after the five fields and the user)."""
    lines = [line for line in CRON.read_text().splitlines() if line and not line.startswith(("#", "SHELL=", "PATH="))]
    return [line.split(None, 6)[6] for line in lines]


def cron_diagnosis() -> str:
    """What to read when cron does not run: the play's "Start cron" result and what cron's init script says now."""
    play = (OUTPUT / "schedule-on.log").read_text()
    started = play[play.find("Start cron]"):][:600]
    status = subprocess.run(["service", "cron", "status"], capture_output=True, text=True, check=False)
    processes = subprocess.run(["ps", "-eo", "pid,ppid,stat,comm"], capture_output=True, text=True, check=False).stdout
    return (f"cron does not run. The play: {started!r}. service cron status: {status.returncode} {status.stdout!r}. "
            f"Processes with cron in their name: {[line for line in processes.splitlines() if 'cron' in line]}")


def run_as_cron(command: str) -> dict:
    """Run COMMAND as cron would; the JSON line it logged, with its exit status."""
    done = subprocess.run(["sh", "-c", command], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, capture_output=True, text=True,
                          timeout=600, check=False)
    return dict(json.loads(LOG.read_text().strip().splitlines()[-1]), status=done.returncode)


def backups() -> list[str]:
    return sorted(path.name for path in BACKUPS.iterdir() if path.name.startswith("jhub-backup-"))


def snapshots(sftp: SftpServer, *tags: str) -> list[dict]:
    env = {**os.environ, "RESTIC_REPOSITORY": sftp.repository, "RESTIC_PASSWORD": PASSWORD}
    done = subprocess.run(["restic", "-o", sftp.options()[0], "snapshots", "--json", "--tag", ",".join(tags)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def sftp():
    server = SftpServer(KEYS)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(KEYS, ignore_errors=True)


@pytest.fixture(scope="module")
def admin(deployed, sftp):  # noqa: F811 (the fixture imported above)
    """The admin with a running server and a file of 20 MB, and the schedule installed; at the end, none of them.
    Before the install, cron is stopped and its pid file names a live process that is not cron."""
    for path in (BACKUPS, METRICS, LOCAL_REPOSITORY):
        shutil.rmtree(path, ignore_errors=True)
    client = HubClient(URL)
    assert client.login("admin", deployed).status_code == 302
    client.start_server("admin")
    in_volume("jupyterhub-user-admin", f"echo 'made before the scheduled backup' > /v/schedule.txt && "
                                       f"head -c {BIG_FILE_MB}M /dev/urandom > /v/big.bin")
    if Path("/etc/init.d/cron").exists():
        subprocess.run(["service", "cron", "stop"], capture_output=True, check=False)
    with subprocess.Popen(["sleep", "3600"]) as other:
        CRON_PID_FILE.write_text(f"{other.pid}\n")
        try:
            site_backup_tag("on", schedule(sftp))
        finally:
            other.kill()
    yield client
    client.stop_server("admin")
    in_volume("jupyterhub-user-admin", "rm -f /v/schedule.txt /v/big.bin")
    subprocess.run(["docker", "volume", "rm", "-f", RESTORED], check=False)
    for path in (BACKUPS, METRICS, LOCAL_REPOSITORY):
        shutil.rmtree(path, ignore_errors=True)


def test_the_schedule_is_cron_jobs_here_and_the_secrets_are_roots_alone(admin, sftp):
    for path in (SETTINGS, SECRETS):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_uid == 0, path
    settings = SETTINGS.read_text()
    assert PASSWORD not in settings and json.loads(settings)["restic"]["repository"] == sftp.repository
    assert json.loads(SECRETS.read_text())["RESTIC_PASSWORD"] == PASSWORD
    assert subprocess.run(["pgrep", "-x", "cron"], capture_output=True, check=False).returncode == 0, cron_diagnosis()
    backup, check = cron_commands()
    assert backup.startswith("/usr/bin/python3 /usr/local/lib/jhub-docker/jhub-backup-run.py --config /srv/jupyterhub/backup.json >>")
    assert check.startswith("/usr/bin/python3 /usr/local/lib/jhub-docker/jhub-backup-run.py --config /srv/jupyterhub/backup.json restic-check")
    assert CRON.read_text().count("\n0 5 * * 0 root ") == 1


def test_a_run_backs_up_with_the_server_stopped_and_copies_off_site(admin, sftp):
    started = inspect("jupyter-admin")["State"]["StartedAt"]
    said = run_as_cron(cron_commands()[0])
    assert said["status"] == 0, said
    assert said["servers_stopped"] == ["admin/"] and said["users"] == ["admin"] and said["hub_state"]
    assert said["offsite"]["success"] == 1 and said["offsite"]["data_added"] > BIG_FILE_MB << 20, said
    (backup,) = [BACKUPS / name for name in backups()]
    manifest = json.loads((backup / "manifest.json").read_text())
    assert {(archive["kind"], archive.get("username")) for archive in manifest["archives"]} == {("user", "admin"), ("hub-state", None)}
    assert subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=backup, capture_output=True, check=False).returncode == 0
    assert stat.S_IMODE(backup.stat().st_mode) == 0o700
    admin.wait_ready("admin")
    state = inspect("jupyter-admin")["State"]
    assert state["Running"] and state["StartedAt"] != started
    kinds = {tag for snapshot in snapshots(sftp, f"backup:{backup.name}") for tag in snapshot["tags"] if tag.startswith("kind:")}
    assert kinds == {"kind:user", "kind:backup"}
    record = json.loads((BACKUPS / "last-run.json").read_text())
    assert record["success"] == 1 and record["last_success_name"] == backup.name
    assert record["last_success_size"] == sum(archive["size"] for archive in manifest["archives"])
    metrics = (METRICS / "jhub_backup.prom").read_text()
    assert "jhub_backup_last_run_success 1\n" in metrics
    assert f"jhub_backup_last_success_size_bytes {record['last_success_size']}\n" in metrics
    assert f"jhub_backup_last_offsite_added_bytes {said['offsite']['data_added']}\n" in metrics


def test_a_second_run_adds_little_and_the_check_passes(admin, sftp):
    first = json.loads((BACKUPS / "last-run.json").read_text())["last_offsite_added"]
    said = run_as_cron(cron_commands()[0])
    assert said["status"] == 0 and said["offsite"]["success"] == 1, said
    assert said["offsite"]["data_added"] * 20 < first, (said["offsite"]["data_added"], first)
    assert len(snapshots(sftp, "kind:user", "user:admin")) == 2
    checked = run_as_cron(cron_commands()[1])
    assert checked["status"] == 0 and checked["msg"] == "restic prune and check passed.", checked
    assert "jhub_backup_restic_check_success 1\n" in (METRICS / "jhub_backup_restic_check.prom").read_text()


def test_a_deleted_file_comes_back_from_the_off_site_snapshot(admin):
    command = cron_commands()[0].split(" >>")[0] + " restore-restic --user admin"
    in_volume("jupyterhub-user-admin", "rm /v/schedule.txt")
    refused = subprocess.run(command.split(), capture_output=True, text=True, check=False)
    assert refused.returncode == 1 and "jupyterhub-user-admin is in use by jupyter-admin" in refused.stdout, refused.stdout
    admin.stop_server("admin")
    done = subprocess.run(command.split(), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["backup"] == backups()[-1]
    assert in_volume("jupyterhub-user-admin", "cat /v/schedule.txt; stat -c %U /v") == "made before the scheduled backup\njovyan\n"
    admin.start_server("admin")


def test_a_lost_backup_comes_back_from_restic_for_the_playbook_to_restore_the_hub_state(admin):
    command = cron_commands()[0].split(" >>")[0].split() + ["fetch-restic"]
    name = backups()[-1]
    aside = BACKUPS / "aside"
    (BACKUPS / name).rename(aside)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and json.loads(done.stdout)["backup"] == name, done.stdout + done.stderr
    assert (BACKUPS / name / "manifest.json").is_file() and stat.S_IMODE((BACKUPS / name).stat().st_mode) == 0o700
    assert subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=BACKUPS / name, capture_output=True, check=False).returncode == 0
    again = subprocess.run(command, capture_output=True, text=True, check=False)
    assert again.returncode == 1 and "exists already" in again.stdout, again.stdout
    # Check mode: the archive's SHA-256 against the manifest, and what would be restored, without stopping the hub.
    result = run_playbook("playbooks/restore.yml", {"jupyterhub_backup_root": str(BACKUPS), "jupyterhub_backup_name": name,
                                                    "jupyterhub_backup_restore_hub_state": True}, "--check")
    (OUTPUT / "schedule-restore-hub-state-check.log").write_text(result.stdout)
    assert result.returncode == 0 and "hub state" in result.stdout, result.stdout[-3000:]
    # The user's archive is not in restic (its volume's files are): a restore of the user from this copy is refused.
    result = run_playbook("playbooks/restore.yml", {"jupyterhub_backup_root": str(BACKUPS), "jupyterhub_backup_name": name,
                                                    "jupyterhub_backup_restore_users": ["admin"]}, "--check")
    assert result.returncode != 0 and "archive user-admin.tar.zst is missing" in result.stdout, result.stdout[-3000:]
    shutil.rmtree(BACKUPS / name)
    aside.rename(BACKUPS / name)


def test_the_local_backup_restores_with_the_playbook(admin):
    result = run_playbook("playbooks/restore.yml", {"jupyterhub_backup_root": str(BACKUPS), "jupyterhub_backup_name": backups()[-1],
                                                    "jupyterhub_backup_restore_users": ["admin"],
                                                    "jupyterhub_backup_restore_volume": "jhub-test-restored-{username}"})
    (OUTPUT / "schedule-restore.log").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-4000:]
    assert in_volume(RESTORED, "cat /v/schedule.txt") == "made before the scheduled backup\n"


def run_with(tmp_path: Path, **changes) -> dict:
    """A run of the backup job with its settings changed (a copy of the settings file)."""
    settings = json.loads(SETTINGS.read_text())
    changed = tmp_path / "backup.json"
    changed.write_text(json.dumps({**settings, **changes}))
    time.sleep(1.05)  # a backup's name has the second it starts in: another run's second
    return run_as_cron(cron_commands()[0].replace(str(SETTINGS), str(changed)))


def test_an_unreachable_repository_fails_the_run_but_not_the_local_backup(admin, sftp, tmp_path):
    good = json.loads((BACKUPS / "last-run.json").read_text())
    before = backups()
    settings = json.loads(SETTINGS.read_text())
    said = run_with(tmp_path, stop_servers=False, restic={**settings["restic"], "options": sftp.options(port=22023)})
    assert said["status"] == 1 and said["failed"] and said["offsite"]["success"] == 0, said
    assert "was made here, but the off-site copy failed" in said["msg"] and "unable to open repository" in said["msg"], said
    assert backups()[-1] not in before and said["name"] == backups()[-1]
    record = json.loads((BACKUPS / "last-run.json").read_text())
    assert record["success"] == 0 and record["last_success_name"] == said["name"]
    assert record["last_offsite_ended"] == good["last_offsite_ended"]
    metrics = (METRICS / "jhub_backup.prom").read_text()
    assert "jhub_backup_last_run_success 0\n" in metrics
    assert f"jhub_backup_last_offsite_success_timestamp_seconds {good['last_offsite_ended']}\n" in metrics


def test_a_failed_run_keeps_nothing_half_made_and_the_last_good_figures(admin, tmp_path):
    good = json.loads((BACKUPS / "last-run.json").read_text())
    before = sorted(path.name for path in BACKUPS.iterdir())
    said = run_with(tmp_path, image="jhub-docker/no-such-image:0", stop_servers=False)
    assert said["status"] == 1 and "The backup failed, nothing half-made is kept" in said["msg"] and "no-such-image" in said["msg"], said
    assert sorted(path.name for path in BACKUPS.iterdir()) == before
    record = json.loads((BACKUPS / "last-run.json").read_text())
    assert record["success"] == 0 and "no-such-image" in record["error"]
    assert record["last_success_ended"] == good["last_success_ended"]
    assert f"jhub_backup_last_success_timestamp_seconds {good['last_success_ended']}\n" in (METRICS / "jhub_backup.prom").read_text()
    assert subprocess.run(["docker", "container", "inspect", "jhub-backup-archive"], capture_output=True, check=False).returncode != 0


def digests() -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in (SETTINGS, SECRETS, CRON)}


def test_a_local_repository_is_made_and_a_wrong_password_changes_nothing(admin, sftp):
    local = {**schedule(sftp), "jupyterhub_backup_restic_repository": str(LOCAL_REPOSITORY), "jupyterhub_backup_restic_options": []}
    site_backup_tag("local-repository", local)
    assert (LOCAL_REPOSITORY / "config").is_file()
    said = run_as_cron(cron_commands()[0])
    assert said["status"] == 0 and said["offsite"]["repository"] == str(LOCAL_REPOSITORY), said
    before = digests()
    output = site_backup_tag("wrong-password", {**local, "jupyterhub_backup_restic_password": "Not-The-Password-2"}, succeed=False)
    assert f"the restic password does not open the repository {LOCAL_REPOSITORY}" in " ".join(output.split()), output[-3000:]
    assert "Not-The-Password-2" not in output and recap(output)["changed"] == 0
    assert digests() == before


def test_an_empty_schedule_removes_the_jobs_and_the_secrets_and_keeps_the_backups(admin):
    kept = sorted(path.name for path in BACKUPS.iterdir())
    site_backup_tag("off", {"jupyterhub_backup_root": str(BACKUPS)})
    assert not CRON.exists() and not SETTINGS.exists() and not SECRETS.exists()
    assert sorted(path.name for path in BACKUPS.iterdir()) == kept
    assert (LOCAL_REPOSITORY / "config").is_file()
