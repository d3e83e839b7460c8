/**
 * `star rollout`: STAR's teacher rollout (data_process/teacher_rollout.py), the data step before
 * CKD. For each conversation whose last message is the assistant's, messages[:-1] and the tools
 * are rendered by the chat template with the generation prompt (data/trainset.ts, as `star
 * prepare` renders), rollout_n completions are sampled on the engine (`teacher`) or on an
 * OpenAI-compatible server (`server`, train/openai_client.ts), those passing STAR's format check
 * (reward/rollout_format.ts) and, with `min_reward`, scoring at least that Sim-RL reward against
 * the original answer are kept, duplicates are dropped, and one row per kept answer is written.
 * Other conversations pass through; those left with no answer are dropped and counted.
 * Resumable: after the rows of each save are on disk, OUTPUT.progress.json records the output's
 * length, the inputs done and the counts; a re-run cuts the output to that length and goes on
 * after those inputs. Rows are whole and in input order.
 * Unlike STAR: passed-through rows keep their place (STAR writes them first), a server that
 * stays down ends the run instead of dropping the batch, sampling is seeded by (seed, row).
 */
import { dirname } from "node:path";
import { DataError } from "../lib/errors.ts";
import { readLines } from "../data/jsonl.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { checkMessagesRow, promptText, toTrainsetRow } from "../data/trainset.ts";
import { readModelConfig } from "../model/config.ts";
import { sampleSeed } from "../model/sampling.ts";
import {
  dumpsPyJson,
  isPyDict,
  parsePyJson,
  type PyDict,
  PyJsonError,
  type PyValue,
} from "../lib/py/json.ts";
import {
  judgeCompletion,
  REJECT_REASONS,
  type RejectReason,
  type RolloutMessage,
  rolloutRows,
  rolloutTools,
  uniqueMessages,
} from "../reward/rollout_format.ts";
import { RewardError } from "../reward/errors.ts";
import { simRlReward } from "../reward/sim_rl.ts";
import { ConfigError, type RolloutConfig } from "./config.ts";
import { OpenAiClient, RequestRejectedError } from "./openai_client.ts";
import { formatDuration } from "./progress.ts";

/** What a run did, over the whole output file (the parts before a resume included). */
export interface RolloutCounts {
  /** Non-blank input rows. */
  inputs: number;
  /** Rows passed through plus conversations that gave at least one output row. */
  processed: number;
  passed_through: number;
  /** Conversations dropped: no valid completion, none at min_reward, refused, unreadable. */
  discarded: number;
  no_valid_completion: number;
  below_min_reward: number;
  /** Prompts the teacher refused (too long for its cache or the server's context). */
  refused: number;
  /** Rows that cannot be read, rendered or scored (reported with file and line). */
  bad_rows: number;
  outputs: number;
  /** Completions sampled, rejected by STAR's format check (by reason), under min_reward, duplicate. */
  completions: number;
  rejected: Record<RejectReason, number>;
  low_reward: number;
  duplicates: number;
}

export interface RolloutOptions {
  /** Messages (bad rows, retries, resume); default stderr. */
  log?: (line: string) => void;
  /** A progress line per batch; default: on stderr, redrawn in place on a terminal. */
  progress?: false | { write?: (text: string) => void; tty?: boolean };
  /** Called with every conversation's completions as sampled, before any check. */
  onSamples?: (index: number, prompt: string, completions: string[]) => void;
  /** First retry delay of the server client in ms (default 1000; doubled per retry). */
  retryBaseMs?: number;
}

export interface RolloutResult {
  counts: RolloutCounts;
  /** Inputs already done by an earlier run of the same output. */
  resumedAt: number;
}

/** One prompt to sample: its row index (seeds) and its text. */
export interface SampleRequest {
  index: number;
  text: string;
}

export type SampleResult = { completions: string[] } | { refused: string };

/** Where completions come from: the engine or a server. */
export interface Sampler {
  sample(prompts: SampleRequest[]): Promise<SampleResult[]>;
  release(): void;
}

