"""A Python client for a running plasmd's local HTTP API.

Used by `plasmd submit/jobs/job/cancel`, by `plasm-console` and by the tests. It
speaks HTTP/1.1 over the Unix socket (or TCP on loopback with a bearer token),
keeps one connection alive and reconnects once if the daemon closed it.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from plasm.errors import PlasmError

DEFAULT_TIMEOUT_S = 30.0

INLINE_FILE_BYTES = 1 << 20  # input files above this go as blobs (POST /v1/blobs)
# Modules above this go first to POST /v1/modules and the manifest names them by sha256:
# inline, base64 makes them a third bigger, and a request body may hold only
# api.max_body_bytes (32 MiB by default), while a node takes modules up to 256 MiB.
INLINE_MODULE_BYTES = 8 << 20


class ClientError(PlasmError):
    """Base of the client's errors."""


class DaemonUnavailableError(ClientError):
    """No daemon answers at the socket or address: it is not running, or the path is wrong."""


class ApiRequestError(ClientError):
    """The daemon answered with an error: `status`, `code` and its message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})")
        self.status = status
        self.code = code
        self.message = message


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Client:
    def __init__(
        self,
        socket_path: str | Path | None = None,
        *,
        tcp: str | None = None,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if (socket_path is None) == (tcp is None):
            raise ValueError("give exactly one of socket_path or tcp ('127.0.0.1:PORT')")
        self.socket_path = str(socket_path) if socket_path is not None else None
        self.tcp = tcp
        self.token = token
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    @property
    def where(self) -> str:
        return self.socket_path or f"http://{self.tcp}"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API -------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/v1/health")

    def node(self) -> dict[str, Any]:
        return self.request("GET", "/v1/node")

    def peers(self) -> list[dict[str, Any]]:
        """The peers this node knows (`ApiRequestError` code `network_disabled` without
        the peer-to-peer network)."""
        return list(self.request("GET", "/v1/peers")["peers"])

    def peer(self, peer_id: str) -> dict[str, Any]:
        """One peer of this node's table (`ApiRequestError` code `unknown_peer` if none)."""
        return dict(self.request("GET", f"/v1/peers/{quote(peer_id, safe='')}"))

    def upload_module(self, wasm: bytes) -> str:
        answer = self.request("POST", "/v1/modules", body=wasm, content_type="application/wasm",
                              timeout=self.timeout + len(wasm) / 2**20)
        return str(answer["sha256"])

    def upload_blob(self, data: bytes) -> str:
        """Store ``data`` as a blob on the daemon (POST /v1/blobs); its sha256."""
        digest = hashlib.sha256(data).hexdigest()
        answer = self.request(
            "POST",
            "/v1/blobs",
            body=data,
            content_type="application/octet-stream",
            query={"sha256": digest},
            timeout=self.timeout + len(data) / 2**20,
        )
        return str(answer["sha256"])

    def blob(self, sha256: str) -> bytes:
        return self._bytes(f"/v1/blobs/{sha256}")

    def output(self, job_id: str, path: str) -> bytes:
        """The bytes of output file ``path`` (``/output/...``) of a finished job."""
        if not path.startswith("/output/"):
            raise ValueError(f"an output path starts with /output/, got {path!r}")
        return self._bytes(f"/v1/jobs/{job_id}/outputs/{quote(path[len('/output/'):])}")

    def _bytes(self, path: str) -> bytes:
        status, payload = self.request_raw("GET", path)
        if status >= 400:
            try:
                error = orjson.loads(payload).get("error", {})
            except (orjson.JSONDecodeError, AttributeError):
                error = {}
            raise ApiRequestError(status, str(error.get("code", "error")),
                                  str(error.get("message", f"HTTP {status}")))
        return payload

    def submit(
        self,
        *,
        module: bytes | None = None,
        module_sha256: str | None = None,
        module_name: str | None = None,
        stdin: bytes = b"",
        args: list[str] | tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        limits: dict[str, int] | None = None,
        placement: dict[str, Any] | None = None,
        wait: float | None = None,
        extra: dict[str, Any] | None = None,
        files: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...] = (),
        reuse: str | None = None,
    ) -> dict[str, Any]:
        """Submit a job; with `wait`, the result if it finished within that many seconds."""
        manifest: dict[str, Any] = {}
        if module is not None and module_sha256 is None and len(module) > INLINE_MODULE_BYTES:
            module_sha256, module = self.upload_module(module), None
        if module is not None:
            manifest["module"] = base64.b64encode(module).decode("ascii")
        if module_sha256 is not None:
            manifest["module_sha256"] = module_sha256
        if module_name is not None:
            manifest["module_name"] = module_name
        if stdin:
            manifest["stdin"] = base64.b64encode(stdin).decode("ascii")
        if args:
            manifest["args"] = list(args)
        if env:
            manifest["env"] = dict(env)
        if limits:
            manifest["limits"] = dict(limits)
        if placement:
            manifest["placement"] = placement
        if files:
            # Small files ride in the manifest; big ones go first as blobs, named by hash.
            manifest["files"] = [
                {"path": path, "content": base64.b64encode(data).decode("ascii")}
                if len(data) <= INLINE_FILE_BYTES
                else {"path": path, "sha256": self.upload_blob(data)}
                for path, data in files
            ]
        if reuse is not None:  # "off", "local" or "network" (docs/api.md, "Verified reuse")
            manifest["reuse"] = reuse
        manifest.update(extra or {})  # other manifest fields: determinism, seed, epoch_ms
        query = {"wait": f"{wait:g}"} if wait else None
        timeout = self.timeout + (wait or 0)
        return self.request("POST", "/v1/jobs", json=manifest, query=query, timeout=timeout)

    def job(self, job_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/jobs/{job_id}")

    def jobs(self, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        query: dict[str, str] = {"limit": str(limit)}
        if status:
            query["status"] = status
        return list(self.request("GET", "/v1/jobs", query=query)["jobs"])

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.request("DELETE", f"/v1/jobs/{job_id}")

    def verify(self, saved: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/v1/receipts/verify", json=saved)

    def log(self, what: str, **query: int) -> dict[str, Any]:
        """GET /v1/log/{head,inclusion,consistency,entries} (query: index, size, from, to,
        start, end — ``from`` is a keyword, pass ``**{"from": m}``)."""
        return dict(
            self.request("GET", f"/v1/log/{what}", query={k: str(v) for k, v in query.items()})
        )

    def metrics(self) -> str:
        return self.request_raw("GET", "/metrics")[1].decode()

    # -- transport -----------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
        query: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        if json is not None:
            body, content_type = orjson.dumps(json), "application/json"
        status, payload = self.request_raw(
            method, path, body=body, content_type=content_type, query=query, timeout=timeout
        )
        try:
            answer = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError as exc:
            raise ClientError(
                f"the daemon answered HTTP {status} with a body that is not JSON"
            ) from exc
        if status >= 400:
            error = answer.get("error", {}) if isinstance(answer, dict) else {}
            raise ApiRequestError(status, str(error.get("code", "error")),
                                  str(error.get("message", f"HTTP {status}")))
        return answer

    def request_raw(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        query: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        url = path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in (1, 2):
            conn = self._connection()
            conn.timeout = timeout or self.timeout
            if conn.sock is not None:
                conn.sock.settimeout(conn.timeout)
            try:
                try:
                    conn.request(method, url, body=body, headers=headers)
                except (BrokenPipeError, ConnectionResetError):
                    # The daemon may have answered (413, 415, 401, ...) and closed before
                    # the body was all sent: its answer says why, a closed pipe does not.
                    early = _early_answer(conn) if body else None
                    if early is None:
                        raise
                    self.close()
                    return early
                response = conn.getresponse()
                return response.status, response.read()
            except (ConnectionRefusedError, FileNotFoundError) as exc:
                self.close()
                raise DaemonUnavailableError(
                    f"no plasmd answers at {self.where}: is the daemon running? "
                    "(start it with `plasmd run`, or pass --socket)"
                ) from exc
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                # The daemon closed an idle keep-alive connection: retry once on a new one.
                self.close()
                if attempt == 2:
                    raise DaemonUnavailableError(
                        f"the daemon at {self.where} closed the connection"
                    ) from exc
            except TimeoutError as exc:
                self.close()
                raise ClientError(
                    f"the daemon at {self.where} did not answer within {conn.timeout:g}s"
                ) from exc
            except OSError as exc:
                self.close()
                raise DaemonUnavailableError(f"cannot reach plasmd at {self.where}: {exc}") from exc
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.socket_path is not None:
                self._conn = _UnixConnection(self.socket_path, self.timeout)
            else:
                assert self.tcp is not None
                host, _, port = self.tcp.rpartition(":")
                self._conn = http.client.HTTPConnection(
                    host.strip("[]"), int(port), timeout=self.timeout
                )
        return self._conn


def _early_answer(conn: http.client.HTTPConnection) -> tuple[int, bytes] | None:
    """The answer the daemon sent before it closed a connection we were still sending a
    body on, if one arrived whole; None otherwise."""
    try:
        response = conn.getresponse()
        return response.status, response.read()
    except (http.client.HTTPException, OSError):
        return None
