"""JhubDockerSpawner (roles/jupyterhub/files/jhub_docker/spawner.py) against the real JupyterHub and DockerSpawner.

Only the Docker side is stubbed: DockerSpawner.start (it would create a container) and the Docker
API client. The spawner is made by a real jupyterhub.user.User from a traitlets Config, as the hub
makes it, and checks a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from dockerspawner import DockerSpawner
from jupyterhub import orm
from jupyterhub.app import JupyterHub
from jupyterhub.objects import Hub, Server
from jupyterhub.user import User
from jupyterhub.utils import url_path_join
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler
from traitlets import TraitError
from traitlets.config import Config

from jhub_docker import spawner as spawner_module
from jhub_docker.slots import StartSlots
from jhub_docker.spawner import JhubDockerSpawner, JhubSpawnerMixin
from jhub_docker.swarm import JhubSwarmSpawner
from jhub_testing.render import render_hub_config

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
    # On the class that holds them for both spawner classes (set on JhubDockerSpawner, they would hide it).
    monkeypatch.setattr(JhubSpawnerMixin, "waiting", 0)
    monkeypatch.setattr(JhubSpawnerMixin, "slots", StartSlots())
    yield
    drop_pool()


@pytest.fixture
def db():
    return orm.new_session_factory("sqlite:///:memory:")()


def make_spawner(db, name: str = "alice", cls: type = JhubDockerSpawner, **config: object) -> JhubDockerSpawner:
    """The user's default spawner of class cls, configured as c.<cls>.<key> = value, with its server record."""
    c = Config()
    for key, value in config.items():
        setattr(c[cls.__name__], key, value)
    orm_user = orm.User(name=name)
    db.add(orm_user)
    db.commit()
    user = User(orm_user, {"config": c, "spawner_class": cls, "hub": Hub(base_url="/hub/")})
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

    # One request, answered at once: start() returned without a second check (the time, with the slack of a loaded machine).
    assert [code for _at, _path, code in server.requests] == [status]
    assert took < 0.1 + SLACK


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
    assert took < SLACK


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
    # 8 waiting spawns sleep 0.1 * 8/4 = 0.2 s each: at most about 8 * 1 / 0.2 = 40 checks in the second,
    # where 8 spawns checking every 0.1 s on their own would make about 80. A loaded machine makes fewer
    # (each check and wake-up comes later), never more: so the count has an upper bound, and each spawn's
    # checks are at least the shared interval apart (0.2 s, not 0.1 s), which load cannot shorten.
    assert len(server.requests) <= 50, len(server.requests)
    times = {f"/user/user{n}/api": [at for at, path, _code in server.requests if path == f"/user/user{n}/api"] for n in range(8)}
    assert all(len(checks) >= 2 for checks in times.values()), times
    gaps = {path: statistics.median(later - earlier for earlier, later in zip(checks, checks[1:])) for path, checks in times.items()}
    assert all(gap >= 0.18 for gap in gaps.values()), gaps


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
    # No limit and no wait, as DockerSpawner: the role sets both.
    assert JhubDockerSpawner.concurrent_starts.default_value == 0
    assert JhubDockerSpawner.queue_timeout.default_value == 0


@pytest.mark.parametrize(
    ("trait", "value"), [("check_interval", -1), ("docker_threads", 0), ("concurrent_starts", -1), ("queue_timeout", -1)]
)
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
    c.JhubDockerSpawner.concurrent_starts = 3
    c.JhubDockerSpawner.queue_timeout = 300
    c.DockerSpawner.start_timeout = 420
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
    assert (spawner.concurrent_starts, spawner.queue_timeout, spawner.start_timeout) == (3, 300, 420)
    assert (spawner.image, spawner.remove) == ("jhub-singleuser:test", True)


# --- Start slots: a bounded number of starts at once, the others in line --------------------------


def stub_docker_starts(monkeypatch, port: int, delays: dict[str, float], log: list) -> None:
    """DockerSpawner.start takes delays[user] seconds (raises if it is an exception); log gets
    ("begin"|"end", user, monotonic time, starts running then) for each."""
    running = []

    async def start(self):
        running.append(self.user.name)
        log.append(("begin", self.user.name, time.monotonic(), len(running)))
        try:
            delay = delays[self.user.name]
            if isinstance(delay, Exception):
                raise delay
            await asyncio.sleep(delay)
            return "127.0.0.1", port
        finally:
            running.remove(self.user.name)
            log.append(("end", self.user.name, time.monotonic(), len(running)))

    monkeypatch.setattr(DockerSpawner, "start", start)


