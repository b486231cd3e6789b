;; Recursion without end: each call adds a frame until wasmtime's stack limit
;; (max_wasm_stack, bytes of native stack) traps with "call stack exhausted". How many calls
;; fit depends on the native frame size, so the fuel burnt before the trap differs between
;; architectures (x86_64 and aarch64 frames and trampolines differ): the one example whose
;; receipt is not the same on every node (docs/architecture.md, "Across architectures").
(module
  (memory (export "memory") 1)
  (func $down (param i32) (result i32)
    (i32.add (call $down (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func (export "_start")
    (drop (call $down (i32.const 0)))))
