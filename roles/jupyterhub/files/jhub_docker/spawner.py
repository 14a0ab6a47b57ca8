"""A DockerSpawner that returns when the new server answers, with a pool of
Docker API threads and a bounded number of starts at once.

DockerSpawner returns as soon as the container runs; the hub then checks the server with an
exponential backoff (0.2, 0.4, 0.8, 1.6, 3.2, 5 s apart), so a server that answers after 2.3 s
is noticed at 3.2 s or later. JhubDockerSpawner checks the server itself every
``check_interval`` seconds before it returns, so the hub's first check succeeds.

DockerSpawner also makes the Docker API calls of all users in a single thread, so one slow
call (an image pull, a container removal) holds up every other spawn and stop. Here they go
through a pool of ``docker_threads`` threads.

Many servers starting at once share the host's CPUs until every one of them is too slow for
its timeouts. At most ``concurrent_starts`` start at once here; the others wait in the hub,
first come first served, and their progress events say how many are ahead of them. The wait
is at most ``queue_timeout`` seconds, and it is part of ``start_timeout`` (the hub's limit for
the whole of start()): a server's own start has ``start_timeout - queue_timeout`` seconds from
the moment it gets its slot.

Configured from jupyterhub_config.py::

    c.JupyterHub.spawner_class = "jhub_docker.spawner.JhubDockerSpawner"
    c.JhubDockerSpawner.check_interval = 0.1
    c.JhubDockerSpawner.docker_threads = 8
    c.JhubDockerSpawner.concurrent_starts = 2
    c.JhubDockerSpawner.queue_timeout = 300
    c.DockerSpawner.start_timeout = 120 + 300

The ``c.DockerSpawner.*`` settings apply to it as well. jhub_docker.swarm.JhubSwarmSpawner does the
same on a Docker Swarm; the start slots (jhub_docker.slots) are shared by both classes.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

from dockerspawner import DockerSpawner
from tornado.httpclient import AsyncHTTPClient
from traitlets import Float, Integer
from traitlets.config import LoggingConfigurable

from jhub_docker.guard import LABEL, LABEL_VALUE
from jhub_docker.profiles import ProfilesMixin
from jhub_docker.slots import StartSlots, start_failed

# Seconds between two calls of poll() while the server does not answer yet.
POLL_EVERY = 3
# Checks per check_interval that all spawns waiting at once share.
CHECKS_PER_INTERVAL = 4

# What a start shows in its progress events after it got its slot (while it waits: how many are ahead).
PHASES = {
    "starting": {"progress": 40, "message": "Starting your server"},
    "answering": {"progress": 70, "message": "Waiting for your server to answer"},
}


class JhubSpawnerMixin(LoggingConfigurable):
    """What JhubDockerSpawner and JhubSwarmSpawner add to DockerSpawner and SwarmSpawner: start()
    returns when the new server answers, Docker API calls go through a pool of threads, and a
    bounded number of servers start at once.

    Put it before the DockerSpawner class in the bases. The start slots and the count of spawns
    checking their server belong to this class: one hub's spawners share them, whichever of the
    two classes they are.
    """

    check_interval = Float(
        0.1,
        min=0,
        config=True,
        help="""Seconds between two checks that the new server answers, before start() returns.

        0 returns as soon as the container runs, as DockerSpawner does. When many servers
        start at once, the spawns share about four checks per interval.
        """,
    )

    docker_threads = Integer(
        8,
        min=1,
        config=True,
        help="""Threads making the Docker API calls of all users (DockerSpawner has one).

        The pool is made once, when the first spawner calls the Docker API.
        """,
    )

    concurrent_starts = Integer(
        0,
        min=0,
        config=True,
        help="""Servers that start at once, in all (0: no limit).

        The others wait in the hub, first come first served. A slot is held from the start of
        DockerSpawner's start() until the new server answers (with check_interval above 0;
        otherwise until its container runs), or until the start fails.
        """,
    )

    queue_timeout = Float(
        0,
        min=0,
        config=True,
        help="""Seconds a start may wait for a slot, before it fails; part of start_timeout.

        start_timeout is the hub's limit for the whole of start(), from the request: set it to
        the server's own start timeout plus queue_timeout. A server's own start has
        start_timeout - queue_timeout seconds from the moment it gets its slot.
        """,
    )

    # Spawns checking their server right now, across all instances of both classes.
    waiting: ClassVar[int] = 0
    # The start slots, shared by all instances of both classes.
    slots: ClassVar[StartSlots] = StartSlots()

    # Where this spawner's start is: None (not in start()), "queued" (before its slot), or a key of PHASES.
    _phase: str | None = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The pool of Docker API threads, one per class, shared by all its instances.

        DockerSpawner.docker() submits every Docker API call to ``self.executor``; its own
        property makes a one-thread pool. The pool is looked up in this very class's
        ``__dict__``, not inherited: a pool DockerSpawner made for itself is not ours.
        """
        cls = type(self)
        pool = cls.__dict__.get("_executor")
        if pool is None:
            pool = ThreadPoolExecutor(self.docker_threads, thread_name_prefix="docker")
            cls._executor = pool
        return pool

    def _docker(self, method: str, *args, **kwargs):
        # Every user server carries the user-server label: the hub's Docker proxy (jhub_docker.guard)
        # acts on nothing else.
        if method in ("create_container", "create_service"):
            kwargs["labels"] = {**(kwargs.get("labels") or {}), LABEL: LABEL_VALUE}
        return super()._docker(method, *args, **kwargs)

    async def start(self) -> tuple[str, int]:
        slots = self.concurrent_starts
        held = False
        self._set_phase("queued")
        try:
            if slots:
                held = await self.slots.take(self, slots, self.queue_timeout)
                if not held:
                    raise start_failed(
                        503,
                        f"No start slot became free within {self.queue_timeout:g} seconds: too many servers"
                        " are starting at once. Try again in a few minutes.",
                    )
            # The server's own start timeout counts from here, however long it waited for its slot.
            own_timeout = self.start_timeout - self.queue_timeout
            deadline = time.monotonic() + own_timeout
            self._set_phase("starting")
            try:
                ip, port = await asyncio.wait_for(super().start(), own_timeout)
            except asyncio.TimeoutError:
                if time.monotonic() < deadline:
                    raise  # a timeout within DockerSpawner's start
                raise start_failed(500, f"Your server did not start within {own_timeout:g} seconds.") from None
            if self.check_interval > 0:
                self._set_phase("answering")
                JhubSpawnerMixin.waiting += 1
                try:
                    await self._wait_answering(f"http://{ip}:{port}{self.server.base_url}api", deadline)
                finally:
                    JhubSpawnerMixin.waiting -= 1
            return ip, port
        finally:
            if held:
                self.slots.give_back()
            self._set_phase(None)

    def _set_phase(self, phase: str | None) -> None:
        self._phase = phase
        self.slots.notify()

    async def progress(self):
        """Progress events of the start: how many wait before it for a slot, then its phase.

        The hub merges them into the spawn page and the progress event stream, and stops
        reading when the spawn is over; this generator ends when start() does.
        """
        shown = None
        while True:
            changed = self.slots.changed
            ahead = self.slots.ahead(self)
            if ahead is not None:
                event = {"progress": 10, "message": f"Waiting for a start slot: {ahead} ahead"}
            else:
                event = PHASES.get(self._phase)
            if self._phase is None and shown is not None:
                return  # start() is over
            if event is not None and event != shown:
                shown = event
                yield dict(event)
            await changed.wait()

    async def _wait_answering(self, url: str, deadline: float) -> None:
        """Until the server answers (any status below 500), its container exits, or the deadline."""
        client = AsyncHTTPClient()
        # Within http_timeout, and a second before the start's own deadline: start() returns, and the
        # hub checks the server itself, before any timeout of the hub's.
        deadline = min(time.monotonic() + self.http_timeout, deadline - 1)
        next_poll = time.monotonic() + POLL_EVERY
        while time.monotonic() < deadline:
            try:
                response = await client.fetch(
                    url, raise_error=False, follow_redirects=False, connect_timeout=2, request_timeout=5
                )
                if response.code < 500:
                    return
            except Exception:  # not listening yet: the hub's own check reports it
                pass
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + POLL_EVERY
                if await self.poll() is not None:
                    return  # the container exited: the hub's own check reports it
            # Many spawns at once share the rate: at most CHECKS_PER_INTERVAL checks per interval in all.
            await asyncio.sleep(self.check_interval * max(1, JhubSpawnerMixin.waiting / CHECKS_PER_INTERVAL))


class JhubDockerSpawner(ProfilesMixin, JhubSpawnerMixin, DockerSpawner):
    """DockerSpawner that returns when the new server answers, with a pool of Docker API threads,
    a bounded number of starts at once, and profiles (jhub_docker.profiles)."""