def slotted(db, names, slots: int, **config: object) -> list[JhubDockerSpawner]:
    return [make_spawner(db, name, concurrent_starts=slots, **config) for name in names]


async def start_in_order(spawners: list[JhubDockerSpawner]) -> list[asyncio.Task]:
    """Start each spawner in a task of its own, in this order (each enters the line before the next)."""
    tasks = []
    for spawner in spawners:
        tasks.append(asyncio.ensure_future(spawner.start()))
        await asyncio.sleep(0)
    return tasks


def begun(log: list) -> list[str]:
    return [user for what, user, _at, _running in log if what == "begin"]


def test_at_most_the_slots_start_at_once_in_order_of_arrival(db, monkeypatch):
    names = [f"user{n}" for n in range(6)]
    spawners = slotted(db, names, 2, check_interval=0, queue_timeout=10)
    log = []

    async def scenario():
        stub_docker_starts(monkeypatch, closed_port(), dict.fromkeys(names, 0.2), log)
        began = time.monotonic()
        await asyncio.gather(*await start_in_order(spawners))
        return time.monotonic() - began

    took = asyncio.run(scenario())

    assert max(running for _what, _user, _at, running in log) == 2
    assert begun(log) == names
    # Three rounds of two starts of 0.2 s each.
    assert 0.6 <= took < 0.6 + SLACK
    assert (JhubDockerSpawner.slots.busy, JhubDockerSpawner.slots.line) == (0, [])


def test_a_slot_is_held_until_the_server_answers(db, monkeypatch):
    spawners = slotted(db, ["first", "second"], 1, check_interval=0.05, queue_timeout=10)
    server = SingleUserServer(failures=3)
    log = []

    async def scenario():
        server.start()
        stub_docker_starts(monkeypatch, server.port, {"first": 0.1, "second": 0.1}, log)
        try:
            await asyncio.gather(*await start_in_order(spawners))
        finally:
            server.stop()

    asyncio.run(scenario())

    first_answer = next(at for at, path, code in server.requests if code == 200 and path == "/user/first/api")
    second_begins = next(at for what, user, at, _running in log if (what, user) == ("begin", "second"))
    # The first container ran after 0.1 s, but its server answered only after three 503s.
    assert first_answer <= second_begins < first_answer + SLACK
    assert [code for _at, path, code in server.requests if path == "/user/first/api"] == [503, 503, 503, 200]


def test_progress_says_how_many_are_ahead(db, monkeypatch):
    from jupyterhub.utils import iterate_until

    spawners = slotted(db, ["a", "b", "c"], 1, check_interval=0.05, queue_timeout=10)
    server = SingleUserServer(failures=2)
    last = spawners[-1]
    events = []

    async def scenario():
        server.start()
        stub_docker_starts(monkeypatch, server.port, {"a": 0.15, "b": 0.15, "c": 0.15}, [])
        try:
            tasks = await start_in_order(spawners)
            # As the hub's progress API reads it: its own first event, then the spawner's, until the start is over.
            last._spawn_pending = True
            async for event in iterate_until(tasks[-1], last._generate_progress()):
                events.append(event)
            await asyncio.gather(*tasks)
        finally:
            server.stop()

    asyncio.run(scenario())

    assert events == [
        {"progress": 0, "message": "Server requested"},
        {"progress": 10, "message": "Waiting for a start slot: 1 ahead"},
        {"progress": 10, "message": "Waiting for a start slot: 0 ahead"},
        {"progress": 40, "message": "Starting your server"},
        {"progress": 70, "message": "Waiting for your server to answer"},
    ]


def test_progress_ends_with_the_start(db, monkeypatch):
    spawner = make_spawner(db, "alone", concurrent_starts=1, check_interval=0)

    async def scenario():
        stub_docker_starts(monkeypatch, closed_port(), {"alone": 0.1}, [])
        events = []

        async def read():
            async for event in spawner.progress():
                events.append(event["message"])

        reader = asyncio.ensure_future(read())
        await asyncio.sleep(0.05)  # the reader waits for the start: nothing to say yet
        assert events == []
        await spawner.start()
        await asyncio.wait_for(reader, 1)
        return events

    assert asyncio.run(scenario()) == ["Starting your server"]


