/**
 * Generator of the WebAssembly SIMD kernel's text (WAT). The kernel multiplies a block of input
 * rows by a coefficient matrix over GF(2^8) with the split-nibble method: for each coefficient c
 * two 16-byte tables hold c·x for x = 0..15 (low nibble) and c·(x << 4) (high nibble); then
 * c·b = lo[b & 15] ^ hi[b >> 4] for 16 bytes at once with two `i8x16.swizzle`s.
 *
 * Why generated: a function per output-group size (1..OUTPUTS_PER_PASS_MAX) keeps every
 * accumulator in a local (a register after V8's TurboFan), and unrolling VECTORS_PER_ITERATION
 * 16-byte vectors per input load amortises the table loads. Writing those 4·4 variants by hand
 * would be error-prone; the generator is the source of truth, and `kernel.wat` is its output.
 */

/** Maximum outputs (parity rows) computed per pass over the inputs. */
export const OUTPUTS_PER_PASS_MAX = 4;
/** 16-byte vectors processed per input per iteration (bytes per iteration = 16 · this). */
export const VECTORS_PER_ITERATION = 2;
/** Bytes consumed per input per iteration; chunk strides are multiples of this. */
export const KERNEL_BLOCK_BYTES = 16 * VECTORS_PER_ITERATION;
/** Bytes of split-nibble tables per coefficient (low table then high table). */
export const TABLE_BYTES_PER_COEFFICIENT = 32;

/**
 * Emits `mulN(tab, inList, nIn, outList, start, end)`: for byte positions start <= pos < end (a
 * multiple of KERNEL_BLOCK_BYTES apart), N outputs at the addresses listed as i32s at `outList`,
 * each the GF(2^8) sum over i < nIn of coefficient(o, i) · (bytes at the i-th address listed at
 * `inList`). Address lists let the same code read shards wherever they sit in memory (copied
 * chunks, or a stripe held in place). Tables: for input i, N consecutive 32-byte entries.
 */
function genMulN(n: number, v: number, swizzle: string): string {
  const lines: string[] = [];
  const p = (s: string): void => {
    lines.push(s);
  };
  p(`  (func $mul${n} (export "mul${n}")`);
  p(
    '    (param $tab i32) (param $inList i32) (param $nIn i32) (param $outList i32) (param $start i32) (param $end i32)',
  );
  p(
    '    (local $pos i32) (local $i i32) (local $lp i32) (local $ip i32) (local $tp i32) (local $mask v128) (local $tl v128) (local $th v128)',
  );
  for (let o = 0; o < n; o++) p(`    (local $o${o} i32)`);
  for (let j = 0; j < v; j++)
    p(`    (local $lo${j} v128) (local $hi${j} v128) (local $x${j} v128)`);
  for (let o = 0; o < n; o++) for (let j = 0; j < v; j++) p(`    (local $a${o}_${j} v128)`);
  p('    (local.set $mask (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))');
  for (let o = 0; o < n; o++)
    p(`    (local.set $o${o} (i32.load offset=${4 * o} (local.get $outList)))`);
  p('    (local.set $pos (local.get $start))');
  p('    (block $done');
  p('      (br_if $done (i32.ge_u (local.get $start) (local.get $end)))');
  p('      (br_if $done (i32.eqz (local.get $nIn)))');
  p('      (loop $cols');
  // The first input initialises the accumulators (saves n·v XORs with zero per block).
  p('        (local.set $lp (local.get $inList))');
  p('        (local.set $ip (i32.add (i32.load (local.get $lp)) (local.get $pos)))');
  p('        (local.set $tp (local.get $tab))');
  emitInput(p, n, v, true, swizzle);
  p('        (local.set $i (i32.sub (local.get $nIn) (i32.const 1)))');
  p('        (block $insDone');
  p('          (br_if $insDone (i32.eqz (local.get $i)))');
  p('          (loop $ins');
  p('            (local.set $lp (i32.add (local.get $lp) (i32.const 4)))');
  p('            (local.set $ip (i32.add (i32.load (local.get $lp)) (local.get $pos)))');
  p(`            (local.set $tp (i32.add (local.get $tp) (i32.const ${n * 32})))`);
  emitInput(p, n, v, false, swizzle);
  p('            (br_if $ins (local.tee $i (i32.sub (local.get $i) (i32.const 1))))))');
  for (let o = 0; o < n; o++) {
    for (let j = 0; j < v; j++) {
      p(
        `        (v128.store offset=${16 * j} (i32.add (local.get $o${o}) (local.get $pos)) (local.get $a${o}_${j}))`,
      );
    }
  }
  p(
    `        (br_if $cols (i32.lt_u (local.tee $pos (i32.add (local.get $pos) (i32.const ${16 * v}))) (local.get $end)))))`,
  );
  p('  )');
  return lines.join('\n');
}

