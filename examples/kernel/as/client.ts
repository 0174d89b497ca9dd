// Client (AssemblyScript): calls the endpoint in its first slot ten times, then logs the total.
import { call, initialCap, lastStatus, log } from '../../../sdk/assemblyscript/index';

export function genesis_main(): void {
  let last: i64 = 0;
  for (let i = 0; i < 10; i++) {
    last = call(initialCap(0), 1, 1);
    if (lastStatus() !== 0) {
      log('call failed');
      return;
    }
  }
  log('total ' + last.toString());
}
