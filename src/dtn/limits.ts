/**
 * Named bounds of the DTN layer. Every buffer, queue and loop in `src/dtn` is bounded by one of
 * these; the units are in the names. They are checked against each other when the module loads.
 */
import { assert } from '../core/index.ts';

/** Largest encoded bundle the codec accepts (the whole CBOR array). */
export const BUNDLE_BYTES_MAX = 64 * 1024 * 1024;
/** Most canonical blocks in one bundle (the primary block not counted). */
export const BUNDLE_BLOCKS_MAX = 64;
/** Longest text string accepted inside a bundle (a dtn SSP, for instance). */
export const EID_TEXT_BYTES_MAX = 1024;
/** Deepest CBOR nesting the generic skipper and value reader follow. */
export const CBOR_DEPTH_MAX = 16;
/** Most items in a definite CBOR array or map read by the generic value reader. */
export const CBOR_ITEMS_MAX = 4096;
/** Most targets, parameters or results in one BPSec abstract security block. */
export const ASB_ITEMS_MAX = 64;
/** Default hop limit put into new bundles' hop count blocks (RFC 9171 §4.4.3). */
export const HOP_LIMIT_DEFAULT = 32;
/** Most bundles a bundle agent keeps (in memory and in its store) at once. */
export const AGENT_BUNDLES_MAX = 100_000;
/** Most bytes of bundles an agent keeps at once. */
export const AGENT_BYTES_MAX = 1024 * 1024 * 1024;
/** Most fragments of one ADU an agent holds while reassembling. */
export const REASSEMBLY_FRAGMENTS_MAX = 4096;
/** Most deliveries queued for one registration that nobody is reading. */
export const REGISTRATION_QUEUE_BUNDLES_MAX = 10_000;
/** Most contacts in one contact plan. */
export const CONTACT_PLAN_CONTACTS_MAX = 1_000_000;
/** Largest contact plan file read from disk. */
export const CONTACT_PLAN_FILE_BYTES_MAX = 64 * 1024 * 1024;
/** Most routes Yen's algorithm returns. */
export const ROUTES_K_MAX = 32;
/** Most copies spray-and-wait hands out per bundle. */
export const SPRAY_COPIES_MAX = 1024;

assert(BUNDLE_BLOCKS_MAX >= 2, 'a bundle needs room for at least a payload block');
assert(AGENT_BYTES_MAX >= BUNDLE_BYTES_MAX, 'an agent must be able to hold one maximal bundle');
assert(CBOR_DEPTH_MAX >= 4, 'BPSec parameters nest at least four deep');
