#!/usr/bin/env node
// Makes sure the system services the tests need are installed. As root, a missing Debian
// package is installed with apt-get; otherwise the script stops with one line saying how.
import { execFileSync, spawnSync } from 'node:child_process';

/** Debian packages the tests need, with the command that proves each is present. */
const REQUIRED = [{ pkg: 'nats-server', command: 'nats-server', args: ['--version'] }];

function present(command, args) {
  const r = spawnSync(command, args, { stdio: 'ignore' });
  return r.error === undefined && r.status === 0;
}

const missing = REQUIRED.filter((r) => !present(r.command, r.args));
if (missing.length > 0) {
  const names = missing.map((m) => m.pkg).join(' ');
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      `genesis tests need: ${names}. Install with: sudo apt-get install -y ${names}\n`,
    );
    process.exit(2);
  }
  process.stderr.write(`installing ${names} (apt-get)...\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing.map((m) => m.pkg)], {
    stdio: 'inherit',
    env,
  });
  for (const m of missing) {
    if (!present(m.command, m.args)) {
      process.stderr.write(`genesis tests need ${m.pkg}, and installing it failed\n`);
      process.exit(2);
    }
  }
}
