/**
 * `star simrl`: Similarity-guided RL as STAR ran it (shared/SIMRL.md), one straight loop on the
 * run skeleton (train/run.ts): per episode the prompts in a seeded order; per rollout batch,
 * generation batches of rollout_batch_size prompts × n samples until rollout_batch_size groups
 * pass the dynamic filter (the surplus dropped; a batch still short when the episode's prompts
 * run out is dropped, as STAR drops it); rewards from reward/ (a format failure is −1 for the
 * advantages and 0 for the filter); group advantages; ℓ_old from the policy before the batch's
 * first update and ℓ_ref from the frozen reference; then the batch's optimizer steps (the shared
 * core, train/step.ts) over a seeded layout of micro-batches (train/grpo.ts), the learning rate
 * over STAR's step horizon. Sampling streams are seeded by (seed, episode·prompts + prompt,
 * sample), so a resumed run samples what an uninterrupted one does.
 * Simplifications: one process and device; one data-parallel rank (the kept samples are shuffled
 * together; STAR's 8 ranks shuffle within 8 slices: equal in distribution, SIMRL.md 4.9);
 * checkpoints are written at the end of the rollout batch in which save_steps falls, so an
 * interrupted rollout batch restarts from its beginning.
 */
import { join } from "node:path";
import { loadTrainset, type Sample } from "../data/batch.ts";
import { readJsonl } from "../data/jsonl.ts";
import type { Tokenizer } from "../data/tokenizer.ts";
import { DataError } from "../lib/errors.ts";
import type { Generation } from "../model/generate.ts";
import { RewardError } from "../reward/errors.ts";
import { type Reward, simRlReward } from "../reward/sim_rl.ts";
import type { TrainerState } from "./checkpoint.ts";
import { ConfigError, type SimrlConfig } from "./config.ts";
import { epochOrder } from "./data_order.ts";
import { groupAdvantages, KeptGroups, sampleSlots, simrlTotalSteps, trainLayout } from "./grpo.ts";
import { klEstimateRef } from "./simrl_loss_ref.ts";
import type { MetricsRow } from "./metrics.ts";
import { schedulerState } from "./loop.ts";
import { RolloutLog, type RolloutRow, ROLLOUTS_FILE } from "./rollout_log.ts";
import { type ProgressSetting, Run } from "./run.ts";
import type { SimrlBackend, SimrlSample } from "./simrl_batch.ts";
import { lrSchedule } from "./schedule.ts";
import { metricsRow, optimizerStep } from "./step.ts";

export type SimrlDevice = "gpu" | "cpu";

export interface SimrlRunOptions {
  device?: SimrlDevice;
  log?: (line: string) => void;
  progress?: ProgressSetting;
  onStep?: (row: MetricsRow) => void | Promise<void>;
}

export interface SimrlRunResult {
  steps: number;
  rolloutBatches: number;
  prompts: number;
  skippedRows: number;
  finalDir: string;
}

/** One prompt of the data set, tokenized, with the texts the reward reads. */
interface Prompt {
  index: number;
  id: unknown;
  line: number;
  ids: number[];
  inputs: string;
  targets: string;
}

/** One sample of a group, scored. */
interface Scored extends Reward {
  prompt: Prompt;
  sample: number;
  completionIds: number[];
  completion: string;
  finishReason: "stop" | "length";
}

/** Runs (or resumes) a Sim-RL training run as configured. */
export async function runSimrl(
  cfg: SimrlConfig,
  opts: SimrlRunOptions = {},
): Promise<SimrlRunResult> {
  checkShape(cfg);
  const run = await Run.open(cfg, {
    name: "simrl",
    model: cfg.pretrain,
    log: opts.log,
    onStep: opts.onStep,
    progress: opts.progress ?? { label: "simrl" },
  });
  let backend: SimrlBackend | undefined;
  let rollouts: RolloutLog | undefined;
  try {
    const { prompts, skipped } = await loadPrompts(cfg, run);
    const replay = cfg.replay_rollouts ? await loadReplay(cfg) : undefined;
    backend = await loadBackend(cfg, run, opts.device ?? "gpu", prompts);
    rollouts = await RolloutLog.open(join(cfg.output_dir, ROLLOUTS_FILE), {
      keepBatches: run.resume ? Number(run.resume.state.rollout_batch ?? 0) : undefined,
    });
    const r = await trainEpisodes({ cfg, run, backend, prompts, replay, rollouts });
    return { ...r, prompts: prompts.length, skippedRows: skipped };
  } finally {
    rollouts?.close();
    backend?.release();
    run.close();
  }
}

