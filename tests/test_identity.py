"""Logging in with LDAP and OpenID Connect, against real servers, on the hub that `make deploy` made.

The servers run beside the deployment, on the hub network, in containers built here: Debian's slapd
(tests/providers/ldap, LDAPS with a CA made by the test) and the npm package oidc-provider on Debian's
Node.js (tests/providers/oidc, HTTPS with the same CA). The method is switched with ordinary `site.yml`
runs (the preflight and the rollback included), in this order:

1. native: a user signs up, is approved, and writes a file in their server;
2. ldap (site.yml -vvv, which must not print the search account's password): through the real login
   form, a member of the allowed group gets in, finds the file written under native and starts a
   server; a user outside the group and a wrong password are refused; a member of the admin group is
   admin and sees the users' groups; a user removed from the group in the directory is refused at
   their next login;
3. oidc (site.yml -vvv, which must not print the client secret): the client follows the real
   redirects, fills in the provider's own login form and lands in the hub logged in, with the groups
   of the claim; a user outside the allowed groups gets the hub's 403 page; admin comes from the group;
4. native again, as the rest of the suite expects: the admin logs in with the form.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import OUTPUT, recap, run_playbook
# deployed is test_local_deploy's fixture: the hub that make deploy made.
from test_local_deploy import URL, deployed, healthy  # noqa: F401 # pylint: disable=unused-import

from jhub_testing.hubclient import HubClient
from jhub_testing.ldap_server import LdapServer
from jhub_testing.oidc_server import OidcProvider, browser_login
from jhub_testing.testca import TestCA

CLIENT_ID = "jupyterhub"
CALLBACK = f"{URL}/hub/oauth_callback"
ACCOUNTS = {
    "alice": {"password": "Alice-OIDC-Password-1", "groups": ["jupyter-users"], "email": "alice@example.org"},
    "carol": {"password": "Carol-OIDC-Password-3", "groups": ["staff"], "email": "carol@example.org"},
    "dave": {"password": "Dave-OIDC-Password-4", "groups": ["jupyter-users", "jupyter-admins"], "email": "dave@example.org"},
}
# Written by alice under native, read after each switch.
NOTE = f"written under native {uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("identity-ca"))


@pytest.fixture(scope="module")
def switch(deployed):  # noqa: F811 (the fixture imported above)
    """site.yml with a login method's variables (nothing: native); at the end, native again."""
    runs = []

    def run(name: str, extra_vars: dict | None, *args: str) -> str:
        runs.append(name)
        result = run_playbook("playbooks/site.yml", extra_vars, *args)
        OUTPUT.mkdir(parents=True, exist_ok=True)
        (OUTPUT / f"identity-{name}.log").write_text(result.stdout)
        assert result.returncode == 0, result.stdout[-4000:]
        assert recap(result.stdout)["failed"] == 0
        return result.stdout

    yield run
    if runs and runs[-1] != "native":
        run("native", None)
        admin = HubClient(URL)
        assert admin.login("admin", deployed).status_code == 302, "the native admin cannot log in after the switch back"


@pytest.fixture(scope="module")
def alices_note(deployed, switch):  # noqa: F811
    """Under native (make deploy's): alice signs up, is approved, and writes NOTE into her volume through her kernel."""
    if "jhub_docker.nativeauth" not in Path("/srv/jupyterhub/jupyterhub_config.py").read_text():
        switch("native-first", None)  # an interrupted run of these tests left another method
    admin = HubClient(URL)
    assert admin.login("admin", deployed).status_code == 302
    # An earlier run on this machine left the users of its providers: alice signs up anew.
    for user in ("alice", "bob", "carol", "dave"):
        assert admin.api("DELETE", f"/users/{user}").status_code in (204, 404)
    alice = HubClient(URL)
    alice.join(admin, "alice", f"Alice-Native-{os.getpid()}-Password")
    alice.execute("alice", f"open('/home/jovyan/work/note.txt', 'w').write({NOTE!r})")
    alice.stop_server("alice")
    return NOTE


def assert_secret_file(path: Path, secret: str) -> None:
    """The secret is in its file (0600, root's) and nowhere in the hub's log."""
    assert path.read_text().strip() == secret
    assert (path.stat().st_mode & 0o777, path.stat().st_uid) == (0o600, 0), oct(path.stat().st_mode)
    logs = subprocess.run(["docker", "logs", "jupyterhub"], capture_output=True, text=True, check=True)
    assert secret not in logs.stdout + logs.stderr, f"{path.name} is in the hub's log"


def read_note(client: HubClient) -> str:
    client.start_server("alice")
    client.open_server("alice")
    response = client.server_api("alice", "GET", "/contents/note.txt", params={"content": "1", "type": "file"})
    assert response.status_code == 200, (response.status_code, response.text[:300])
    return response.json()["content"]


def whoami(client: HubClient) -> dict:
    response = client.api("GET", "/user")
    assert response.status_code == 200, (response.status_code, response.text[:300])
    return response.json()


# The providers' images are built on the registry-free Debian base of trixie, whose Node.js the OpenID
# Provider needs. make deploy builds the base of jhub_debian_suite (bookworm) only: trixie's is built here,
# with the collection's own playbook, when this machine does not have it yet.
PROVIDERS_BASE = "jhub/debian:trixie"


@pytest.fixture(scope="module")
def providers_base() -> str:
    if subprocess.run(["docker", "image", "inspect", PROVIDERS_BASE], capture_output=True, check=False).returncode != 0:
        result = run_playbook("playbooks/base_image.yml", {"base_image_suite": "trixie", "base_image_name": PROVIDERS_BASE})
        OUTPUT.mkdir(parents=True, exist_ok=True)
        (OUTPUT / "identity-providers-base.log").write_text(result.stdout)
        assert result.returncode == 0 and recap(result.stdout)["failed"] == 0, result.stdout[-4000:]
    return PROVIDERS_BASE


