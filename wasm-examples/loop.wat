;; loop: spins forever; only fuel, a timeout or a cancellation stops it.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever
      (br $forever))))
