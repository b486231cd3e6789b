"""Jobs per second of Sandbox.run for hello.wasm with a cached module (no assertions).

    python -m bench sandbox [--jobs N] [--threads T]

Also times the bare wasmtime-py steps of one job (shared Linker and InstancePre, new Store
and WasiConfig, stdin bytes, fuel, epoch deadline) on one thread, twice: with stdout captured
the way wasmtime-py offers (`stdout_custom`, a callback on a wasmtime worker thread), and
with stdout discarded (no capture at all: the lower bound). Sandbox.run captures output with
its own fd_write on the job's thread (runtime/_wasi.py), so it should land between the two.
Then copies one 16 MiB input file to /output with wasm-examples/copyfiles.wasm (C, fopen/
fread/fwrite in 64 KiB blocks through the virtual filesystem) and reports MiB/s.
Compare numbers of one run, not across machines.
"""

from __future__ import annotations

import argparse
import ctypes
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import wasmtime
from wasmtime import _ffi as ffi

from plasm.runtime.job import JobInput, Limits, OutcomeKind
from plasm.runtime.sandbox import Sandbox

HELLO = Path(__file__).resolve().parent.parent / "wasm-examples" / "hello.wasm"
COPYFILES = HELLO.with_name("copyfiles.wasm")
COPY_BYTES = 16 * 2**20


def copy_mib_per_s(runs: int) -> tuple[float, float]:
    """Best wall time (ms) of copying a 16 MiB input to /output, and its MiB/s."""
    job_input = JobInput(files=(("/input/big.bin", bytes(range(256)) * (COPY_BYTES // 256)),))
    best = float("inf")
    with Sandbox() as sandbox:
        module = sandbox.compile(COPYFILES.read_bytes())
        for _ in range(runs):
            started = time.perf_counter()
            outcome = sandbox.run(module, job_input, Limits())
            best = min(best, time.perf_counter() - started)
            assert outcome.kind is OutcomeKind.OK
            assert len(outcome.output_files[0][1]) == COPY_BYTES
    return best * 1000, COPY_BYTES / 2**20 / best


def bare_wasmtime_us_per_job(jobs: int, *, capture: bool) -> float:
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    engine = wasmtime.Engine(config)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    pre = linker.instantiate_pre(wasmtime.Module(engine, HELLO.read_bytes()))
    stdin = b"Hello, World\n"

    def one_job() -> bytes:
        out = bytearray()
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["hello.wasm"]
        vec = ffi.wasm_byte_vec_t()
        src = ctypes.cast(ctypes.c_char_p(stdin), ctypes.POINTER(ffi.wasm_byte_t))
        ffi.wasm_byte_vec_new(ctypes.byref(vec), len(stdin), src)
        ffi.wasi_config_set_stdin_bytes(wasi.ptr(), ctypes.byref(vec))
        if capture:
            wasi.stdout_custom = out.extend
        store = wasmtime.Store(engine)
        store.set_wasi(wasi)
        store.set_fuel(10**9)
        store.set_epoch_deadline(1000)
        start = pre.instantiate(store).exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        start(store)
        return bytes(out)

    for _ in range(200):
        one_job()
    started = time.perf_counter()
    for _ in range(jobs):
        one_job()
    return (time.perf_counter() - started) / jobs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    limits = Limits()
    job_input = JobInput(stdin=b"Hello, World\n", module_name="hello.wasm")
    with Sandbox() as sandbox:
        module = sandbox.compile(HELLO.read_bytes())
        for _ in range(200):  # warm up
            sandbox.run(module, job_input, limits)

        def run_batch(count: int) -> int:
            ok = 0
            for _ in range(count):
                ok += sandbox.run(module, job_input, limits).kind == OutcomeKind.OK
            return ok

        per_thread = args.jobs // args.threads
        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            ok = sum(pool.map(run_batch, [per_thread] * args.threads))
        elapsed = time.perf_counter() - started
    total = per_thread * args.threads
    sandbox_us = elapsed / total * 1e6
    print(
        f"Sandbox.run hello.wasm, {args.threads} thread(s): {total} jobs in {elapsed:.3f} s = "
        f"{total / elapsed:,.0f} jobs/s, {sandbox_us:.0f} us/job ({ok} ok)"
    )
    for name, capture in (("stdout_custom", True), ("stdout discarded", False)):
        bare_us = bare_wasmtime_us_per_job(args.jobs, capture=capture)
        print(
            f"bare wasmtime-py steps, {name}, 1 thread: {1e6 / bare_us:,.0f} jobs/s, "
            f"{bare_us:.0f} us/job; Sandbox.run costs {sandbox_us / bare_us:.2f}x"
        )
    copy_ms, mib_s = copy_mib_per_s(5)
    print(f"copyfiles.wasm, one 16 MiB input to /output: best {copy_ms:.1f} ms = "
          f"{mib_s:,.0f} MiB/s")


if __name__ == "__main__":
    main()
