;; bigmem: declares an initial memory of 16384 pages (1 GiB) and does nothing with it.
(module
  (memory (export "memory") 16384)
  (func (export "_start")))
