/**
 * Seeded data order: each epoch is a Fisher-Yates shuffle of the row indices drawn from a
 * SplitMix64 stream seeded by (seed, epoch), so any epoch's order can be rebuilt on its own and
 * a run resumes exactly from a position (epoch, index) or from an optimizer step, with no
 * generator state to save. Like OpenRLHF's sampler (shuffle seeded by seed + epoch, last partial
 * batch dropped), but not bit-identical to torch.randperm.
 */

const MASK64 = (1n << 64n) - 1n;
const GOLDEN = 0x9e3779b97f4a7c15n;

/** SplitMix64 (Steele, Lea, Flood 2014): a 64-bit state advanced by a constant, then mixed. */
export class SplitMix64 {
  #state: bigint;

  constructor(seed: bigint | number) {
    this.#state = BigInt.asUintN(64, BigInt(seed));
  }

  /** The state as 16 hex digits (to save), and back. */
  get state(): string {
    return this.#state.toString(16).padStart(16, "0");
  }

  static fromState(hex: string): SplitMix64 {
    if (!/^[0-9a-f]{16}$/.test(hex)) throw new RangeError(`Bad generator state "${hex}"`);
    return new SplitMix64(BigInt(`0x${hex}`));
  }

  /** The next 64-bit output. */
  next(): bigint {
    this.#state = (this.#state + GOLDEN) & MASK64;
    let z = this.#state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    return z ^ (z >> 31n);
  }

  /** The high 32 bits of the next output. */
  nextU32(): number {
    return Number(this.next() >> 32n);
  }

  /** A uniform integer in [0, n), n ≤ 2^32, without modulo bias (rejection). */
  below(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) {
      throw new RangeError(`Cannot draw below ${n}`);
    }
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }
}

/** The generator of one epoch: seeded by mixing the run seed with the epoch number. */
export function epochRng(seed: number, epoch: number): SplitMix64 {
  const mixer = new SplitMix64(BigInt.asUintN(64, BigInt(seed)) ^ (BigInt(epoch) * GOLDEN));
  return new SplitMix64(mixer.next());
}

/** The order of `n` rows in `epoch`: a permutation of 0..n-1. */
export function epochOrder(n: number, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const rng = epochRng(seed, epoch);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/** Where the data stands: the next row to use is `order(epoch)[index]`. */
export interface DataPosition {
  epoch: number;
  index: number;
}

/**
 * Batches of row indices per optimizer step: `trainBatchSize` rows per step, split in
 * micro-batches of `microBatchSize`; floor(n / trainBatchSize) steps per epoch.
 */
export class DataOrder {
  readonly stepsPerEpoch: number;
  #cache?: { epoch: number; order: Uint32Array };

  constructor(
    readonly rows: number,
    readonly opts: { seed: number; trainBatchSize: number; microBatchSize: number },
  ) {
    if (opts.trainBatchSize % opts.microBatchSize !== 0) {
      throw new RangeError(
        `train_batch_size ${opts.trainBatchSize} is not a multiple of micro_train_batch_size ${opts.microBatchSize}`,
      );
    }
    this.stepsPerEpoch = Math.floor(rows / opts.trainBatchSize);
    if (this.stepsPerEpoch < 1) {
      throw new RangeError(
        `The data has ${rows} rows, fewer than one batch of ${opts.trainBatchSize}`,
      );
    }
  }

  /** The order of one epoch (the last one is kept). */
  order(epoch: number): Uint32Array {
    if (this.#cache?.epoch !== epoch) {
      this.#cache = { epoch, order: epochOrder(this.rows, this.opts.seed, epoch) };
    }
    return this.#cache.order;
  }

  /** The position before optimizer step `step` (0-based). */
  position(step: number): DataPosition {
    return {
      epoch: Math.floor(step / this.stepsPerEpoch),
      index: (step % this.stepsPerEpoch) * this.opts.trainBatchSize,
    };
  }

  /** The optimizer step that starts at a position (inverse of position()). */
  stepAt(pos: DataPosition): number {
    if (pos.index % this.opts.trainBatchSize !== 0) {
      throw new RangeError(`Data index ${pos.index} is not at a batch boundary`);
    }
    return pos.epoch * this.stepsPerEpoch + pos.index / this.opts.trainBatchSize;
  }

  /** The micro-batches (row indices) of optimizer step `step` (0-based). */
  batch(step: number): number[][] {
    const { epoch, index } = this.position(step);
    const order = this.order(epoch);
    const { trainBatchSize: tbs, microBatchSize: mbs } = this.opts;
    const out: number[][] = [];
    for (let o = index; o < index + tbs; o += mbs) out.push(Array.from(order.subarray(o, o + mbs)));
    return out;
  }
}
