;; flood: writes a 64 KiB buffer of "x" to stdout again and again until a write fails,
;; then exits with status 1. Stops only at the output cap (or fuel / timeout).
;; Memory layout: 0..8 iovec, 8..12 nwritten, 65536..131072 the buffer.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (memory.fill (i32.const 65536) (i32.const 120) (i32.const 65536))
    (loop $again
      (i32.store (i32.const 0) (i32.const 65536))
      (i32.store (i32.const 4) (i32.const 65536))
      (br_if $again
        (i32.eqz (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
    (call $proc_exit (i32.const 1))))