/** Rollout batches must cut into whole optimizer steps of whole micro-batches. */
function checkShape(cfg: SimrlConfig): void {
  const samples = cfg.rollout_batch_size * cfg.n_samples_per_prompt;
  if (cfg.train_batch_size % cfg.micro_train_batch_size !== 0) {
    throw new ConfigError(
      `"train_batch_size" (${cfg.train_batch_size}) must be a multiple of "micro_train_batch_size" (${cfg.micro_train_batch_size})`,
    );
  }
  if (samples % cfg.train_batch_size !== 0) {
    throw new ConfigError(
      `A rollout batch of ${samples} samples ("rollout_batch_size" × "n_samples_per_prompt") does not split into steps of "train_batch_size" ${cfg.train_batch_size}`,
    );
  }
  if (cfg.advantage_estimator === "group_norm" && cfg.n_samples_per_prompt < 2) {
    throw new ConfigError(`"advantage_estimator" group_norm needs "n_samples_per_prompt" >= 2`);
  }
}

/**
 * The trainset's prompts: rows whose prompt is longer than prompt_max_len are skipped and
 * counted (never truncated: that would cut the generation prompt); rows without targets or with
 * a label (or tools block) the reward cannot parse are reported with their line and skipped.
 */
async function loadPrompts(
  cfg: SimrlConfig,
  run: Run,
): Promise<{ prompts: Prompt[]; skipped: number }> {
  let bad = 0;
  const report = (e: DataError) => {
    bad++;
    run.log(`simrl: ${e.message} (skipped)`);
  };
  const { samples, stats } = await loadTrainset(cfg.data, run.tokenizer, {
    promptMaxLen: cfg.prompt_max_len,
    generateMaxLen: cfg.generate_max_len,
    keepText: true,
    onError: report,
  });
  const prompts: Prompt[] = [];
  for (const s of samples) {
    try {
      simRlReward(s.inputs!, "", s.targets!);
    } catch (e) {
      if (!(e instanceof RewardError)) throw e;
      report(
        new DataError(cfg.data, s.line, e.message, e.field === "label" ? "targets" : "inputs"),
      );
      continue;
    }
    prompts.push(promptOf(s, prompts.length));
  }
  run.checkTokens(cfg.data, prompts);
  run.log(
    `simrl: ${prompts.length} prompts from "${cfg.data}" (${stats.droppedLongPrompt} skipped: ` +
      `prompt over ${cfg.prompt_max_len} tokens; ${bad} skipped: bad row)`,
  );
  if (prompts.length === 0) throw new ConfigError(`"${cfg.data}" has no usable prompt`);
  return { prompts, skipped: bad + stats.droppedLongPrompt };
}

function promptOf(s: Sample, index: number): Prompt {
  return {
    index,
    id: s.id ?? s.line,
    line: s.line,
    ids: Array.from(s.ids.subarray(0, s.promptLength)),
    inputs: s.inputs!,
    targets: s.targets!,
  };
}

/**
 * replay_rollouts: each prompt's completion_ids rows in file order, by id (a prompt sampled in
 * episode e takes rows e·n … e·n+n−1, wrapping around; fewer than n rows is an error when it is
 * sampled).
 */
