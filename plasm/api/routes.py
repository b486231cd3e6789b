"""What each API path does. Documented in docs/api.md; shapes in schemas/.

Every route talks to the node through its façade (messages to actors); nothing here
touches actor state. Errors become `ApiError`s with a status and a stable code.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import orjson

from plasm._version import __version__
from plasm.actors.blob_store import BlobStore
from plasm.actors.errors import (
    ActorLayerError,
    BlobNotFoundError,
    ShuttingDownError,
    UnknownJobError,
    error_code,
)
from plasm.actors.messages import GetLogEntries, GetLogHead, GetLogPath, JobInfo
from plasm.actors.node import Node, Submission
from plasm.api.app import MODULE_TYPES, Later, Request, Response
from plasm.api.errors import ApiError
from plasm.api.metrics import render_metrics
from plasm.protocol.errors import ManifestError, ProtocolError
from plasm.protocol.formats import JOB_STATUSES
from plasm.protocol.manifest import parse_manifest
from plasm.protocol.p2p_messages import Placement
from plasm.protocol.verification import expectations_from_saved, verified_receipt, verify_saved
from plasm.runtime.job import Limits

JSON_TYPE = "application/json"
JOB_PATH = re.compile(r"^/v1/jobs/([0-9a-f]{32})$")
JOB_ID_PREFIX = re.compile(r"^/v1/jobs/[0-9a-f]{32}/")
PEER_PATH = re.compile(r"^/v1/peers/([^/]+)$")
# /v1/jobs/{id}/outputs/{path under /output}, e.g. .../outputs/report.txt -> /output/report.txt
OUTPUT_PATH = re.compile(r"^/v1/jobs/([0-9a-f]{32})/outputs/(.+)$")
BLOB_PATH = re.compile(r"^/v1/blobs/([0-9a-f]{64})$")
OCTET_STREAM = "application/octet-stream"
ON_LOOP_BODY_BYTES = 64 * 1024
MAX_WAIT_S = 300.0
MAX_LIST = 1000
WASM_MAGIC = b"\x00asm"
# Routes that never ask an actor nor block: the server runs them on its event loop
# rather than its thread pool (a hop there and back doubled GET /v1/health's latency).
QUICK_ROUTES = frozenset({("GET", "/v1/health")})


class ApiRoutes:
    def __init__(
        self,
        node: Node,
        default_limits: Limits,
        max_limits: Limits,
        capabilities: Callable[[], dict[str, Any]],
    ) -> None:
        self.node = node
        self.default_limits = default_limits
        self.max_limits = max_limits
        self.capabilities = capabilities
        self.stopping = False
        self.started_ns = time.monotonic_ns()

    def __call__(self, request: Request) -> Response | Later:
        return self._mapped(self._route, request)

    @staticmethod
    def runs_on_loop(request: Request) -> bool:
        """Whether this request may run on the event loop instead of the pool: a small
        waiting submission asks no actor (the ingress is told, and the loop then awaits the
        job), reads no blob and parses in well under a millisecond, so the two thread
        hand-offs of the pool would cost more than it does."""
        if request.method != "POST" or request.path != "/v1/jobs":
            return False
        try:
            waits = _wait_seconds(request.query_value("wait")) > 0  # else it asks the ingress
        except ApiError:
            return False
        return (
            waits
            and len(request.body) <= ON_LOOP_BODY_BYTES
            and b'"sha256"' not in request.body  # input files by blob: read from disk
            and b"stdin_sha256" not in request.body
        )

    def _route(self, request: Request) -> Response | Later:
        method, path = request.method, request.path
        if path == "/v1/jobs":
            if method == "POST":
                return self.submit(request)
            if method == "GET":
                return self.list_jobs(request)
        elif match := JOB_PATH.match(path):
            if method == "GET":
                return self.get_job(match.group(1))
            if method == "DELETE":
                return self.cancel(match.group(1))
        elif match := OUTPUT_PATH.match(path):
            if method == "GET":
                return self.get_output(match.group(1), "/output/" + unquote(match.group(2)))
        elif path.startswith("/v1/jobs/"):
            if JOB_ID_PREFIX.match(path):
                raise ApiError(
                    404, "not_found",
                    f"no such endpoint: {method} {path} (a job has GET and DELETE "
                    "/v1/jobs/{id} and GET /v1/jobs/{id}/outputs/{path})",
                )
            raise ApiError(404, "not_found", "job ids are 32 lowercase hex characters")
        elif match := BLOB_PATH.match(path):
            if method == "GET":
                return Response(200, self._blobs().read(match.group(1)), OCTET_STREAM)
        elif path == "/v1/modules":
            if method == "POST":
                return self.put_module(request)
        elif path == "/v1/peers":
            if method == "GET":
                return Response(200, self.peers())
        elif match := PEER_PATH.match(path):
            if method == "GET":
                return Response(200, self.peer(match.group(1)))
        elif path == "/v1/node":
            if method == "GET":
                return Response(200, self.node_info())
        elif path == "/v1/health":
            if method == "GET":
                return Response(
                    200 if not self.stopping else 503,
                    {"status": "stopping" if self.stopping else "ok"},
                )
        elif path.startswith("/v1/log/"):
            if method == "GET":
                return Response(200, self.log(path[len("/v1/log/") :], request))
        elif path == "/v1/receipts/verify":
            if method == "POST":
                return self.verify(request)
        elif path == "/v1/receipts/replay":
            if method == "POST":
                return self.replay(request)
        elif path == "/metrics":
            if method == "GET":
                return Response(
                    200,
                    render_metrics(self.node).encode(),
                    "text/plain; version=0.0.4; charset=utf-8",
                )
        else:
            raise ApiError(404, "not_found", f"no such endpoint: {method} {path}")
        raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}")

    @staticmethod
    def _mapped(route: Callable[[Any], Any], argument: Any) -> Any:
        """`route(argument)`, with the actor layer's refusals as their API errors."""
        try:
            return route(argument)
        except ActorLayerError as exc:
            code = error_code(exc)  # the one table: plasm.actors.errors.ERROR_CODES
            if code is None:
                raise
            raise ApiError(code.status, code.code, str(exc)) from exc

    # -- jobs --------------------------------------------------------------------------

    def submit(self, request: Request) -> Response | Later:
        if self.stopping:
            raise ShuttingDownError("the node is shutting down and takes no new jobs")
        wait_s = _wait_seconds(request.query_value("wait"))
        body = request.json()
        try:
            manifest = parse_manifest(body, default_limits=self.default_limits)
        except ManifestError as exc:
            raise ApiError(400, "bad_manifest", str(exc)) from exc
        try:
            placement = Placement.from_json(manifest.placement)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, "bad_manifest", f"invalid placement: {exc}") from exc
        if placement.mode == "peer" and placement.peer_id == self.node.peer_id:
            placement = Placement()  # "run it on me" is just local
        try:
            job_input = manifest.resolved(self._read_input_blob)
        except ManifestError as exc:
            raise ApiError(400, "bad_manifest", str(exc)) from exc
        submission = self.node.submit(
            module=manifest.module,
            module_sha256=manifest.module_sha256,
            job_input=job_input,
            limits=manifest.limits,
            manifest=_journal_manifest(body, manifest.module_sha256),
            placement=placement,
            confirm=wait_s <= 0,  # a waiting client learns of a refusal from wait()
            reuse=manifest.reuse,
        )
        if wait_s <= 0:
            return Response(202, {"job_id": submission.job_id, "status": "queued"})
        # The wait itself holds no thread: the event loop awaits `done` (plasm.api.app).
        return Later(submission.done, wait_s, lambda answered: self._mapped(
            lambda _: self._waited(submission, answered, request.wants_cbor), None))

    @staticmethod
    def _waited(submission: Submission, answered: bool, wants_cbor: bool) -> Response:
        finished = submission.wait(0) if answered else None
        if finished is None:
            submission.confirm()  # never answer 202 for a job the node refused
            return Response(202, {"job_id": submission.job_id, "status": "queued"})
        if finished.result is not None:
            return Response(200, orjson.loads(finished.result)
                            if wants_cbor else finished.result, JSON_TYPE)
        answer: dict[str, Any] = {"job_id": finished.job_id, "status": finished.status}
        if finished.error is not None:
            answer["error"] = orjson.loads(finished.error)
        return Response(200, answer)

    def get_job(self, job_id: str) -> Response:
        return Response(200, job_info_json(self.node.job(job_id)))

    def list_jobs(self, request: Request) -> Response:
        status = request.query_value("status")
        if status is not None and status not in JOB_STATUSES:
            raise ApiError(400, "bad_query", f"status must be one of {', '.join(JOB_STATUSES)}")
        limit_text = request.query_value("limit") or "50"
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIST:
            raise ApiError(400, "bad_query", f"limit must be a whole number from 1 to {MAX_LIST}")
        listed = self.node.jobs(status, int(limit_text))
        return Response(200, {"jobs": [job_info_json(info) for info in listed.jobs]})

    def cancel(self, job_id: str) -> Response:
        try:
            status = self.node.cancel(job_id)
        except UnknownJobError:
            info = self.node.job(job_id)  # raises UnknownJobError -> 404
            raise ApiError(
                409, "not_cancellable", f"job {job_id} is already {info.status}; nothing to cancel"
            ) from None
        return Response(200, {"job_id": status.job_id, "status": status.status})

    # -- modules, node, receipts -------------------------------------------------------

    def replay(self, request: Request) -> Response:
        """Run a saved job again on this node and compare its receipt (plasmd replay)."""
        from plasm.replay import ReplayError, replay

        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("result"), dict):
            raise ApiError(400, "bad_body", 'send {"result": <a saved job result>, '
                           '"manifest": <the job\'s module and input, as POST /v1/jobs takes>}')
        try:
            envelope, expected = expectations_from_saved(orjson.dumps(body["result"]))
            signed = verified_receipt(envelope, expected)
        except ProtocolError as exc:
            raise ApiError(400, "bad_body", f"the result's receipt does not verify: {exc}") from exc
        try:
            manifest = parse_manifest(body.get("manifest"), default_limits=self.default_limits)
            job_input = manifest.resolved(self._read_input_blob)
        except ManifestError as exc:
            raise ApiError(400, "bad_manifest", str(exc)) from exc
        module = manifest.module or self.node.module(manifest.module_sha256)
        sandbox = self.node.sandbox
        if sandbox is None:
            raise ApiError(503, "shutting_down", "the node's sandbox is not running")
        try:
            differences = replay(signed, module, job_input, sandbox)
        except ReplayError as exc:
            raise ApiError(400, "not_this_job", str(exc)) from exc
        return Response(200, {"reproduced": not differences, "differences": differences})

    def _blobs(self) -> BlobStore:
        if self.node.blobs is None:
            raise ApiError(404, "no_blob_store", "this node keeps no blobs")
        return self.node.blobs

    def _read_input_blob(self, sha256: str) -> bytes:
        try:
            return self._blobs().read(sha256)
        except BlobNotFoundError:
            raise ApiError(
                404, "unknown_blob", f"no blob {sha256} here; upload it first (POST /v1/blobs)"
            ) from None

    def get_output(self, job_id: str, path: str) -> Response:
        return Response(200, self.node.output(job_id, path), OCTET_STREAM)

    def put_module(self, request: Request) -> Response:
        """Store a module: staged on disk by the app (the daemon, with its blob store), or
        the body itself (a node without one, within api.max_body_bytes)."""
        if request.content_type not in MODULE_TYPES:
            raise ApiError(415, "unsupported_media_type", "send the module as application/wasm")
        staged = request.staged
        if staged is not None:
            with open(staged.path, "rb") as module:
                head = module.read(len(WASM_MAGIC))
        else:
            head = request.body[: len(WASM_MAGIC)]
        if head != WASM_MAGIC:
            raise ApiError(
                400, "invalid_module", "the body is not a WebAssembly module (no \\0asm header)"
            )
        if staged is not None:
            sha256 = self.node.put_module_file(staged.path, staged.sha256)
            return Response(200, {"sha256": sha256, "size": staged.size})
        sha256 = self.node.put_module(request.body)
        return Response(200, {"sha256": sha256, "size": len(request.body)})

    def peers(self) -> dict[str, Any]:
        if not self.node.has_network:
            raise ApiError(404, "network_disabled",
                           "this node runs without the peer-to-peer network (network.enabled)")
        listed = self.node.peers()
        return {"peers": [_peer_json(peer) for peer in listed.peers]}

    def peer(self, peer_id: str) -> dict[str, Any]:
        for peer in self.peers()["peers"]:
            if peer["peer_id"] == peer_id:
                return peer
        raise ApiError(404, "unknown_peer",
                       f"this node knows no peer {peer_id}; GET /v1/peers lists the ones it knows")

    # -- the receipt transparency log ------------------------------------------------

    def log(self, what: str, request: Request) -> dict[str, Any]:
        """head, inclusion?index=I&size=N, consistency?from=M&to=N, entries?start=S&end=E."""
        try:
            if what == "head":
                head = self.node.log_read(GetLogHead())
                cose = None if head.cose is None else base64.b64encode(head.cose).decode()
                return {"size": head.size, "root": head.root.hex(), "cose": cose}
            if what == "inclusion":
                index, size = _count(request, "index"), _count(request, "size")
                found = self.node.log_read(GetLogPath("inclusion", index, size))
                return {"index": index, "size": size, "path": [p.hex() for p in found.path]}
            if what == "consistency":
                first, second = _count(request, "from"), _count(request, "to")
                found = self.node.log_read(GetLogPath("consistency", first, second))
                return {"from": first, "to": second, "path": [p.hex() for p in found.path]}
            if what == "entries":
                start, end = _count(request, "start"), _count(request, "end")
                entries = self.node.log_read(GetLogEntries(start, end)).entries
                return {
                    "start": start,
                    "end": end,
                    "entries": [base64.b64encode(e).decode() for e in entries],
                }
        except ValueError as exc:  # a size past the signed head, an index outside the tree
            raise ApiError(400, "bad_query", str(exc)) from exc
        raise ApiError(404, "not_found", f"no such endpoint: GET /v1/log/{what}")

    def node_info(self) -> dict[str, Any]:
        network: dict[str, Any] = {"enabled": self.node.has_network}
        if self.node.has_network:
            info = self.node.network_info()
            network.update(
                addresses=list(info.listen_addresses),
                observed_addresses=list(info.observed_addresses),
                reachability=info.reachability,
                connected_peers=len(info.connected),
            )
        return {
            "peer_id": self.node.peer_id,
            "public_key": self.node.public_key.hex(),
            "version": __version__,
            "capabilities": self.capabilities(),
            "limits": {
                "default": self.default_limits.to_json(),
                "max": self.max_limits.to_json(),
            },
            "addresses": network.get("addresses", []),
            "reachability": network.get("reachability", "none"),
            "network": network,
            "status": self._status(),
        }

    def _status(self) -> dict[str, Any]:
        """What `plasmd status` shows besides the identity: load, journal, uptime."""
        stats = self.node.stats()
        status: dict[str, Any] = {
            "uptime_s": (time.monotonic_ns() - self.started_ns) // 10**9,
            "executors": {"total": stats.executors, "busy": stats.busy_executors},
            "queued": stats.queue_depth,
            "running": stats.running,
        }
        path = self.node.settings.journal_path
        if path is not None:
            status["journal"] = {
                "path": str(path),
                "bytes": sum(p.stat().st_size for p in path.parent.glob(path.name + "*")
                             if p.is_file()),
                "jobs": sum(self.node.job_counts().values()),
            }
        return status

    def verify(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise ApiError(
                400,
                "bad_body",
                'send a JSON object: a job result, a job, or a receipt {"cose": base64}',
            )
        try:
            envelope, expected = expectations_from_saved(orjson.dumps(body))
        except Exception as exc:  # ProtocolError, bad base64
            raise ApiError(400, "bad_body", str(exc)) from exc
        return Response(200, verify_saved(envelope, expected))


def job_info_json(info: JobInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "job_id": info.job_id,
        "status": info.status,
        "module_sha256": info.module_sha256,
        "created_at_ms": info.created_at_ms,
        "started_at_ms": info.started_at_ms,
        "finished_at_ms": info.finished_at_ms,
        "outcome": info.outcome,
    }
    if info.executor is not None and info.status == "running":
        out["executor"] = info.executor  # the peer running it (the result names it later)
    if info.result is not None:
        out["result"] = orjson.loads(info.result)
    if info.error is not None:
        out["error"] = orjson.loads(info.error)
    return out


def _peer_json(peer: Any) -> dict[str, Any]:
    """A discovery PeerInfo as API JSON (dataclass fields, bytes never included)."""
    from plasm.protocol.fields import to_data

    data = to_data(peer)
    return {key: value for key, value in data.items() if not isinstance(value, bytes)}


def _count(request: Request, name: str) -> int:
    text = request.query_value(name)
    if text is None or not text.isdigit() or len(text) > 19:
        raise ApiError(400, "bad_query", f"{name} must be given, a whole number from 0")
    return int(text)


def _wait_seconds(text: str | None) -> float:
    if text is None:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, "bad_query", "wait must be a number of seconds") from None
    if not 0 <= value <= MAX_WAIT_S:
        raise ApiError(400, "bad_query", f"wait must be between 0 and {MAX_WAIT_S:g} seconds")
    return value


def _journal_manifest(body: Any, module_sha256: str) -> bytes:
    """The manifest as journaled: module bytes replaced by their sha256 (stored once)."""
    if not isinstance(body, dict):
        return b"{}"
    kept = {k: v for k, v in body.items() if k != "module"}
    kept["module_sha256"] = module_sha256
    return orjson.dumps(kept)

