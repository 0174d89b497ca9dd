import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/core/index.ts';
import {
  addSignatures,
  CheckpointTracker,
  CompositeSigner,
  compositeKeyGen,
  compositeNoteSigner,
  compositeNoteVerifier,
  consistencyProof,
  cosignatureVerifier,
  cosigner,
  ed25519KeyGen,
  ed25519NoteSigner,
  ed25519NoteVerifier,
  formatCheckpoint,
  isTrustError,
  MemoryMerkleTree,
  MemoryWitnessState,
  openNote,
  parseCheckpoint,
  parseNote,
  signNote,
  verifyWitnessedCheckpoint,
  Witness,
} from '../../src/trust/index.ts';

const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
const keyId = (hex: string): number => Number.parseInt(hex, 16);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isTrustError(e) ? e.code : `untyped: ${String(e)}`;
  }
  return undefined;
}

// golang.org/x/mod/sumdb/note (note_test.go / package doc): the PeterNeumann key and note.
const PETER_SKEY = 'AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz'; // 0x01 ‖ Ed25519 seed
const PETER_VKEY = 'ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'; // 0x01 ‖ public key
const PETER_TEXT =
  "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_NOTE = `${PETER_TEXT}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;

// A public checkpoint of arche2025h1.staging.ct.transparency.dev with witness cosignatures
// (as quoted in the test suite of a Python tlog client); remora.n621.de signs cosignature/v1.
const ARCHE_NOTE = `arche2025h1.staging.ct.transparency.dev
1432088532
U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=

\u2014 arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=
\u2014 arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=
\u2014 transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==
\u2014 witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==
\u2014 remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==
\u2014 witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==
`;
const ARCHE_VKEY = 'AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f';
const REMORA_VKEY = 'BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2';

describe('C2SP signed notes: known answers from other implementations', () => {
  it('reproduces the Go sumdb/note PeterNeumann signature byte for byte, with key ID c74f20a3', () => {
    const signer = ed25519NoteSigner('PeterNeumann', b64(PETER_SKEY).subarray(1));
    expect(signer.keyId).toBe(keyId('c74f20a3'));
    expect(signNote(PETER_TEXT, [signer])).toBe(PETER_NOTE);
    const v = ed25519NoteVerifier('PeterNeumann', b64(PETER_VKEY).subarray(1));
    expect(openNote(PETER_NOTE, [v]).note.text).toBe(PETER_TEXT);
    expect(codeOf(() => openNote(PETER_NOTE.replace('cryptography', 'cryptographY'), [v]))).toBe(
      'TRUST_BAD_SIGNATURE',
    );
  });

  it('verifies a real checkpoint: the log Ed25519 signature (ba2f06c0) and remora cosignature/v1 (da77ade7)', () => {
    const log = ed25519NoteVerifier(
      'arche2025h1.staging.ct.transparency.dev',
      b64(ARCHE_VKEY).subarray(1),
    );
    expect(log.keyId).toBe(keyId('ba2f06c0'));
    const remora = cosignatureVerifier('remora.n621.de', b64(REMORA_VKEY).subarray(1));
    expect(remora.keyId).toBe(keyId('da77ade7'));
    const cp = verifyWitnessedCheckpoint(ARCHE_NOTE, {
      origin: 'arche2025h1.staging.ct.transparency.dev',
      logVerifiers: [log],
      witnesses: [remora],
      quorum: 1,
    });
    expect(cp.checkpoint.size).toBe(1432088532);
    expect(cp.cosigners).toEqual(['remora.n621.de']);
    const clobbered = ARCHE_NOTE.replace('1432088532', '42');
    expect(
      codeOf(() =>
        verifyWitnessedCheckpoint(clobbered, {
          origin: cp.checkpoint.origin,
          logVerifiers: [log],
          witnesses: [remora],
          quorum: 1,
        }),
      ),
    ).toBe('TRUST_BAD_SIGNATURE');
  });

  it('rejects malformed notes and checkpoints with TRUST_NOTE_FORMAT', () => {
    for (const bad of [
      'no blank line\n\u2014 a AAAAAAA=\n',
      'text\n\n\u2014 a not*base64\n',
      'text\n\n- a AAAAAAAA\n',
      'text\n\n\u2014 a AAAAAAAA',
      'tab\there\n\n\u2014 a AAAAAAAA\n',
      'text\n\n\u2014 a AAAAAAA\n',
    ]) {
      expect(codeOf(() => parseNote(bad))).toBe('TRUST_NOTE_FORMAT');
    }
    for (const bad of [
      'o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n',
      'o\n1\nAAAA\n',
      '\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n',
      'o\n1\n',
    ]) {
      expect(codeOf(() => parseCheckpoint(bad))).toBe('TRUST_NOTE_FORMAT');
    }
  });

  it('composite note signatures (type 0xff ‖ OID) round-trip; other keys are ignored, a bad known one rejects', () => {
    const kp = compositeKeyGen();
    const s = compositeNoteSigner('genesis.test/log', new CompositeSigner(kp.alg, kp.secretKey));
    const v = compositeNoteVerifier('genesis.test/log', kp.alg, kp.publicKey);
    expect(v.keyId).toBe(s.keyId);
    const ed = ed25519KeyGen();
    const note = signNote('hello\n', [s, ed25519NoteSigner('other', ed.secretKey)]);
    expect(openNote(note, [v]).verified).toEqual([v]);
    const tampered = note.replace('hello', 'hellO');
    expect(codeOf(() => openNote(tampered, [v]))).toBe('TRUST_BAD_SIGNATURE');
    expect(
      codeOf(() => openNote(note, [ed25519NoteVerifier('nobody', ed25519KeyGen().publicKey)])),
    ).toBe('TRUST_BAD_SIGNATURE');
  });
});

