#!/usr/bin/env node
// Entry of the `genesis` command. Genesis runs its TypeScript sources directly through tsx's
// loader, so there is no build step between a checkout and a running fabric.
import { register } from 'tsx/esm/api';

// `genesis ... | head` closes stdout early; that is the reader's choice, not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
