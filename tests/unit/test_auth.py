"""The login methods' configuration as the role renders it, loaded into the real authenticator classes.

GitHub, GitLab, Google and Azure AD cannot be reached from the test machine: their rendered settings are
checked here against oauthenticator's own classes (the traits they end up with, and the URLs those
classes derive from them). OpenID Connect and LDAP are also exercised end to end, against real servers
(tests/test_identity.py).
"""

from __future__ import annotations

import asyncio
import importlib
import ssl
from pathlib import Path

import pytest
from traitlets.config import Config

from jhub_docker import auth
from jhub_testing.render import render_hub_config

DISCOVERY = {"authorization_endpoint": "https://id.example.org/auth", "token_endpoint": "https://id.example.org/token",
             "userinfo_endpoint": "https://id.example.org/me", "token_endpoint_auth_methods_supported": ["client_secret_post"]}
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
CLIENT = {"jupyterhub_auth_client_id": "hub-client", "jupyterhub_auth_client_secret": "s3cret-of-the-client"}
METHODS = {
    "oidc": {**CLIENT, "jupyterhub_auth_method": "oidc", "jupyterhub_auth_oidc": {"issuer": "https://id.example.org",
             "scopes": ["openid", "profile", "groups"]}, "jupyterhub_auth_oidc_discovery": DISCOVERY,
             "jupyterhub_auth_allowed_groups": ["staff"], "jupyterhub_auth_admin_groups": ["hub-admins"],
             "jupyterhub_auth_ca_certificate": CA},
    "github": {**CLIENT, "jupyterhub_auth_method": "github", "jupyterhub_auth_allowed_groups": ["acme", "acme:data"],
               "jupyterhub_auth_admin_groups": ["acme:ops"], "jupyterhub_auth_github": {"url": "https://github.acme.org"}},
    "gitlab": {**CLIENT, "jupyterhub_auth_method": "gitlab", "jupyterhub_auth_allowed_groups": ["acme/data"],
               "jupyterhub_auth_admin_users": ["ann"], "jupyterhub_auth_gitlab": {"url": "https://gitlab.acme.org"}},
    "google": {**CLIENT, "jupyterhub_auth_method": "google", "jupyterhub_auth_allow_all": True,
               "jupyterhub_auth_google": {"hosted_domains": ["acme.org"]}, "jupyterhub_auth_username_claim": "email"},
    "azuread": {**CLIENT, "jupyterhub_auth_method": "azuread", "jupyterhub_auth_allowed_groups": ["0b1c-group-id"],
                "jupyterhub_auth_azuread": {"tenant_id": "7f3e-tenant"}, "jupyterhub_auth_username_claim": "upn"},
    "ldap": {"jupyterhub_auth_method": "ldap", "jupyterhub_auth_allowed_users": ["zoe"],
             "jupyterhub_auth_allowed_groups": ["jupyter-users"], "jupyterhub_auth_admin_groups": ["jupyter-admins"],
             "jupyterhub_auth_ca_certificate": CA,
             "jupyterhub_auth_ldap": {"url": "ldaps://ldap.acme.org", "user_search_base": "ou=people,dc=acme,dc=org",
                                      "group_search_base": "ou=groups,dc=acme,dc=org",
                                      "bind_dn": "cn=reader,dc=acme,dc=org", "bind_password": "reader-password"}},
    "ldap-starttls": {"jupyterhub_auth_method": "ldap", "jupyterhub_auth_allow_all": True,
                      "jupyterhub_auth_ldap": {"url": "ldap://ldap.acme.org:1389", "user_search_base": "ou=people,dc=acme,dc=org"}},
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, str]:
    """The authenticator section of jupyterhub_config.py for each case of METHODS, rendered by Ansible."""
    texts = render_hub_config(tmp_path_factory.mktemp("auth"), METHODS)
    return {case: text[text.index("# --- Accounts:"):text.index("# --- User servers")] for case, text in texts.items()}


def load(section: str, secrets: Path) -> tuple[Config, type]:
    """The section's settings as the hub loads them (its secrets from files), and its authenticator class."""
    secrets.mkdir(exist_ok=True)
    (secrets / "auth_client_secret").write_text("s3cret-of-the-client\n")
    (secrets / "ldap_bind_password").write_text("reader-password\n")
    c = Config()
    exec(section, {"c": c, "SECRETS": secrets})  # noqa: S102 (the role's own template)
    module, name = c.JupyterHub.authenticator_class.rsplit(".", 1)
    return c, getattr(importlib.import_module(module), name)


def test_oidc_takes_the_discovered_endpoints_and_the_groups_claim(rendered, tmp_path):
    c, cls = load(rendered["oidc"], tmp_path)
    authenticator = cls(config=c)
    assert cls.__name__ == "GenericOAuthenticator"
    assert [authenticator.authorize_url, authenticator.token_url, authenticator.userdata_url] == list(DISCOVERY.values())[:3]
    # The provider does not offer HTTP Basic (OpenID Connect's default, which the live test's provider requires).
    assert not authenticator.basic_auth
    assert authenticator.client_id == "hub-client" and authenticator.client_secret == "s3cret-of-the-client"
    assert authenticator.oauth_callback_url == "http://127.0.0.1:8000/hub/oauth_callback"
    assert authenticator.username_claim == "preferred_username"
    assert authenticator.scope == ["openid", "profile", "groups"]
    assert authenticator.manage_groups and authenticator.auth_state_groups_key == "oauth_user.groups"
    assert authenticator.allowed_groups == {"staff"} and authenticator.admin_groups == {"hub-admins"}
    assert authenticator.validate_server_cert and authenticator.http_request_kwargs == {"ca_certs": "/srv/jupyterhub/auth-ca.pem"}
    assert not authenticator.allow_all and authenticator.login_service == "OpenID Connect"


