"""The scheduled backup's program (roles/jupyterhub_backup/files/jhub-backup-run.py), in its parts: the
record and the metrics file of a good and of a failed run, one run at a time, and its use of the hub's REST API
(against a stand-in of the API's users and servers). Its whole run, on this machine's deployment with
the real engine and the real hub, is in tests/test_backup_schedule.py.
"""

from __future__ import annotations

import fcntl
import os
import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ROOT

SCRIPT = ROOT / "roles" / "jupyterhub_backup" / "files" / "jhub-backup-run.py"
spec = importlib.util.spec_from_file_location("jhub_backup_run", SCRIPT)
run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run)


def test_a_failed_run_keeps_the_newest_good_backup_in_the_record_and_metrics():
    good = run.record({}, 100.0, 160.5, {"name": "jhub-backup-20261206T000000Z", "size": 4096}, None)
    assert good["success"] == 1 and good["last_success_seconds"] == 60.5 and good["last_success_size"] == 4096
    failed = run.record(good, 200.0, 201.0, None, "the archive container exited 1")
    assert failed["success"] == 0 and failed["error"] == "the archive container exited 1"
    assert failed["last_success_ended"] == 160.5 and failed["last_success_name"] == "jhub-backup-20261206T000000Z"
    text = run.metrics(failed)
    assert "jhub_backup_last_run_success 0\n" in text
    assert "jhub_backup_last_run_timestamp_seconds 201.0\n" in text
    assert "jhub_backup_last_success_timestamp_seconds 160.5\n" in text
    assert "jhub_backup_last_success_size_bytes 4096\n" in text
    assert "# TYPE jhub_backup_last_success_duration_seconds gauge\n" in text


def test_a_first_run_that_fails_has_no_good_backup_to_report():
    text = run.metrics(run.record({}, 1.0, 2.0, None, "no engine"))
    assert "jhub_backup_last_run_success 0" in text
    assert "last_success" not in text


