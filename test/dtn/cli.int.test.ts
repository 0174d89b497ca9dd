import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';

type Event = Record<string, unknown>;
const bin = fileURLToPath(new URL('../../bin/genesis.js', import.meta.url));
const run = promisify(execFile);
const children: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGTERM');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Starts `genesis dtn serve --json`; `waitFor` resolves with the first event matching. */
function serve(args: string[]) {
  const child = spawn(
    process.execPath,
    [bin, 'dtn', 'serve', '--tcpcl', '0', '--json', '--for', '90s', ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(child);
  const events: Event[] = [];
  const waiters: { pred: (e: Event) => boolean; resolve: (e: Event) => void }[] = [];
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) {
      const e = JSON.parse(l) as Event;
      events.push(e);
      for (const w of waiters.filter((x) => x.pred(e))) w.resolve(e);
    }
  });
  const waitFor = (pred: (e: Event) => boolean): Promise<Event> =>
    new Promise((resolve) => {
      const hit = events.find(pred);
      if (hit !== undefined) resolve(hit);
      else waiters.push({ pred, resolve });
    });
  return { child, waitFor };
}

it('two `genesis dtn serve` processes exchange a bundle over TCPCLv4 on loopback', {
  timeout: 300_000,
}, async () => {
  const root = mkdtempSync(join(tmpdir(), 'dtn-cli-'));
  dirs.push(root);
  // Mars accepts only payloads signed and encrypted by a node it shares keys with (BPSec);
  // Earth relays without keys.
  const key = (n: number) => Buffer.alloc(32, n).toString('hex');
  writeFileSync(
    join(root, 'mars-keys.json'),
    JSON.stringify({ 'ipn:7.0': { integrity: key(1), confidentiality: key(2) } }),
  );
  writeFileSync(
    join(root, 'client-keys.json'),
    JSON.stringify({ 'ipn:2.0': { integrity: key(1), confidentiality: key(2) } }),
  );
  const mars = serve([
    '--node',
    'ipn:2.0',
    '--data-dir',
    join(root, 'mars'),
    '--keys',
    join(root, 'mars-keys.json'),
    '--require',
    'integrity,confidentiality',
  ]);
  const portMars = (await mars.waitFor((e) => e.event === 'listening')).port as number;
  const earth = serve([
    '--node',
    'ipn:1.0',
    '--data-dir',
    join(root, 'earth'),
    '--peer',
    `127.0.0.1:${portMars}`,
  ]);
  const portEarth = (await earth.waitFor((e) => e.event === 'listening')).port as number;
  expect((await earth.waitFor((e) => e.event === 'peer')).peer).toBe('ipn:2.0');
  const file = join(root, 'hello.txt');
  writeFileSync(file, 'hello from earth over TCPCLv4\n');
  // A client hands the bundle to the Earth node, which forwards it to the Mars node. The first,
  // unprotected, is refused by Mars' policy; the second, signed and encrypted, is delivered.
  const send = (extra: string[]) =>
    run(process.execPath, [
      bin,
      'dtn',
      'send',
      'ipn:2.1',
      file,
      '--via',
      `127.0.0.1:${portEarth}`,
      '--source',
      'ipn:7.1',
      '--json',
      ...extra,
    ]);
  const plain = await send([]);
  expect(JSON.parse(plain.stdout).peer).toBe('ipn:1.0');
  const sent = await send([
    '--keys',
    join(root, 'client-keys.json'),
    '--protect',
    'integrity,confidentiality',
  ]);
  const delivered = await mars.waitFor((e) => e.event === 'delivered');
  expect(delivered.endpoint).toBe('ipn:2.1');
  expect(delivered.id).toBe(JSON.parse(sent.stdout).id);
  const got = await run(process.execPath, [
    bin,
    'dtn',
    'recv',
    'ipn:2.1',
    '--data-dir',
    join(root, 'mars'),
    '--wait',
    '30s',
  ]);
  expect(got.stdout).toBe('hello from earth over TCPCLv4\n');
  // Bad input: one line, exit code 2.
  const bad = await run(process.execPath, [bin, 'dtn', 'send', 'nonsense', file]).catch(
    (e: { code: number; stderr: string }) => e,
  );
  expect((bad as { code: number }).code).toBe(2);
  expect((bad as { stderr: string }).stderr).toMatch(/CLI_BAD_EID/);
});
