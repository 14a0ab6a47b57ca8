"""JhubNativeAuthenticator (roles/jupyterhub/files/jhub_docker/nativeauth.py) in a real JupyterHub.

Each hub is a real JupyterHub application (JupyterHub.initialize(): its database in tmp_path, its
handlers, its tornado application, with the authenticator made from a traitlets Config) served on
127.0.0.1 from a thread of its own; only the proxy is not started. The tests drive it over HTTP
as a browser does: the XSRF token of the form, the login cookie. They pass under JupyterHub 5.5
and 6.1 with NativeAuthenticator 1.3.0; the control tests show what plain NativeAuthenticator does.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path

import bcrypt
import jupyterhub
import pytest
import requests
from jupyterhub import orm
from jupyterhub.app import JupyterHub
from nativeauthenticator import handlers as native_handlers
from nativeauthenticator.nativeauthenticator import NativeAuthenticator
from nativeauthenticator.orm import UserInfo
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from traitlets.config import Config

from jhub_docker.nativeauth import JhubNativeAuthenticator

JUPYTERHUB_6 = jupyterhub.version_info >= (6,)
LOGIN_COOKIE = "jupyterhub-hub-login"
# Set with c.NativeAuthenticator.*: the subclass reads its parent's section.
ALLOWED_FAILED_LOGINS = 2
SECONDS_BEFORE_NEXT_TRY = 1
PASSWORD = "correct horse battery"


class Hub:
    """A real JupyterHub (no proxy) serving http://127.0.0.1:<port>/hub/ from a thread of its own."""

    def __init__(self, directory: Path, config: Config) -> None:
        self.directory = directory
        self.config = config
        self.app: JupyterHub | None = None
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.directory / 'jupyterhub.sqlite'}"

    def seed(self, name: str, password: str = PASSWORD, authorized: bool = True) -> None:
        """An account in NativeAuthenticator's table before the hub starts, as jhub-bootstrap-admin makes the admin's.

        (Few bcrypt rounds: the logins stay fast.)
        """
        session = orm.new_session_factory(self.db_url)()
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4))
        session.add(UserInfo(username=name, password=hashed, is_authorized=authorized))
        session.commit()
        session.close()

    def start(self) -> Hub:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/hub/{path}"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self.config.JupyterHub.db_url = self.db_url
            self.config.JupyterHub.cookie_secret_file = str(self.directory / "cookie_secret")
            # An empty configuration file: the Config above is the whole configuration.
            config_file = self.directory / "jupyterhub_config.py"
            config_file.touch()
            self.config.JupyterHub.config_file = str(config_file)
            self.app = JupyterHub(config=self.config)
            loop.run_until_complete(self.app.initialize([]))
            sockets = bind_sockets(0, "127.0.0.1")
            self.port = sockets[0].getsockname()[1]
            http = HTTPServer(self.app.tornado_application)
            http.add_sockets(sockets)
        except BaseException as error:  # pylint: disable=broad-exception-caught
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        http.stop()
        loop.run_until_complete(http.close_all_connections())
        loop.close()


def hub_config(authenticator_class: type | str, **native: object) -> Config:
    """The hub's Config as jupyterhub_config.py makes it, with c.NativeAuthenticator.<key> = value."""
    c = Config()
    c.JupyterHub.authenticator_class = authenticator_class
    c.JupyterHub.log_level = "WARN"
    c.Authenticator.admin_users = {"admin"}
    c.Authenticator.allow_all = True
    for key, value in native.items():
        setattr(c.NativeAuthenticator, key, value)
    return c


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The hub with JhubNativeAuthenticator; the accounts of the tests, seeded as the admin's is."""
    hub = Hub(
        tmp_path_factory.mktemp("hub"),
        hub_config(
            JhubNativeAuthenticator,
            allowed_failed_logins=ALLOWED_FAILED_LOGINS,
            seconds_before_next_try=SECONDS_BEFORE_NEXT_TRY,
        ),
    )
    for name in ("admin", "alice", "wrong", "locked", "carol", "dave", "xsrf"):
        hub.seed(name)
    hub.seed("pending", authorized=False)
    yield hub.start()
    hub.stop()


def xsrf_of(response: requests.Response) -> str:
    """The XSRF token in the page's form."""
    match = re.search(r'name="_xsrf" value="([^"]+)"', response.text)
    assert match, f"no _xsrf field in the page ({response.status_code}):\n{response.text[:2000]}"
    return match.group(1)


