"""`plasmd run`: the long-running node.

Start order: logging, node key, journal + signer + executors + ingress (the Node),
the API listeners, then readiness (sd_notify when systemd asked for it). Stop is the
reverse, in `finally`: listeners stop accepting, the API answers 503 to new jobs,
running jobs get `shutdown.grace_ms` to finish and are then cancelled (their receipts
say `cancelled`), actors stop in reverse order. SIGTERM and SIGINT start that stop;
SIGUSR1 writes every thread's traceback to the log.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from plasm._version import __version__
from plasm.actors.node import NetworkSettings, Node, NodeSettings
from plasm.api.routes import QUICK_ROUTES, ApiRoutes
from plasm.api.server import ApiServer, bind_tcp, bind_unix, raise_open_file_limit
from plasm.config import Config, ExecutorConfig, LimitValues
from plasm.keystore import check_private, load_or_create_key, tighten_state_dir
from plasm.runtime.cpus import CpuPlan
from plasm.runtime.job import Limits
from plasm.runtime.sandbox import CompileSettings
from plasm.state_lock import hold_state_dir

log = logging.getLogger("plasm.daemon")

SIGNAL_POLL_S = 0.2


def limits_of(values: LimitValues) -> Limits:
    return Limits.from_json(dataclasses.asdict(values))


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop_requested = threading.Event()
        self._api: ApiServer | None = None
        self.node: Node | None = None
        self.routes: ApiRoutes | None = None

    def run(self) -> int:
        cfg = self.config
        # Before the key or the journal: one daemon per state dir (plasm/state_lock.py).
        # The fd stays open for the life of the process; the kernel releases it on exit.
        self._state_lock_fd = hold_state_dir(cfg.state_dir)
        # What the daemon writes is its own (journal, cache, lock); what it finds is made so.
        os.umask(0o077)
        tighten_state_dir(cfg.state_dir)
        return_big_buffers_to_the_os()
        raise_open_file_limit()  # each API connection is a file descriptor
        identity = load_or_create_key(cfg.state_dir)
        # Pin this thread before it starts any other: the API's threads inherit the home CPU
        # as the node's actors do (runtime/cpus.py). The plan remembers every allowed CPU;
        # "auto" claims its CPU (a lock held for the process's life) so no other node takes it.
        cpus = CpuPlan.choose(cfg.executor.cpu_affinity)
        if not cpus.pin_here():
            cpus = CpuPlan.choose("off")  # refused (logged): no guest spreading either
        settings = NodeSettings(
            executor_count=cfg.executor.count,
            pool_slots=cfg.executor.pool_slots,
            queue_length=cfg.executor.queue_length,
            max_limits=limits_of(cfg.limits.max),
            journal_path=cfg.state_dir / "journal.sqlite3",
            journal_synchronous=cfg.journal.synchronous,
            module_cache_dir=cfg.state_dir / "cache" / "modules",
            blob_dir=cfg.state_dir / "blobs",
            blob_max_bytes=cfg.blobs.max_bytes,
            blob_max_blob_bytes=cfg.blobs.max_blob_bytes,
            max_module_bytes=cfg.blobs.max_module_bytes,
            compiling=compile_settings(cfg.executor),
            strict_messages=os.environ.get("PLASM_STRICT_MESSAGES") == "1",
            network=network_settings(cfg) if cfg.network.enabled else None,
            cpus=cpus,
        )
        node = self.node = Node(identity.signing_key, settings)
        with self._signals():
            try:
                node.start()
                if node.interrupted_jobs:
                    log.warning(
                        "marked %d job(s) interrupted: the daemon stopped before they finished",
                        len(node.interrupted_jobs),
                        extra={"event": "jobs_interrupted", "job_ids": node.interrupted_jobs},
                    )
                self.routes = ApiRoutes(
                    node,
                    limits_of(cfg.limits.default),
                    limits_of(cfg.limits.max),
                    self.capabilities,
                )
                self._listen()
                log.info(
                    "plasmd %s ready: peer %s, API on %s",
                    __version__,
                    node.peer_id,
                    cfg.api.socket,
                    extra={
                        "event": "ready",
                        "peer_id": node.peer_id,
                        "socket": str(cfg.api.socket),
                        "executors": node.stats().executors,
                    },
                )
                if node.has_network:
                    info = node.network_info()
                    log.info(
                        "peer-to-peer on %s",
                        ", ".join(info.listen_addresses),
                        extra={"event": "network_ready", "addresses": list(info.listen_addresses)},
                    )
                sd_notify("READY=1")
                # Wake up now and then: a signal the kernel delivers to another thread
                # (an executor busy in wasm) only runs its Python handler when the main
                # thread executes bytecode, which an untimed wait would never do.
                while not self.stop_requested.wait(SIGNAL_POLL_S):
                    pass
                sd_notify("STOPPING=1")
                log.info("stopping", extra={"event": "stopping"})
            finally:
                self._shutdown()
        log.info("stopped", extra={"event": "stopped"})
        return 0

    def _listen(self) -> None:
        cfg = self.config
        assert self.routes is not None
        # Bind every listener before serving any: a client that reaches one may rely on
        # the others (and a failed bind leaves nothing half-started).
        api = ApiServer(
            self.routes,
            max_body_bytes=cfg.api.max_body_bytes,
            max_connections=cfg.api.max_connections,
            idle_timeout_ms=cfg.api.idle_timeout_ms,
            request_timeout_ms=cfg.api.request_timeout_ms,
            quick=QUICK_ROUTES,
            blobs=self.node.blobs if self.node is not None else None,
            max_module_bytes=cfg.blobs.max_module_bytes,
        )
        self._api = api
        api.listen(bind_unix(cfg.api.socket, cfg.api.socket_mode), token=None)
        if cfg.api.tcp_listen:
            assert cfg.api.token_file is not None
            token = read_token(cfg.api.token_file)
            host, _, port = cfg.api.tcp_listen.rpartition(":")
            api.listen(bind_tcp(host.strip("[]"), int(port)), token=token)
            log.info("API also on http://%s (bearer token)", cfg.api.tcp_listen,
                     extra={"event": "listening", "tcp": cfg.api.tcp_listen})
        api.start()

    def _shutdown(self) -> None:
        if self.routes is not None:
            self.routes.stopping = True
        if self._api is not None:
            self._api.stop_accepting()  # requests in progress finish
        try:
            if self.node is not None:
                self.node.stop(grace_s=self.config.shutdown.grace_ms / 1000)
        finally:
            if self._api is not None:
                self._api.close()
                with suppress(FileNotFoundError):
                    self.config.api.socket.unlink()

    def capabilities(self) -> dict[str, Any]:
        from plasm.actors.discovery import LocalCapabilities

        node = self.node
        assert node is not None and node.sandbox is not None
        stats = node.stats()
        # The same facts discovery advertises to peers in the signed record.
        local = LocalCapabilities.detect(
            node.sandbox.engine_name,
            node.sandbox.engine_version,
            node.settings.max_limits,
            stats.executors,
        )
        return {
            "arch": local.arch,
            "os": local.os,
            "cpus": local.cpus,
            "memory_bytes": local.memory_bytes,
            "runtimes": list(local.runtimes),
            "engine": {"name": local.engine_name, "version": local.engine_version},
            "executors": stats.executors,
            "free_slots": max(0, stats.executors - stats.busy_executors),
            "queue_length": self.config.executor.queue_length,
        }

    @contextmanager
    def _signals(self) -> Iterator[None]:
        def request_stop(signum: int, _frame: Any) -> None:
            log.info("got %s", signal.Signals(signum).name, extra={"event": "signal"})
            self.stop_requested.set()

        def dump_threads(_signum: int, _frame: Any) -> None:
            frames = sys._current_frames()
            for thread in threading.enumerate():
                frame = frames.get(thread.ident or -1)
                if frame is None:
                    continue
                import traceback

                stack = "".join(traceback.format_stack(frame))
                log.warning(
                    "thread %s:\n%s",
                    thread.name,
                    stack,
                    extra={"event": "thread_dump", "thread_name": thread.name},
                )

        previous = {
            signal.SIGTERM: signal.signal(signal.SIGTERM, request_stop),
            signal.SIGINT: signal.signal(signal.SIGINT, request_stop),
            signal.SIGUSR1: signal.signal(signal.SIGUSR1, dump_threads),
        }
        faulthandler.enable()
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def return_big_buffers_to_the_os() -> None:
    """Have glibc give freed big buffers (modules, job input) back to the kernel at once.

    glibc serves big allocations with mmap, but after the first one is freed it raises that
    threshold to the freed size, so later buffers of that size come from the heap and stay
    in the process after they are freed: a burst of jobs with a 20 MiB module left RSS
    hundreds of MiB high. A fixed threshold (M_MMAP_THRESHOLD) turns that adjustment off.
    Anything but glibc: nothing to do.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(ctypes.c_int(-3), ctypes.c_int(256 * 1024))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        log.debug("mallopt is not available; big buffers may stay in the heap")


