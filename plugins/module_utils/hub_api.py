# Copyright: jhub.docker maintainers
# Apache License 2.0 (see LICENSE)
"""The hub's REST API with a token: the one client of the collection.

The modules hub_groups and hub_servers use it, and so does the scheduled backup's program on the hub's host
(roles/jupyterhub_backup/files/jhub-backup-run.py, beside which the backup role installs this file): only
the standard library, so that it runs with the host's python3 as well as in a module. The hub's API is
always this host's own (the hub's address on the hub network, or the loopback): no proxy is ever used.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request


class HubApiError(Exception):
    """The hub did not answer, or answered otherwise than expected: the message names the request."""


class HubApi:
    """Requests to API (http://HOST:PORT/hub/api) with TOKEN; waits give up after TIMEOUT seconds."""

    def __init__(self, api: str, token: str, timeout: float = 180) -> None:
        self.api = api.rstrip("/")
        self.token = token.strip()
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, path: str, body=None, accept=range(200, 300), paged: bool = False):
        """(status, the answer's JSON or None); HubApiError when the status is not in ACCEPT. PAGED: a list
        comes as a page ({items, _pagination})."""
        headers = {"Authorization": f"token {self.token}", "Content-Type": "application/json",
                   "Accept": "application/jupyterhub-pagination+json" if paged else "application/json"}
        request = urllib.request.Request(self.api + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                         headers=headers)
        try:
            with self._opener.open(request, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as error:
            raise HubApiError(f"the hub's API at {self.api} did not answer {method} {path}: {error}") from error
        if status not in accept:
            raise HubApiError(f"{method} {path}: HTTP {status} {text[:300]}")
        return status, json.loads(text) if text.strip() else None

    def servers_of(self, users) -> list[dict]:
        """The running servers of USERS (every user when None): [{user, name, user_options}], 200 users a page."""
        servers, offset = [], 0
        while True:
            _status, page = self.call("GET", f"/users?state=active&limit=200&offset={offset}", paged=True)
            for user in page["items"]:
                if users is None or user["name"] in users:
                    servers += [{"user": user["name"], "name": server["name"], "user_options": server.get("user_options") or {}}
                                for server in (user.get("servers") or {}).values()]
            offset += 200
            if offset >= page["_pagination"]["total"]:
                return servers

    @staticmethod
    def path(server: dict) -> str:
        return f"/users/{server['user']}/" + (f"servers/{server['name']}" if server["name"] else "server")

    def wait(self, servers: list[dict], wanted: str) -> None:
        """Until each of SERVERS is WANTED: stopped (gone from its user's servers) or ready."""
        deadline = time.monotonic() + self.timeout
        for server in servers:
            while True:
                _status, user = self.call("GET", f"/users/{server['user']}")
                state = (user.get("servers") or {}).get(server["name"])
                if (state is None) if wanted == "stopped" else (state or {}).get("ready"):
                    break
                if time.monotonic() > deadline:
                    raise HubApiError(f"{server['user']}/{server['name']} is not {wanted} after {self.timeout} s.")
                time.sleep(2)

    def stop(self, servers: list[dict]) -> None:
        for server in servers:
            self.call("DELETE", self.path(server), accept=(202, 204))
        self.wait(servers, "stopped")

    def start(self, servers: list[dict]) -> list[dict]:
        """Start SERVERS with their options and wait until they are ready; those that this call started. 400: the
        server runs already (the wait checks it); 429: more starts are pending than the hub takes at once (again,
        10 s later)."""
        deadline = time.monotonic() + self.timeout
        started = []
        for server in servers:
            while (status := self.call("POST", self.path(server), server["user_options"], accept=(201, 202, 400, 429))[0]) == 429:
                if time.monotonic() > deadline:
                    raise HubApiError(f"the hub refused to start {server['user']}/{server['name']} for {self.timeout} s (429).")
                time.sleep(10)
            if status != 400:
                started.append(server)
        self.wait(servers, "ready")
        return started