/** The progress file kept beside the output. */
export function progressPath(output: string): string {
  return `${output}.progress.json`;
}

interface ProgressFile {
  format: "star-rollout/1";
  settings: Record<string, unknown>;
  inputs_done: number;
  bytes: number;
  counts: RolloutCounts;
}

const emptyCounts = (): RolloutCounts => ({
  inputs: 0,
  processed: 0,
  passed_through: 0,
  discarded: 0,
  no_valid_completion: 0,
  below_min_reward: 0,
  refused: 0,
  bad_rows: 0,
  outputs: 0,
  completions: 0,
  rejected: Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>,
  low_reward: 0,
  duplicates: 0,
});

/** The settings an output is bound to: a resume with others would mix two runs in one file. */
function settingsOf(cfg: RolloutConfig): Record<string, unknown> {
  return {
    input: cfg.input,
    teacher: cfg.teacher ?? null,
    model: cfg.model ?? null,
    tokenizer: cfg.tokenizer ?? null,
    rollout_n: cfg.rollout_n,
    temperature: cfg.temperature,
    top_p: cfg.top_p,
    top_k: cfg.top_k,
    max_tokens: cfg.max_tokens,
    seed: cfg.seed,
    min_reward: cfg.min_reward ?? null,
  };
}

function checkSource(cfg: RolloutConfig): void {
  if ((cfg.teacher === undefined) === (cfg.server === undefined)) {
    throw new ConfigError(
      cfg.teacher === undefined
        ? 'Give the teacher: "teacher" (a model directory, run on the engine) or "server" (the URL of an OpenAI-compatible server)'
        : 'Give either "teacher" or "server", not both',
    );
  }
  if (cfg.server !== undefined && cfg.model === undefined) {
    throw new ConfigError(`"server" needs "model", the name the server serves the teacher under`);
  }
  if (cfg.output === "-") {
    throw new ConfigError(`"output" must be a file: the run appends to it and resumes from it`);
  }
  if (cfg.output === cfg.input) {
    throw new ConfigError(`"output" must not be the input file "${cfg.input}"`);
  }
}

/**
 * The engine's sampler: the one place this module touches model/ (loading a checkpoint and
 * generate(): batched, the samples of a prompt sharing its prefill). Completions are decoded
 * without special tokens, as vLLM and SGLang return them.
 */
export async function engineSampler(
  cfg: RolloutConfig & { teacher: string },
  tokenizer: Tokenizer,
): Promise<Sampler> {
  const { GpuModel } = await import("../model/gpu_model.ts");
  const { DEFAULT_STOP_IDS, generate } = await import("../model/generate.ts");
  const model = await GpuModel.load(cfg.teacher, { precision: "checkpoint" });
  await model.packWeights();
  const eos = model.config.eos_token_id;
  const stopIds = [
    ...new Set([...DEFAULT_STOP_IDS, ...(eos === null ? [] : Array.isArray(eos) ? eos : [eos])]),
  ];
  const V = model.config.vocab_size;
  return {
    async sample(prompts) {
      const out: SampleResult[] = [];
      const reqs: { prompt: number[]; example: number; sample: number }[] = [];
      for (const p of prompts) {
        const ids = tokenizer.encode(p.text);
        const bad = ids.find((id) => id >= V);
        if (bad !== undefined) {
          out.push({ refused: `token id ${bad} is outside the teacher's vocabulary (${V})` });
        } else if (model.maxCacheSlots(ids.length + cfg.max_tokens) < 1) {
          out.push({
            refused:
              `${ids.length} prompt tokens and max_tokens ${cfg.max_tokens} do not fit the KV cache`,
          });
        } else {
          out.push({ completions: [] });
          for (let s = 0; s < cfg.rollout_n; s++) {
            reqs.push({ prompt: ids, example: p.index, sample: s });
          }
        }
      }
      const gens = await generate(model, reqs, {
        maxNewTokens: cfg.max_tokens,
        temperature: cfg.temperature,
        topP: cfg.top_p,
        topK: Math.max(0, cfg.top_k),
        seed: cfg.seed,
        stopIds,
        maxBatch: cfg.batch_size * cfg.rollout_n,
      });
      let g = 0;
      for (const r of out) {
        if (!("completions" in r)) continue;
        for (let s = 0; s < cfg.rollout_n; s++) {
          r.completions.push(tokenizer.decode(gens[g++].ids, { skipSpecialTokens: true }));
        }
      }
      return out;
    },
    release: () => model.release(),
  };
}

