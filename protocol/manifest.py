"""Job manifests: the JSON a client posts to run a job, checked and turned into typed values.

Two passes. The schema (``schemas/manifest.schema.json``, the one source of truth for the
shape) catches wrong types, unknown keys and bad formats; then semantic checks do what a
schema cannot: strict base64 decoding, limits merged over the node's defaults, and the same
checks ``JobInput`` and ``Limits`` apply to themselves. Every refusal is a ``ManifestError``
naming the JSON path of the offending field.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from plasm.protocol.errors import ManifestError
from plasm.protocol.schemas import validator
from plasm.runtime.job import DEFAULT_EPOCH_MS, JobInput, Limits

DEFAULT_PLACEMENT: dict[str, Any] = {"mode": "local"}


@dataclass(frozen=True, slots=True)
class Manifest:
    """A validated manifest. ``module`` is ``None`` when the client named a module by hash
    only; ``module_sha256`` is always set (computed from ``module`` when bytes were sent)."""

    module: bytes | None
    module_sha256: str
    module_name: str
    job_input: JobInput
    limits: Limits
    placement: dict[str, Any]
    # Input bytes named by blob hash: (guest path, sha256) and stdin's; ``job_input`` holds
    # only the inline ones until ``resolved`` fills these in from the node's blob store.
    file_refs: tuple[tuple[str, str], ...] = ()
    stdin_sha256: str | None = None
    reuse: str = "off"  # "off", "local" or "network": protocol/reuse.py

    def resolved(self, read_blob: Callable[[str], bytes]) -> JobInput:
        """The whole input: ``job_input`` with the blobs it names read by ``read_blob``."""
        if not self.file_refs and self.stdin_sha256 is None:
            return self.job_input
        files = (*self.job_input.files, *((p, read_blob(h)) for p, h in self.file_refs))
        stdin = read_blob(self.stdin_sha256) if self.stdin_sha256 else self.job_input.stdin
        try:
            return replace(self.job_input, files=files, stdin=stdin)
        except ValueError as exc:
            raise ManifestError("$.files", str(exc)) from exc


def parse_manifest(obj: Any, *, default_limits: Limits | None = None) -> Manifest:
    """Validate ``obj`` (parsed JSON) and build a ``Manifest``; ``ManifestError`` otherwise.

    Limits the manifest leaves out take their value from ``default_limits`` (the node's
    configuration; ``Limits()`` when not given). Whether the node *allows* those limits is
    the caller's policy, not the manifest's shape.
    """
    _check_schema(obj)
    module = _base64(obj, "module") if "module" in obj else None
    module_sha256 = (
        hashlib.sha256(module).hexdigest() if module is not None else obj["module_sha256"]
    )
    module_name = obj.get("module_name", JobInput().module_name)
    if "stdin" in obj and "stdin_sha256" in obj:
        raise ManifestError("$.stdin_sha256", "give stdin (base64) or stdin_sha256, not both")
    inline: list[tuple[str, bytes]] = []
    refs: list[tuple[str, str]] = []
    for index, item in enumerate(obj.get("files", ())):
        if "content" in item:
            inline.append((item["path"], _base64(item, "content", f"$.files[{index}].content")))
        else:
            refs.append((item["path"], item["sha256"]))
    paths = [path for path, _ in inline] + [path for path, _ in refs]
    if len(set(paths)) != len(paths):
        raise ManifestError("$.files", "a path is named twice")
    try:
        deterministic = obj.get("determinism", "on") == "on"
        if not deterministic and ("seed" in obj or "epoch_ms" in obj):
            raise ManifestError(
                "$.determinism", "seed and epoch_ms only apply with determinism on"
            )
        job_input = JobInput(
            stdin=_base64(obj, "stdin") if "stdin" in obj else b"",
            args=tuple(obj.get("args", ())),
            env=tuple(sorted(obj.get("env", {}).items())),
            module_name=module_name,
            files=tuple(inline),
            deterministic=deterministic,
            seed=bytes.fromhex(obj["seed"]) if "seed" in obj else None,
            epoch_ms=obj.get("epoch_ms", DEFAULT_EPOCH_MS),
        )
    except ValueError as exc:
        raise ManifestError("$", str(exc)) from exc
    limits = _limits(obj.get("limits", {}), default_limits or Limits())
    reuse = obj.get("reuse", "off")
    if reuse != "off" and not deterministic:
        raise ManifestError(
            "$.reuse",
            "reuse needs determinism on: with determinism off the guest reads the host's "
            "clocks and randomness, so no earlier run can stand for this one",
        )
    return Manifest(
        module=module,
        module_sha256=module_sha256,
        module_name=module_name,
        job_input=job_input,
        limits=limits,
        placement=dict(obj.get("placement", DEFAULT_PLACEMENT)),
        file_refs=tuple(refs),
        stdin_sha256=obj.get("stdin_sha256"),
        reuse=reuse,
    )


def _check_schema(obj: Any) -> None:
    if not isinstance(obj, dict):
        raise ManifestError("$", f"a manifest is a JSON object, got {type(obj).__name__}")
    import jsonschema.exceptions  # loaded with the validator; see plasm.protocol.schemas

    error = jsonschema.exceptions.best_match(validator("manifest").iter_errors(obj))
    if error is None:
        return
    if error.validator == "oneOf" and not error.path:
        raise ManifestError("$", "give exactly one of 'module' (base64) and 'module_sha256' (hex)")
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        raise ManifestError(error.json_path, f"unknown field(s) {', '.join(unknown)}")
    if error.validator is None:  # a `false` subschema: placement fields of another mode
        raise ManifestError(
            error.json_path,
            "a field does not belong to this placement mode: 'local' takes no other field, "
            "'peer' takes peer_id, 'any' takes requirements, exclude_self, replicas, quorum, "
            "max_replicas and include_self",
        )
    raise ManifestError(error.json_path, _shorten(error.message))


def _shorten(message: str, limit: int = 300) -> str:
    # jsonschema quotes the offending value; a 10 MB module must not become a 10 MB error
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _base64(obj: dict[str, Any], key: str, path: str | None = None) -> bytes:
    try:
        return base64.b64decode(obj[key], validate=True)
    except (binascii.Error, ValueError) as exc:
        where = path or f"$.{key}"
        raise ManifestError(where, f"not valid base64 (RFC 4648, padded): {exc}") from exc


def _limits(given: dict[str, int], defaults: Limits) -> Limits:
    try:
        return Limits.from_json(given, defaults)
    except ValueError as exc:
        raise ManifestError("$.limits", str(exc)) from exc
