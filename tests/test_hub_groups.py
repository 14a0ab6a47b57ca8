"""The module jhub.docker.hub_groups, run by Ansible against a small stand-in of the hub's groups API (the
real hub is exercised end to end in tests/test_environments.py): which members it removes, which groups it
deletes and leaves, what check mode does, and the message of a refused request."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest

from conftest import BIN, ansible_env

TOKEN = "secret-token-of-the-ops-service"


class GroupsAPI(BaseHTTPRequestHandler):
    """GET /hub/api/groups, DELETE /hub/api/groups/NAME/users and DELETE /hub/api/groups/NAME, as JupyterHub answers them."""

    groups: dict = {}
    calls: list = []

    def _answer(self, status: int, body=None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        self.calls.append((method, unquote(self.path), body))
        if self.headers.get("Authorization") != f"token {TOKEN}":
            self._answer(403, {"status": 403, "message": "Action is not authorized with current scopes"})
            return
        parts = unquote(self.path).split("/")[3:]  # /hub/api/groups[/NAME[/users]]
        if method == "GET" and parts == ["groups"]:
            self._answer(200, [{"name": name, **group} for name, group in self.groups.items()])
        elif method == "DELETE" and len(parts) == 3 and parts[2] == "users":
            group = self.groups[parts[1]]
            group["users"] = [user for user in group["users"] if user not in body["users"]]
            self._answer(200, {"name": parts[1], **group})
        elif method == "DELETE" and len(parts) == 2:
            del self.groups[parts[1]]
            self._answer(204)
        else:
            self._answer(404, {"status": 404, "message": "Not Found"})

    def do_GET(self):  # noqa: N802 (BaseHTTPRequestHandler's names)
        self._handle("GET")

    def do_DELETE(self):  # noqa: N802
        self._handle("DELETE")

    def log_message(self, *_args):
        pass


@pytest.fixture
def api():
    GroupsAPI.groups = {
        "lab": {"users": ["ann", "bo", "cy"], "properties": {"jhub.docker": "managed"}},
        "old course": {"users": ["dee"], "properties": {"jhub.docker": "managed"}},
        "made-in-the-admin-page": {"users": ["eve"], "properties": {}},
    }
    GroupsAPI.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), GroupsAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hub/api"
    server.shutdown()


def hub_groups(api_url: str, groups: dict, *args: str, token: str = TOKEN) -> tuple[dict, str]:
    """Run the module on localhost; its result and Ansible's whole output."""
    arguments = json.dumps({"api_url": api_url, "token": token, "groups": groups})
    result = subprocess.run([str(BIN / "ansible"), "localhost", "-c", "local", "-i", "localhost,", "-m", "jhub.docker.hub_groups",
                             "-a", arguments, "-e", f"ansible_python_interpreter={sys.executable}", *args],
                            env=ansible_env(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json"),
                            capture_output=True, text=True, timeout=120, check=False)
    output = result.stdout + result.stderr
    return json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"], output


def test_members_not_listed_leave_and_managed_groups_not_listed_go(api):
    result, output = hub_groups(api, {"lab": ["ann", "cy"]})
    assert result["changed"] is True and result["removed"] == {"lab": ["bo"]} and result["deleted"] == ["old course"], output
    assert GroupsAPI.groups == {"lab": {"users": ["ann", "cy"], "properties": {"jhub.docker": "managed"}},
                                "made-in-the-admin-page": {"users": ["eve"], "properties": {}}}
    assert ("DELETE", "/hub/api/groups/lab/users", {"users": ["bo"]}) in GroupsAPI.calls
    assert TOKEN not in output  # no_log: the token is never printed
    # A second run: nothing to do.
    result, output = hub_groups(api, {"lab": ["ann", "cy"]})
    assert result["changed"] is False and [call[0] for call in GroupsAPI.calls[-1:]] == ["GET"], output


def test_check_mode_says_what_it_would_change_and_changes_nothing(api):
    before = json.loads(json.dumps(GroupsAPI.groups))
    result, output = hub_groups(api, {"lab": ["ann"]}, "--check")
    assert result["changed"] is True and result["removed"] == {"lab": ["bo", "cy"]} and result["deleted"] == ["old course"], output
    assert GroupsAPI.groups == before and {call[0] for call in GroupsAPI.calls} == {"GET"}


def test_a_group_the_hub_has_not_loaded_and_a_refused_token_are_named(api):
    result, output = hub_groups(api, {"lab": ["ann"], "thesis": ["fay"]})
    assert result.get("failed") and "The group thesis is not in the hub" in result["msg"], output
    result, output = hub_groups(api, {"lab": ["ann"]}, token="wrong")
    assert result.get("failed") and result["msg"].startswith("GET /groups: HTTP 403"), output
    assert "wrong" not in output
