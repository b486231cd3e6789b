"""A thread that runs one ``trio.run``, and the bridge into it from other threads.

Theory of operation: ``TrioThread.start`` starts a thread whose trio main opens a nursery,
runs the ``setup`` coroutine inside it (building and starting the libp2p host) and then
sleeps until cancelled. ``start`` waits (bounded) until setup reported success or failure,
and re-raises a failure in the caller's thread. Other threads then submit work two ways:
``call`` blocks until a coroutine finishes (``trio.from_thread.run``), ``spawn`` schedules
a coroutine as a task in the nursery and returns at once (the task answers through a
future or a tell). ``call`` made from the trio thread itself would deadlock, so it is
refused. ``stop`` runs ``teardown`` (closing connections so peers see us leave), then
cancels the nursery and joins the thread (bounded).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from plasm.actors.network._errors import BlockingCallError, NetworkStartError, NetworkStoppedError

log = logging.getLogger(__name__)

T = TypeVar("T")


class TrioThread:
    """Owns one thread running trio; ``setup(nursery)`` runs first, inside the nursery."""

    def __init__(
        self,
        name: str,
        setup: Callable[[trio.Nursery], Awaitable[None]],
        teardown: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._name = name
        self._setup = setup
        self._teardown = teardown
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        return (
            self._thread is not None
            and self._thread.is_alive()
            and self._ready.is_set()
            and self._failure is None
            and not self._stopping
        )

    def in_trio_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def start(self, timeout: float) -> None:
        """Run the thread; return once setup finished, or raise why it did not."""
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop(timeout=2.0)
            raise NetworkStartError(
                f"the network did not start within {timeout:g} s; check the listen "
                "addresses and the logs"
            )
        if self._failure is not None:
            self._thread.join(timeout)
            failure = _root_cause(self._failure)
            if isinstance(failure, NetworkStartError):
                raise failure
            raise NetworkStartError(f"the network failed to start: {failure}") from failure

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:
            if not self._ready.is_set():
                self._failure = exc
            else:
                log.error("the network thread ended with an error: %s", exc, exc_info=exc)
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._setup(nursery)
            self._ready.set()
            await trio.sleep_forever()

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(*args)`` in the trio thread and wait for its result."""
        if self.in_trio_thread():
            raise BlockingCallError(
                "this is a blocking call into the network thread, made from that thread; "
                "await the coroutine instead"
            )
        token = self._live_token()
        try:
            return trio.from_thread.run(fn, *args, trio_token=token)
        except trio.RunFinishedError as exc:
            raise NetworkStoppedError("the network stopped during the call") from exc

    def spawn(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Start ``fn(*args)`` as a task in the trio thread; return at once."""
        token = self._live_token()
        nursery = self._nursery
        assert nursery is not None
        try:
            token.run_sync_soon(nursery.start_soon, fn, *args)
        except trio.RunFinishedError as exc:
            raise NetworkStoppedError("the network has stopped") from exc

    def _live_token(self) -> trio.lowlevel.TrioToken:
        if not self.running or self._token is None:
            raise NetworkStoppedError("the network is not running; start the network actor")
        return self._token

    async def _wind_down(self, nursery: trio.Nursery, grace: float) -> None:
        # Teardown first, while every task still runs: cancelling first would interrupt
        # the tasks that close connections, and peers would never see us leave.
        try:
            if self._teardown is not None:
                with trio.move_on_after(grace):
                    await self._teardown()
        except Exception as exc:  # stopping goes on regardless
            log.warning("network teardown failed: %s", exc)
        finally:
            nursery.cancel_scope.cancel()

    def stop(self, timeout: float) -> None:
        """Cancel everything in the trio thread and wait (bounded) for it to end."""
        self._stopping = True
        token, nursery, thread = self._token, self._nursery, self._thread
        if token is not None and nursery is not None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(nursery.start_soon, self._wind_down, nursery, timeout / 2)
        if thread is not None and not self.in_trio_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.error(
                    "the network thread did not end within %g s",
                    timeout,
                    extra={"event": "network_stop_timeout"},
                )


def _root_cause(exc: BaseException) -> BaseException:
    """The first leaf of a (nested) exception group, preferring a NetworkStartError."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = [_root_cause(e) for e in exc.exceptions]
        return next((e for e in leaves if isinstance(e, NetworkStartError)), leaves[0])
    return exc
