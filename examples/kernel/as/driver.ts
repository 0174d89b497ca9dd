// Driver stub (AssemblyScript) against a Device capability. Slots: 0 device, 1 IRQ, 2 notification.
import {
  deviceRead,
  deviceWrite,
  initialCap,
  irqAck,
  irqBind,
  notifyBind,
} from '../../../sdk/assemblyscript/index';

const DEV = initialCap(0);
const IRQ = initialCap(1);
const NTF = initialCap(2);

export function genesis_main(): void {
  irqBind(IRQ, NTF);
  notifyBind(NTF);
  deviceWrite(DEV, 1, 1); // ring the doorbell
}

export function genesis_notify(_bits: i64): void {
  deviceWrite(DEV, 0, deviceRead(DEV, 2) + 1000);
  irqAck(IRQ);
}
