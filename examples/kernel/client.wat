;; Client: its main calls the endpoint in its first capability slot (cptr 4096) ten times with
;; label 1 (add) and logs "done" when every reply arrived.
(module
  (import "genesis" "call" (func $call (param i32 i32 i64 i64) (result i64)))
  (import "genesis" "debug_log" (func $log (param i32 i32) (result i32)))
  (memory 1)
  (data (i32.const 16) "done")
  (global $last (export "last") (mut i64) (i64.const 0))
  (func (export "genesis_main")
    (local $i i32)
    (loop $l
      (global.set $last (call $call (i32.const 4096) (i32.const 1) (i64.const 1) (i64.const 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 10))))
    (drop (call $log (i32.const 16) (i32.const 4)))))
