"""A browser-equivalent client for a deployed JupyterHub: forms with _xsrf, cookies, REST, kernels.

No mocks: it talks HTTP and websockets to the real hub through its real proxy.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import requests
import websocket

# JHUB_RESOLVE="name:address ..." connects to address whenever name is asked for, like curl's
# --resolve: a hub published on loopback is reached under its real DNS name, so that TLS (SNI,
# the certificate's name) is checked as a browser would. REQUESTS_CA_BUNDLE and
# WEBSOCKET_CLIENT_CA_BUNDLE name the CA that HTTPS and wss:// trust.
RESOLVE = dict(item.split(":", 1) for item in os.environ.get("JHUB_RESOLVE", "").split())
if RESOLVE:
    _getaddrinfo = socket.getaddrinfo
    socket.getaddrinfo = lambda host, *args, **kwargs: _getaddrinfo(RESOLVE.get(host, host), *args, **kwargs)


class HubClient:
    """One browser: a cookie jar and the hub's base URL."""

    def __init__(self, base_url: str, timeout: float = 30):
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()

    # --- pages and forms ---------------------------------------------------------
    def _xsrf(self, path: str) -> str:
        """GET a form page and return the _xsrf token that the hub set for it."""
        response = self.http.get(self.base + path, timeout=self.timeout)
        response.raise_for_status()
        token = self.http.cookies.get("_xsrf", path="/hub/") or self.http.cookies.get("_xsrf")
        assert token, f"no _xsrf cookie after GET {path}"
        return token

    def login(self, username: str, password: str) -> requests.Response:
        """Submit the login form; a successful login answers 302 (to /hub/spawn or next)."""
        token = self._xsrf("/hub/login")
        return self.http.post(
            self.base + "/hub/login",
            data={"username": username, "password": password, "_xsrf": token},
            allow_redirects=False,
            timeout=self.timeout,
        )

    def signup(self, username: str, password: str, confirmation: str | None = None) -> str:
        """Submit NativeAuthenticator's sign-up form and return the page it answers with."""
        token = self._xsrf("/hub/signup")
        response = self.http.post(
            self.base + "/hub/signup",
            data={
                "username": username,
                "signup_password": password,
                "signup_password_confirmation": password if confirmation is None else confirmation,
                "_xsrf": token,
            },
            timeout=self.timeout,
        )
        response.raise_for_status()
        return response.text

    def change_password(self, old: str, new: str) -> str:
        """Submit NativeAuthenticator's change-password form as the logged-in user; return the page."""
        token = self._xsrf("/hub/change-password")
        response = self.http.post(
            self.base + "/hub/change-password",
            data={"old_password": old, "new_password": new, "new_password_confirmation": new, "_xsrf": token},
            timeout=self.timeout,
        )
        response.raise_for_status()
        return response.text

    def authorize(self, username: str) -> None:
        """As an admin: toggle a user's approval on /hub/authorize (approve a new sign-up)."""
        response = self.http.get(f"{self.base}/hub/authorize/{username}", allow_redirects=False, timeout=self.timeout)
        assert response.status_code == 302, (response.status_code, response.text[:500])

    # --- REST API ------------------------------------------------------------------
    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        """Call /hub/api with the session cookie (plus its XSRF header) or with a token."""
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"token {token}"
        else:
            headers["X-XSRFToken"] = self.http.cookies.get("_xsrf", path="/hub/") or ""
        return self.http.request(method, f"{self.base}/hub/api{path}", headers=headers, timeout=self.timeout, **kwargs)

    def wait_ready(self, username: str, token: str | None = None, timeout: float = 180, server: str = "") -> float:
        """Wait until the user's default (or named) server is ready; return the seconds waited."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            model = self.api("GET", f"/users/{username}", token=token).json()
            found = model.get("servers", {}).get(server)
            if found and found.get("ready"):
                return time.monotonic() - start
            if not found and (server or not model.get("pending")):  # a named server's pending start is in servers
                raise AssertionError(f"{username}'s server {server!r} is neither pending nor running: {model}")
            time.sleep(0.5)
        raise AssertionError(f"{username}'s server was not ready after {timeout} s")

    def wait_progress(self, username: str, token: str | None = None, timeout: float = 180) -> dict:
        """Wait on the server's progress event stream, as the spawn page does (one open response, the hub
        pushes each event); return its last event: ready, or failed with the hub's message."""
        headers = {"Accept": "text/event-stream"}
        if token:
            headers["Authorization"] = f"token {token}"
        with self.http.get(f"{self.base}/hub/api/users/{username}/server/progress", headers=headers, stream=True,
                           timeout=(self.timeout, timeout)) as response:
            response.raise_for_status()
            event: dict = {}
            for line in response.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event.get("ready") or event.get("failed"):
                        break
            return event

    def start_server(self, username: str, token: str | None = None) -> float:
        response = self.api("POST", f"/users/{username}/server", token=token)
        assert response.status_code in (201, 202), (response.status_code, response.text)
        return self.wait_ready(username, token=token)

    def stop_server(self, username: str, token: str | None = None, timeout: float = 120, server: str = "") -> None:
        response = self.api("DELETE", f"/users/{username}/" + (f"servers/{server}" if server else "server"), token=token)
        assert response.status_code in (202, 204), (response.status_code, response.text)
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            model = self.api("GET", f"/users/{username}", token=token).json()
            if server not in model.get("servers", {}) and (server or not model.get("pending")):
                return
            time.sleep(0.5)
        raise AssertionError(f"{username}'s server did not stop within {timeout} s")

    # --- the user's own server, through the proxy ----------------------------------------
    def open_server(self, username: str) -> None:
        """Visit /user/<name>/ like a browser: the OAuth round trip sets the server's cookies."""
        page = self.http.get(f"{self.base}/user/{username}/", timeout=self.timeout)
        assert page.status_code == 200 and f"/user/{username}/" in page.url, (page.status_code, page.url)
        response = self.http.get(f"{self.base}/user/{username}/api/status", timeout=self.timeout)
        assert response.status_code == 200, (response.status_code, response.url, response.text[:300])

    def server_api(self, username: str, method: str, path: str, **kwargs) -> requests.Response:
        prefix = f"/user/{username}/"
        headers = kwargs.pop("headers", {})
        headers["X-XSRFToken"] = self.http.cookies.get("_xsrf", path=prefix) or ""
        return self.http.request(method, f"{self.base}{prefix}api{path}", headers=headers, timeout=self.timeout, **kwargs)

    def execute(self, username: str, code: str, timeout: float = 60) -> str:
        """Start a kernel, run code over the proxied websocket, return its stdout; delete the kernel."""
        kernel = self.server_api(username, "POST", "/kernels", json={"name": "python3"})
        assert kernel.status_code == 201, (kernel.status_code, kernel.text)
        kernel_id = kernel.json()["id"]
        try:
            return self._run(username, kernel_id, code, timeout)
        finally:
            self.server_api(username, "DELETE", f"/kernels/{kernel_id}")

    def _run(self, username: str, kernel_id: str, code: str, timeout: float) -> str:
        ws = self.connect_kernel(username, kernel_id, timeout)
        try:
            return self.run_on(ws, username, code, timeout)
        finally:
            ws.close()

    def connect_kernel(self, username: str, kernel_id: str, timeout: float = 60) -> websocket.WebSocket:
        """An open websocket to the kernel's channels, through the proxy."""
        parts = urlsplit(self.base)
        scheme = "wss" if parts.scheme == "https" else "ws"
        url = f"{scheme}://{parts.netloc}/user/{username}/api/kernels/{kernel_id}/channels"
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)
        header = [f"Cookie: {cookies}"]
        if "Authorization" in self.http.headers:  # a client authenticated by an API token
            header.append(f"Authorization: {self.http.headers['Authorization']}")
        return websocket.create_connection(url, header=header, timeout=timeout)

    @staticmethod
    def run_on(ws: websocket.WebSocket, username: str, code: str, timeout: float = 60) -> str:
        """Run code over an open kernel websocket; return its stdout."""
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": username, "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        output, replied, idle = [], None, False
        deadline = time.monotonic() + timeout
        while (replied is None or not idle) and time.monotonic() < deadline:
            message = json.loads(ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["msg_type"]
            if kind == "stream":
                output.append(message["content"]["text"])
            elif kind == "error":
                output.append("\n".join(message["content"]["traceback"]))
            elif kind == "execute_reply":
                replied = message["content"]["status"]
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                idle = True
        assert replied == "ok", f"execution status {replied}: {''.join(output)}"
        return "".join(output)

    # --- a new user's whole way in ------------------------------------------------------
    def join(self, admin: HubClient, username: str, password: str) -> None:
        """Sign up, be approved by the admin, log in through the form, start and open the server."""
        assert "Your information has been sent to the admin" in self.signup(username, password)
        admin.authorize(username)
        response = self.login(username, password)
        assert response.status_code == 302, (response.status_code, response.text[:500])
        self.start_server(username)
        self.open_server(username)


class _Watch(threading.Thread):
    """Polls while a play runs: check() five times a second; the seconds and answers when it failed,
    and when each failed check began and ended (monotonic clock)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.ok, self.down, self.stopped = 0, 0.0, threading.Event()
        self.failures: list[tuple[float, float, str]] = []
        self.last_ok = False

    @property
    def failed(self) -> list[str]:
        """The answers of the failed checks, in order."""
        return [problem for _began, _ended, problem in self.failures]

    def failed_outside(self, other: _Watch, margin: float = 1.0) -> list[str]:
        """This watch's failures that did not begin while the other watch failed (within margin seconds)."""
        return [problem for began, _ended, problem in self.failures
                if not any(start - margin <= began <= end + margin for start, end, _problem in other.failures)]

    def check(self) -> str | None:
        raise NotImplementedError

    def run(self):
        while not self.stopped.is_set():
            began = time.monotonic()
            try:
                problem = self.check()
            except requests.RequestException as error:
                problem = type(error).__name__
            ended = time.monotonic()
            self.stopped.wait(max(0.0, 0.2 - (ended - began)))
            if problem:
                self.failures.append((began, ended, problem))
                self.down += time.monotonic() - began
            else:
                self.ok += 1
            self.last_ok = not problem

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)


