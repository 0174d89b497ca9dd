// Echo server (AssemblyScript): replies with the caller's mr0.
export function genesis_handle(_badge: i64, _info: i32, mr0: i64, _mr1: i64): i64 {
  return mr0;
}
