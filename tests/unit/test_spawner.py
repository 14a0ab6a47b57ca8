"""JhubDockerSpawner (roles/jupyterhub/files/jhub_docker/spawner.py) against the real JupyterHub and DockerSpawner.

Only the Docker side is stubbed: DockerSpawner.start (it would create a container) and the Docker
API client. The spawner is made by a real jupyterhub.user.User from a traitlets Config, as the hub
makes it, and checks a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from dockerspawner import DockerSpawner
from jupyterhub import orm
from jupyterhub.app import JupyterHub
from jupyterhub.objects import Server
from jupyterhub.user import User
from jupyterhub.utils import url_path_join
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler
from traitlets import TraitError
from traitlets.config import Config

# The package as the role copies it into the hub image. (Not in a tests/unit/conftest.py: a second
# module named conftest would shadow tests/conftest.py, which other test modules import.)
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "roles" / "jupyterhub" / "files"))
from jhub_docker import spawner as spawner_module  # noqa: E402
from jhub_docker.spawner import JhubDockerSpawner  # noqa: E402

# Slack for the event loop and the HTTP round trips of a loaded test machine, in seconds.
SLACK = 0.35


def drop_pool() -> None:
    """Forget JhubDockerSpawner's Docker thread pool, as if no spawner had called the Docker API yet."""
    pool = JhubDockerSpawner.__dict__.get("_executor")
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
    if "_executor" in JhubDockerSpawner.__dict__:
        delattr(JhubDockerSpawner, "_executor")


@pytest.fixture(autouse=True)
def fresh_class_state(monkeypatch):
    """Each test gets its own Docker thread pool and client, and no spawn left waiting."""
    drop_pool()
    monkeypatch.setattr(JhubDockerSpawner, "_client", None)
    monkeypatch.setattr(JhubDockerSpawner, "waiting", 0)
    yield
    drop_pool()


@pytest.fixture
def db():
    return orm.new_session_factory("sqlite:///:memory:")()


def make_spawner(db, name: str = "alice", **config: object) -> JhubDockerSpawner:
    """The user's default spawner, configured as c.JhubDockerSpawner.<key> = value, with its server record."""
    c = Config()
    for key, value in config.items():
        setattr(c.JhubDockerSpawner, key, value)
    orm_user = orm.User(name=name)
    db.add(orm_user)
    db.commit()
    user = User(orm_user, {"config": c, "spawner_class": JhubDockerSpawner})
    spawner = user.spawners[""]
    # As User.spawn does before it calls spawner.start().
    orm_server = orm.Server(base_url=url_path_join(user.base_url, "/"))
    db.add(orm_server)
    db.commit()
    spawner.server = Server(orm_server=orm_server)
    return spawner


class FakeDockerClient:
    """The docker.APIClient methods DockerSpawner.poll() uses, for a container in a given state."""

    def __init__(self, running: bool = True) -> None:
        self.running = running
        self.inspected = 0

    def inspect_container(self, name: str) -> dict:
        self.inspected += 1
        state = {"Running": self.running, "ExitCode": 0 if self.running else 1, "Error": "", "FinishedAt": "now"}
        return {"Id": "0123456789abcdef", "Name": name, "State": state}


def stub_docker_start(monkeypatch, port: int, delay: float = 0.0) -> None:
    """DockerSpawner.start returns ('127.0.0.1', port) after delay seconds, as if a container started."""

    async def start(self):
        await asyncio.sleep(delay)
        return "127.0.0.1", port

    monkeypatch.setattr(DockerSpawner, "start", start)