/** The server's sampler: one /v1/completions request of n samples per prompt. */
function serverSampler(
  cfg: RolloutConfig & { server: string; model: string },
  opts: RolloutOptions,
  log: (s: string) => void,
): Sampler {
  const client = new OpenAiClient({
    baseUrl: cfg.server,
    apiKey: Deno.env.get("OPENAI_API_KEY"),
    concurrency: cfg.concurrency,
    timeoutMs: cfg.request_timeout * 1000,
    maxAttempts: cfg.max_rollout,
    retryBaseMs: opts.retryBaseMs,
    log: (s) => log(`rollout: ${s}`),
  });
  return {
    async sample(prompts) {
      const settled = await Promise.allSettled(prompts.map(async (p): Promise<SampleResult> => {
        try {
          const res = await client.completions({
            model: cfg.model,
            prompt: p.text,
            n: cfg.rollout_n,
            max_tokens: cfg.max_tokens,
            temperature: cfg.temperature,
            top_p: cfg.top_p,
            ...(cfg.top_k === -1 ? {} : { top_k: cfg.top_k }),
            seed: sampleSeed(cfg.seed, p.index, 0),
          });
          const choices = [...res.choices].sort((a, b) => a.index - b.index);
          return { completions: choices.map((c) => c.text) };
        } catch (err) {
          if (err instanceof RequestRejectedError) return { refused: err.message };
          throw err;
        }
      }));
      const failed = settled.find((s) => s.status === "rejected");
      if (failed) throw failed.reason;
      return settled.map((s) => (s as PromiseFulfilledResult<SampleResult>).value);
    },
    release: () => {},
  };
}

/** An input row, as the batch loop sees it. */
type Entry =
  | { kind: "pass"; value: PyDict }
  | { kind: "bad"; error: DataError }
  | { kind: "roll"; index: number; line: number; value: PyDict; prompt: string; label?: string };

/** Python's `not v` for a JSON value (a missing key counts as STAR's default, []). */
function pyFalsy(v: PyValue | undefined): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === 0n || v === "") return true;
  return (Array.isArray(v) && v.length === 0) || (isPyDict(v) && v.size === 0);
}

/** Reads one input row: passed through, rolled out, or bad (a DataError naming the line). */
function readEntry(
  text: string,
  at: { file: string; line: number; index: number; unterminated?: true },
  tokenizer: Tokenizer,
  withLabel: boolean,
): Entry {
  try {
    let value;
    try {
      value = parsePyJson(text);
    } catch (err) {
      if (!(err instanceof PyJsonError)) throw err;
      const tail = at.unterminated ? "; the file ends in the middle of this line" : "";
      throw new DataError(at.file, at.line, `invalid JSON (${err.message})${tail}`);
    }
    if (!isPyDict(value)) {
      throw new DataError(at.file, at.line, "a row must be a JSON object");
    }
    const messages = value.get("messages");
    if (pyFalsy(messages)) return { kind: "pass", value }; // STAR: `not messages`
    const last = Array.isArray(messages) ? messages[messages.length - 1] : undefined;
    if (isPyDict(last ?? null) && (last as PyDict).get("role") !== "assistant") {
      return { kind: "pass", value };
    }
    const row = checkMessagesRow(value, at);
    const template = (withTools: boolean) => tokenizer.chatTemplate(withTools);
    const prompt = promptText(row, template, at);
    if (!withLabel) return { kind: "roll", index: at.index, line: at.line, value, prompt };
    const label = toTrainsetRow(row, template, at).targets;
    try {
      simRlReward(prompt, "", label); // a label or tools block the reward cannot read
    } catch (err) {
      if (!(err instanceof RewardError)) throw err;
      throw new DataError(at.file, at.line, `cannot be scored for min_reward: ${err.message}`);
    }
    return { kind: "roll", index: at.index, line: at.line, value, prompt, label };
  } catch (err) {
    if (!(err instanceof DataError)) throw err;
    return { kind: "bad", error: err };
  }
}

