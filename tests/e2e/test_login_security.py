"""NativeAuthenticator's hardening, proven through the real sign-up and login forms.

Configured by the environment (the full-stack Molecule scenario sets it), besides JHUB_URL,
JHUB_ADMIN_USER and JHUB_ADMIN_PASSWORD:
  JHUB_MIN_PASSWORD_LENGTH     jupyterhub_authenticator's minimum_password_length
  JHUB_ALLOWED_FAILED_LOGINS   its allowed_failed_logins
  JHUB_SECONDS_BEFORE_NEXT_TRY its seconds_before_next_try (up to 60 s it is waited out; a longer one,
                               such as the 600 s default, is checked to hold for over a minute)
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

from jhub_testing.hubclient import HubClient

URL = os.environ.get("JHUB_URL", "")
ADMIN = os.environ.get("JHUB_ADMIN_USER", "admin")
ADMIN_PASSWORD = os.environ.get("JHUB_ADMIN_PASSWORD", "")
MIN_LENGTH = int(os.environ.get("JHUB_MIN_PASSWORD_LENGTH", "0"))
FAILED_LOGINS = int(os.environ.get("JHUB_ALLOWED_FAILED_LOGINS", "0"))
WAIT = int(os.environ.get("JHUB_SECONDS_BEFORE_NEXT_TRY", "0"))
RUN = uuid.uuid4().hex[:6]
# Lockouts longer than this (seconds) are checked to hold, not waited out.
LONGEST_WAIT = 60
REFUSED = "is not too common"  # NativeAuthenticator's sign-up error names both rules
SENT = "Your information has been sent to the admin"

pytestmark = pytest.mark.skipif(
    not (MIN_LENGTH and FAILED_LOGINS and WAIT), reason="JHUB_MIN_PASSWORD_LENGTH and the lockout settings are not set"
)


@pytest.fixture(scope="module")
def admin() -> HubClient:
    client = HubClient(URL)
    assert client.login(ADMIN, ADMIN_PASSWORD).status_code == 302
    return client


def refused(response) -> bool:
    return response.status_code == 200 and "Invalid username or password" in response.text


def test_a_short_password_is_refused_at_signup(admin):
    short, enough = f"s{RUN}", f"l{RUN}"
    page = HubClient(URL).signup(short, ("Zq7-" + RUN * 3)[: MIN_LENGTH - 1])
    assert REFUSED in page and f"at least {MIN_LENGTH} characters" in page
    # The control: one character more, and the same kind of password is taken.
    assert SENT in HubClient(URL).signup(enough, ("Zq7-" + RUN * 3)[:MIN_LENGTH])
    # The refused account does not exist: even approved, it cannot log in.
    admin.authorize(enough)
    assert HubClient(URL).login(enough, ("Zq7-" + RUN * 3)[:MIN_LENGTH]).status_code == 302
    assert refused(HubClient(URL).login(short, ("Zq7-" + RUN * 3)[: MIN_LENGTH - 1]))


def test_a_common_password_is_refused_at_signup():
    # In NativeAuthenticator's list of common passwords, and long enough.
    for common in ("qwertyuiop", "1234567890", "password123"):
        assert len(common) >= MIN_LENGTH
        assert REFUSED in HubClient(URL).signup(f"c{RUN}{len(common)}", common), common


def test_lockout_after_failed_logins_and_its_end(admin):
    name, password = f"lock{RUN}", f"Locked-Out-{RUN}-Later"
    assert SENT in HubClient(URL).signup(name, password)
    admin.authorize(name)
    # One failure fewer than allowed: the right password still works (and resets the count).
    for _attempt in range(FAILED_LOGINS - 1):
        assert refused(HubClient(URL).login(name, password + "-wrong"))
    assert HubClient(URL).login(name, password).status_code == 302
    # As many failures as allowed: now even the right password is refused...
    for _attempt in range(FAILED_LOGINS):
        assert refused(HubClient(URL).login(name, password + "-wrong"))
    locked_at = time.monotonic()
    assert refused(HubClient(URL).login(name, password))
    if WAIT > LONGEST_WAIT:
        # A long lockout (the 600 s default): still in force after a minute, longer than any short one.
        time.sleep(LONGEST_WAIT + 5)
        assert refused(HubClient(URL).login(name, password))
        return
    # ...until the wait is over (NativeAuthenticator counts whole seconds, strictly more than the wait).
    time.sleep(max(0.0, WAIT + 2 - (time.monotonic() - locked_at)))
    assert HubClient(URL).login(name, password).status_code == 302
