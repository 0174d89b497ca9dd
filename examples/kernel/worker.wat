;; CPU-bound worker: sums 0..n-1 in a loop, keeping progress in memory at address 0.
;; Exports an Asyncify stack region so the toolchain can make it preemptible.
(module
  (import "genesis" "debug_log" (func $log (param i32 i32) (result i32)))
  (memory 1)
  (global (export "genesis_async_buffer") i32 (i32.const 8192))
  (global (export "genesis_async_buffer_bytes") i32 (i32.const 8192))
  (global $n (export "n") (mut i32) (i32.const 2000000))
  (data (i32.const 64) "worker done")
  (func $work (param $n i32) (result i64)
    (local $i i32) (local $acc i64)
    (block $out
      (loop $l
        (br_if $out (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $acc))
  (func (export "genesis_main")
    (i64.store (i32.const 0) (call $work (global.get $n)))
    (drop (call $log (i32.const 64) (i32.const 11))))
  (func (export "result") (result i64) (i64.load (i32.const 0))))
