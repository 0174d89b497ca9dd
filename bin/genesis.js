#!/usr/bin/env node
// Entry of the `genesis` command. Genesis runs its TypeScript sources directly through tsx's
// loader, so there is no build step between a checkout and a running fabric.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
