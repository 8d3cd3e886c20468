"""Group commit: callers submit one item each, a batch is written in one go.

While a batch is being written, new items gather; the next batch takes them all
(up to `max_batch`). Under load, batches grow by themselves and the cost of a
commit or a confirm is shared; at low load a batch is a single item and nobody
waits for a timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")
log = logging.getLogger(__name__)


class Batcher(Generic[In, Out]):
    """Runs `write(items) -> results` (one result per item, same order) for gathered items.

    Args:
        write: coroutine function writing a batch; an exception fails every item of it.
        max_batch: the largest batch handed to `write`.
        parallel: how many batches may be written at once.
    """

    def __init__(
        self,
        write: Callable[[Sequence[In]], Awaitable[Sequence[Out]]],
        *,
        max_batch: int = 500,
        parallel: int = 1,
    ) -> None:
        self._write = write
        self._max = max_batch
        self._pending: list[tuple[In, asyncio.Future[Out]]] = []
        self._slots = asyncio.Semaphore(parallel)
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: In) -> Out:
        """Add one item; returns its result once its batch is written."""
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._pending) == 1:
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        async with self._slots:
            batch, self._pending = self._pending[: self._max], self._pending[self._max :]
            if self._pending:
                task = asyncio.create_task(self._drain())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            await self._run(batch)

    async def _run(self, batch: list[tuple[In, asyncio.Future[Out]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except BaseException as exc:  # every waiter must hear of the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def drain(self) -> None:
        """Wait until everything submitted so far is written."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
