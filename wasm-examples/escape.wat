;; escape: tries to reach the host filesystem and reports the WASI errno of each attempt:
;;   "path_open <errno>\n"       path_open on fd 3 (the first preopen, if any) for "../../etc/passwd"
;;   "fd_prestat_get <errno>\n"  whether fd 3 is a preopened directory at all
;; then exits 0. fd 3 is the sandbox's virtual "/": path_open is 44 (ENOENT: ".." stops at "/"
;; and there is no /etc/passwd there), fd_prestat_get 0. 0 for path_open would mean a leak.
;; Memory layout: 0..8 iovec, 8..12 nwritten, 32 opened fd, 40 prestat, 64 path,
;; 96 / 112 labels, 200..220 decimal digits.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get"
    (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "../../etc/passwd")
  (data (i32.const 96) "path_open ")
  (data (i32.const 112) "fd_prestat_get ")
  (data (i32.const 220) "\n")

  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  ;; Writes `n` in decimal followed by "\n" (digits built backwards ending at 220).
  (func $write_line_dec (param $n i32)
    (local $pos i32)
    (local.set $pos (i32.const 220))
    (loop $digit
      (local.set $pos (i32.sub (local.get $pos) (i32.const 1)))
      (i32.store8 (local.get $pos)
        (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $digit (local.get $n)))
    (call $write (local.get $pos) (i32.sub (i32.const 221) (local.get $pos))))

  (func (export "_start")
    (local $open_errno i32)
    (local $prestat_errno i32)
    ;; dirflags=1 (follow symlinks), oflags=0, rights: fd_read (bit 1), no inheriting, fdflags=0
    (local.set $open_errno
      (call $path_open (i32.const 3) (i32.const 1) (i32.const 64) (i32.const 16) (i32.const 0)
        (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 32)))
    (local.set $prestat_errno (call $fd_prestat_get (i32.const 3) (i32.const 40)))
    (call $write (i32.const 96) (i32.const 10))
    (call $write_line_dec (local.get $open_errno))
    (call $write (i32.const 112) (i32.const 15))
    (call $write_line_dec (local.get $prestat_errno))))