def exit_leaving_stuck_threads(code: int) -> int:
    """Return `code`, or end the process now if a thread that Node.stop gave up on lives.

    Actor threads are not daemon threads: one stuck past its stop deadline (a handler
    that never returns) would keep the interpreter from exiting, and systemd would have
    to SIGKILL it. Everything durable is committed by now, so exit without waiting.
    """
    stuck = [
        t.name
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if not stuck:
        return code
    log.error(
        "exiting with %d thread(s) still busy: %s",
        len(stuck),
        ", ".join(stuck),
        extra={"event": "stuck_threads", "threads": stuck},
    )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def compile_settings(executor: ExecutorConfig) -> CompileSettings:
    return CompileSettings(
        workers=executor.compile_workers,
        max_compile_ms=executor.max_compile_ms,
        max_compile_memory_bytes=executor.max_compile_memory_bytes,
        memory_cache_bytes=executor.module_cache_memory_bytes,
        disk_cache_bytes=executor.module_cache_disk_bytes,
    )


def network_settings(cfg: Config) -> NetworkSettings:
    net = cfg.network
    return NetworkSettings(
        listen=tuple(net.listen),
        bootstrap=tuple(net.bootstrap),
        mdns=net.mdns,
        allow=tuple(net.allow),
        deny=tuple(net.deny),
        max_jobs_per_peer=net.max_jobs_per_peer,
        rate_limit_per_minute=net.rate_limit_per_minute,
        offer_hold_ms=net.offer_hold_ms,
        max_connections=net.max_connections,
        forget_peers_after_ms=net.forget_peers_after_ms,
        dispute_threshold=net.dispute_threshold,
        dispute_cooldown_ms=net.dispute_cooldown_ms,
    )


def read_token(path: Path) -> str:
    from plasm.config import ConfigError

    check_private(path, "API token file (api.token_file)")
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"api.token_file: cannot read {path}: {exc.strerror}") from exc
    if len(token) < 16:
        raise ConfigError(f"api.token_file: the token in {path} is shorter than 16 characters")
    return token


def sd_notify(state: str) -> None:
    """Tell systemd (Type=notify) about our state; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(state.encode())
        except OSError as exc:
            log.warning("sd_notify failed: %s", exc)