def login(hub: Hub, name: str, password: str = PASSWORD, session: requests.Session | None = None,
          xsrf: str | None = None):
    """(session, response) of a login through the form: GET /hub/login, then POST it (with the form's XSRF
    token, or the one given)."""
    session = session or requests.Session()
    page = session.get(hub.url("login"), timeout=10)
    assert page.status_code == 200, page.text[:2000]
    response = session.post(
        hub.url("login"),
        data={"_xsrf": xsrf or xsrf_of(page), "username": name, "password": password},
        allow_redirects=False,
        timeout=10,
    )
    return session, response


def assert_logged_in(session: requests.Session, response: requests.Response) -> None:
    assert response.status_code == 302, response.text[:2000]
    assert LOGIN_COOKIE in session.cookies


def assert_login_form(response: requests.Response, error: str) -> None:
    """The login form again, with the error; never an error page of the server."""
    assert response.status_code in (200, 403), response.text[:2000]
    assert 'id="login-main"' in response.text, response.text[:2000]
    assert 'class="login_error"' in response.text
    assert error in response.text


def test_login_page(hub):
    session = requests.Session()
    response = session.get(hub.url("login"), timeout=10)

    assert response.status_code == 200
    # NativeAuthenticator's form (native-login.html), with the link to sign up and an XSRF token.
    assert 'id="login-main"' in response.text
    assert 'action="/hub/login?next="' in response.text
    assert "signup" in response.text
    assert xsrf_of(response)
    assert "_xsrf" in session.cookies


def test_login_with_the_good_password(hub):
    session, response = login(hub, "alice")

    assert_logged_in(session, response)
    # The cookie is a working login.
    home = session.get(hub.url("home"), allow_redirects=False, timeout=10)
    assert home.status_code == 200
    assert "alice" in home.text


def test_login_with_a_wrong_password(hub):
    session, response = login(hub, "wrong", "not the password")

    assert_login_form(response, "Invalid username or password.")
    assert LOGIN_COOKIE not in session.cookies


def test_login_of_an_unknown_user(hub):
    session, response = login(hub, "nobody")

    assert_login_form(response, "Invalid username or password.")
    assert LOGIN_COOKIE not in session.cookies


def test_login_of_an_account_not_yet_authorized(hub):
    session, response = login(hub, "pending")

    assert_login_form(response, "User pending has not been authorized by an administrator yet.")
    assert LOGIN_COOKIE not in session.cookies


def test_lockout_after_failed_logins_and_its_end(hub):
    for _attempt in range(ALLOWED_FAILED_LOGINS):
        _session, response = login(hub, "locked", "not the password")
        assert_login_form(response, "Invalid username or password.")
    blocked_at = time.monotonic()

    # Locked out: even the good password does not log in.
    session, response = login(hub, "locked")
    assert_login_form(response, "Invalid username or password.")
    assert LOGIN_COOKIE not in session.cookies

    # NativeAuthenticator lets the user in again once more than seconds_before_next_try whole
    # seconds have passed since the last failure.
    time.sleep(max(0.0, blocked_at + SECONDS_BEFORE_NEXT_TRY + 1.1 - time.monotonic()))
    session, response = login(hub, "locked")
    assert_logged_in(session, response)


def test_expired_form_shows_the_login_form_with_its_error(hub):
    """A login POST whose XSRF token is wrong: JupyterHub renders the form synchronously (write_error)."""
    session, response = login(hub, "xsrf", xsrf="not-the-token")

    assert response.status_code == 403
    assert_login_form(response, "Login form invalid or expired. Try again.")
    assert LOGIN_COOKIE not in session.cookies
    # A retry with the form's token logs in.
    assert_logged_in(*login(hub, "xsrf", session=session))


def test_signup_and_approval_by_the_admin(hub):
    # Sign up.
    visitor = requests.Session()
    page = visitor.get(hub.url("signup"), timeout=10)
    assert page.status_code == 200
    assert 'name="signup_password"' in page.text
    response = visitor.post(
        hub.url("signup"),
        data={
            "_xsrf": xsrf_of(page),
            "username": "bob",
            "signup_password": "bob's password",
            "signup_password_confirmation": "bob's password",
        },
        timeout=10,
    )
    assert response.status_code == 200
    assert "Your information has been sent to the admin." in response.text

    # Not yet authorized.
    _session, response = login(hub, "bob", "bob's password")
    assert_login_form(response, "User bob has not been authorized by an administrator yet.")

    # The admin sees bob on the authorize page and authorizes him.
    admin, response = login(hub, "admin")
    assert_logged_in(admin, response)
    page = admin.get(hub.url("authorize"), timeout=10)
    assert page.status_code == 200
    assert "bob" in page.text
    assert "/hub/authorize/bob" in page.text
    response = admin.get(hub.url("authorize/bob"), allow_redirects=False, timeout=10)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/hub/authorize#bob")

    # Now bob logs in.
    assert_logged_in(*login(hub, "bob", "bob's password"))


