;; env_args: prints each argv entry, then each environment entry ("KEY=VALUE"), one per line.
;; Memory layout: 0..8 iovec, 8..12 nwritten, 12..16 count, 16..20 buffer size, 20 "\n",
;; 1024.. the pointer array followed by the strings (memory grows to fit them).
(module
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get"
    (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 20) "\n")

  (func $write_all (param $ptr i32) (param $len i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store (i32.const 0) (local.get $ptr))
        (i32.store (i32.const 4) (local.get $len))
        (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (call $proc_exit (i32.const 1))))
        (local.set $ptr (i32.add (local.get $ptr) (i32.load (i32.const 8))))
        (local.set $len (i32.sub (local.get $len) (i32.load (i32.const 8))))
        (br $more))))

  (func $strlen (param $ptr i32) (result i32)
    (local $end i32)
    (local.set $end (local.get $ptr))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (local.get $end))))
        (local.set $end (i32.add (local.get $end) (i32.const 1)))
        (br $next)))
    (i32.sub (local.get $end) (local.get $ptr)))

  ;; Grows memory until it holds `end` bytes; traps if it cannot.
  (func $ensure (param $end i32)
    (block $done
      (loop $grow
        (br_if $done (i32.le_u (local.get $end) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1))
          (then (unreachable)))
        (br $grow))))

  (func $print_list (param $count i32)
    (local $i i32)
    (local $p i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $p (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))))
        (call $write_all (local.get $p) (call $strlen (local.get $p)))
        (call $write_all (i32.const 20) (i32.const 1))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))

  (func (export "_start")
    (local $count i32)
    (local $buf i32)
    ;; argv
    (if (call $args_sizes_get (i32.const 12) (i32.const 16))
      (then (call $proc_exit (i32.const 2))))
    (local.set $count (i32.load (i32.const 12)))
    (local.set $buf (i32.add (i32.const 1024) (i32.shl (local.get $count) (i32.const 2))))
    (call $ensure (i32.add (local.get $buf) (i32.load (i32.const 16))))
    (if (call $args_get (i32.const 1024) (local.get $buf))
      (then (call $proc_exit (i32.const 2))))
    (call $print_list (local.get $count))
    ;; environment
    (if (call $environ_sizes_get (i32.const 12) (i32.const 16))
      (then (call $proc_exit (i32.const 2))))
    (local.set $count (i32.load (i32.const 12)))
    (local.set $buf (i32.add (i32.const 1024) (i32.shl (local.get $count) (i32.const 2))))
    (call $ensure (i32.add (local.get $buf) (i32.load (i32.const 16))))
    (if (call $environ_get (i32.const 1024) (local.get $buf))
      (then (call $proc_exit (i32.const 2))))
    (call $print_list (local.get $count))))
