/**
 * Public door of the store layer: Reed-Solomon erasure coding, CIDs, blockstores, placement,
 * repair and CRDT documents.
 */
export * from './erasure/index.ts';