async function loadReplay(cfg: SimrlConfig): Promise<Map<string, number[][]>> {
  const file = cfg.replay_rollouts!;
  const byId = new Map<string, number[][]>();
  for await (const { line, value } of readJsonl(file)) {
    const row = value as { id?: unknown; completion_ids?: unknown };
    const ids = row?.completion_ids;
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((x) => Number.isInteger(x))) {
      throw new DataError(
        file,
        line,
        'field "completion_ids" must be a non-empty array of token ids',
        "completion_ids",
      );
    }
    const key = JSON.stringify(row.id);
    if (!byId.has(key)) byId.set(key, []);
    byId.get(key)!.push(ids as number[]);
  }
  return byId;
}

async function loadBackend(
  cfg: SimrlConfig,
  run: Run,
  device: SimrlDevice,
  prompts: Prompt[],
): Promise<SimrlBackend> {
  const loss = {
    epsClip: cfg.eps_clip,
    klCoef: cfg.use_kl_loss ? cfg.init_kl_coef : 0,
    klEstimator: cfg.kl_estimator,
  };
  const adam = { betas: cfg.adam_betas, eps: cfg.adam_eps, weightDecay: cfg.weight_decay };
  const load = {
    policy: run.startDir,
    reference: cfg.reference ?? cfg.pretrain,
    optimizerFile: run.optimizerFile,
    loss,
  };
  if (device === "cpu") {
    const { SimrlCpuBackend } = await import("./simrl_cpu.ts");
    return await SimrlCpuBackend.load({ ...load, adam });
  }
  const { SimrlGpuBackend } = await import("./simrl_gpu.ts");
  const longest = Math.max(...prompts.map((p) => p.ids.length)) + cfg.generate_max_len + 1;
  return await SimrlGpuBackend.load({
    ...load,
    adam: { ...adam, maxNorm: cfg.max_norm },
    tokens: cfg.micro_train_batch_size * longest,
    decodeBatch: decodeBatch(cfg),
  });
}

interface Episodes {
  cfg: SimrlConfig;
  run: Run;
  backend: SimrlBackend;
  prompts: Prompt[];
  replay?: Map<string, number[][]>;
  rollouts: RolloutLog;
}

/** The episodes from the resume point: rollout batches until the prompts or steps run out. */
async function trainEpisodes(o: Episodes) {
  const { cfg, run, prompts } = o;
  const N = prompts.length;
  const horizon = simrlTotalSteps({
    prompts: N,
    nSamplesPerPrompt: cfg.n_samples_per_prompt,
    trainBatchSize: cfg.train_batch_size,
    numEpisodes: cfg.num_episodes,
    maxEpochs: cfg.max_epochs,
  });
  const sched = lrSchedule({
    name: cfg.lr_scheduler,
    learningRate: cfg.learning_rate,
    totalSteps: horizon,
    warmupRatio: cfg.lr_warmup_ratio,
    minLrRatio: cfg.min_lr_ratio,
  });
  const limit = Math.min(horizon, cfg.max_steps ?? Infinity);
  const st = run.resume?.state;
  const c = {
    step: st?.step ?? 0,
    skipped: st?.skipped_steps ?? 0,
    tokens: st?.tokens_seen ?? 0,
    lastLr: st?.lr_scheduler.last_lr ?? 0,
    batch: Number(st?.rollout_batch ?? 0),
    episode: st?.epoch ?? 0,
    cursor: st?.data_index ?? 0,
  };
  const state = (): TrainerState => ({
    step: c.step,
    epoch: c.episode,
    data_index: c.cursor,
    seed: cfg.seed,
    lr_scheduler: schedulerState(cfg, sched, c.lastLr),
    skipped_steps: c.skipped,
    tokens_seen: c.tokens,
    rollout_batch: c.batch,
  });
  const checkpoint = () =>
    run.checkpoint({
      model: o.backend.model(),
      optimizer: o.backend.optimizer(c.step - c.skipped),
      state: state(),
    });
  let saved = st?.step ?? -1;
  run.startProgress(limit);
  for (; c.episode < cfg.num_episodes && c.step < limit; c.episode++, c.cursor = 0) {
    const order = epochOrder(N, cfg.seed, c.episode);
    while (c.cursor < N && c.step < limit) {
      const stepsBefore = c.step;
      const batch = await collectBatch(o, order, c);
      if (!batch) break; // the episode's remaining prompts do not fill a rollout batch
      c.batch++;
      const steps = await trainBatch(o, batch, { ...c, sched, limit });
      Object.assign(c, steps);
      const due = cfg.save_steps > 0 &&
        Math.floor(c.step / cfg.save_steps) > Math.floor(stepsBefore / cfg.save_steps);
      if (due && c.step < limit) {
        await checkpoint();
        saved = c.step;
      }
    }
  }
  run.close();
  if (saved !== c.step) await checkpoint();
  const finalDir = await run.finish(o.backend.model());
  return { steps: c.step, rolloutBatches: c.batch, finalDir };
}