@pytest.mark.parametrize("how", ["fails", "is-cancelled"])
def test_a_start_that_fails_or_is_cancelled_frees_its_slot(db, monkeypatch, how):
    spawners = slotted(db, ["first", "second"], 1, check_interval=0, queue_timeout=10)
    log = []
    delays = {"first": RuntimeError("no such image") if how == "fails" else 30, "second": 0.1}

    async def scenario():
        stub_docker_starts(monkeypatch, closed_port(), delays, log)
        first, second = await start_in_order(spawners)
        if how == "is-cancelled":
            await asyncio.sleep(0.1)
            first.cancel()  # as the hub's start_timeout does
        results = await asyncio.gather(first, second, return_exceptions=True)
        return results

    first, (ip, _port) = asyncio.run(scenario())

    assert isinstance(first, RuntimeError if how == "fails" else asyncio.CancelledError)
    assert ip == "127.0.0.1"
    ended = next(at for what, user, at, _running in log if (what, user) == ("end", "first"))
    begins = next(at for what, user, at, _running in log if (what, user) == ("begin", "second"))
    assert ended <= begins < ended + SLACK
    assert (JhubDockerSpawner.slots.busy, JhubDockerSpawner.slots.line) == (0, [])


def test_a_cancelled_waiter_leaves_the_line(db, monkeypatch):
    names = ["holder", "quitter", "next"]
    spawners = slotted(db, names, 1, check_interval=0, queue_timeout=10)
    log = []
    ahead_of_next = []

    async def scenario():
        stub_docker_starts(monkeypatch, closed_port(), dict.fromkeys(names, 0.3), log)
        holder, quitter, following = await start_in_order(spawners)
        ahead_of_next.append(JhubDockerSpawner.slots.ahead(spawners[2]))
        quitter.cancel()
        await asyncio.sleep(0)
        ahead_of_next.append(JhubDockerSpawner.slots.ahead(spawners[2]))
        return await asyncio.gather(holder, quitter, following, return_exceptions=True)

    results = asyncio.run(scenario())

    assert ahead_of_next == [1, 0]
    assert isinstance(results[1], asyncio.CancelledError)
    assert begun(log) == ["holder", "next"]
    assert (JhubDockerSpawner.slots.busy, JhubDockerSpawner.slots.line) == (0, [])


def test_the_start_timeout_counts_from_the_slot(db, monkeypatch):
    from tornado.web import HTTPError

    # The hub's start_timeout of 2 s is 1.5 s in line at most and 0.5 s for the start itself.
    names = ["a", "b", "c"]
    spawners = slotted(db, names, 1, check_interval=0, queue_timeout=1.5)
    for spawner in spawners:
        spawner.start_timeout = 2
    log = []

    async def scenario():
        stub_docker_starts(monkeypatch, closed_port(), {"a": 0.4, "b": 0.4, "c": 1.0}, log)
        began = time.monotonic()
        results = await asyncio.gather(*await start_in_order(spawners), return_exceptions=True)
        return results, time.monotonic() - began

    (a, b, c), took = asyncio.run(scenario())

    # b waited 0.4 s and then started in 0.4 s: 0.8 s from its request, more than its own 0.5 s.
    assert a[0] == b[0] == "127.0.0.1"
    # c waited 0.8 s and was stopped 0.5 s after it got its slot.
    assert isinstance(c, HTTPError) and c.status_code == 500
    assert c.jupyterhub_message == "Your server did not start within 0.5 seconds."
    assert 1.3 <= took < 1.3 + SLACK
    assert (JhubDockerSpawner.slots.busy, JhubDockerSpawner.slots.line) == (0, [])


