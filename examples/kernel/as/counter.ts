// Counter service (AssemblyScript). label 1: add mr0; label 2: read. Hot-swappable.
import { IPC_BUFFER_BYTES, IPC_DATA_OFFSET, infoLabel } from '../../../sdk/assemblyscript/index';

export const genesis_ipc_buffer: usize = memory.data(IPC_BUFFER_BYTES);
let count: i64 = 0;

export function genesis_handle(_badge: i64, info: i32, mr0: i64, _mr1: i64): i64 {
  if (infoLabel(info) === 1) count += mr0;
  return count;
}

export function genesis_save_state(): i32 {
  store<i64>(genesis_ipc_buffer + IPC_DATA_OFFSET, count);
  return 8;
}

export function genesis_upgrade(_fromVersion: i32, len: i32): i32 {
  if (len === 8) count = load<i64>(genesis_ipc_buffer + IPC_DATA_OFFSET);
  return 0;
}
