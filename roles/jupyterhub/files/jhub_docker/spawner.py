"""A DockerSpawner that returns when the new server answers, with a pool of Docker API threads.

DockerSpawner returns as soon as the container runs; the hub then checks the server with an
exponential backoff (0.2, 0.4, 0.8, 1.6, 3.2, 5 s apart), so a server that answers after 2.3 s
is noticed at 3.2 s or later. JhubDockerSpawner checks the server itself every
``check_interval`` seconds before it returns, so the hub's first check succeeds.

DockerSpawner also makes the Docker API calls of all users in a single thread, so one slow
call (an image pull, a container removal) holds up every other spawn and stop. Here they go
through a pool of ``docker_threads`` threads.

Configured from jupyterhub_config.py::

    c.JupyterHub.spawner_class = "jhub_docker.spawner.JhubDockerSpawner"
    c.JhubDockerSpawner.check_interval = 0.1
    c.JhubDockerSpawner.docker_threads = 8

The ``c.DockerSpawner.*`` settings apply to it as well.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

from dockerspawner import DockerSpawner
from tornado.httpclient import AsyncHTTPClient
from traitlets import Float, Integer

# Seconds between two calls of poll() while the server does not answer yet.
POLL_EVERY = 3
# Checks per check_interval that all spawns waiting at once share.
CHECKS_PER_INTERVAL = 4


class JhubDockerSpawner(DockerSpawner):
    """DockerSpawner that returns when the new server answers, with a pool of Docker API threads."""

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

    # Spawns checking their server right now, across all instances.
    waiting: ClassVar[int] = 0

    _start_began: float = 0.0

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

    async def start(self) -> tuple[str, int]:
        self._start_began = time.monotonic()
        ip, port = await super().start()
        if self.check_interval > 0:
            JhubDockerSpawner.waiting += 1
            try:
                await self._wait_answering(f"http://{ip}:{port}{self.server.base_url}api")
            finally:
                JhubDockerSpawner.waiting -= 1
        return ip, port

    async def _wait_answering(self, url: str) -> None:
        """Until the server answers (any status below 500), its container exits, or the deadline."""
        client = AsyncHTTPClient()
        # Within the hub's own limits: http_timeout, and start_timeout for the whole start().
        deadline = min(time.monotonic() + self.http_timeout, self._start_began + self.start_timeout - 1)
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
            await asyncio.sleep(self.check_interval * max(1, JhubDockerSpawner.waiting / CHECKS_PER_INTERVAL))
