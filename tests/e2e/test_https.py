"""HTTPS in front of the hub (jhub_tls_mode other than none), against a deployed hub.

Collected only when JHUB_URL is https:// (the default scenario's switch to HTTPS, molecule/default/https.yml, sets it). Besides test_hub.py's settings:
  JHUB_HTTP_URL          the front's plain-HTTP URL, e.g. http://hub.test
  JHUB_TLS_RENEW_WITHIN  seconds within which the certificate must be replaced by a new one
                         (an ACME server issuing short-lived certificates); unset skips that test
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from urllib.parse import urlsplit

import pytest
import requests

from jhub_testing.hubclient import HubClient

URL = os.environ["JHUB_URL"]
HTTP_URL = os.environ.get("JHUB_HTTP_URL", "")
ADMIN = os.environ.get("JHUB_ADMIN_USER", "admin")
ADMIN_PASSWORD = os.environ.get("JHUB_ADMIN_PASSWORD", "")
RENEW_WITHIN = float(os.environ.get("JHUB_TLS_RENEW_WITHIN", "0"))


def served_certificate() -> dict:
    """The certificate the proxy serves for the hub's name, checked against the trusted CA."""
    parts = urlsplit(URL)
    context = ssl.create_default_context(cafile=os.environ.get("REQUESTS_CA_BUNDLE"))
    with socket.create_connection((parts.hostname, parts.port or 443), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname=parts.hostname) as tls:
            return tls.getpeercert()


def test_health_over_https_with_hsts():
    response = requests.get(URL + "/hub/health", timeout=30)
    assert response.status_code == 200
    assert "max-age=" in response.headers.get("Strict-Transport-Security", ""), response.headers


def test_certificate_names_the_hub():
    names = [value for kind, value in served_certificate()["subjectAltName"] if kind == "DNS"]
    assert urlsplit(URL).hostname in names, names


@pytest.mark.skipif(not HTTP_URL, reason="JHUB_HTTP_URL is not set")
def test_plain_http_redirects_to_https():
    response = requests.get(HTTP_URL + "/hub/login?next=%2Fhub%2Fhome", allow_redirects=False, timeout=30)
    assert response.status_code in (301, 308), (response.status_code, response.headers)
    location = response.headers["Location"]
    assert location.startswith("https://" + urlsplit(URL).hostname), location
    assert location.endswith("/hub/login?next=%2Fhub%2Fhome"), location


def test_login_over_https_sets_secure_cookies_only():
    client = HubClient(URL)
    response = client.login(ADMIN, ADMIN_PASSWORD)
    assert response.status_code == 302, (response.status_code, response.text[:500])
    cookies = {cookie.name: cookie for cookie in client.http.cookies}
    assert any(name.startswith("jupyterhub-") for name in cookies), list(cookies)
    insecure = [name for name, cookie in cookies.items() if not cookie.secure]
    assert not insecure, f"cookies without the Secure flag: {insecure}"
    assert client.api("GET", "/user").json()["name"] == ADMIN


@pytest.mark.skipif(not RENEW_WITHIN, reason="JHUB_TLS_RENEW_WITHIN is not set")
def test_certificate_is_renewed_before_it_expires():
    first = served_certificate()
    deadline = time.monotonic() + RENEW_WITHIN
    while time.monotonic() < deadline:
        current = served_certificate()
        if current["serialNumber"] != first["serialNumber"]:
            assert ssl.cert_time_to_seconds(current["notAfter"]) > ssl.cert_time_to_seconds(first["notAfter"])
            assert requests.get(URL + "/hub/health", timeout=30).status_code == 200
            return
        assert ssl.cert_time_to_seconds(current["notAfter"]) > time.time(), "the served certificate expired"
        time.sleep(5)
    pytest.fail(f"the certificate (serial {first['serialNumber']}, until {first['notAfter']}) was not renewed within {RENEW_WITHIN} s")
