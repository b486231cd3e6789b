"""The local HTTP API: uvicorn on an event-loop thread of its own inside the daemon.

Theory of operation. The daemon binds its listeners here (`bind_unix`, `bind_tcp`: the
socket file gets `api.socket_mode`, a stale socket is replaced, one in use refused), then
`ApiServer.start` runs one uvicorn `Server` per listener on a single asyncio loop in
the thread `api-loop`. Connections cost a file descriptor and a few KiB, not a thread:
the loop parses (httptools, with the limits of plasm.api.guard), the app
(plasm.api.app) reads bodies and awaits jobs, and route code runs in a pool of
`POOL_THREADS` threads. uvicorn installs no signal handlers off the main thread
(`Server.capture_signals` returns at once there), so the daemon keeps owning SIGTERM,
SIGINT and SIGUSR1; it stops the API with `stop_accepting` and `close`.

Why uvicorn with httptools: thousands of idle or waiting clients cost no threads (the
thread-per-connection server it replaced failed every request at 600 idle connections
under TasksMax=512), llhttp parses strictly, and with httptools a job answered with
`?wait` took no longer than on the old server (bench/bench_api.py; docs/architecture.md
has the numbers, h11 measured against it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from uvicorn import Server

from plasm.actors.blob_store import BlobStore
from plasm.api.app import ApiApp, Router
from plasm.api.errors import ApiSetupError
from plasm.api.guard import Guard, GuardedConfig, GuardedHttp

log = logging.getLogger("plasm.api")
# uvicorn logs each start and stop at info level: the daemon says what matters itself.
logging.getLogger("uvicorn").setLevel(logging.WARNING)

# Route code (actor asks, journal reads) runs here, off the loop. Waiting for a job takes
# no pool thread (plasm.api.app.Later); 8 keeps a burst of journal reads from queueing
# behind one another on two cores without growing the thread count with clients.
POOL_THREADS = 8
# After `stop_accepting`, how long requests in progress get to finish in `close`.
CLOSE_GRACE_S = 5.0


class ApiServer:
    """Every API listener of one daemon, served from one event-loop thread."""

    def __init__(
        self,
        router: Router,
        *,
        max_body_bytes: int,
        max_connections: int,
        idle_timeout_ms: int,
        request_timeout_ms: int,
        quick: frozenset[tuple[str, str]] = frozenset(),
        blobs: BlobStore | None = None,
        max_module_bytes: int | None = None,
    ) -> None:
        self.router = router
        self.max_module_bytes = max_module_bytes
        self.quick = quick
        self.blobs = blobs
        self.max_body_bytes = max_body_bytes
        self.guard = Guard(max_connections, idle_timeout_ms / 1000, request_timeout_ms / 1000)
        self.pool = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="api-pool")
        self._listeners: list[tuple[socket.socket, Server]] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()

    def listen(self, sock: socket.socket, token: str | None) -> None:
        """Serve `sock` (bound and listening); TCP listeners pass their bearer token."""
        app = ApiApp(
            self.router,
            token,
            self.max_body_bytes,
            self.pool,
            self.quick,
            self.blobs,
            self.max_module_bytes,
        )
        config = GuardedConfig(
            app,
            http=GuardedHttp,
            interface="asgi3",
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_keep_alive=int(max(1, self.guard.idle_timeout_s)),
            timeout_graceful_shutdown=int(CLOSE_GRACE_S),
            backlog=socket.SOMAXCONN,
        )
        config.guard = self.guard
        config.load()
        config.timeout_keep_alive = self.guard.idle_timeout_s  # type: ignore[assignment]
        self._listeners.append((sock, Server(config)))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="api-loop", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise ApiSetupError("the API's event loop did not start within 10 s")

    def _run(self) -> None:
        loop = self._loop = _new_loop()
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        serving = [
            asyncio.ensure_future(server.serve(sockets=[sock])) for sock, server in self._listeners
        ]
        while not all(server.started for _, server in self._listeners):
            if any(task.done() for task in serving):
                break  # one failed to start: its exception comes out of gather below
            await asyncio.sleep(0.005)
        self._started.set()
        await asyncio.gather(*serving)

    def stop_accepting(self) -> None:
        """Close the listeners; open connections go on being served until `close`, so a
        client mid-conversation hears 503 for new jobs while the node drains."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop just ended
                loop.call_soon_threadsafe(self._close_listeners)

    def _close_listeners(self) -> None:
        for _, server in self._listeners:
            for listener in getattr(server, "servers", ()):
                listener.close()

    def close(self) -> None:
        """End every connection: requests in progress get CLOSE_GRACE_S; then the pool."""
        for _, server in self._listeners:
            server.should_exit = True  # uvicorn's main loop looks every 0.1 s
        if self._thread is not None:
            self._thread.join(CLOSE_GRACE_S + 2)
            if self._thread.is_alive():
                log.error("the API did not stop in time; leaving it", extra={"event": "api_stuck"})
        self.pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + 2
        for thread in threading.enumerate():
            if thread.name.startswith("api-pool"):
                thread.join(max(0.0, deadline - time.monotonic()))
        for sock, _ in self._listeners:
            sock.close()


def bind_unix(path: Path, mode: int) -> socket.socket:
    """Bind the API socket at `path` with `mode`, replacing a stale socket file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_socket():
        if _socket_answers(path):
            raise ApiSetupError(
                f"{path} is in use by a running daemon; stop it or pick another --socket"
            )
        path.unlink()
    elif path.exists():
        raise ApiSetupError(
            f"{path} exists and is not a socket; remove it or pick another --socket"
        )
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o777 & ~mode)
    try:
        sock.bind(str(path))
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    os.chmod(path, mode)
    sock.listen(socket.SOMAXCONN)
    return sock


def bind_tcp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    return sock


def _socket_answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (each API connection is a file)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)
            return soft
    return hard


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop (libuv): its wake-ups from other threads and its transports cost
    a fraction of asyncio's own, which a waiting submission pays twice."""
    try:
        import uvloop
    except ImportError:  # not installed: asyncio's loop serves as well, a little slower
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
