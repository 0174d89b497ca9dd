;; Counter service. label 1: add mr0, returns the new value; label 2: read.
;; Supports hot swap: genesis_save_state writes the count into the IPC buffer, and
;; genesis_upgrade reads it back (version 1 of the state format: one little-endian i64).
(module
  (memory 1)
  (global $count (mut i64) (i64.const 0))
  (global (export "genesis_ipc_buffer") i32 (i32.const 1024))
  (func (export "genesis_handle") (param $badge i64) (param $info i32) (param $mr0 i64) (param $mr1 i64) (result i64)
    (if (i32.eq (i32.and (local.get $info) (i32.const 0xffff)) (i32.const 1))
      (then (global.set $count (i64.add (global.get $count) (local.get $mr0)))))
    (global.get $count))
  (func (export "genesis_save_state") (result i32)
    (i64.store (i32.const 1088) (global.get $count))
    (i32.const 8))
  (func (export "genesis_upgrade") (param $from i32) (param $len i32) (result i32)
    (if (i32.eq (local.get $len) (i32.const 8))
      (then (global.set $count (i64.load (i32.const 1088)))))
    (i32.const 0)))