def test_signup_refuses_a_taken_name(hub):
    visitor = requests.Session()
    page = visitor.get(hub.url("signup"), timeout=10)
    response = visitor.post(
        hub.url("signup"),
        data={
            "_xsrf": xsrf_of(page),
            "username": "alice",
            "signup_password": "another password",
            "signup_password_confirmation": "another password",
        },
        timeout=10,
    )

    assert response.status_code == 200
    assert "username is already in use" in response.text


def test_change_password(hub):
    session, response = login(hub, "carol")
    assert_logged_in(session, response)

    page = session.get(hub.url("change-password"), timeout=10)
    assert page.status_code == 200
    assert 'name="new_password"' in page.text
    response = session.post(
        hub.url("change-password"),
        data={
            "_xsrf": xsrf_of(page),
            "old_password": PASSWORD,
            "new_password": "carol's new password",
            "new_password_confirmation": "carol's new password",
        },
        timeout=10,
    )
    assert response.status_code == 200
    assert "Your password has been changed successfully!" in response.text

    assert_login_form(login(hub, "carol")[1], "Invalid username or password.")
    assert_logged_in(*login(hub, "carol", "carol's new password"))


def test_change_password_needs_a_login(hub):
    response = requests.get(hub.url("change-password"), allow_redirects=False, timeout=10)

    assert response.status_code == 302
    assert "/hub/login" in response.headers["Location"]


def test_admin_pages(hub):
    admin, response = login(hub, "admin")
    assert_logged_in(admin, response)

    assert admin.get(hub.url("admin"), timeout=10).status_code == 200
    assert admin.get(hub.url("authorize"), timeout=10).status_code == 200
    # The admin sets dave's password.
    page = admin.get(hub.url("change-password/dave"), timeout=10)
    assert page.status_code == 200
    response = admin.post(
        hub.url("change-password/dave"),
        data={
            "_xsrf": xsrf_of(page),
            "new_password": "dave's new password",
            "new_password_confirmation": "dave's new password",
        },
        timeout=10,
    )
    assert response.status_code == 200
    assert "The password for dave has been changed successfully" in response.text
    assert_logged_in(*login(hub, "dave", "dave's new password"))
    # An account that does not exist.
    assert admin.get(hub.url("change-password/nobody"), timeout=10).status_code == 404


def test_admin_pages_refuse_other_users(hub):
    user, response = login(hub, "alice")
    assert_logged_in(user, response)

    for path in ("authorize", "authorize/pending", "change-password/dave", "discard/pending"):
        response = user.get(hub.url(path), allow_redirects=False, timeout=10)
        assert response.status_code == 403, (path, response.text[:2000])

    # pending is still there, not authorized.
    assert_login_form(login(hub, "pending")[1], "has not been authorized")


def test_native_settings_apply(tmp_path):
    """Named as jupyterhub_config.py names it; c.NativeAuthenticator.* reaches it: no sign-up page, no link to it."""
    config = hub_config("jhub_docker.nativeauth.JhubNativeAuthenticator", enable_signup=False)
    hub = Hub(tmp_path, config).start()
    try:
        assert type(hub.app.authenticator) is JhubNativeAuthenticator  # pylint: disable=unidiomatic-typecheck
        assert requests.get(hub.url("signup"), timeout=10).status_code == 404
        page = requests.get(hub.url("login"), timeout=10)
        assert page.status_code == 200
        assert "signup" not in page.text
    finally:
        hub.stop()


@pytest.fixture
def plain_hub(tmp_path, monkeypatch):
    """A hub with plain NativeAuthenticator 1.3.0 and one account."""
    # NativeAuthenticator adds its templates to the first hub of a process only (a class
    # attribute); a hub of an earlier test has set it.
    monkeypatch.setattr(native_handlers.LocalBase, "_template_dir_registered", False)
    hub = Hub(tmp_path, hub_config(NativeAuthenticator))
    hub.seed("alice")
    yield hub.start()
    hub.stop()


def test_control_plain_nativeauthenticator_login(plain_hub):
    """Without the layer the login POST fails under JupyterHub 6 (no BaseHandler.statsd)."""
    session, response = login(plain_hub, "alice")

    if JUPYTERHUB_6:
        assert response.status_code == 500
        assert LOGIN_COOKIE not in session.cookies
    else:
        assert_logged_in(session, response)


def test_control_plain_nativeauthenticator_expired_form(plain_hub):
    """Without the layer an error on the login form is an empty page (_render takes no sync), under 5.5 too."""
    _session, response = login(plain_hub, "alice", xsrf="not-the-token")

    assert response.status_code == 403
    assert 'id="login-main"' not in response.text
    assert "Login form invalid or expired" not in response.text
