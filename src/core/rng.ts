/**
 * Randomness as an injected component. {@link CryptoRng} is for keys, nonces and masks;
 * {@link SeededRng} (xoshiro128**, seeded through splitmix32) makes simulations and property
 * tests reproducible. Never use a SeededRng for secrets.
 */
import { randomFillSync } from 'node:crypto';
import { assert } from './errors.ts';

/** The randomness interface every layer receives. */
export interface Rng {
  /** A uniform unsigned 32-bit integer. */
  nextU32(): number;
  /** A uniform float in [0, 1). */
  nextFloat(): number;
  /** A uniform integer in [min, max] inclusive. */
  int(min: number, max: number): number;
  /** Fills `out` with random bytes and returns it. */
  fill(out: Uint8Array): Uint8Array;
  /** Whether the source is suitable for secrets. */
  readonly cryptographic: boolean;
}

function intFrom(rng: Rng, min: number, max: number): number {
  assert(Number.isInteger(min) && Number.isInteger(max) && max >= min, 'int range');
  const span = max - min + 1;
  if (span <= 0x1_0000_0000) {
    // Rejection sampling removes the modulo bias of `nextU32() % span`.
    const limit = Math.floor(0x1_0000_0000 / span) * span;
    for (;;) {
      const x = rng.nextU32();
      if (x < limit) return min + (x % span);
    }
  }
  return min + Math.floor(rng.nextFloat() * span);
}

/** Cryptographically secure randomness from Node's CSPRNG, buffered for speed. */
export class CryptoRng implements Rng {
  readonly cryptographic = true;
  private readonly pool = new Uint32Array(1024);
  private index = this.pool.length;

  nextU32(): number {
    if (this.index >= this.pool.length) {
      randomFillSync(this.pool);
      this.index = 0;
    }
    return this.pool[this.index++] as number;
  }

  nextFloat(): number {
    // 53 random bits, as Math.random would ideally give.
    return (this.nextU32() * 0x200000 + (this.nextU32() >>> 11)) / 2 ** 53;
  }

  int(min: number, max: number): number {
    return intFrom(this, min, max);
  }

  fill(out: Uint8Array): Uint8Array {
    return randomFillSync(out);
  }
}

/** Deterministic xoshiro128** generator. Same seed, same sequence, on every platform. */
export class SeededRng implements Rng {
  readonly cryptographic = false;
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    let x = seed >>> 0;
    const next = (): number => {
      // splitmix32 spreads a small seed over the whole state.
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  nextFloat(): number {
    return (this.nextU32() * 0x200000 + (this.nextU32() >>> 11)) / 2 ** 53;
  }

  int(min: number, max: number): number {
    return intFrom(this, min, max);
  }

  fill(out: Uint8Array): Uint8Array {
    for (let i = 0; i < out.length; i += 4) {
      const v = this.nextU32();
      for (let j = 0; j < 4 && i + j < out.length; j++) out[i + j] = (v >>> (8 * j)) & 0xff;
    }
    return out;
  }

  /** A new generator derived from this one, for giving each simulated node its own stream. */
  fork(): SeededRng {
    return new SeededRng(this.nextU32());
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