class SingleUserServer:
    """A real HTTP server standing in for the single-user servers: 503 for the first `failures` requests."""

    def __init__(self, failures: float = 0, status: int = 200) -> None:
        self.failures = failures
        self.status = status
        self.requests: list[tuple[float, str, int]] = []  # (monotonic time, path, status answered)
        self.port = 0
        self._http: HTTPServer | None = None

    def start(self) -> None:
        """Listen on 127.0.0.1 in the running event loop."""
        server = self

        class Handler(RequestHandler):
            def get(self) -> None:
                code = 503 if len(server.requests) < server.failures else server.status
                server.requests.append((time.monotonic(), self.request.path, code))
                self.set_status(code)
                self.finish("{}")

        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self._http = HTTPServer(Application([(r"/.*", Handler)]))
        self._http.add_sockets(sockets)

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connection refused)."""
    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    for sock in sockets:
        sock.close()
    return port


async def timed_start(spawner: JhubDockerSpawner) -> tuple[tuple[str, int], float, float]:
    """(spawner.start()'s result, the monotonic time it began, how long it took)."""
    began = time.monotonic()
    result = await spawner.start()
    return result, began, time.monotonic() - began


def test_returns_once_the_server_answers(db, monkeypatch):
    spawner = make_spawner(db, check_interval=0.1)
    server = SingleUserServer(failures=3)

    async def scenario():
        server.start()
        stub_docker_start(monkeypatch, server.port)
        try:
            return await timed_start(spawner)
        finally:
            server.stop()

    (ip, port), _began, took = asyncio.run(scenario())

    assert (ip, port) == ("127.0.0.1", server.port)
    assert [(path, code) for _at, path, code in server.requests] == [("/user/alice/api", 503)] * 3 + [
        ("/user/alice/api", 200)
    ]
    # Three waits of one interval each, and not many more: it did not return before the 200, nor long after it.
    assert 0.3 <= took < 0.3 + SLACK
    gaps = [later[0] - earlier[0] for earlier, later in zip(server.requests, server.requests[1:])]
    assert all(0.09 <= gap < 0.1 + SLACK for gap in gaps), gaps
    assert JhubDockerSpawner.waiting == 0


@pytest.mark.parametrize("status", [302, 403, 404])
def test_any_answer_below_500_counts(db, monkeypatch, status):
    spawner = make_spawner(db, check_interval=0.1)
    server = SingleUserServer(status=status)

    async def scenario():
        server.start()
        stub_docker_start(monkeypatch, server.port)
        try:
            return await timed_start(spawner)
        finally:
            server.stop()

    _address, _began, took = asyncio.run(scenario())

    assert [code for _at, _path, code in server.requests] == [status]
    assert took < 0.1


@pytest.mark.parametrize("listening", [True, False], ids=["answers-503", "connection-refused"])
def test_gives_up_after_http_timeout(db, monkeypatch, listening):
    spawner = make_spawner(db, check_interval=0.05)
    spawner.http_timeout = 1
    spawner.start_timeout = 60
    server = SingleUserServer(failures=float("inf"))

    async def scenario():
        if listening:
            server.start()
        stub_docker_start(monkeypatch, server.port if listening else closed_port(), delay=0.2)
        try:
            return await timed_start(spawner)
        finally:
            server.stop()

    _address, _began, took = asyncio.run(scenario())

    # The container started after 0.2 s; http_timeout counts from there.
    assert 1.2 <= took < 1.2 + SLACK
    if listening:
        assert len(server.requests) >= 10
        assert {code for _at, _path, code in server.requests} == {503}


def test_gives_up_within_start_timeout(db, monkeypatch):
    spawner = make_spawner(db, check_interval=0.05)
    spawner.http_timeout = 1
    spawner.start_timeout = 2
    server = SingleUserServer(failures=float("inf"))

    async def scenario():
        server.start()
        stub_docker_start(monkeypatch, server.port, delay=0.5)
        try:
            return await timed_start(spawner)
        finally:
            server.stop()

    _address, began, took = asyncio.run(scenario())

    # start_timeout counts from the call of start(), before the container started, and leaves the
    # hub one second: 2 - 1 = 1 s in all, although http_timeout alone would allow 0.5 + 1 = 1.5 s.
    assert 1.0 <= took < 1.0 + SLACK
    assert server.requests and server.requests[0][0] >= began + 0.5


def test_returns_when_the_container_exits(db, monkeypatch):
    monkeypatch.setattr(spawner_module, "POLL_EVERY", 0.3)
    docker = FakeDockerClient(running=False)
    monkeypatch.setattr(JhubDockerSpawner, "_client", docker)
    spawner = make_spawner(db, check_interval=0.05)
    spawner.http_timeout = 30
    port = closed_port()

    async def scenario():
        stub_docker_start(monkeypatch, port)
        return await timed_start(spawner)

    _address, _began, took = asyncio.run(scenario())

    # The real DockerSpawner.poll() asked Docker once, found the container exited, and start() returned.
    assert docker.inspected == 1
    assert 0.3 <= took < 0.3 + SLACK


def test_polls_the_running_container_every_few_seconds(db, monkeypatch):
    monkeypatch.setattr(spawner_module, "POLL_EVERY", 0.4)
    docker = FakeDockerClient(running=True)
    monkeypatch.setattr(JhubDockerSpawner, "_client", docker)
    spawner = make_spawner(db, check_interval=0.05)
    spawner.http_timeout = 1
    port = closed_port()

    async def scenario():
        stub_docker_start(monkeypatch, port)
        return await timed_start(spawner)

    _address, _began, took = asyncio.run(scenario())

    assert 1.0 <= took < 1.0 + SLACK
    assert docker.inspected == 2  # at about 0.4 and 0.8 s


def test_check_interval_0_does_not_check(db, monkeypatch):
    docker = FakeDockerClient(running=True)
    monkeypatch.setattr(JhubDockerSpawner, "_client", docker)
    spawner = make_spawner(db, check_interval=0)
    server = SingleUserServer(failures=float("inf"))

    async def scenario():
        server.start()
        stub_docker_start(monkeypatch, server.port)
        try:
            return await timed_start(spawner)
        finally:
            server.stop()

    (ip, port), _began, took = asyncio.run(scenario())

    assert (ip, port) == ("127.0.0.1", server.port)
    assert server.requests == []
    assert docker.inspected == 0
    assert took < 0.1


def test_concurrent_spawns_share_the_check_rate(db, monkeypatch):
    spawners = [make_spawner(db, f"user{n}", check_interval=0.1) for n in range(8)]
    for spawner in spawners:
        spawner.http_timeout = 1
    server = SingleUserServer(failures=float("inf"))
    seen_waiting = []

    async def scenario():
        server.start()
        stub_docker_start(monkeypatch, server.port)

        async def watch():
            await asyncio.sleep(0.5)
            seen_waiting.append(JhubDockerSpawner.waiting)

        try:
            await asyncio.gather(watch(), *(spawner.start() for spawner in spawners))
        finally:
            server.stop()

    asyncio.run(scenario())

    assert seen_waiting == [8]
    assert JhubDockerSpawner.waiting == 0
    # 8 waiting spawns sleep 0.1 * 8/4 = 0.2 s each: about 8 * 1 / 0.2 = 40 checks in the second,
    # where 8 spawns checking every 0.1 s on their own would make about 80.
    assert 32 <= len(server.requests) <= 50, len(server.requests)
    assert {path for _at, path, _code in server.requests} == {f"/user/user{n}/api" for n in range(8)}


def test_docker_calls_run_in_a_pool_of_docker_threads(db, monkeypatch):
    spawners = [make_spawner(db, f"user{n}", docker_threads=3) for n in range(2)]
    release = threading.Event()
    lock = threading.Lock()
    active = []
    threads = set()

    class BlockingClient:
        def block(self) -> int:
            with lock:
                active.append(1)
                threads.add(threading.current_thread().name)
                concurrent = len(active)
            release.wait(2)
            with lock:
                active.pop()
            return concurrent

    monkeypatch.setattr(JhubDockerSpawner, "_client", BlockingClient())

    async def scenario():
        calls = [asyncio.ensure_future(spawners[n % 2].docker("block")) for n in range(5)]
        deadline = time.monotonic() + 2
        while len(active) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        running = len(active)
        release.set()
        return running, await asyncio.gather(*calls)

    running, concurrency = asyncio.run(scenario())

    # Three calls ran at once, from both users, and the other two waited for a free thread.
    assert running == 3
    assert max(concurrency) == 3
    assert len(threads) == 3 and all(name.startswith("docker") for name in threads)
    assert spawners[0].executor is spawners[1].executor
    assert spawners[0].executor._max_workers == 3


def test_pool_is_made_once_and_is_not_dockerspawners(db, monkeypatch):
    # A plain DockerSpawner made its one-thread pool first (DockerSpawner keeps it on its class).
    with ThreadPoolExecutor(1) as dockerspawners:
        monkeypatch.setattr(DockerSpawner, "_executor", dockerspawners)
        pool = make_spawner(db, "first", docker_threads=5).executor

        assert pool is not dockerspawners
        assert pool._max_workers == 5
        assert make_spawner(db, "second", docker_threads=2).executor is pool


def test_defaults():
    assert JhubDockerSpawner.check_interval.default_value == 0.1
    assert JhubDockerSpawner.docker_threads.default_value == 8


@pytest.mark.parametrize(("trait", "value"), [("check_interval", -1), ("docker_threads", 0)])
def test_invalid_values_are_rejected(db, trait, value):
    with pytest.raises(TraitError, match=trait):
        make_spawner(db, **{trait: value})
    spawner = make_spawner(db, "other")
    with pytest.raises(TraitError, match=trait):
        setattr(spawner, trait, value)


def test_configured_as_the_hub_config_does(db):
    c = Config()
    c.JupyterHub.spawner_class = "jhub_docker.spawner.JhubDockerSpawner"
    c.JhubDockerSpawner.check_interval = 0.25
    c.JhubDockerSpawner.docker_threads = 4
    c.DockerSpawner.image = "jhub-singleuser:test"
    c.DockerSpawner.remove = True

    hub = JupyterHub(config=c)
    assert hub.spawner_class is JhubDockerSpawner

    orm_user = orm.User(name="carol")
    db.add(orm_user)
    db.commit()
    spawner = User(orm_user, {"config": c, "spawner_class": hub.spawner_class}).spawners[""]
    assert isinstance(spawner, JhubDockerSpawner)
    assert (spawner.check_interval, spawner.docker_threads) == (0.25, 4)
    assert (spawner.image, spawner.remove) == ("jhub-singleuser:test", True)
