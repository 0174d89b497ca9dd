import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  blockCid,
  CHUNK_BYTES,
  DAG_CBOR_CODE,
  decodeManifest,
  encodeManifest,
  isStoreError,
  parseCid,
  RAW_CODE,
  rawCid,
  verifyBlock,
} from '../../src/store/index.ts';

interface Vector {
  name: string;
  inputHex?: string;
  inputUtf8?: string;
  version: number;
  codec: string;
  cidBytesHex?: string;
  cid: string;
}
const vectors = (
  JSON.parse(
    readFileSync(new URL('../../../shared/vectors/cid/vectors.json', import.meta.url), 'utf8'),
  ) as { vectors: Vector[] }
).vectors;

describe('CIDs (known answers from /shared/vectors/cid)', () => {
  it('hello world raw leaf is the unixfs-v1-2025 small-file CID', () => {
    expect(rawCid(new TextEncoder().encode('hello world')).toString()).toBe(
      'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e',
    );
  });

  for (const v of vectors.filter(
    (x) =>
      x.version === 1 && (x.codec === 'raw' || x.codec === 'dag-cbor') && x.inputUtf8 !== undefined,
  )) {
    it(`reproduces ${v.name}`, () => {
      const input = new TextEncoder().encode(v.inputUtf8 as string);
      const cid = blockCid(v.codec === 'raw' ? RAW_CODE : DAG_CBOR_CODE, input);
      expect(cid.toString()).toBe(v.cid);
      if (v.cidBytesHex !== undefined)
        expect(Buffer.from(cid.bytes).toString('hex')).toBe(v.cidBytesHex);
      expect(parseCid(v.cid).equals(cid)).toBe(true);
    });
  }

  for (const v of vectors.filter((x) => x.version === 0 || x.codec === 'dag-pb')) {
    it(`rejects unsupported ${v.name} with a typed error`, () => {
      expect(() => parseCid(v.cid)).toThrow(expect.objectContaining({ code: 'STORE_BAD_CID' }));
    });
  }

  it('rejects garbage CID text', () => {
    for (const t of ['', 'hello', 'bafkrei!!!', 'Qm'])
      expect(() => parseCid(t)).toThrow(expect.objectContaining({ code: 'STORE_BAD_CID' }));
  });

  it('verifyBlock rejects any single flipped bit', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 512 }), fc.nat(), (bytes, at) => {
        const cid = rawCid(bytes);
        verifyBlock(cid, bytes);
        const bad = Uint8Array.from(bytes);
        const i = at % bad.length;
        bad[i] = (bad[i] ?? 0) ^ (1 << (at % 8));
        try {
          verifyBlock(cid, bad);
          return false;
        } catch (e) {
          return isStoreError(e, 'STORE_CID_MISMATCH');
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('manifest', () => {
  it('round-trips and links chunks as IPLD CIDs', () => {
    const size = CHUNK_BYTES * 2 + 5;
    const chunks = [0, 1, 2].map((i) => rawCid(new Uint8Array([i])));
    const m = encodeManifest(size, chunks);
    expect(m.cid.code).toBe(DAG_CBOR_CODE);
    verifyBlock(m.cid, m.bytes);
    const back = decodeManifest(m.bytes);
    expect(back.size).toBe(size);
    expect(back.chunks.map(String)).toEqual(chunks.map(String));
  });

  it('rejects inconsistent or hostile manifests', () => {
    const chunks = [0, 1].map((i) => rawCid(new Uint8Array([i])));
    expect(() => encodeManifest(CHUNK_BYTES * 3, chunks)).toThrow(
      expect.objectContaining({ code: 'STORE_BAD_MANIFEST' }),
    );
    expect(() => decodeManifest(new Uint8Array([0xff, 0x00]))).toThrow(
      expect.objectContaining({ code: 'STORE_BAD_MANIFEST' }),
    );
    const ok = encodeManifest(CHUNK_BYTES + 1, chunks);
    const tampered = Uint8Array.from(ok.bytes);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 0xff;
    expect(() => verifyBlock(ok.cid, tampered)).toThrow(
      expect.objectContaining({ code: 'STORE_CID_MISMATCH' }),
    );
  });
});
