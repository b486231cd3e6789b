;; hello: the text is argv[1] when there is one (stdin is then not read), else all of stdin.
;; Empty text -> "Hello, World!\n"; otherwise writes the text reversed byte-wise (one trailing
;; "\n" dropped first) followed by "\n".
;; Memory layout: 0..8 iovec (first argc/argv size), 8..12 nread/nwritten, 16..30 greeting,
;; 65536.. input buffer (grown a page at a time while stdin keeps coming), or the argv pointers
;; then the argv strings.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "Hello, World!\n")
  (global $base i32 (i32.const 65536))

  ;; Writes [ptr, ptr+len) to stdout, looping over short writes; exits 1 on an error.
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

  ;; Reads stdin until end of file into memory at $base; returns the byte count.
  (func $read_all (result i32)
    (local $total i32)
    (local $n i32)
    (loop $more
      ;; keep at least 4097 free bytes: a 4096-byte read plus the final "\n"
      (if (i32.lt_u
            (i32.sub (i32.mul (memory.size) (i32.const 65536))
                     (i32.add (global.get $base) (local.get $total)))
            (i32.const 4097))
        (then
          (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1))
            (then (unreachable)))))
      (i32.store (i32.const 0) (i32.add (global.get $base) (local.get $total)))
      (i32.store (i32.const 4) (i32.const 4096))
      (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
        (then (call $proc_exit (i32.const 2))))
      (local.set $n (i32.load (i32.const 8)))
      (local.set $total (i32.add (local.get $total) (local.get $n)))
      (br_if $more (local.get $n)))
    (local.get $total))

  ;; Copies argv into memory at $base (pointers, then strings) and returns the address of
  ;; argv[1], or 0 when there is no argv[1].
  (func $arg1 (result i32)
    (local $need i32)
    (if (call $args_sizes_get (i32.const 0) (i32.const 4))
      (then (call $proc_exit (i32.const 2))))
    (if (i32.lt_u (i32.load (i32.const 0)) (i32.const 2))
      (then (return (i32.const 0))))
    (local.set $need (i32.add (global.get $base)
      (i32.add (i32.mul (i32.load (i32.const 0)) (i32.const 4)) (i32.load (i32.const 4)))))
    (block $enough
      (loop $grow
        (br_if $enough (i32.ge_u (i32.mul (memory.size) (i32.const 65536)) (local.get $need)))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1))
          (then (unreachable)))
        (br $grow)))
    (if (call $args_get (global.get $base)
          (i32.add (global.get $base) (i32.mul (i32.load (i32.const 0)) (i32.const 4))))
      (then (call $proc_exit (i32.const 2))))
    (i32.load (i32.add (global.get $base) (i32.const 4))))

  (func (export "_start")
    (local $start i32)
    (local $len i32)
    (local $i i32)
    (local $j i32)
    (local $t i32)
    (local.set $start (call $arg1))
    (if (local.get $start)
      (then
        ;; the length of the NUL-terminated argv[1]; its NUL is where the final "\n" goes
        (block $found
          (loop $scan
            (br_if $found (i32.eqz (i32.load8_u (i32.add (local.get $start) (local.get $len)))))
            (local.set $len (i32.add (local.get $len) (i32.const 1)))
            (br $scan))))
      (else
        (local.set $start (global.get $base))
        (local.set $len (call $read_all))))
    (if (i32.eqz (local.get $len))
      (then
        (call $write_all (i32.const 16) (i32.const 14))
        (return)))
    (if (i32.eq (i32.load8_u (i32.add (local.get $start) (i32.sub (local.get $len) (i32.const 1))))
                (i32.const 10))
      (then (local.set $len (i32.sub (local.get $len) (i32.const 1)))))
    (local.set $i (local.get $start))
    (local.set $j (i32.sub (i32.add (local.get $start) (local.get $len)) (i32.const 1)))
    (block $done
      (loop $swap
        (br_if $done (i32.ge_u (local.get $i) (local.get $j)))
        (local.set $t (i32.load8_u (local.get $i)))
        (i32.store8 (local.get $i) (i32.load8_u (local.get $j)))
        (i32.store8 (local.get $j) (local.get $t))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (local.set $j (i32.sub (local.get $j) (i32.const 1)))
        (br $swap)))
    (i32.store8 (i32.add (local.get $start) (local.get $len)) (i32.const 10))
    (call $write_all (local.get $start) (i32.add (local.get $len) (i32.const 1)))))
