"""The scheduled backup on the hub that `make deploy` made, switched on and off with `site.yml --tags backup` runs.

This machine has no systemd, so the role installs cron and a cron job (the Molecule default scenario
checks the systemd timer). The test runs the job's own command line as cron would, rather than waiting
for 03:15:

- the settings file is root's, 0600; cron runs;
- the run stops the admin's running server through the hub's API, backs up its volume and the hub state,
  and starts the server again; its record and the metrics file say it succeeded, with the size;
- playbooks/restore.yml restores the scheduled backup (same layout as the playbook's) into a new volume;
- a run that fails (the tool image missing) exits 1, keeps nothing half-made, records the failure and
  keeps the newest good backup's figures;
- an empty schedule removes the job and the settings, and the backups stay.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import OUTPUT, recap, run_playbook
# deployed is test_local_deploy's fixture: the hub that make deploy made.
from test_local_deploy import URL, deployed, inspect  # noqa: F401 # pylint: disable=unused-import
from test_environments import in_volume

from jhub_testing.hubclient import HubClient

BACKUPS = Path("/var/backups/jhub-docker-test-schedule")
METRICS = Path("/var/tmp/jhub-docker-test-metrics")
CRON = Path("/etc/cron.d/jhub-docker-backup")
SETTINGS = Path("/srv/jupyterhub/backup.json")
SCHEDULE = {"jupyterhub_backup_schedule": "*-*-* 03:15:00", "jupyterhub_backup_schedule_cron": "15 3 * * *",
            "jupyterhub_backup_root": str(BACKUPS), "jupyterhub_backup_metrics_dir": str(METRICS),
            "jupyterhub_backup_users": ["admin"], "jupyterhub_backup_stop_servers": True, "jupyterhub_backup_keep": 2}
RESTORED = "jhub-test-restored-admin"


def site_backup_tag(name: str, extra_vars: dict) -> None:
    result = run_playbook("playbooks/site.yml", extra_vars, "--tags", "backup")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / f"schedule-{name}.log").write_text(result.stdout)
    assert result.returncode == 0 and recap(result.stdout)["failed"] == 0, result.stdout[-4000:]


def cron_command() -> str:
    """The command of the cron job's line (after the five fields and the user)."""
    (line,) = [line for line in CRON.read_text().splitlines() if line and not line.startswith(("#", "SHELL=", "PATH="))]
    fields = line.split(None, 6)
    assert fields[:6] == ["15", "3", "*", "*", "*", "root"], line
    return fields[6]


def run_as_cron(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, capture_output=True, text=True,
                          timeout=600, check=False)


@pytest.fixture(scope="module")
def admin(deployed):  # noqa: F811 (the fixture imported above)
    """The admin with a running server, and the schedule installed; at the end, neither."""
    shutil.rmtree(BACKUPS, ignore_errors=True)
    shutil.rmtree(METRICS, ignore_errors=True)
    client = HubClient(URL)
    assert client.login("admin", deployed).status_code == 302
    client.start_server("admin")
    in_volume("jupyterhub-user-admin", "echo 'made before the scheduled backup' > /v/schedule.txt")
    site_backup_tag("on", SCHEDULE)
    yield client
    client.stop_server("admin")
    in_volume("jupyterhub-user-admin", "rm -f /v/schedule.txt")
    subprocess.run(["docker", "volume", "rm", "-f", RESTORED], check=False)
    shutil.rmtree(BACKUPS, ignore_errors=True)
    shutil.rmtree(METRICS, ignore_errors=True)


def test_the_schedule_is_a_cron_job_here_and_its_settings_are_roots_alone(admin):
    assert stat.S_IMODE(SETTINGS.stat().st_mode) == 0o600 and SETTINGS.stat().st_uid == 0
    settings = json.loads(SETTINGS.read_text())
    assert settings["root"] == str(BACKUPS) and settings["keep"] == 2 and settings["stop_servers"] is True
    assert "token" not in json.dumps({key: value for key, value in settings.items() if key != "token_file"})
    assert subprocess.run(["pgrep", "-x", "cron"], capture_output=True, check=False).returncode == 0, "cron does not run"
    assert "/jhub-backup-run.py --config /srv/jupyterhub/backup.json" in cron_command()


