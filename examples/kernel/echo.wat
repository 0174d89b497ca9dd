;; Echo server: replies to every call with the caller's first message register, and echoes
;; message data (IPC buffer) back. Bind it to an endpoint with recv_bind or from the host.
(module
  (import "genesis" "reply" (func $reply (param i32 i64 i64) (result i32)))
  (memory 1)
  (global (export "genesis_ipc_buffer") i32 (i32.const 1024))
  (func (export "genesis_handle") (param $badge i64) (param $info i32) (param $mr0 i64) (param $mr1 i64) (result i64)
    ;; info bits 16..26 hold the data length; the data is already in our IPC buffer at +64.
    (if (i32.and (i32.shr_u (local.get $info) (i32.const 16)) (i32.const 0x7ff))
      (then
        (drop (call $reply
          (i32.and (local.get $info) (i32.const 0x07ff0000))
          (local.get $mr0) (local.get $mr1)))))
    (local.get $mr0)))