describe('witnesses, k-of-n acceptance and split views', () => {
  const clock = new VirtualClock(1_700_000_000_000);
  const origin = 'genesis.test/region-log';
  const logKey = ed25519KeyGen();
  const logSigner = ed25519NoteSigner(origin, logKey.secretKey);
  const logVerifier = ed25519NoteVerifier(origin, logKey.publicKey);
  const witnessKeys = Array.from({ length: 5 }, () => ed25519KeyGen());
  const makeWitnesses = () =>
    witnessKeys.map(
      (k, i) =>
        new Witness({
          cosigner: cosigner(`w${i}.test`, k.secretKey),
          logs: [{ origin, verifiers: [logVerifier] }],
          state: new MemoryWitnessState(),
          clock,
        }),
    );
  const policy = {
    origin,
    logVerifiers: [logVerifier],
    witnesses: witnessKeys.map((k, i) => cosignatureVerifier(`w${i}.test`, k.publicKey)),
    quorum: 3,
  };
  const checkpointOf = (t: MemoryMerkleTree, size: number): string =>
    signNote(formatCheckpoint({ origin, size, root: t.root(size), extensions: [] }), [logSigner]);
  const leaves = (prefix: string, n: number): Uint8Array[] =>
    Array.from({ length: n }, (_, i) => new TextEncoder().encode(`${prefix}${i}`));

  it('witnesses cosign consistent growth; the client accepts with k of n and tracks consistency', () => {
    const ws = makeWitnesses();
    const t = MemoryMerkleTree.fromLeaves(leaves('e', 20));
    const tracker = new CheckpointTracker(policy, clock);
    let prev = 0;
    for (const size of [3, 8, 20]) {
      const note = checkpointOf(t, size);
      const proof = prev === 0 ? [] : consistencyProof(prev, size, t);
      const sigs = ws
        .slice(0, 3)
        .map((w) => w.addCheckpoint({ oldSize: prev, consistency: proof, checkpoint: note }));
      const withCosigs = addSignatures(note, sigs);
      expect(tracker.update(withCosigs, proof).checkpoint.size).toBe(size);
      prev = size;
    }
    // Only 2 of 5 cosignatures: below quorum.
    const note = checkpointOf(t, 20);
    expect(codeOf(() => verifyWitnessedCheckpoint(note, policy))).toBe('TRUST_BAD_SIGNATURE');
  });

  it('split view: a log showing two trees of the same size cannot gather a quorum for both, and clients detect it', () => {
    const ws = makeWitnesses();
    const honest = MemoryMerkleTree.fromLeaves(leaves('e', 10));
    const forked = MemoryMerkleTree.fromLeaves([...leaves('e', 6), ...leaves('evil', 4)]);
    const base = checkpointOf(honest, 6);
    for (const w of ws) w.addCheckpoint({ oldSize: 0, consistency: [], checkpoint: base });
    // The log shows view A to witnesses 0-2 and view B to witnesses 2-4 (witness 2 sees both).
    const viewA = checkpointOf(honest, 10);
    const viewB = checkpointOf(forked, 10);
    const cosA: string[] = [];
    const cosB: string[] = [];
    const line = (s: { name: string; keyId: number; signature: Uint8Array }): string => {
      const id = Buffer.alloc(4);
      id.writeUInt32BE(s.keyId >>> 0);
      return `\u2014 ${s.name} ${Buffer.concat([id, Buffer.from(s.signature)]).toString('base64')}\n`;
    };
    for (const w of ws.slice(0, 3))
      cosA.push(
        line(
          w.addCheckpoint({
            oldSize: 6,
            consistency: consistencyProof(6, 10, honest),
            checkpoint: viewA,
          }),
        ),
      );
    const errors: string[] = [];
    for (const w of ws.slice(2)) {
      try {
        cosB.push(
          line(
            w.addCheckpoint({
              oldSize: w.knownSize(origin),
              consistency: consistencyProof(6, 10, forked),
              checkpoint: viewB,
            }),
          ),
        );
      } catch (e) {
        errors.push(isTrustError(e) ? e.code : String(e));
      }
    }
    expect(errors).toEqual(['TRUST_SPLIT_VIEW']);
    expect(cosB.length).toBe(2);
    expect(verifyWitnessedCheckpoint(viewA + cosA.join(''), policy).cosigners.length).toBe(3);
    expect(codeOf(() => verifyWitnessedCheckpoint(viewB + cosB.join(''), policy))).toBe(
      'TRUST_BAD_SIGNATURE',
    );
    // A client that somehow saw both (quorum 2, e.g. a weaker policy) detects the split view.
    const weak = new CheckpointTracker({ ...policy, quorum: 2 });
    weak.update(viewA + cosA.join(''));
    expect(codeOf(() => weak.update(viewB + cosB.join('')))).toBe('TRUST_SPLIT_VIEW');
  });

  it('a witness refuses rollback, stale old sizes and inconsistent proofs', () => {
    const [w] = makeWitnesses();
    if (w === undefined) throw new Error('no witness');
    const t = MemoryMerkleTree.fromLeaves(leaves('e', 12));
    w.addCheckpoint({ oldSize: 0, consistency: [], checkpoint: checkpointOf(t, 8) });
    expect(
      codeOf(() =>
        w.addCheckpoint({ oldSize: 8, consistency: [], checkpoint: checkpointOf(t, 5) }),
      ),
    ).toBe('TRUST_ROLLBACK');
    expect(
      codeOf(() =>
        w.addCheckpoint({ oldSize: 5, consistency: [], checkpoint: checkpointOf(t, 12) }),
      ),
    ).toBe('TRUST_INCONSISTENT');
    expect(
      codeOf(() =>
        w.addCheckpoint({
          oldSize: 8,
          consistency: consistencyProof(7, 12, t),
          checkpoint: checkpointOf(t, 12),
        }),
      ),
    ).toBe('TRUST_INCONSISTENT');
    const other = ed25519NoteSigner(origin, ed25519KeyGen().secretKey);
    const forged = signNote(
      formatCheckpoint({ origin, size: 12, root: t.root(12), extensions: [] }),
      [other],
    );
    expect(
      codeOf(() =>
        w.addCheckpoint({
          oldSize: 8,
          consistency: consistencyProof(8, 12, t),
          checkpoint: forged,
        }),
      ),
    ).toBe('TRUST_BAD_SIGNATURE');
    expect(
      w.addCheckpoint({
        oldSize: 8,
        consistency: consistencyProof(8, 12, t),
        checkpoint: checkpointOf(t, 12),
      }).name,
    ).toBe('w0.test');
  });
});
