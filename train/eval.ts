/**
 * Held-out evaluation on the engine, shared by `star demo` and `star eval`: the KD loss and the
 * teacher-student top-1 agreement at target positions (the CKD backend's evaluate), and
 * generations from held-out prompts scored with the Sim-RL reward (reward/, exactly as
 * `star score` scores them) against the rows' targets.
 */
import type { Sample } from "../data/batch.ts";
import type { Tokenizer } from "../data/tokenizer.ts";
import { generate } from "../model/generate.ts";
import { GpuModel } from "../model/gpu_model.ts";
import { type Reward, simRlReward } from "../reward/sim_rl.ts";
import type { CkdBatchSample } from "./ckd_batch.ts";
import { CkdGpuBackend } from "./ckd_gpu.ts";

/** Held-out CKD loss (fkl + tail, the recipe's defaults) and top-1 agreement of student and teacher. */
export async function kdEval(
  student: string,
  teacher: string,
  samples: Sample[],
): Promise<{ kdLoss: number; agreement: number }> {
  const b = await CkdGpuBackend.load({
    student,
    teacher,
    frozen: true,
    ckd: { klType: "fkl", l1Coef: 10, topm: 100, kdRatio: 1, topk: 100 },
    adam: { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0, maxNorm: 1 },
  });
  try {
    let loss = 0, agree = 0, rows = 0;
    for (let i = 0; i < samples.length; i += 4) {
      const batch: CkdBatchSample[] = samples.slice(i, i + 4).map((s) => ({
        ids: Array.from(s.ids),
        promptLength: s.promptLength,
      }));
      const r = await b.evaluate(batch);
      loss += r.loss * r.rows;
      agree += r.agree;
      rows += r.rows;
    }
    return { kdLoss: loss / rows, agreement: agree / rows };
  } finally {
    b.release();
  }
}

/** One scored generation. */
export interface ScoredSample extends Reward {
  /** Index of the row in the list given. */
  row: number;
  sample: number;
  completion: string;
  completionIds: number[];
  finishReason: "stop" | "length";
}

/** A held-out row: its prompt tokens, and the prompt text and label the reward reads. */
export interface EvalRow {
  prompt: number[];
  /** The prompt as the reward sees it (its tools block is what calls are checked against). */
  inputs: string;
  targets: string;
}

/**
 * Generates `n` samples per row with the model (batched, KV cache; temperature 0 is greedy) and
 * scores each completion, decoded with special tokens kept, with the Sim-RL reward.
 */
export async function generateAndScore(o: {
  model: string | GpuModel;
  rows: EvalRow[];
  tokenizer: Tokenizer;
  maxNewTokens: number;
  temperature?: number;
  n?: number;
  seed?: number;
  /**
   * The first row's index in the whole set: each sample's random stream is keyed by
   * (seed, firstRow + row, sample), so a set generated in parts samples as it would in one.
   */
  firstRow?: number;
  maxBatch?: number;
}): Promise<ScoredSample[]> {
  const m = typeof o.model === "string"
    ? await GpuModel.load(o.model, { precision: "checkpoint" })
    : o.model;
  try {
    const n = o.n ?? 1;
    const first = o.firstRow ?? 0;
    const reqs = o.rows.flatMap((r, i) =>
      Array.from({ length: n }, (_, s) => ({ prompt: r.prompt, example: first + i, sample: s }))
    );
    const eos = m.config.eos_token_id;
    const stopIds = [
      ...new Set([...stopTokens(o.tokenizer), ...(eos === null ? [] : [eos].flat())]),
    ];
    const gens = await generate(m, reqs, {
      maxNewTokens: o.maxNewTokens,
      temperature: o.temperature ?? 0,
      seed: o.seed ?? 0,
      stopIds,
      maxBatch: o.maxBatch ?? 8,
    });
    return gens.map((g, j) => {
      const row = reqs[j].example - first, r = o.rows[row];
      const completion = o.tokenizer.decode(g.ids);
      return {
        row,
        sample: reqs[j].sample,
        completion,
        completionIds: g.ids,
        finishReason: g.finishReason,
        ...simRlReward(r.inputs, completion, r.targets),
      };
    });
  } finally {
    if (typeof o.model === "string") m.release();
  }
}

/** Mean reward and format-valid rate of scored samples. */
export function rewardSummary(s: readonly Reward[]): { reward: number; formatRate: number } {
  const n = Math.max(1, s.length);
  return {
    reward: s.reduce((a, r) => a + r.reward, 0) / n,
    formatRate: s.filter((r) => r.format === 1).length / n,
  };
}

/**
 * Greedy generation for a harness: the model of `dir` (frozen, weights packed where that pays)
 * and a function from prompt texts to completion texts, the text after each prompt up to and
 * without the end token (as an OpenAI-compatible server returns it). `release()` when done.
 */
export async function greedyTextGenerator(
  dir: string,
  o: { maxNewTokens: (promptTokens: number) => number; maxBatch?: number },
): Promise<{ generate: (prompts: string[]) => Promise<string[]>; release: () => void }> {
  const { Tokenizer } = await import("../data/tokenizer.ts");
  const m = await GpuModel.load(dir, { precision: "checkpoint" });
  await m.packWeights();
  const tok = await Tokenizer.load(dir);
  const eos = m.config.eos_token_id;
  const stopIds = [...new Set([...stopTokens(tok), ...(eos === null ? [] : [eos].flat())])];
  return {
    generate: async (prompts) => {
      const ids = prompts.map((p) => tok.encode(p));
      const longest = Math.max(...ids.map((x) => x.length));
      const gens = await generate(
        m,
        ids.map((prompt, i) => ({ prompt, example: i })),
        {
          maxNewTokens: o.maxNewTokens(longest),
          temperature: 0,
          stopIds,
          maxBatch: o.maxBatch ?? 8,
        },
      );
      return gens.map((g) => tok.decode(g.ids, { skipSpecialTokens: true }));
    },
    release: () => m.release(),
  };
}

/** The end tokens of a tokenizer: its eos_token and Qwen's <|im_end|> and <|endoftext|>. */
export function stopTokens(tok: Tokenizer): number[] {
  const ids = [
    tok.specialTokenId("eos_token"),
    tok.tokenToId("<|im_end|>"),
    tok.tokenToId("<|endoftext|>"),
  ];
  return [...new Set(ids.filter((x): x is number => x !== undefined))];
}
