;; CPU-bound, call-heavy worker: naive recursive Fibonacci, so the work is almost all function
;; entries (each pays a fuel check on entry) rather than loop back-edges. `fib` is exported for
;; bench/kernel/fuel.bench.ts; genesis_main computes fib(25) and stores it at address 0.
(module
  (import "genesis" "debug_log" (func $log (param i32 i32) (result i32)))
  (memory 1)
  (data (i32.const 64) "fib done")
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else
        (i32.add
          (call $fib (i32.sub (local.get $n) (i32.const 1)))
          (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "genesis_main")
    (i32.store (i32.const 0) (call $fib (i32.const 25)))
    (drop (call $log (i32.const 64) (i32.const 8))))
  (func (export "result") (result i32) (i32.load (i32.const 0))))
