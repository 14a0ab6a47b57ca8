"""A real OpenID Provider for the end-to-end tests of the hub's OIDC login, and a browser that logs in through it.

The provider is panva's OpenID-certified oidc-provider (tests/providers/oidc) in a container built here, on a
Docker network beside the hub, serving HTTPS with a certificate of the test's own CA: the hub meets the same
discovery, login form, code exchange, PKCE and userinfo as with a site's real provider. No mocks.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

from .testca import TestCA

# The image's recipe: this folder (Dockerfile, package.json, package-lock.json, provider.mjs).
SOURCE = Path(__file__).resolve().parents[1] / "providers" / "oidc"
# The CA bundle that npm trusts while the image is built: this network's HTTPS goes through a
# TLS-intercepting proxy whose CA is in the host's bundle. It is copied into a temporary build
# context, never into the repository, and stays in the image's build stage.
NPM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
RECIPE_LABEL = "io.jhub-docker.recipe"


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the docker CLI and capture what it says."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def _recipe() -> str:
    """A digest of the files the image is built from: a changed recipe means a rebuild."""
    digest = hashlib.sha256()
    for path in sorted(SOURCE.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class OidcProvider:
    """One oidc-provider container: a static confidential client and password accounts with groups.

    `accounts` maps usernames to {"password": ..., "groups": [...], "email": ..., "name": ...}. The provider
    reads them from a file that it reads again at every use, so that set_groups() takes effect at the next login.
    """

    IMAGE = "jhub-test/oidc-provider:1"
    PORT = 8443

    def __init__(self, ca: TestCA, client_id: str, client_secret: str, redirect_uri: str,
                 accounts: dict[str, dict], network: str = "jupyterhub", address: str = "172.31.253.11",
                 name: str = "jhub-test-oidc", post_logout_redirect_uris: tuple[str, ...] = ()) -> None:
        self.ca = ca
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.post_logout_redirect_uris = post_logout_redirect_uris  # where RP-initiated logout may return
        self.accounts = {user: dict(account) for user, account in accounts.items()}
        self.network = network
        self.address = address
        self.name = name
        self.issuer = f"https://{address}:{self.PORT}"
        self._folder: Path | None = None  # the accounts file's folder, mounted into the container

    # --- the image ---------------------------------------------------------------
    @classmethod
    def build(cls) -> None:
        """Build the image unless it exists with the current recipe (a few minutes: apt and npm ci)."""
        recipe = _recipe()
        found = _docker("image", "inspect", "--format", "{{index .Config.Labels \"" + RECIPE_LABEL + "\"}}",
                        cls.IMAGE, check=False)
        if found.returncode == 0 and found.stdout.strip() == recipe:
            return
        with tempfile.TemporaryDirectory(prefix="jhub-oidc-build-") as context:
            shutil.copytree(SOURCE, context, dirs_exist_ok=True)
            shutil.copy(NPM_CA_BUNDLE, Path(context) / "npm-ca.crt")
            built = _docker("build", "--label", f"{RECIPE_LABEL}={recipe}", "-t", cls.IMAGE, context, check=False)
        if built.returncode != 0:
            raise RuntimeError(f"docker build of {cls.IMAGE} failed:\n{built.stdout[-4000:]}\n{built.stderr[-4000:]}")

    # --- the container -----------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        """Build the image if needed, issue the server certificate, run the container on `network` at
        `address`, and wait until discovery answers over verified HTTPS; raise with the container's logs
        otherwise."""
        self.build()
        files = self.ca.issue("oidc", self.address)
        self._folder = Path(tempfile.mkdtemp(prefix="jhub-oidc-accounts-"))
        self._folder.chmod(0o755)  # read by the provider's unprivileged user
        self._write_accounts()
        _docker("rm", "-f", self.name, check=False)  # a leftover of an interrupted run
        run = _docker(
            "run", "-d", "--name", self.name, "--network", self.network, "--ip", self.address,
            "-e", f"ISSUER={self.issuer}", "-e", f"CLIENT_ID={self.client_id}",
            "-e", f"CLIENT_SECRET={self.client_secret}", "-e", f"REDIRECT_URI={self.redirect_uri}",
            "-e", f"POST_LOGOUT_REDIRECT_URIS={' '.join(self.post_logout_redirect_uris)}",
            "-e", "ACCOUNTS_FILE=/accounts/accounts.json",
            "-v", f"{files.cert}:/certs/server.pem:ro", "-v", f"{files.key}:/certs/server.key:ro",
            "-v", f"{self._folder}:/accounts:ro",
            self.IMAGE, check=False)
        if run.returncode != 0:
            raise RuntimeError(f"docker run {self.name} failed: {run.stderr.strip()}")
        self._wait(timeout)

    def _wait(self, timeout: float) -> None:
        """Poll the discovery document until it names this issuer, as long as the container runs."""
        url = f"{self.issuer}/.well-known/openid-configuration"
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with requests.Session() as http:
            http.trust_env = False  # the test's CA only, and no proxy (see browser_login)
            while time.monotonic() < deadline:
                try:
                    response = http.get(url, verify=str(self.ca.path), timeout=3)
                    if response.status_code == 200 and response.json().get("issuer") == self.issuer:
                        return
                    last = f"HTTP {response.status_code}: {response.text[:300]}"
                except (requests.RequestException, ValueError) as error:
                    last = repr(error)
                state = _docker("inspect", "--format", "{{.State.Status}}", self.name, check=False).stdout.strip()
                if state != "running":
                    last = f"container {state or 'gone'}; {last}"
                    break
                time.sleep(0.5)
        logs = _docker("logs", "--tail", "100", self.name, check=False)
        raise RuntimeError(f"{self.name} not ready at {url}: {last}\n--- logs ---\n{logs.stdout}{logs.stderr}")

    def stop(self) -> None:
        """Remove the container and the accounts file."""
        _docker("rm", "-f", self.name, check=False)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> OidcProvider:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- the accounts ------------------------------------------------------------
    def _write_accounts(self) -> None:
        """Replace the accounts file at once (a rename), so that the provider never reads half a file."""
        assert self._folder is not None, "start() first"
        partial = self._folder / "accounts.json.new"
        partial.write_text(json.dumps(self.accounts), encoding="utf-8")
        partial.chmod(0o644)
        os.replace(partial, self._folder / "accounts.json")

    def set_groups(self, user: str, groups: list[str]) -> None:
        """Give `user` these groups from the next login (and userinfo request) on."""
        self.accounts[user]["groups"] = list(groups)
        self._write_accounts()


class _Forms(HTMLParser):
    """The forms of a page: each one's method, action and fields (name, type, value)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append({"method": attributes.get("method", "get").lower(),
                               "action": attributes.get("action", ""), "fields": []})
        elif tag in ("input", "button") and self.forms and attributes.get("name"):
            kind = attributes.get("type", "text" if tag == "input" else "submit").lower()
            self.forms[-1]["fields"].append((attributes["name"], kind, attributes.get("value", "")))


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def browser_login(start_url: str, username: str, password: str, ca_path: str,
                  timeout: float = 30) -> tuple[requests.Session, requests.Response]:
    """Like a browser: GET start_url (the hub's /hub/oauth_login), follow every redirect (hub -> provider ->
    login form), fill in and submit the provider's login form (and submit any further form of the provider,
    such as a consent form, as it is), follow the redirects back to the start site; return the session and
    the last response. Only forms of the site where the first redirects led (the provider) are submitted.

    A refused login ends on the provider's login form again (HTTP 200 with an error text): that page is
    returned, not submitted twice. HTTPS is verified with ca_path (the provider's CA) only: the session does
    not trust the environment, whose REQUESTS_CA_BUNDLE would otherwise replace session.verify (and whose
    proxies are no way to the hub on loopback or the provider on a Docker network).
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_path
    response = session.get(start_url, timeout=timeout)
    home = _origin(start_url)
    provider = _origin(response.url)  # where the redirects led: only its forms are filled in
    logged_in = False
    for _step in range(5):  # the login form, then perhaps a consent form: never a loop
        if _origin(response.url) != provider or provider == home:
            break
        parser = _Forms()
        parser.feed(response.text)
        if not parser.forms:
            break
        form = parser.forms[0]
        data: dict[str, str] = {}
        is_login = clicked = False
        for name, kind, value in form["fields"]:
            if kind == "password":
                data[name], is_login = password, True
            elif name in ("login", "username"):
                data[name] = username
            elif kind == "submit":  # a browser sends the one button that was clicked: the first
                if not clicked:
                    data[name], clicked = value, True
            elif kind not in ("checkbox", "radio"):  # hidden fields as they are; boxes left unchecked
                data[name] = value
        if is_login and logged_in:
            break  # the login form again: the password was refused
        logged_in = logged_in or is_login
        action = urljoin(response.url, form["action"] or response.url)
        if form["method"] == "post":
            response = session.post(action, data=data, timeout=timeout)
        else:
            response = session.get(action, params=data, timeout=timeout)
    return session, response
