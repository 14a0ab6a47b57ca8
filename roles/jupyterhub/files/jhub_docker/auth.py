"""Authenticators for the methods of jupyterhub_auth_method that need more than their package's own class.

- ``JhubLDAPAuthenticator``: ldapauthenticator 2.0 checks membership of the allowed groups' DNs but neither
  makes admins from groups nor gives the hub the user's groups. This one does both (the groups it knows are
  the allowed and admin groups), and verifies the server's certificate: ldap3's ``Tls`` verifies nothing
  unless told to (its default is ``ssl.CERT_NONE``).
- ``JhubGitHubOAuthenticator``: oauthenticator's GitHub class can put the user's teams in the auth state;
  this one makes them the user's groups (``org:team``, the words of ``allowed_organizations``), so that
  ``admin_groups`` and the hub's groups work as with the other methods.

Configured by the role's jupyterhub_config.py; the ``c.LDAPAuthenticator.*``, ``c.OAuthenticator.*`` and
``c.GitHubOAuthenticator.*`` settings apply to them.
"""

from __future__ import annotations

import ssl

from ldapauthenticator import LDAPAuthenticator
from ldapauthenticator.ldapauthenticator import TlsStrategy
from ldap3.utils.dn import parse_dn
from oauthenticator.github import GitHubOAuthenticator
from traitlets import List, Unicode


def group_name(dn: str) -> str:
    """The name of a group from its DN: the value of its first RDN (``cn=staff,ou=groups,...`` -> ``staff``)."""
    return parse_dn(dn)[0][1]


class JhubLDAPAuthenticator(LDAPAuthenticator):
    """LDAPAuthenticator with admin groups, the user's groups for the hub, and verified TLS."""

    admin_groups = List(
        Unicode(),
        config=True,
        help="DNs of groups whose members are admins; a user who is in none of them (and not in admin_users) is not.",
    )

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        if self.tls_strategy != TlsStrategy.insecure:
            # Verify the server's certificate and name (ldap3 checks the name when it verifies).
            self.tls_kwargs = {**self.tls_kwargs, "validate": ssl.CERT_REQUIRED}

    async def authenticate(self, handler, data):
        model = await super().authenticate(handler, data)
        if model is None:
            return None
        # ldapauthenticator looks up each DN of allowed_groups (the role lists the admin groups there too).
        member_of = set(model["auth_state"]["ldap_groups"])
        if self.manage_groups:
            model["groups"] = sorted(group_name(dn) for dn in member_of)
        if self.admin_groups:
            model["admin"] = model["name"] in self.admin_users or bool(member_of & set(self.admin_groups))
        return model


class JhubGitHubOAuthenticator(GitHubOAuthenticator):
    """GitHubOAuthenticator whose user's groups are their teams, as ``org:team``."""

    async def get_user_groups(self, auth_state: dict) -> set[str]:
        return {f"{team['organization']['login']}:{team['slug']}" for team in auth_state.get("teams", [])}