function emitInput(
  p: (s: string) => void,
  n: number,
  v: number,
  first: boolean,
  swizzle: string,
): void {
  const ind = first ? '        ' : '            ';
  for (let j = 0; j < v; j++) {
    p(`${ind}(local.set $x${j} (v128.load offset=${16 * j} (local.get $ip)))`);
    p(`${ind}(local.set $lo${j} (v128.and (local.get $x${j}) (local.get $mask)))`);
    // i16x8.shr_u then the mask: x86 has no byte shift, and V8's i8x16.shr_u costs more.
    p(
      `${ind}(local.set $hi${j} (v128.and (i16x8.shr_u (local.get $x${j}) (i32.const 4)) (local.get $mask)))`,
    );
  }
  for (let o = 0; o < n; o++) {
    // Each table is loaded once and used for all v vectors (AVX's VPSHUFB does not clobber it).
    p(`${ind}(local.set $tl (v128.load offset=${o * 32} (local.get $tp)))`);
    p(`${ind}(local.set $th (v128.load offset=${o * 32 + 16} (local.get $tp)))`);
    for (let j = 0; j < v; j++) {
      const prod =
        `(v128.xor (${swizzle} (local.get $tl) (local.get $lo${j}))` +
        ` (${swizzle} (local.get $th) (local.get $hi${j})))`;
      p(
        first
          ? `${ind}(local.set $a${o}_${j} ${prod})`
          : `${ind}(local.set $a${o}_${j} (v128.xor (local.get $a${o}_${j}) ${prod}))`,
      );
    }
  }
}

/**
 * The whole module's text: one exported memory and the `mul1`..`mulN` functions.
 *
 * `relaxed` emits `i8x16.relaxed_swizzle` (relaxed-SIMD proposal) instead of `i8x16.swizzle`.
 * Our indices are always 0..15, where both are defined to agree; the relaxed form lets x86
 * engines emit a bare PSHUFB instead of PADDUSB + PSHUFB (the add only exists to zero lanes
 * whose index is >= 16). The host uses it where the engine validates it (V8 >= 11.4, Node 22).
 * The other parameters exist for tuning experiments; the committed kernels use the defaults.
 */
export function generateKernelWat(
  relaxed = false,
  outputsPerPass: number = OUTPUTS_PER_PASS_MAX,
  vectorsPerIteration: number = VECTORS_PER_ITERATION,
): string {
  const parts = [
    ';; GENERATED by src/store/erasure/simd/gen-wat.ts (npm: node bin/run-ts.js src/store/erasure/simd/build.ts).',
    `;; GF(2^8) matrix-times-rows kernel, split-nibble tables with ${relaxed ? 'i8x16.relaxed_swizzle' : 'i8x16.swizzle'}. Do not edit by hand.`,
    '(module',
    '  (memory (export "memory") 1)',
  ];
  for (let n = 1; n <= outputsPerPass; n++)
    parts.push(
      genMulN(n, vectorsPerIteration, relaxed ? 'i8x16.relaxed_swizzle' : 'i8x16.swizzle'),
    );
  parts.push(')', '');
  return parts.join('\n');
}
