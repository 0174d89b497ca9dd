;; Root domain booted by every tile in `genesis up`. It serves its node's kernel endpoint:
;; label 1 "tick" (the host sends one per second) counts ticks, label 2 returns the count,
;; any other label echoes mr0.
(module
  (global $ticks (export "ticks") (mut i64) (i64.const 0))
  (func (export "genesis_handle") (param $badge i64) (param $info i32) (param $mr0 i64) (param $mr1 i64) (result i64)
    (local $label i32)
    (local.set $label (i32.and (local.get $info) (i32.const 0xffff)))
    (if (i32.eq (local.get $label) (i32.const 1))
      (then (global.set $ticks (i64.add (global.get $ticks) (i64.const 1)))))
    (if (result i64) (i32.eq (local.get $label) (i32.const 2))
      (then (global.get $ticks))
      (else (local.get $mr0)))))