@pytest.fixture(scope="module")
def ldap(ca, alices_note, switch, providers_base):  # providers_base: the image the providers build on
    server = LdapServer(ca)
    server.start()
    output = switch("ldap", {
        "jupyterhub_auth_method": "ldap",
        "jupyterhub_auth_ca_certificate": ca.pem,
        "jupyterhub_auth_ldap": {"url": server.url, "user_search_base": server.people_dn,
                                 "group_search_base": server.groups_dn, "bind_dn": server.reader_dn,
                                 "bind_password": server.reader_password},
        "jupyterhub_auth_allowed_groups": ["jupyter-users"],
        "jupyterhub_auth_admin_groups": ["jupyter-admins"],
    }, "-vvv")
    assert "module_args" in output and server.reader_password not in output, "the bind password is in site.yml's -vvv output"
    assert_secret_file(Path("/srv/jupyterhub/secrets/ldap_bind_password"), server.reader_password)
    yield server
    server.stop()


def test_ldap_member_gets_in_and_finds_the_file_written_under_native(ldap):
    alice = HubClient(URL)
    response = alice.login("alice", ldap.USERS["alice"])
    assert response.status_code == 302, (response.status_code, response.text[-1000:])
    assert whoami(alice)["name"] == "alice" and not whoami(alice)["admin"]
    assert read_note(alice) == NOTE
    alice.stop_server("alice")


def test_ldap_refuses_a_user_outside_the_group_and_a_wrong_password(ldap):
    for user, password in (("carol", ldap.USERS["carol"]), ("alice", "Not-Alices-Password")):
        response = HubClient(URL).login(user, password)
        assert response.status_code == 403 and "Invalid username or password" in response.text, (user, response.status_code)


def test_ldap_admin_group_makes_admins_and_groups_reach_the_hub(ldap):
    dave = HubClient(URL)
    assert dave.login("dave", ldap.USERS["dave"]).status_code == 302
    assert whoami(dave)["admin"] is True
    bob = HubClient(URL)
    assert bob.login("bob", ldap.USERS["bob"]).status_code == 302
    assert dave.api("GET", "/users/bob").json()["groups"] == ["jupyter-users"]
    assert sorted(dave.api("GET", "/users/dave").json()["groups"]) == ["jupyter-admins", "jupyter-users"]


def test_ldap_user_removed_from_the_group_is_refused_at_the_next_login(ldap):
    assert HubClient(URL).login("bob", ldap.USERS["bob"]).status_code == 302
    ldap.remove_from_group("bob", "jupyter-users")
    response = HubClient(URL).login("bob", ldap.USERS["bob"])
    assert response.status_code == 403, response.status_code


@pytest.fixture(scope="module")
def oidc(ca, ldap, switch):
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    provider = OidcProvider(ca, CLIENT_ID, secret, CALLBACK, ACCOUNTS)
    provider.start()
    output = switch("oidc", {
        "jupyterhub_auth_method": "oidc",
        "jupyterhub_auth_ca_certificate": ca.pem,
        "jupyterhub_auth_oidc": {"issuer": provider.issuer, "scopes": ["openid", "profile", "email", "groups"]},
        "jupyterhub_auth_client_id": CLIENT_ID,
        "jupyterhub_auth_client_secret": secret,
        "jupyterhub_auth_allowed_groups": ["jupyter-users"],
        "jupyterhub_auth_admin_groups": ["jupyter-admins"],
    }, "-vvv")
    assert "module_args" in output and secret not in output, "the client secret is in site.yml's -vvv output"
    assert CALLBACK in output, "the play does not say which callback URL to register"
    assert_secret_file(Path("/srv/jupyterhub/secrets/auth_client_secret"), secret)
    yield provider
    provider.stop()


def hub_log() -> str:
    """The hub's log, the last lines: what a failed login did there."""
    result = subprocess.run(["docker", "logs", "--tail", "40", "jupyterhub"], capture_output=True, text=True, check=False)
    return result.stdout + result.stderr


def hub_client(session) -> HubClient:
    client = HubClient(URL)
    client.http = session
    return client


def test_oidc_login_follows_the_redirects_and_keeps_the_users_file(oidc, ca):
    session, response = browser_login(f"{URL}/hub/oauth_login", "alice", ACCOUNTS["alice"]["password"], str(ca.path))
    assert response.status_code == 200 and response.url.startswith(URL), (response.status_code, response.url, hub_log())
    alice = hub_client(session)
    me = whoami(alice)
    assert me["name"] == "alice" and not me["admin"] and me["groups"] == ["jupyter-users"], me
    assert read_note(alice) == NOTE
    alice.stop_server("alice")


def test_oidc_refuses_a_user_outside_the_allowed_groups_with_the_hubs_page(oidc, ca):
    _session, response = browser_login(f"{URL}/hub/oauth_login", "carol", ACCOUNTS["carol"]["password"], str(ca.path))
    assert response.status_code == 403 and response.url.startswith(f"{URL}/hub/oauth_callback"), (response.status_code, response.url)


def test_oidc_admin_comes_from_the_group(oidc, ca):
    session, _response = browser_login(f"{URL}/hub/oauth_login", "dave", ACCOUNTS["dave"]["password"], str(ca.path))
    me = whoami(hub_client(session))
    assert me["admin"] is True and sorted(me["groups"]) == ["jupyter-admins", "jupyter-users"], me


def test_the_hub_answers_through_every_switch(oidc):
    assert healthy(30)