class Watcher(_Watch):
    """A user's requests to their own server through the proxy."""

    def __init__(self, client: HubClient, name: str):
        super().__init__()
        self.client, self.name = client, name

    def check(self) -> str | None:
        response = self.client.http.get(f"{self.client.base}/user/{self.name}/api/status", timeout=5)
        return None if response.status_code == 200 else f"HTTP {response.status_code}"


class HealthWatch(_Watch):
    """The hub's /hub/health."""

    def __init__(self, url: str):
        super().__init__()
        self.url = url.rstrip("/")

    def check(self) -> str | None:
        response = requests.get(f"{self.url}/hub/health", timeout=2)
        return None if response.status_code == 200 else f"HTTP {response.status_code}"


class KeepAlive(threading.Thread):
    """Answers for an open kernel websocket while the test does not read it, as a browser does.

    Jupyter Server pings each websocket every 30 s and closes one that has sent no pong for 90 s;
    websocket-client only answers pings inside recv(). A pong every 10 s (unsolicited pongs are
    allowed, and the server counts them) keeps the connection through a long play."""

    def __init__(self, ws: websocket.WebSocket):
        super().__init__(daemon=True)
        self.ws, self.stopped = ws, threading.Event()

    def run(self):
        while not self.stopped.wait(10):
            self.ws.pong(b"")

    def __enter__(self) -> KeepAlive:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stopped.set()
        self.join(timeout=10)