def test_one_run_at_a_time(tmp_path, capsys):
    config = tmp_path / "backup.json"
    config.write_text(json.dumps({"root": str(tmp_path / "backups")}))
    (tmp_path / "backups").mkdir()
    with open(tmp_path / "backups" / ".lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert run.main(["--config", str(config)]) == 1
    said = json.loads(capsys.readouterr().out)
    assert said == {"failed": True, "msg": f"another backup is running on this host ({tmp_path}/backups/.lock is held)."}
    assert not (tmp_path / "backups" / "last-run.json").exists()


class StandIn(BaseHTTPRequestHandler):
    """The hub's users API, as far as the backup uses it: 250 active users (two pages), ann with two servers."""

    servers = {}
    calls = []

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass

    def answer(self, status, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 pylint: disable=invalid-name
        assert self.headers["Authorization"] == "token secret-token"
        if self.path.startswith("/hub/api/users?"):
            offset = int(self.path.rsplit("offset=", 1)[1])
            names = ["ann"] + [f"u{number}" for number in range(249)]
            items = [{"name": name, "servers": self.servers.get(name, {})} for name in names[offset:offset + 200]]
            self.answer(200, {"items": items, "_pagination": {"total": len(names)}})
        else:
            self.answer(200, {"servers": self.servers.get(self.path.rsplit("/", 1)[1], {})})

    def target(self):
        """(user, server name) of /hub/api/users/USER/server or .../servers/NAME."""
        user, name = self.path.removeprefix("/hub/api/users/").split("/", 1)
        return user, name.removeprefix("servers/") if name != "server" else ""

    def do_DELETE(self):  # noqa: N802 pylint: disable=invalid-name
        self.calls.append(("DELETE", self.path))
        user, name = self.target()
        if user not in self.servers:
            self.answer(500, {"message": "no such user"})
            return
        self.servers[user].pop(name)
        self.answer(204)

    def do_POST(self):  # noqa: N802 pylint: disable=invalid-name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.calls.append(("POST", self.path, body))
        user, name = self.target()
        if name in self.servers.get(user, {}):
            self.answer(400, {"message": f"{user}'s server {name} is already running"})
            return
        self.servers.setdefault(user, {})[name] = {"name": name, "ready": True, "user_options": body}
        self.answer(201)


def test_servers_stopped_and_started_again_with_their_options(tmp_path):
    StandIn.servers = {"ann": {"": {"name": "", "ready": True, "user_options": {"profile": "large"}},
                               "work": {"name": "work", "ready": True, "user_options": {}}},
                       "u210": {"": {"name": "", "ready": True}}, "u3": {"": {"name": "", "ready": True}}}
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = tmp_path / "ops.token"
    token.write_text("secret-token\n")
    try:
        hub = run.hub_api.HubApi(f"http://127.0.0.1:{server.server_port}/hub/api", token.read_text(), 10)
        servers = hub.servers_of({"ann", "u210"})
        assert sorted((item["user"], item["name"]) for item in servers) == [("ann", ""), ("ann", "work"), ("u210", "")]
        hub.stop(servers)
        assert set(StandIn.servers) == {"ann", "u210", "u3"} and not StandIn.servers["ann"] and not StandIn.servers["u210"]
        assert hub.start(servers) == servers
        assert StandIn.servers["ann"][""]["user_options"] == {"profile": "large"}
        # A server that runs already is left as it is, and is not among those started.
        assert hub.start([{"user": "u3", "name": "", "user_options": {}}, servers[0]]) == []
        assert ("POST", "/hub/api/users/ann/servers/work", {}) in StandIn.calls
        with pytest.raises(run.hub_api.HubApiError, match="DELETE /users/cy/server: HTTP 500"):
            hub.call("DELETE", "/users/cy/server", accept=(204,))
    finally:
        server.shutdown()


def restic_config(tmp_path, password="Restic-Unit-1", repository=None):
    return {"host": "unit", "restic": {"repository": str(repository or tmp_path / "repo"), "options": [], "cache_dir": str(tmp_path / "cache"),
                                       "secrets": {"RESTIC_PASSWORD": password}}}


def test_restic_makes_a_repository_once_and_refuses_a_wrong_password(tmp_path):
    assert run.Restic(restic_config(tmp_path)).init() is True
    assert run.Restic(restic_config(tmp_path)).init() is False
    config = (tmp_path / "repo" / "config").read_bytes()
    with pytest.raises(run.BackupError, match="the restic password does not open the repository .*; nothing was changed"):
        run.Restic(restic_config(tmp_path, password="Wrong-Password-2")).init()
    # restic cannot tell a server that does not answer from a repository that is not there: init fails.
    with pytest.raises(run.BackupError, match="the repository could not be made: restic init failed on rest:.*connection refused"):
        run.Restic(restic_config(tmp_path, repository="rest:http://127.0.0.1:1/")).init()
    assert (tmp_path / "repo" / "config").read_bytes() == config


def test_restic_snapshots_are_incremental_tagged_and_kept_per_volume(tmp_path):
    restic = run.Restic(restic_config(tmp_path))
    restic.init()
    home = tmp_path / "home"
    home.mkdir()
    (home / "big.bin").write_bytes(os.urandom(4 << 20))
    first = restic.backup([str(home)], ["kind:user", "user:ann", "backup:one"])
    (home / "note.txt").write_text("new\n")
    second = restic.backup([str(home)], ["kind:user", "user:ann", "backup:two"])
    assert first["data_added"] > 4 << 20 and second["data_added"] < 64 << 10, (first, second)
    staging = tmp_path / ".offsite"
    staging.mkdir()
    for name in ("one", "two", "three"):
        (staging / "hub-state.tar.zst").write_bytes(name.encode() * 1000)
        restic.backup([str(staging)], ["kind:backup", f"backup:{name}"])
    restic.forget(2)
    assert {tag for snapshot in restic.snapshots(["user:ann"]) for tag in snapshot["tags"]} >= {"backup:one", "backup:two"}
    kept = sorted(tag for snapshot in restic.snapshots(["kind:backup"]) for tag in snapshot["tags"] if tag.startswith("backup:"))
    assert kept == ["backup:three", "backup:two"]
