// Raw syscall imports of ABI v1. AssemblyScript names a `declare function`'s import after
// its file: everything declared here is imported from the `genesis` namespace under its own
// name, which is exactly the ABI's naming. Use the typed wrappers in index.ts.

export declare function debug_log(ptr: usize, len: i32): i32;
export declare function cap_copy(src: i32, rights: i32): i32;
export declare function cap_mint(src: i32, rights: i32, badge: i64): i32;
export declare function cap_move(src: i32): i32;
export declare function cap_delete(cptr: i32): i32;
export declare function cap_revoke(cptr: i32): i32;
export declare function cap_info(cptr: i32): i64;
export declare function send(ep: i32, info: i32, mr0: i64, mr1: i64): i32;
export declare function call(ep: i32, info: i32, mr0: i64, mr1: i64): i64;
export declare function reply(info: i32, mr0: i64, mr1: i64): i32;
export declare function reply_save(): i32;
export declare function reply_send(reply: i32, info: i32, mr0: i64, mr1: i64): i32;
export declare function recv_bind(ep: i32): i32;
export declare function msg_get(i: i32): i64;
export declare function notify_signal(n: i32): i32;
export declare function notify_poll(n: i32): i64;
export declare function notify_bind(n: i32): i32;
export declare function notify_wait(n: i32): i64;
export declare function ep_cancel_badged(ep: i32, badge: i64): i32;
export declare function device_read(dev: i32, reg: i32): i64;
export declare function device_write(dev: i32, reg: i32, value: i64): i32;
export declare function irq_bind(irq: i32, n: i32): i32;
export declare function irq_ack(irq: i32): i32;
export declare function domain_restart(dom: i32): i32;
