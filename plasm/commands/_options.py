"""Options shared by several subcommands: the state dir and a job's input and limits."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from plasm.errors import PlasmError


class UsageError(PlasmError):
    """A command-line value is wrong; the message names the option."""


def add_state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="node state (key, caches); default $PLASM_STATE_DIR, else $XDG_DATA_HOME/plasmd",
    )


def state_dir(args: argparse.Namespace) -> Path:
    from plasm.config import default_state_dir

    return args.state_dir if args.state_dir is not None else default_state_dir()


INSTALLED_CONFIG = Path("/etc/plasmd/plasmd.toml")


def add_socket(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--socket", type=Path, default=None, metavar="PATH",
        help="the daemon's API socket; default $PLASM_SOCKET, else api.socket of "
             "/etc/plasmd/plasmd.toml when readable, else <state dir>/plasmd.sock",
    )


def client_socket(args: argparse.Namespace) -> Path:
    """Where a client finds the daemon, as `--socket`'s help says."""
    if args.socket is not None:
        return Path(args.socket)
    if os.environ.get("PLASM_SOCKET"):
        return Path(os.environ["PLASM_SOCKET"])
    from plasm.config import load_config

    if os.access(INSTALLED_CONFIG, os.R_OK):
        return load_config(INSTALLED_CONFIG).api.socket
    return load_config(None).api.socket


def connect(args: argparse.Namespace):
    from plasm.client import Client

    return Client(client_socket(args))


def add_guest_args(parser: argparse.ArgumentParser) -> None:
    """The job's arguments after the module, as `wasmtime run` takes them.

    Put ``--`` before the first one that starts with ``-``: everything after it goes to the
    guest untouched (``plasmd execute-job prog.wasm -- -e 'x' --flag``).
    """
    parser.add_argument(
        "job_args",
        nargs="*",
        metavar="ARGS",
        help="arguments for the job, after the module's name as argv[0]; put -- before the "
        "first one that starts with - (then --arg values follow)",
    )


def guest_args(args: argparse.Namespace) -> tuple[str, ...]:
    """argv[1:] for the job: the positional ARGS, then each --arg, in order."""
    return (*args.job_args, *args.args)


def add_reuse_option(parser: argparse.ArgumentParser) -> None:
    """``--reuse`` for jobs given to a daemon (``submit``, the console's ``run``): the
    index and the DHT it reads are the daemon's, so ``execute-job`` has no such option."""
    parser.add_argument(
        "--reuse",
        choices=("off", "local", "network"),
        default=None,
        help="off (default): always run; local: answer at once with the daemon's earlier "
        "verified run of the same job (module, input and files, limits, profile), marked "
        "reused, without running it; network: also look for a signed memo record in the DHT, "
        "and publish one once the job ran. Needs determinism on",
    )


def reuse_note(answer: dict[str, Any]) -> str | None:
    """For people: which earlier run answered a reused job, or None."""
    reused = answer.get("reused")
    if not isinstance(reused, dict):
        return None
    return (
        f"job {answer.get('job_id')} did not run: it reused the verified result of job "
        f"{reused.get('job_id')} (executor {reused.get('executor')})"
    )


