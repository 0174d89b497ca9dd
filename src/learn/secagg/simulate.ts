/**
 * {@link secureAggregate}: one secure-aggregation round run in process.
 */
import { SecAggError, SecAggErrorCode } from './errors.ts';
import type { SecureAggregateOptions, SecureAggregateResult } from './types.ts';

/**
 * Runs one secure-aggregation round (all clients and the server in this process) and returns
 * the weighted mean of the survivors' updates.
 * @throws {SecAggError} SECAGG_BAD_CONFIG on invalid options (aborts are reported in the result).
 */
export async function secureAggregate(
  options: SecureAggregateOptions,
): Promise<SecureAggregateResult> {
  await Promise.resolve();
  throw new SecAggError(
    SecAggErrorCode.WrongState,
    `secureAggregate is being implemented (${options.mode})`,
  );
}
