/**
 * Expected failures of the fabric layer, each with a stable code. Never match on messages.
 */
import { GenesisError, type GenesisErrorOptions } from '../core/index.ts';

/** Stable codes of fabric errors. */
export const FabricErrorCode = {
  WireMalformed: 'FABRIC_WIRE_MALFORMED',
  WireOversized: 'FABRIC_WIRE_OVERSIZED',
  WireReplayed: 'FABRIC_WIRE_REPLAYED',
  WireBadSignature: 'FABRIC_WIRE_BAD_SIGNATURE',
  WireImpostor: 'FABRIC_WIRE_IMPOSTOR',
  WireStale: 'FABRIC_WIRE_STALE',
  SpecInvalid: 'FABRIC_SPEC_INVALID',
  SpecUnreadable: 'FABRIC_SPEC_UNREADABLE',
  Unschedulable: 'FABRIC_UNSCHEDULABLE',
  UnknownWorkload: 'FABRIC_UNKNOWN_WORKLOAD',
  UnknownNode: 'FABRIC_UNKNOWN_NODE',
  PodFull: 'FABRIC_POD_FULL',
  JoinFailed: 'FABRIC_JOIN_FAILED',
  ConfigInvalid: 'FABRIC_CONFIG_INVALID',
  ServerStartFailed: 'FABRIC_SERVER_START_FAILED',
  Unreachable: 'FABRIC_UNREACHABLE',
  ModuleUnavailable: 'FABRIC_MODULE_UNAVAILABLE',
  ModuleRejected: 'FABRIC_MODULE_REJECTED',
} as const;

/** One of {@link FabricErrorCode}. */
export type FabricErrorCodeValue = (typeof FabricErrorCode)[keyof typeof FabricErrorCode];

/** An expected failure of the fabric layer. */
export class FabricError extends GenesisError {
  constructor(code: FabricErrorCodeValue, message: string, options: GenesisErrorOptions = {}) {
    super(code, message, options);
    this.name = 'FabricError';
  }
}

/** True when `e` is a {@link FabricError}, optionally with the given code. */
export function isFabricError(e: unknown, code?: FabricErrorCodeValue): e is FabricError {
  return e instanceof FabricError && (code === undefined || e.code === code);
}
