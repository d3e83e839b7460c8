/**
 * The Sim-RL loss as a vocabulary objective of the policy's LM-head pass over its N response
 * rows (the rows that predict each completion token): the token log-probs ℓ (TokenLogprobs),
 * then after the last chunk the PPO + KL token loss (engine/ops/policy_loss.ts), which writes
 * the gradient weight of each row and adds the weighted loss parts to a step accumulator; the
 * backward is the log-prob objective's (dlogits = (softmax − onehot)·dLoss).
 * Per-row data (ℓ_old, ℓ_ref, A, w = 1/(M·T_b)) is uploaded for each micro-batch.
 * Legend: N response rows.
 */
import type { Gpu } from "../engine/device.ts";
import type { Recorder } from "../engine/recorder.ts";
import { createTensor, releaseTensor, type Tensor, writeTensor } from "../engine/tensor.ts";
import { POLICY_PARTS, policyLoss, type PolicyLossOptions } from "../engine/ops/policy_loss.ts";
import type { VocabChunk, VocabObjective } from "../model/lm_head.ts";
import { TokenLogprobs } from "../model/objectives.ts";

export { POLICY_PARTS };

/** One response row: the token it predicts and what its loss needs. */
export interface PolicyRow {
  target: number;
  old: number;
  ref: number;
  adv: number;
  /** Weight of the row in the step's loss: 1 / (micro-batches × tokens of its micro-batch). */
  w: number;
}

export class SimrlObjective implements VocabObjective {
  readonly needsLse = true;
  readonly lp: TokenLogprobs;
  readonly #rowdata: Tensor; // (cap, 4): ℓ_old, ℓ_ref, A, w
  readonly #parts: Tensor; // (cap, 4)
  /** (4) Σ w·(pg, kl, clipped, ℓ_old − ℓ) over the step's rows (POLICY_PARTS order). */
  readonly acc: Tensor;
  #rows = 0;

  constructor(readonly gpu: Gpu, readonly cap: number, readonly loss: PolicyLossOptions) {
    this.lp = new TokenLogprobs(gpu, cap);
    this.#rowdata = createTensor(gpu, { shape: [cap, 4], dtype: "f32", label: "simrl.rowdata" });
    this.#parts = createTensor(gpu, { shape: [cap, 4], dtype: "f32", label: "simrl.parts" });
    this.acc = createTensor(gpu, { shape: [4], dtype: "f32", label: "simrl.acc" });
  }

  /** Uploads the rows of a micro-batch's pass. */
  begin(rows: PolicyRow[]): void {
    if (rows.length > this.cap) {
      throw new RangeError(
        `${rows.length} response rows exceed the Sim-RL objective's ${this.cap}`,
      );
    }
    this.#rows = rows.length;
    this.lp.write(rows.map((r) => r.target));
    writeTensor(
      this.gpu,
      this.#rowdata.rows(0, rows.length),
      Float32Array.from(rows.flatMap((r) => [r.old, r.ref, r.adv, r.w])),
    );
  }

  clearAcc(rec: Recorder): void {
    rec.clear(this.acc);
  }

  forward(c: VocabChunk): void {
    this.lp.forward(c);
  }

  finish(rec: Recorder, rows: number, stats: Tensor): void {
    this.lp.finish(rec, rows, stats);
    policyLoss(rec, {
      ...this.loss,
      logprobs: this.lp.logprobs,
      rowdata: this.#rowdata,
      dLoss: this.lp.dLoss,
      parts: this.#parts,
      acc: this.acc,
      rows: this.#rows,
    });
  }

  backward(c: VocabChunk & { dlogits: Tensor }): void {
    this.lp.backward(c);
  }

  release(): void {
    this.lp.release();
    for (const t of [this.#rowdata, this.#parts, this.acc]) releaseTensor(this.gpu, t);
  }
}
