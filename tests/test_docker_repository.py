"""docker_engine with Docker's own repository, in check mode.

Docker's repository is not reachable from CI, so the path is checked as far as it
can be without it: the apt source that the role would write, rendered in check mode
with --diff. The signing key comes from a throwaway HTTP server on loopback.
"""

from __future__ import annotations

import functools
import http.server
import threading

import pytest

from conftest import recap, run_playbook

KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot-a-real-key\n-----END PGP PUBLIC KEY BLOCK-----\n"


@pytest.fixture
def key_url(tmp_path):
    (tmp_path / "gpg").write_text(KEY)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/gpg"
    server.shutdown()


def _os_release() -> dict[str, str]:
    with open("/etc/os-release", encoding="utf-8") as handle:
        return dict(line.rstrip("\n").split("=", 1) for line in handle if "=" in line)


@pytest.mark.parametrize("channel", ["stable", "test"])
def test_docker_repository_renders_in_check_mode(unchanged_host, key_url, channel):
    release = _os_release()
    result = run_playbook(
        "playbooks/docker_engine.yml",
        {"docker_engine_source": "docker", "docker_engine_channel": channel, "docker_engine_repo_key_url": key_url},
        "--check",
        "--diff",
    )
    assert result.returncode == 0, result.stdout[-4000:]
    out = result.stdout
    assert "TASK [jhub.docker.docker_engine : Write Docker's apt source]" in out
    for line in [
        "Types: deb",
        f"URIs: https://download.docker.com/linux/{release['ID'].strip(chr(34))}",
        f"Suites: {release['VERSION_CODENAME']}",
        f"Components: {channel}",
        "Architectures: amd64",
        "Signed-By: /etc/apt/keyrings/docker.asc",
    ]:
        assert f"+{line}" in out, f"{line!r} not in the rendered source:\n{out[-4000:]}"
    # The repository would be new, so its packages cannot be resolved in check mode.
    assert "skipping: [localhost]" in out.split("Install the engine packages", 1)[1].split("TASK", 1)[0]
    assert recap(out)["failed"] == 0
