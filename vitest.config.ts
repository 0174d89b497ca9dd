import { defineConfig } from 'vitest/config';

// Two projects: `unit` is the fast inner loop (npm run test:unit); `integration` holds tests
// that start real processes and servers (nats-server, node processes, kill -9). `npm test`
// runs both.
export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.int.test.ts', 'node_modules/**'],
          testTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.int.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
    pool: 'forks',
    maxWorkers: 2,
  },
});