def test_a_scheduled_run_backs_up_with_the_server_stopped_and_started_again(admin):
    started = inspect("jupyter-admin")["State"]["StartedAt"]
    result = run_as_cron(cron_command())
    assert result.returncode == 0, Path("/var/log/jhub-docker-backup.log").read_text()[-3000:]
    said = json.loads(Path("/var/log/jhub-docker-backup.log").read_text().strip().splitlines()[-1])
    assert said["servers_stopped"] == ["admin/"] and said["users"] == ["admin"] and said["hub_state"]
    (backup,) = [path for path in BACKUPS.iterdir() if path.name.startswith("jhub-backup-")]
    manifest = json.loads((backup / "manifest.json").read_text())
    assert {(archive["kind"], archive.get("username")) for archive in manifest["archives"]} == {("user", "admin"), ("hub-state", None)}
    assert subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=backup, capture_output=True, check=False).returncode == 0
    assert stat.S_IMODE(backup.stat().st_mode) == 0o700
    admin.wait_ready("admin")
    state = inspect("jupyter-admin")["State"]
    assert state["Running"] and state["StartedAt"] != started
    record = json.loads((BACKUPS / "last-run.json").read_text())
    assert record["success"] == 1 and record["last_success_name"] == backup.name
    assert record["last_success_size"] == sum(archive["size"] for archive in manifest["archives"])
    metrics = (METRICS / "jhub_backup.prom").read_text()
    assert "jhub_backup_last_run_success 1\n" in metrics
    assert f"jhub_backup_last_success_size_bytes {record['last_success_size']}\n" in metrics


def test_the_scheduled_backup_restores_with_the_playbook(admin):
    (backup,) = [path.name for path in BACKUPS.iterdir() if path.name.startswith("jhub-backup-")]
    result = run_playbook("playbooks/restore.yml", {"jupyterhub_backup_root": str(BACKUPS), "jupyterhub_backup_name": backup,
                                                    "jupyterhub_backup_restore_users": ["admin"],
                                                    "jupyterhub_backup_restore_volume": "jhub-test-restored-{username}"})
    (OUTPUT / "schedule-restore.log").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-4000:]
    assert in_volume(RESTORED, "cat /v/schedule.txt") == "made before the scheduled backup\n"


def test_a_failed_run_is_recorded_and_keeps_the_last_good_figures(admin, tmp_path):
    good = json.loads((BACKUPS / "last-run.json").read_text())
    settings = json.loads(SETTINGS.read_text())
    broken = tmp_path / "backup.json"
    broken.write_text(json.dumps({**settings, "image": "jhub-docker/no-such-image:0", "stop_servers": False}))
    before = sorted(path.name for path in BACKUPS.iterdir())
    result = run_as_cron(cron_command().replace(str(SETTINGS), str(broken)))
    assert result.returncode == 1
    said = json.loads(Path("/var/log/jhub-docker-backup.log").read_text().strip().splitlines()[-1])
    assert said["failed"] and "The backup failed, nothing half-made is kept" in said["msg"] and "no-such-image" in said["msg"], said
    assert sorted(path.name for path in BACKUPS.iterdir()) == before
    record = json.loads((BACKUPS / "last-run.json").read_text())
    assert record["success"] == 0 and "no-such-image" in record["error"]
    assert record["last_success_ended"] == good["last_success_ended"]
    metrics = (METRICS / "jhub_backup.prom").read_text()
    assert "jhub_backup_last_run_success 0\n" in metrics
    assert f"jhub_backup_last_success_timestamp_seconds {good['last_success_ended']}\n" in metrics
    assert subprocess.run(["docker", "container", "inspect", "jhub-backup-archive"], capture_output=True, check=False).returncode != 0


def test_an_empty_schedule_removes_the_job_and_keeps_the_backups(admin):
    backups = sorted(path.name for path in BACKUPS.iterdir())
    site_backup_tag("off", {"jupyterhub_backup_root": str(BACKUPS)})
    assert not CRON.exists() and not SETTINGS.exists()
    assert sorted(path.name for path in BACKUPS.iterdir()) == backups