def test_oidc_groups_come_from_the_claim(rendered, tmp_path):
    c, cls = load(rendered["oidc"], tmp_path)
    authenticator = cls(config=c)
    groups = asyncio.run(authenticator.get_user_groups({"oauth_user": {"preferred_username": "ann", "groups": ["staff", "x"]}}))
    assert groups == {"staff", "x"}


def test_github_takes_organisations_and_teams(rendered, tmp_path):
    c, cls = load(rendered["github"], tmp_path)
    authenticator = cls(config=c)
    assert cls is auth.JhubGitHubOAuthenticator
    assert authenticator.allowed_organizations == {"acme", "acme:data"} and authenticator.admin_groups == {"acme:ops"}
    assert authenticator.populate_teams_in_auth_state and "read:org" in authenticator.scope
    assert authenticator.github_api == "https://github.acme.org/api/v3"
    assert authenticator.authorize_url == "https://github.acme.org/login/oauth/authorize"


def test_github_teams_become_groups():
    authenticator = auth.JhubGitHubOAuthenticator(manage_groups=True)
    teams = [{"organization": {"login": "acme"}, "slug": "ops"}, {"organization": {"login": "acme"}, "slug": "data"}]
    assert asyncio.run(authenticator.get_user_groups({"teams": teams})) == {"acme:ops", "acme:data"}


def test_gitlab_takes_groups_and_its_server(rendered, tmp_path):
    c, cls = load(rendered["gitlab"], tmp_path)
    authenticator = cls(config=c)
    assert authenticator.allowed_gitlab_groups == {"acme/data"} and authenticator.admin_users == {"ann"}
    assert authenticator.authorize_url == "https://gitlab.acme.org/oauth/authorize"
    assert not authenticator.manage_groups


def test_google_takes_its_domain_and_the_email(rendered, tmp_path):
    c, cls = load(rendered["google"], tmp_path)
    authenticator = cls(config=c)
    assert authenticator.hosted_domain == ["acme.org"] and authenticator.username_claim == "email"
    assert authenticator.allow_all and not authenticator.manage_groups


def test_azuread_takes_its_tenant_and_groups(rendered, tmp_path):
    c, cls = load(rendered["azuread"], tmp_path)
    authenticator = cls(config=c)
    assert authenticator.tenant_id == "7f3e-tenant"
    assert authenticator.authorize_url == "https://login.microsoftonline.com/7f3e-tenant/oauth2/authorize"
    assert authenticator.allowed_groups == {"0b1c-group-id"} and authenticator.manage_groups
    assert authenticator.username_claim == "upn"


def test_ldap_uses_ldaps_verified_the_search_account_and_group_dns(rendered, tmp_path):
    c, cls = load(rendered["ldap"], tmp_path)
    authenticator = cls(config=c)
    assert cls is auth.JhubLDAPAuthenticator
    assert (authenticator.server_address, authenticator.server_port, authenticator.tls_strategy.name) == ("ldap.acme.org", 636, "on_connect")
    assert authenticator.tls_kwargs == {"ca_certs_file": "/srv/jupyterhub/auth-ca.pem", "validate": ssl.CERT_REQUIRED}
    assert authenticator.lookup_dn and authenticator.user_attribute == "uid"
    assert (authenticator.lookup_dn_search_user, authenticator.lookup_dn_search_password) == ("cn=reader,dc=acme,dc=org", "reader-password")
    assert authenticator.allowed_groups == ["cn=jupyter-users,ou=groups,dc=acme,dc=org", "cn=jupyter-admins,ou=groups,dc=acme,dc=org"]
    assert authenticator.admin_groups == ["cn=jupyter-admins,ou=groups,dc=acme,dc=org"]
    assert authenticator.allowed_users == {"zoe"} and authenticator.manage_groups


def test_ldap_on_port_389_upgrades_with_starttls_and_verifies_with_the_systems_cas(rendered, tmp_path):
    c, cls = load(rendered["ldap-starttls"], tmp_path)
    authenticator = cls(config=c)
    assert (authenticator.server_port, authenticator.tls_strategy.name) == (1389, "before_bind")
    assert authenticator.tls_kwargs == {"validate": ssl.CERT_REQUIRED}
    assert authenticator.lookup_dn_search_user is None and authenticator.allowed_groups == []


@pytest.mark.parametrize(("member_of", "admin"), [
    (["cn=jupyter-users,ou=groups,dc=acme,dc=org"], False),
    (["cn=jupyter-users,ou=groups,dc=acme,dc=org", "cn=jupyter-admins,ou=groups,dc=acme,dc=org"], True),
])
def test_ldap_groups_become_the_users_groups_and_admin(monkeypatch, member_of, admin):
    async def found(_self, _handler, data):
        return {"name": data["username"], "auth_state": {"ldap_groups": member_of, "user_attributes": {}}}

    monkeypatch.setattr(auth.LDAPAuthenticator, "authenticate", found)
    authenticator = auth.JhubLDAPAuthenticator(manage_groups=True, bind_dn_template=["uid={username},ou=people,dc=acme,dc=org"],
                                               admin_groups=["cn=jupyter-admins,ou=groups,dc=acme,dc=org"])
    model = asyncio.run(authenticator.authenticate(None, {"username": "ann", "password": "x"}))
    assert model["groups"] == sorted(auth.group_name(dn) for dn in member_of) and model["admin"] is admin
