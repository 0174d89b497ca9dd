/**
 * Trust-layer benchmarks (issue 4 table). Each case measures its baseline in the same run:
 *  - durable log appends (batched 1 KiB entries, WAL + synchronous=FULL) vs raw SQLite inserts
 *    of the same rows with the same pragmas and batch size;
 *  - inclusion proof generate + verify at 1M entries (SQLite log and in-memory tree) vs one
 *    SHA-256 leaf hash;
 *  - composite ML-DSA-65 + Ed25519 sign and verify vs ML-DSA-65 alone and Ed25519 alone;
 *  - a checkpoint with 5 witness cosignatures (quorum 5) vs one signature verification.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import Database from 'better-sqlite3';
import {
  addSignatures,
  CompositeSigner,
  CompositeVerifier,
  compositeKeyGen,
  compositeNoteSigner,
  compositeNoteVerifier,
  cosignatureVerifier,
  cosigner,
  DurableLog,
  ed25519KeyGen,
  ed25519Sign,
  ed25519Verify,
  formatCheckpoint,
  inclusionProof,
  leafHash,
  MemoryMerkleTree,
  signNote,
  verifyInclusion,
  verifyWitnessedCheckpoint,
} from '../../src/trust/index.ts';
import { type BenchCase, bestOf, measure, row } from '../harness.ts';

const ENTRY_BYTES = 1024;
const BATCH_ENTRIES = 1000;
const APPEND_ENTRIES = 20_000;
const PROOF_TREE_SIZE = 1_000_000;

function appendCase(): BenchCase {
  return {
    name: 'durable-append',
    run: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'genesis-bench-trust-'));
      try {
        const entries = Array.from(
          { length: BATCH_ENTRIES },
          () => new Uint8Array(randomBytes(ENTRY_BYTES)),
        );
        let round = 0;
        const logMs = await bestOf(3, () => {
          const log = DurableLog.open(join(dir, `log-${round++}.db`), {
            create: true,
            origin: 'bench',
          });
          for (let i = 0; i < APPEND_ENTRIES / BATCH_ENTRIES; i++) log.appendBatch(entries);
          log.close();
        });
        const rawMs = await bestOf(3, () => {
          const db = new Database(join(dir, `raw-${round++}.db`));
          db.pragma('journal_mode = WAL');
          db.pragma('synchronous = FULL');
          db.exec('CREATE TABLE t(idx INTEGER PRIMARY KEY, data BLOB NOT NULL) STRICT');
          const ins = db.prepare('INSERT INTO t(idx, data) VALUES (?, ?)');
          let idx = 0;
          const batch = db.transaction(() => {
            for (const e of entries) ins.run(idx++, e);
          });
          for (let i = 0; i < APPEND_ENTRIES / BATCH_ENTRIES; i++) batch();
          db.close();
        });
        const perSec = (ms: number): number => APPEND_ENTRIES / (ms / 1000);
        return [
          row(
            `durable log appends (1 KiB, batch ${BATCH_ENTRIES}, FULL)`,
            perSec(logMs),
            'entries/s',
            'raw SQLite insert',
            perSec(rawMs),
            '>= 20000/s',
          ),
        ];
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** A 1M-entry log kept between runs (building it costs tens of seconds on this machine). */
function millionEntryLog(): DurableLog {
  const dir = join(tmpdir(), 'genesis-bench-trust-1m');
  const path = join(dir, 'log.db');
  if (existsSync(path)) {
    const log = DurableLog.open(path);
    if (log.size >= PROOF_TREE_SIZE) return log;
    log.close();
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
  const log = DurableLog.open(path, { create: true, origin: 'bench-1m', synchronous: 'normal' });
  const batch = 50_000;
  for (let start = 0; start < PROOF_TREE_SIZE; start += batch) {
    log.appendBatch(
      Array.from({ length: batch }, (_, i) => new TextEncoder().encode(`e${start + i}`)),
    );
  }
  return log;
}

function proofCase(): BenchCase {
  return {
    name: 'inclusion-proof-1m',
    run: async () => {
      const leaf = new Uint8Array(32);
      const sha = await measure('sha256 leaf', () => leafHash(leaf));
      const log = millionEntryLog();
      const size = log.size;
      const root = log.root;
      let i = 0;
      const sqlite = await measure('proof sqlite', () => {
        i = (i * 7919 + 13) % size;
        const idx = i;
        const proof = log.inclusionProof(idx, size);
        if (!verifyInclusion(log.leafHashAt(idx), idx, size, proof, root))
          throw new Error('proof failed');
      });
      log.close();
      const mem = new MemoryMerkleTree();
      for (let k = 0; k < PROOF_TREE_SIZE; k++)
        mem.appendLeafHash(leafHash(new TextEncoder().encode(`e${k}`)));
      const mroot = mem.root();
      const memory = await measure('proof memory', () => {
        i = (i * 7919 + 13) % PROOF_TREE_SIZE;
        const idx = i;
        const proof = inclusionProof(idx, PROOF_TREE_SIZE, mem);
        if (!verifyInclusion(mem.perfectHash(0, idx), idx, PROOF_TREE_SIZE, proof, mroot))
          throw new Error('proof failed');
      });
      return [
        row(
          'inclusion proof gen+verify @1M (SQLite log)',
          sqlite.medianNs / 1000,
          'µs/proof',
          'sha256 of one leaf (µs)',
          sha.medianNs / 1000,
          'report',
        ),
        row(
          'inclusion proof gen+verify @1M (in memory)',
          memory.medianNs / 1000,
          'µs/proof',
          'sha256 of one leaf (µs)',
          sha.medianNs / 1000,
          'report',
        ),
      ];
    },
  };
}

function signatureCase(): BenchCase {
  return {
    name: 'composite-sign-verify',
    run: async () => {
      const msg = new Uint8Array(randomBytes(256));
      const kp = compositeKeyGen(
        'MLDSA65-Ed25519-SHA512',
        new Uint8Array(createHash('sha512').update('bench').digest()),
      );
      const signer = new CompositeSigner(kp.alg, kp.secretKey);
      const verifier = CompositeVerifier.create(kp.alg, kp.publicKey);
      const sig = signer.sign(msg);
      const ml = ml_dsa65.keygen(new Uint8Array(32).fill(3));
      const mlSig = ml_dsa65.sign(msg, ml.secretKey);
      const ed = ed25519KeyGen();
      const edSig = ed25519Sign(ed.secretKey, msg);
      const opts = { timeMs: 2000 };
      const cSign = await measure('composite sign', () => signer.sign(msg), opts);
      const mSign = await measure('ml-dsa-65 sign', () => ml_dsa65.sign(msg, ml.secretKey), opts);
      const cVerify = await measure('composite verify', () => verifier.verify(msg, sig), opts);
      const mVerify = await measure(
        'ml-dsa-65 verify',
        () => ml_dsa65.verify(mlSig, msg, ml.publicKey),
        opts,
      );
      const eSign = await measure('ed25519 sign', () => ed25519Sign(ed.secretKey, msg), opts);
      const eVerify = await measure(
        'ed25519 verify',
        () => ed25519Verify(ed.publicKey, msg, edSig),
        opts,
      );
      return [
        row(
          'composite ML-DSA-65+Ed25519 sign',
          cSign.opsPerSec,
          'ops/s',
          'ML-DSA-65 sign alone',
          mSign.opsPerSec,
          'report',
        ),
        row(
          'composite ML-DSA-65+Ed25519 verify',
          cVerify.opsPerSec,
          'ops/s',
          'ML-DSA-65 verify alone',
          mVerify.opsPerSec,
          '>= 0.9x',
        ),
        row(
          'Ed25519 sign (native, for scale)',
          eSign.opsPerSec,
          'ops/s',
          'composite sign',
          cSign.opsPerSec,
        ),
        row(
          'Ed25519 verify (native, for scale)',
          eVerify.opsPerSec,
          'ops/s',
          'composite verify',
          cVerify.opsPerSec,
        ),
      ];
    },
  };
}

function checkpointCase(): BenchCase {
  return {
    name: 'checkpoint-verify',
    run: async () => {
      const origin = 'bench/log';
      const kp = compositeKeyGen();
      const signer = new CompositeSigner(kp.alg, kp.secretKey);
      const note = signNote(
        formatCheckpoint({ origin, size: 1000, root: new Uint8Array(32).fill(9), extensions: [] }),
        [compositeNoteSigner(origin, signer)],
      );
      const text = new TextEncoder().encode(note.slice(0, note.indexOf('\n\n') + 1));
      const ws = Array.from({ length: 5 }, (_, i) => ({ k: ed25519KeyGen(), name: `w${i}` }));
      const sigs = ws.map((w) => cosigner(w.name, w.k.secretKey).cosign(text, 1_800_000_000));
      const witnessed = addSignatures(note, sigs);
      const policy = {
        origin,
        logVerifiers: [compositeNoteVerifier(origin, kp.alg, kp.publicKey)],
        witnesses: ws.map((w) => cosignatureVerifier(w.name, w.k.publicKey)),
        quorum: 5,
      };
      const verifier = CompositeVerifier.create(kp.alg, kp.publicKey);
      const sig = signer.sign(text);
      const full = await measure(
        'checkpoint + 5 cosigs',
        () => verifyWitnessedCheckpoint(witnessed, policy),
        { timeMs: 2000 },
      );
      const one = await measure('one composite verify', () => verifier.verify(text, sig), {
        timeMs: 2000,
      });
      return [
        row(
          'checkpoint verify (composite log sig + 5 cosignatures)',
          full.medianNs / 1000,
          'µs',
          'one composite signature verify (µs)',
          one.medianNs / 1000,
          'report',
        ),
      ];
    },
  };
}

export default [appendCase(), proofCase(), signatureCase(), checkpointCase()] satisfies BenchCase[];