def add_job_options(parser: argparse.ArgumentParser) -> None:
    stdin = parser.add_mutually_exclusive_group()
    stdin.add_argument("--stdin", metavar="TEXT", help="bytes (UTF-8) given to the job on stdin")
    stdin.add_argument(
        "--stdin-file", metavar="PATH", help="file given to the job on stdin; - for our stdin"
    )
    parser.add_argument(
        "--arg",
        dest="args",
        action="append",
        default=[],
        metavar="A",
        help="an argument for the job (repeatable); argv[0] is the module's file name",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="K=V",
        help="an environment variable for the job (repeatable)",
    )
    parser.add_argument(
        "--fuel",
        type=_positive_int,
        metavar="N",
        help="fuel (wasm instructions, roughly) the job may burn",
    )
    parser.add_argument(
        "--memory",
        type=_size,
        metavar="BYTES",
        help="memory limit: bytes, or with a unit such as 64MiB",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="wall-clock limit in seconds (fractions allowed)",
    )
    parser.add_argument(
        "--input",
        dest="inputs",
        action="append",
        default=[],
        metavar="GUEST=HOST",
        help="give the job the host file HOST, read-only at the absolute path GUEST in its "
        "filesystem, e.g. /input/in.svg=./in.svg (repeatable)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="save the files the job leaves under /output into DIR (each checked against "
        "the receipt first)",
    )
    parser.add_argument(
        "--determinism",
        choices=("on", "off"),
        default=None,
        help="on (default): virtual clocks and seeded randomness, the same result on every "
        "node (profile wasi-p1-det/1); off: the host's clocks and randomness",
    )
    parser.add_argument(
        "--seed", metavar="HEX", help="seed of the job's random stream (default: its input hash)"
    )
    parser.add_argument(
        "--epoch-ms", type=int, metavar="MS", help="where the job's wall clock starts, unix ms"
    )
    parser.add_argument(
        "--max-output",
        type=_size,
        metavar="BYTES",
        help="cap on captured stdout, and on stderr, each",
    )
    parser.add_argument(
        "--max-input-files",
        dest="max_input_files_bytes",
        type=_size,
        metavar="BYTES",
        help="cap on the input files' total size",
    )
    parser.add_argument(
        "--max-output-files",
        dest="max_output_files_bytes",
        type=_size,
        metavar="BYTES",
        help="cap on the total size of the files the job writes under /output",
    )
    parser.add_argument(
        "--max-output-file",
        dest="max_output_file_bytes",
        type=_size,
        metavar="BYTES",
        help="cap on one output file's size",
    )
    parser.add_argument(
        "--max-output-count",
        dest="max_output_files",
        type=_positive_int,
        metavar="N",
        help="cap on how many files (and directories) the job may create under /output",
    )


def determinism_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The manifest's ``determinism``, ``seed`` and ``epoch_ms`` the options asked for."""
    fields: dict[str, Any] = {}
    if args.determinism is not None:
        fields["determinism"] = args.determinism
    if args.seed is not None:
        try:
            if not bytes.fromhex(args.seed) or args.seed != args.seed.lower():
                raise ValueError
        except ValueError:
            raise UsageError(f"--seed {args.seed!r}: give 1 to 64 bytes as lowercase hex") from None
        fields["seed"] = args.seed
    if args.epoch_ms is not None:
        fields["epoch_ms"] = args.epoch_ms
    return fields


def determinism_input(args: argparse.Namespace) -> dict[str, Any]:
    """``JobInput`` keyword arguments of the same options (for jobs run in this process)."""
    fields = determinism_fields(args)
    out: dict[str, Any] = {"deterministic": fields.get("determinism", "on") == "on"}
    if "seed" in fields:
        out["seed"] = bytes.fromhex(fields["seed"])
    if "epoch_ms" in fields:
        out["epoch_ms"] = fields["epoch_ms"]
    return out


def read_inputs(args: argparse.Namespace) -> tuple[tuple[str, bytes], ...]:
    """The ``--input GUEST=HOST`` files: (guest path, bytes) pairs."""
    files: list[tuple[str, bytes]] = []
    for given in args.inputs:
        guest, sep, host = given.partition("=")
        if not sep or not guest or not host:
            raise UsageError(f"--input {given!r}: write GUEST=HOST, e.g. /input/in.txt=./in.txt")
        try:
            files.append((guest, Path(host).read_bytes()))
        except OSError as exc:
            raise UsageError(f"--input {given}: cannot read {host}: {exc.strerror}") from exc
    return tuple(files)


def save_outputs(directory: Path, outputs: list[tuple[str, bytes]] | tuple[Any, ...]) -> None:
    """Write each ``/output/...`` file under ``directory`` (made if missing)."""
    for path, data in outputs:
        relative = Path(path).relative_to("/output")
        if ".." in relative.parts or relative.is_absolute():
            raise UsageError(f"refusing to save output {path}: it leaves the output directory")
        target = directory / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        except OSError as exc:
            raise UsageError(f"cannot save output {path} to {target}: {exc.strerror}") from exc


def fetch_outputs(client: Any, result: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The output files of a job result, from the daemon, checked against its receipt."""
    import base64

    from plasm.protocol.errors import ReceiptError
    from plasm.protocol.receipt import check_output_files, verify_envelope

    outputs = [(o["path"], client.output(result["job_id"], o["path"])) for o in result["outputs"]]
    try:
        receipt = verify_envelope(base64.b64decode(result["receipt"]["cose"]))
        check_output_files(receipt, tuple(outputs))
    except ReceiptError as exc:
        raise UsageError(f"the outputs of job {result['job_id']} do not verify: {exc}") from exc
    return outputs


def read_stdin(args: argparse.Namespace) -> bytes:
    if args.stdin is not None:
        return str(args.stdin).encode()
    if args.stdin_file is None:
        return b""
    if args.stdin_file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(args.stdin_file).read_bytes()
    except OSError as exc:
        raise UsageError(f"--stdin-file {args.stdin_file}: {exc.strerror}") from exc


def parse_env(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--env {pair!r}: expected KEY=VALUE")
        env[key] = value
    return env


def limit_overrides(args: argparse.Namespace) -> dict[str, int]:
    """The limits given on the command line, by their manifest names."""
    given = {
        "fuel": args.fuel,
        "memory_bytes": args.memory,
        "timeout_ms": args.timeout,
        "max_output_bytes": args.max_output,
        "max_input_files_bytes": args.max_input_files_bytes,
        "max_output_files_bytes": args.max_output_files_bytes,
        "max_output_file_bytes": args.max_output_file_bytes,
        "max_output_files": args.max_output_files,
    }
    return {name: value for name, value in given.items() if value is not None}


def read_module(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read module {path}: {exc.strerror}") from exc


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _size(text: str) -> int:
    from plasm.units import parse_size

    try:
        value = parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def _seconds(text: str) -> int:
    """Seconds (fractions allowed) as whole milliseconds, at least 1."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < seconds <= 86_400:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"expected 0 < seconds <= 86400, got {text!r}")
    return max(1, round(seconds * 1000))


def print_json_error(exc: Exception) -> None:
    """`{"error": {"code", "message"}}` on stdout: the API's code when the daemon gave
    one, else the kind of error (`daemon_unavailable`, `usage`, ...)."""
    import re

    import orjson

    code = getattr(exc, "code", None)
    if not isinstance(code, str):
        name = type(exc).__name__.removesuffix("Error") or "plasm"
        code = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    sys.stdout.buffer.write(orjson.dumps({"error": {"code": code, "message": str(exc)}}) + b"\n")