/** A rollout batch: its kept groups, every sample generated for it, and its metrics. */
interface RolloutBatch {
  kept: Scored[][];
  all: Scored[];
  groups: number;
  genSeconds: number;
  rewardSeconds: number;
  /** Of genSeconds: prompts into the KV cache, and the decode steps (engine only). */
  prefillSeconds: number;
  decodeSeconds: number;
}

/**
 * Generation batches of rollout_batch_size prompts from the cursor until rollout_batch_size
 * groups pass the filter; undefined when the episode runs out first (that remainder is dropped).
 */
async function collectBatch(
  o: Episodes,
  order: Uint32Array,
  c: { cursor: number; episode: number },
): Promise<RolloutBatch | undefined> {
  const { cfg } = o;
  const kept = new KeptGroups<Scored[]>({
    rolloutBatchSize: cfg.rollout_batch_size,
    filter: { enabled: cfg.dynamic_filtering, range: cfg.dynamic_filtering_reward_range },
    scores: (g) => g.map((s) => s.answer),
  });
  const all: Scored[] = [];
  const time = { generate: 0, reward: 0, prefill: 0, decode: 0 };
  while (!kept.full) {
    if (c.cursor >= order.length) {
      if (kept.seen > 0) {
        o.run.log(
          `simrl: episode ${c.episode + 1} ran out of prompts with ${kept.kept.length} of ` +
            `${cfg.rollout_batch_size} groups kept (${kept.seen} sampled); those are dropped`,
        );
      }
      return undefined;
    }
    const chosen = Array.from(order.subarray(c.cursor, c.cursor + cfg.rollout_batch_size));
    c.cursor += chosen.length;
    const groups = await sampleGroups(o, chosen.map((i) => o.prompts[i]), c.episode, time);
    kept.add(groups);
    all.push(...groups.flat());
  }
  return {
    kept: [...kept.kept],
    all,
    groups: kept.seen,
    genSeconds: time.generate,
    rewardSeconds: time.reward,
    prefillSeconds: time.prefill,
    decodeSeconds: time.decode,
  };
}

/**
 * n samples of each prompt (sampled, or replayed), each scored with the Sim-RL reward; adds the
 * seconds spent generating and scoring to `time`.
 */
