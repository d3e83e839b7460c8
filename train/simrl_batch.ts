/**
 * What the Sim-RL backends share: a sampled response as token ids, a sample ready to train on
 * (its advantage and the old and reference log-probs of its completion tokens), the rows of a
 * packed micro-batch that predict completion tokens, and the interface of a backend beyond the
 * optimizer step: sampling with the policy and scoring completions under the policy or the
 * frozen reference.
 */
import type { GenerateOptions, GenerateRequest, Generation } from "../model/generate.ts";
import type { TrainBackend } from "./step.ts";

/** A sampled response to a prompt, as token ids. */
export interface SimrlSequence {
  promptIds: number[];
  /** The response as trained, an appended EOS included (at least one token). */
  completionIds: number[];
}

/** A sample ready to train on. */
export interface SimrlRefSample extends SimrlSequence {
  /** The sample's advantage (or one per completion token). */
  advantage: number | ArrayLike<number>;
  /** ℓ_old and ℓ_ref of the completion tokens (completionIds.length each). */
  oldLogprobs: ArrayLike<number>;
  refLogprobs: ArrayLike<number>;
}

export type SimrlSample = SimrlRefSample;

/** A Sim-RL backend: the optimizer step over micro-batches of samples, sampling and scoring. */
export interface SimrlBackend extends TrainBackend<SimrlSample[]> {
  /** Samples with the policy's current weights (greedy at temperature 0). */
  generate(reqs: GenerateRequest[], opts: GenerateOptions): Promise<Generation[]>;
  /** ℓ of each completion token under the policy (ℓ_old) or the frozen reference (ℓ_ref). */
  completionLogprobs(seqs: SimrlSequence[], model: "policy" | "reference"): Promise<Float64Array[]>;
  release(): void;
}

/**
 * The rows of packed sequences (prompt ++ completion each) that predict a completion token, as
 * spans (one per sequence), and the token each row predicts, in order.
 */
export function completionSpans(seqs: readonly SimrlSequence[]): {
  spans: { start: number; len: number }[];
  targets: number[];
} {
  const spans: { start: number; len: number }[] = [], targets: number[] = [];
  let off = 0;
  for (const s of seqs) {
    spans.push({ start: off + s.promptIds.length - 1, len: s.completionIds.length });
    targets.push(...s.completionIds);
    off += s.promptIds.length + s.completionIds.length;
  }
  return { spans, targets };
}
