(module
  (memory (export "memory") 1)
  ;; acc[i] += src[i] (mod 2^32) for `bytes` bytes (a multiple of 16), four lanes at a time.
  (func (export "add") (param $acc i32) (param $src i32) (param $bytes i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $acc) (local.get $bytes)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $acc) (local.get $end)))
        (v128.store (local.get $acc) (i32x4.add (v128.load (local.get $acc)) (v128.load (local.get $src))))
        (local.set $acc (i32.add (local.get $acc) (i32.const 16)))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (br $next))))
  ;; acc[i] -= src[i] (mod 2^32).
  (func (export "sub") (param $acc i32) (param $src i32) (param $bytes i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $acc) (local.get $bytes)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $acc) (local.get $end)))
        (v128.store (local.get $acc) (i32x4.sub (v128.load (local.get $acc)) (v128.load (local.get $src))))
        (local.set $acc (i32.add (local.get $acc) (i32.const 16)))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (br $next)))))