def test_the_wait_for_a_slot_is_bounded(db, monkeypatch):
    from tornado.web import HTTPError

    spawners = slotted(db, ["holder", "late"], 1, check_interval=0, queue_timeout=0.3)
    log = []

    async def scenario():
        stub_docker_starts(monkeypatch, closed_port(), {"holder": 0.6, "late": 0.1}, log)
        holder, late = await start_in_order(spawners)
        began = time.monotonic()
        with pytest.raises(HTTPError) as refused:
            await late
        waited = time.monotonic() - began
        line = list(JhubDockerSpawner.slots.line)
        await holder
        return refused.value, waited, line

    error, waited, line = asyncio.run(scenario())

    assert error.status_code == 503
    assert error.jupyterhub_message.startswith("No start slot became free within 0.3 seconds")
    assert 0.3 <= waited < 0.3 + SLACK
    assert line == []
    assert begun(log) == ["holder"]
    assert (JhubDockerSpawner.slots.busy, JhubDockerSpawner.slots.line) == (0, [])


# --- The role's jupyterhub_config.py ----------------------------------------------------------------

# Docker's local volume driver with NFS options, as an inventory sets them.
NFS_OPTIONS = {"type": "nfs", "o": "addr=10.0.0.5,rw,nfsvers=4.1", "device": ":/export/jupyterhub/{username}"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, str]:
    """jupyterhub_config.py as the role renders it (without facts: no vCPU count), with defaults and with some set;
    with the swarm spawner, and with it and NFS volumes."""
    return render_hub_config(tmp_path_factory.mktemp("rendered"), {
        "defaults": {},
        "set": {"jupyterhub_spawner_concurrent_starts": "3", "jupyterhub_spawner_start_timeout": 60, "jupyterhub_spawner_queue_timeout": 100},
        "swarm": {"jhub_spawner": "swarm"},
        "nfs": {"jhub_spawner": "swarm", "jhub_user_volume_driver_options": NFS_OPTIONS},
    })


def admission_settings(db, name: str, config_text: str) -> tuple[int, int, float, int]:
    """(concurrent_spawn_limit, concurrent_starts, queue_timeout, start_timeout) as the hub and its spawners get them."""
    c = Config()
    wanted = ("c.JupyterHub.concurrent_spawn_limit", "c.JhubDockerSpawner.concurrent_starts",
              "c.JhubDockerSpawner.queue_timeout", "c.DockerSpawner.start_timeout")
    lines = [line for line in config_text.splitlines() if line.startswith(wanted)]
    assert len(lines) == len(wanted), lines
    exec("\n".join(lines), {"c": c})  # noqa: S102 (the role's own template)
    hub = JupyterHub(config=c)
    orm_user = orm.User(name=name)
    db.add(orm_user)
    db.commit()
    spawner = User(orm_user, {"config": c, "spawner_class": JhubDockerSpawner}).spawners[""]
    return hub.concurrent_spawn_limit, spawner.concurrent_starts, spawner.queue_timeout, spawner.start_timeout


def test_the_rendered_config_bounds_the_starts(db, rendered):
    # Without the vCPU fact: 2 slots, 25 pending per slot, and the hub waits 120 s plus the 300 s in line.
    assert admission_settings(db, "dora", rendered["defaults"]) == (100, 2, 300, 420)
    # As -e gives them (strings too); the cap follows the slots.
    assert admission_settings(db, "erin", rendered["set"]) == (150, 3, 100, 160)


def test_the_rendered_config_gives_the_swarm_spawner_the_volume_driver_options(db, rendered):
    c = Config()
    lines = [line for line in rendered["nfs"].splitlines() if line.startswith(("c.DockerSpawner.volumes", "c.JhubSwarmSpawner.volume_"))]
    assert len(lines) == 3, lines
    exec("\n".join(lines), {"c": c})  # noqa: S102 (the role's own template)
    orm_user = orm.User(name="anna.b")
    db.add(orm_user)
    db.commit()
    spawner = User(orm_user, {"config": c, "spawner_class": JhubSwarmSpawner}).spawners[""]

    assert (spawner.volume_driver, spawner.volume_driver_options, spawner.node_affinity) == ("local", NFS_OPTIONS, False)
    [mount] = spawner.mounts
    assert (mount["Source"], mount["Type"]) == ("jupyterhub-user-anna-2eb", "volume")
    options = {**NFS_OPTIONS, "device": ":/export/jupyterhub/anna-2eb"}
    assert mount["VolumeOptions"]["DriverConfig"] == {"Name": "local", "Options": options}
    # Without the option (the default): node-local volumes, and each user kept on a node.
    assert "c.JhubSwarmSpawner." in rendered["swarm"]
    for name in ("defaults", "swarm"):
        assert "volume_driver" not in rendered[name]
