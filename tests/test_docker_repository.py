"""docker_engine with Docker's own repository, and with NVIDIA's container toolkit, in check mode.

Neither Docker's nor NVIDIA's repository is reachable from CI, so each path is checked as far
as it can be without it: the apt source that the role would write (and, for the toolkit, the
runtime in daemon.json), rendered in check mode with --diff. The signing keys come from a
throwaway HTTP server on loopback.
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


def _task(out: str, name: str) -> str:
    """The output of one task of the role."""
    return out.split(f"TASK [jhub.docker.docker_engine : {name}]", 1)[1].split("TASK [", 1)[0]


@pytest.mark.parametrize("toolkit", [True, False], ids=["toolkit", "no-toolkit"])
def test_nvidia_toolkit_renders_in_check_mode(unchanged_host, key_url, toolkit):
    result = run_playbook(
        "playbooks/docker_engine.yml",
        {"docker_engine_nvidia_toolkit": toolkit, "docker_engine_nvidia_repo_key_url": key_url},
        "--check",
        "--diff",
    )
    assert result.returncode == 0, result.stdout[-4000:]
    out = result.stdout
    daemon = _task(out, "Write /etc/docker/daemon.json")
    if not toolkit:
        assert "skipping: [localhost]" in _task(out, "Write NVIDIA's apt source")
        assert "nvidia" not in daemon
        return
    source = _task(out, "Write NVIDIA's apt source")
    for line in [
        "Types: deb",
        "URIs: https://nvidia.github.io/libnvidia-container/stable/deb/amd64",
        "Suites: /",
        "Signed-By: /etc/apt/keyrings/nvidia-container-toolkit.asc",
    ]:
        assert f"+{line}" in source, f"{line!r} not in the rendered source:\n{source}"
    # The runtime is registered through the role's own daemon.json; runc stays the default.
    assert '+  "runtimes": {' in daemon and '"path": "nvidia-container-runtime"' in daemon, daemon
    assert "default-runtime" not in daemon, daemon
    # The repository would be new, so its package cannot be resolved in check mode.
    assert "skipping: [localhost]" in _task(out, "Install the engine packages")
    assert recap(out)["failed"] == 0