async function readProgress(path: string): Promise<ProgressFile | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  try {
    const p = JSON.parse(text) as ProgressFile;
    if (p.format !== "star-rollout/1") throw new Error("unknown format");
    return { ...p, counts: { ...emptyCounts(), ...p.counts } };
  } catch (err) {
    throw new ConfigError(
      `Cannot read "${path}": ${
        (err as Error).message
      }; set overwrite: true (--overwrite) to start over`,
    );
  }
}

async function fileSize(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).size;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

async function removeIfThere(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/** Where an output run stands: fresh, or resumed from its progress file (output cut to it). */
async function openOutput(cfg: RolloutConfig): Promise<{ state: ProgressFile; file: Deno.FsFile }> {
  const pPath = progressPath(cfg.output);
  if (cfg.overwrite) {
    await removeIfThere(cfg.output);
    await removeIfThere(pPath);
  }
  const settings = settingsOf(cfg);
  const prev = await readProgress(pPath);
  const size = await fileSize(cfg.output);
  let state: ProgressFile;
  if (prev === null) {
    if (size !== null && size > 0) {
      throw new ConfigError(
        `"${cfg.output}" already exists and has no "${pPath}" to resume from; set overwrite: true (--overwrite) to start over`,
      );
    }
    state = { format: "star-rollout/1", settings, inputs_done: 0, bytes: 0, counts: emptyCounts() };
  } else {
    for (const [k, v] of Object.entries(settings)) {
      const was = prev.settings[k] ?? null;
      if (JSON.stringify(was) !== JSON.stringify(v)) {
        throw new ConfigError(
          `"${cfg.output}" was started with ${k} ${JSON.stringify(was)}, not ${
            JSON.stringify(v)
          }; resume with the same settings, or set overwrite: true (--overwrite) to start over`,
        );
      }
    }
    if ((size ?? 0) < prev.bytes) {
      throw new ConfigError(
        `"${cfg.output}" is shorter (${
          size ?? 0
        } bytes) than "${pPath}" records (${prev.bytes}); set overwrite: true (--overwrite) to start over`,
      );
    }
    state = { ...prev, settings };
  }
  await Deno.mkdir(dirname(cfg.output), { recursive: true });
  const file = await Deno.open(cfg.output, { read: true, write: true, create: true });
  await file.truncate(state.bytes); // drops rows written after the last save
  await file.seek(0, Deno.SeekMode.End);
  return { state, file };
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

/** Runs (or resumes) a teacher rollout as configured. */
export async function runRollout(
  cfg: RolloutConfig,
  opts: RolloutOptions = {},
): Promise<RolloutResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  checkSource(cfg);
  const { state, file } = await openOutput(cfg);
  const resumedAt = state.inputs_done;
  const counts = state.counts;
  const pPath = progressPath(cfg.output);
  const encoder = new TextEncoder();
  let pending: string[] = [];
  let pendingInputs = 0;
  let done = state.inputs_done;

  /** Puts the pending rows on disk, then records them (and the counts) in the progress file. */
  const save = async () => {
    if (pending.length > 0) {
      const bytes = encoder.encode(pending.join(""));
      await writeAll(file, bytes);
      await file.syncData();
      state.bytes += bytes.length;
      pending = [];
    }
    pendingInputs = 0;
    state.inputs_done = done;
    state.counts = counts;
    await Deno.writeTextFile(`${pPath}.tmp`, JSON.stringify(state, null, 1) + "\n");
    await Deno.rename(`${pPath}.tmp`, pPath);
  };

  let sampler: Sampler | undefined;
  try {
    if (resumedAt > 0) {
      log(`rollout: resuming "${cfg.output}" after ${resumedAt} inputs (${counts.outputs} rows)`);
    }
    if (cfg.teacher !== undefined) await readModelConfig(cfg.teacher); // a clear error first
    const tokenizer = await Tokenizer.load(cfg.tokenizer ?? cfg.teacher);
    const total = cfg.input === "-" ? undefined : await countRows(cfg.input);
    const show = progressLine(opts.progress, total, resumedAt);
    const say = (s: string) => {
      show.clear();
      log(s);
    };
    sampler = cfg.teacher !== undefined
      ? await engineSampler({ ...cfg, teacher: cfg.teacher }, tokenizer)
      : serverSampler({ ...cfg, server: cfg.server!, model: cfg.model! }, opts, say);
    const withLabel = cfg.min_reward !== undefined;
    let reported = 0;
    const report = (msg: string) => {
      if (reported++ < 20) say(`star: ${msg}`);
      else if (reported === 21) say("star: ... (further bad rows are only counted)");
    };

    const processBatch = async (entries: Entry[]) => {
      const rolls = entries.filter((e) => e.kind === "roll");
      const samples = rolls.length
        ? await sampler!.sample(rolls.map((e) => ({ index: e.index, text: e.prompt })))
        : [];
      let k = 0;
      for (const e of entries) {
        counts.inputs++;
        if (e.kind === "pass") {
          counts.passed_through++;
          counts.processed++;
          counts.outputs++;
          pending.push(dumpsPyJson(e.value, { ensureAscii: false }) + "\n");
          continue;
        }
        if (e.kind === "bad") {
          counts.bad_rows++;
          counts.discarded++;
          report(e.error.message);
          continue;
        }
        const s = samples[k++];
        if ("refused" in s) {
          counts.refused++;
          counts.discarded++;
          report(`the teacher refused the prompt of "${cfg.input}" line ${e.line}: ${s.refused}`);
          continue;
        }
        opts.onSamples?.(e.index, e.prompt, s.completions);
        const kept = judge(e, s.completions, cfg.min_reward, counts);
        if (kept.valid === 0) counts.no_valid_completion++;
        else if (kept.messages.length === 0) counts.below_min_reward++;
        const unique = uniqueMessages(kept.messages);
        counts.duplicates += kept.messages.length - unique.length;
        if (unique.length === 0) {
          counts.discarded++;
          continue;
        }
        counts.processed++;
        counts.outputs += unique.length;
        for (const r of rolloutRows(e.value, unique)) {
          pending.push(dumpsPyJson(r, { ensureAscii: false }) + "\n");
        }
      }
      done += entries.length;
      pendingInputs += entries.length;
    };

    let batch: Entry[] = [];
    let rollsInBatch = 0;
    let index = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      await processBatch(batch);
      batch = [];
      rollsInBatch = 0;
      if (pending.length >= cfg.save_interval || pendingInputs >= cfg.save_interval) await save();
      show.update(done, counts.outputs);
    };
    for await (const { line, text, unterminated } of readLines(cfg.input)) {
      if (text.trim() === "") continue;
      const i = index++;
      if (i < resumedAt) continue;
      const at = { file: cfg.input, line, index: i, unterminated };
      const e = readEntry(text, at, tokenizer, withLabel);
      batch.push(e);
      if (e.kind === "roll") rollsInBatch++;
      // a batch is batch_size conversations to sample; rows between them ride along (bounded)
      if (rollsInBatch >= cfg.batch_size || batch.length >= 16 * cfg.batch_size) await flush();
    }
    await flush();
    await save();
    show.clear();
    if (index < resumedAt) {
      log(`rollout: "${cfg.input}" has ${index} rows, fewer than the ${resumedAt} already done`);
    }
    return { counts, resumedAt };
  } catch (err) {
    // what earlier batches made stays valid for the resume (a run that did nothing records
    // nothing, so fixing a wrong setting needs no --overwrite)
    if (done !== state.inputs_done || pending.length > 0) await save().catch(() => {});
    throw err;
  } finally {
    sampler?.release();
    file.close();
  }
}

