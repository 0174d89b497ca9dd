;; Driver stub against a Device capability. Slots: 4096 device, 4097 IRQ, 4098 notification.
;; main: binds the IRQ to the notification and rings the doorbell (register 1).
;; genesis_notify: reads register 2 (the "data" register), writes it to register 0 (output)
;; and acknowledges the IRQ.
(module
  (import "genesis" "device_read" (func $rd (param i32 i32) (result i64)))
  (import "genesis" "device_write" (func $wr (param i32 i32 i64) (result i32)))
  (import "genesis" "irq_bind" (func $irq_bind (param i32 i32) (result i32)))
  (import "genesis" "irq_ack" (func $irq_ack (param i32) (result i32)))
  (import "genesis" "notify_bind" (func $notify_bind (param i32) (result i32)))
  (global $irqs (export "irqs") (mut i32) (i32.const 0))
  (func (export "genesis_main")
    (drop (call $irq_bind (i32.const 4097) (i32.const 4098)))
    (drop (call $notify_bind (i32.const 4098)))
    (drop (call $wr (i32.const 4096) (i32.const 1) (i64.const 1))))
  (func (export "genesis_notify") (param $bits i64)
    (global.set $irqs (i32.add (global.get $irqs) (i32.const 1)))
    (drop (call $wr (i32.const 4096) (i32.const 0) (call $rd (i32.const 4096) (i32.const 2))))
    (drop (call $irq_ack (i32.const 4097)))))
