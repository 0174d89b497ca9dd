;; Supervisor: receives fault messages (label 0xfff0, mr0 = fault kind, mr1 = domain id) on its
;; endpoint and restarts the child domain in slot 4096, at most three times (its restart policy).
(module
  (import "genesis" "domain_restart" (func $restart (param i32) (result i32)))
  (global $restarts (export "restarts") (mut i32) (i32.const 0))
  (global $lastKind (export "last_kind") (mut i64) (i64.const 0))
  (func (export "genesis_handle") (param $badge i64) (param $info i32) (param $mr0 i64) (param $mr1 i64) (result i64)
    (if (i32.eq (i32.and (local.get $info) (i32.const 0xffff)) (i32.const 0xfff0))
      (then
        (global.set $lastKind (local.get $mr0))
        (if (i32.lt_u (global.get $restarts) (i32.const 3))
          (then
            (global.set $restarts (i32.add (global.get $restarts) (i32.const 1)))
            (drop (call $restart (i32.const 4096)))))))
    (i64.const 0)))