/** STAR's format check, then min_reward, over one conversation's completions. */
function judge(
  e: Extract<Entry, { kind: "roll" }>,
  completions: string[],
  minReward: number | undefined,
  counts: RolloutCounts,
): { valid: number; messages: RolloutMessage[] } {
  const tools = rolloutTools(e.prompt);
  const messages: RolloutMessage[] = [];
  let valid = 0;
  for (const c of completions) {
    counts.completions++;
    const v = judgeCompletion(tools, c);
    if (!v.ok) {
      counts.rejected[v.reason]++;
      continue;
    }
    valid++;
    if (minReward !== undefined) {
      // judged as STAR parses it: a completion without "<think>" has one put in front
      const text = c.includes("<think>") ? c : "<think>" + c;
      if (simRlReward(e.prompt, text, e.label!).reward < minReward) {
        counts.low_reward++;
        continue;
      }
    }
    messages.push(v.message);
  }
  return { valid, messages };
}

async function countRows(path: string): Promise<number> {
  let n = 0;
  for await (const { text } of readLines(path)) if (text.trim() !== "") n++;
  return n;
}

/** The per-batch progress line: inputs done, rows, inputs/s, ETA. */
function progressLine(
  o: RolloutOptions["progress"],
  total: number | undefined,
  start: number,
): { update(done: number, rows: number): void; clear(): void } {
  if (o === false) return { update() {}, clear() {} };
  const enc = new TextEncoder();
  const write = o?.write ?? ((t: string) => Deno.stderr.writeSync(enc.encode(t)));
  const tty = o?.tty ?? Deno.stderr.isTerminal();
  const t0 = performance.now();
  let drawn = false;
  return {
    update(done, rows) {
      const secs = (performance.now() - t0) / 1000;
      const rate = (done - start) / Math.max(secs, 1e-9);
      const of = total === undefined ? "" : `/${total}`;
      const eta = total === undefined ? "" : `, ETA ${formatDuration((total - done) / rate)}`;
      const text = `rollout: ${done}${of} inputs, ${rows} rows, ${rate.toFixed(2)} inputs/s${eta}`;
      if (tty) {
        write(`\r${text}\x1b[K`);
        drawn = true;
      } else write(text + "\n");
    },
    clear() {
      if (drawn) write("\r\x1b[K");
      drawn = false;
    },
  };
}

/** STAR's end-of-run summary, plus what star counts beyond it. */
export function summaryLines(c: RolloutCounts): string[] {
  const pct = c.inputs > 0 ? (100 * c.processed / c.inputs).toFixed(2) : "0.00";
  const avg = c.processed > 0 ? (c.outputs / c.processed).toFixed(2) : "0.00";
  const why = [
    `${c.no_valid_completion} no valid completion`,
    `${c.below_min_reward} below min_reward`,
    `${c.refused} refused by the teacher`,
    `${c.bad_rows} unreadable`,
  ];
  const rejected = REJECT_REASONS.map((r) => `${r} ${c.rejected[r]}`).join(", ");
  return [
    `Total input conversations: ${c.inputs}`,
    `Successfully processed inputs: ${c.processed} (${c.passed_through} passed through)`,
    `Discarded inputs: ${c.discarded} (${why.join(", ")})`,
    `Total output samples: ${c.outputs}`,
    `Average rollout count: ${avg}`,
    `Input success rate: ${pct}%`,
    `Completions: ${c.completions} sampled, ${
      Object.values(c.rejected).reduce((a, b) => a + b, 0)
    } failed the format check (${rejected}), ${c.low_reward} below min_reward, ${c.duplicates} duplicates`,
  ];
}