async function sampleGroups(
  o: Episodes,
  prompts: Prompt[],
  episode: number,
  time: { generate: number; reward: number; prefill: number; decode: number },
): Promise<Scored[][]> {
  const { cfg, backend, run } = o;
  const t0 = performance.now();
  const n = cfg.n_samples_per_prompt, tok = run.tokenizer;
  const eos = eosId(tok);
  let gens: Generation[];
  if (o.replay) {
    gens = prompts.flatMap((p) => {
      const rows = o.replay!.get(JSON.stringify(p.id)) ?? [];
      if (rows.length < n) {
        throw new ConfigError(
          `"${cfg.replay_rollouts}" has ${rows.length} rows for id ${
            JSON.stringify(p.id)
          }, fewer than "n_samples_per_prompt" ${n}`,
        );
      }
      return Array.from(
        { length: n },
        (_, j) => replayed(rows[(episode * n + j) % rows.length], eos, cfg),
      );
    });
  } else {
    const timing = { prefillSeconds: 0, decodeSeconds: 0 };
    gens = await backend.generate(
      prompts.flatMap((p) =>
        Array.from({ length: n }, (_, j) => ({
          prompt: p.ids,
          example: episode * o.prompts.length + p.index,
          sample: j,
        }))
      ),
      {
        maxNewTokens: cfg.generate_max_len,
        temperature: cfg.temperature,
        topP: cfg.top_p,
        topK: cfg.top_k > 0 ? cfg.top_k : 0,
        seed: cfg.seed,
        stopIds: [eos],
        maxBatch: decodeBatch(cfg),
        timing,
      },
    );
    time.prefill += timing.prefillSeconds;
    time.decode += timing.decodeSeconds;
  }
  const t1 = performance.now();
  time.generate += (t1 - t0) / 1000;
  const scored = prompts.map((p, i) =>
    gens.slice(i * n, (i + 1) * n).map((g, j) => {
      // a response cut at generate_max_len gets an EOS appended: trained on, seen by the reward
      const ids = g.finishReason === "length" && g.ids.at(-1) !== eos ? [...g.ids, eos] : g.ids;
      const completion = tok.decode(ids);
      return {
        prompt: p,
        sample: j,
        completionIds: ids,
        completion,
        finishReason: g.finishReason,
        ...simRlReward(p.inputs, completion, p.targets),
      };
    })
  );
  time.reward += (performance.now() - t1) / 1000;
  return scored;
}

/** Sequences decoded together: micro_rollout_batch_size prompts' samples. */
function decodeBatch(cfg: SimrlConfig): number {
  return Math.max(1, cfg.micro_rollout_batch_size) * cfg.n_samples_per_prompt;
}

/** A replayed completion as generation would have returned it (cut at generate_max_len). */
function replayed(ids: number[], eos: number, cfg: SimrlConfig): Generation {
  const body = ids.at(-1) === eos ? ids.slice(0, -1) : ids;
  if (body.length < ids.length && body.length < cfg.generate_max_len) {
    return { ids, logprobs: [], finishReason: "stop" };
  }
  return { ids: body.slice(0, cfg.generate_max_len), logprobs: [], finishReason: "length" };
}

/** The token that ends a response: the tokenizer's eos_token (<|im_end|> for Qwen chat). */
function eosId(tok: Tokenizer): number {
  const id = tok.specialTokenId("eos_token") ?? tok.tokenToId("<|im_end|>");
  if (id === undefined) throw new ConfigError("The tokenizer names no eos_token");
  return id;
}

/**
 * Advantages, ℓ_old and ℓ_ref of the kept samples, then the rollout batch's optimizer steps;
 * writes the metrics rows and the batch's rollout rows. Returns the counters after it.
 */
