"""The start slots that the spawners of one hub share: a few servers start at once, the others
wait in the hub, first come first served (jhub_docker.spawner's concurrent_starts and queue_timeout)."""

from __future__ import annotations

import asyncio

from tornado import web


def start_failed(status: int, message: str) -> web.HTTPError:
    """An error of a start that the hub logs without a traceback and shows the user as it is."""
    error = web.HTTPError(status, message)
    error.jupyterhub_message = message
    return error


class StartSlots:
    """The start slots of all the spawners of a hub: a few starts at once, the others in line, first come first served."""

    def __init__(self) -> None:
        self.busy = 0  # starts holding a slot
        self.line: list[tuple[object, asyncio.Future]] = []  # (spawner, its turn), the first in line first
        self.changed = asyncio.Event()  # set, and replaced, at every change: the line moved, a start went on

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def ahead(self, owner: object) -> int | None:
        """How many wait before owner in the line; None when owner is not in it."""
        for place, (waiting, _turn) in enumerate(self.line):
            if waiting is owner:
                return place
        return None

    async def take(self, owner: object, slots: int, timeout: float) -> bool:
        """Wait for one of the slots, at most timeout seconds; False if none became free."""
        if self.busy < slots and not self.line:
            self.busy += 1
            return True
        turn = asyncio.get_running_loop().create_future()
        self.line.append((owner, turn))
        self.notify()
        try:
            await asyncio.wait([turn], timeout=timeout)
        except BaseException:  # cancelled: leave the line, or pass on a slot given at that very moment
            if turn.done():
                self.give_back()
            else:
                self._leave(owner, turn)
            raise
        if turn.done():
            return True
        self._leave(owner, turn)
        return False

    def give_back(self) -> None:
        """Free a slot: it goes to the first in line, if any."""
        if self.line:
            _owner, turn = self.line.pop(0)
            turn.set_result(None)
        else:
            self.busy -= 1
        self.notify()

    def _leave(self, owner: object, turn: asyncio.Future) -> None:
        self.line.remove((owner, turn))
        turn.cancel()
        self.notify()