async function trainBatch(
  o: Episodes,
  b: RolloutBatch,
  c: {
    step: number;
    skipped: number;
    tokens: number;
    lastLr: number;
    batch: number;
    sched: ReturnType<typeof lrSchedule>;
    limit: number;
  },
) {
  const { cfg, backend, run } = o;
  const samples = b.kept.flat();
  const adv = b.kept.flatMap((g) =>
    Array.from(groupAdvantages(g.map((s) => s.reward), cfg.advantage_estimator))
  );
  const seqs = samples.map((s) => ({ promptIds: s.prompt.ids, completionIds: s.completionIds }));
  const t0 = performance.now();
  const old = await backend.completionLogprobs(seqs, "policy");
  const ref = await backend.completionLogprobs(seqs, "reference");
  const logprobSeconds = (performance.now() - t0) / 1000;
  const train: SimrlSample[] = seqs.map((s, i) => ({
    ...s,
    advantage: cfg.use_kl_loss ? adv[i] : klInReward(adv[i], old[i], ref[i], cfg),
    oldLogprobs: old[i],
    refLogprobs: ref[i],
  }));
  const layout = trainLayout({
    samples: samples.length,
    trainBatchSize: cfg.train_batch_size,
    microTrainBatchSize: cfg.micro_train_batch_size,
    maxEpochs: cfg.max_epochs,
    seed: cfg.seed,
    rolloutBatch: c.batch,
  });
  const first = c.step, rollout = rolloutMetrics(b);
  let trainSeconds = 0, trainTokens = 0;
  for (const micro of layout) {
    if (c.step >= c.limit) break;
    const lr = c.sched.lr(c.step);
    const r = await optimizerStep(backend, micro.map((mb) => mb.map((i) => train[i])), {
      lr,
      maxNorm: cfg.max_norm,
      adamStep: c.step - c.skipped + 1,
    });
    if (r.skipped) c.skipped++;
    c.step++;
    c.lastLr = lr;
    c.tokens += r.tokens;
    trainSeconds += r.seconds;
    trainTokens += r.tokens;
    await run.step({
      ...metricsRow(c.step, r),
      ...rollout,
      logprobs_seconds: logprobSeconds,
      update_seconds: trainSeconds,
      train_tokens_per_s: trainTokens / Math.max(trainSeconds, 1e-9),
    }, c.limit);
  }
  await o.rollouts.write(rolloutRows(b, adv, sampleSlots(layout, samples.length), first, c.batch));
  return { step: c.step, skipped: c.skipped, tokens: c.tokens, lastLr: c.lastLr };
}

/**
 * use_kl_loss false: the KL goes into the reward (OpenRLHF compute_reward, γ = 1): token t's
 * advantage is A − β·Σ_{t' ≥ t} kl_{t'} with kl the clamped estimate of ℓ_old − ℓ_ref.
 */
function klInReward(a: number, old: Float64Array, ref: Float64Array, cfg: SimrlConfig) {
  const out = new Float64Array(old.length);
  let tail = 0;
  for (let t = old.length - 1; t >= 0; t--) {
    tail += cfg.init_kl_coef * klEstimateRef(old[t] - ref[t], cfg.kl_estimator).value;
    out[t] = a - tail;
  }
  return out;
}

/** The rollout batch's figures on every metrics row of its steps (all samples generated). */
function rolloutMetrics(b: RolloutBatch): Record<string, number> {
  const n = Math.max(1, b.all.length);
  const sum = (f: (s: Scored) => number) => b.all.reduce((a, s) => a + f(s), 0);
  const genTokens = sum((s) => s.completionIds.length);
  return {
    reward_mean: sum((s) => s.reward) / n,
    format_rate: sum((s) => (s.format === 1 ? 1 : 0)) / n,
    answer_mean: sum((s) => s.answer) / n,
    groups: b.groups,
    kept_groups: b.kept.length,
    response_length_mean: genTokens / n,
    truncated_rate: sum((s) => (s.finishReason === "length" ? 1 : 0)) / n,
    gen_tokens_per_s: genTokens / Math.max(b.genSeconds, 1e-9),
    generate_seconds: b.genSeconds,
    prefill_seconds: b.prefillSeconds,
    decode_seconds: b.decodeSeconds,
    reward_seconds: b.rewardSeconds,
  };
}

function rolloutRows(
  b: RolloutBatch,
  adv: number[],
  slots: { step: number; microBatch: number }[][],
  stepsBefore: number,
  batch: number,
): RolloutRow[] {
  const keptAt = new Map<Scored, number>();
  b.kept.flat().forEach((s, i) => keptAt.set(s, i));
  return b.all.map((s) => {
    const i = keptAt.get(s), slot = i === undefined ? undefined : slots[i]?.[0];
    return {
      rollout_batch: batch,
      id: s.prompt.id,
      sample: s.sample,
      completion: s.completion,
      completion_ids: s.completionIds,
      finish_reason: s.finishReason,
      reward: s.reward,
      score: s.answer,
      format: s.format,
      answer: s.answer,
      kept: i !== undefined,
      advantage: i === undefined ? null : adv[i],
      step: slot ? stepsBefore + slot.step + 1 : null,
      micro_batch: slot ? slot.microBatch : null,
    };
  });
}
