/**
 * Checkpoints of a training run, in `output_dir`:
 *   checkpoint-STEP/   a model directory (config.json, model.safetensors or shards, tokenizer
 *                      files) loadable by transformers and by `star`, plus
 *                      optimizer.safetensors  AdamW moments: "NAME.exp_avg", "NAME.exp_avg_sq" (F32)
 *                      trainer_state.json     step, data position, seed/RNG, lr schedule, counters
 *   final/             the model directory at the end of the run
 * Each is written into a hidden temporary folder and renamed into place, so a folder with the
 * final name is always complete; latestCheckpoint() also requires a readable trainer_state.json
 * whose step matches the name, and removes temporary folders left by an interrupted save (one
 * trainer per output_dir is assumed). Not done: keeping only the last N checkpoints.
 */
import { join } from "node:path";
import {
  SafetensorsFile,
  type TensorBytes,
  type TensorSpec,
  writeCheckpoint,
  writeSafetensors,
} from "../model/safetensors.ts";

export const OPTIMIZER_FILE = "optimizer.safetensors";
export const TRAINER_STATE_FILE = "trainer_state.json";
export const FINAL_DIR = "final";

/** What a checkpoint needs from the model: its config and its weights, tensor by tensor. */
export interface ModelSource {
  /** config.json, as written. */
  config: Record<string, unknown>;
  /** The weight tensors in file order, with the dtype to write (F32, BF16, F16). */
  specs: readonly TensorSpec[];
  /** The bytes of one tensor in its spec's dtype. */
  bytes(spec: TensorSpec): TensorBytes | Promise<TensorBytes>;
  /** Files copied as they are (tokenizer.json, tokenizer_config.json, ...): source paths. */
  sideFiles?: readonly string[];
}

/** The AdamW moments of every trained tensor, read one at a time. */
export interface OptimizerSource {
  /** Optimizer steps taken (AdamW's bias-correction count). */
  step: number;
  /** Trained tensors: name and shape. */
  tensors: readonly { name: string; shape: readonly number[] }[];
  read(name: string, moment: "exp_avg" | "exp_avg_sq"): Float32Array | Promise<Float32Array>;
}

/** trainer_state.json. */
export interface TrainerState {
  /** Optimizer steps done. */
  step: number;
  /** Data position: the next row is order(epoch)[data_index]. */
  epoch: number;
  data_index: number;
  seed: number;
  /** Generator state for draws beyond the data order (hex), when the trainer has one. */
  rng_state?: string;
  lr_scheduler: {
    name: string;
    learning_rate: number;
    total_steps: number;
    warmup_steps: number;
    min_lr_ratio: number;
    /** The learning rate of the last step taken. */
    last_lr: number;
  };
  /** Steps skipped for a non-finite loss or gradient. */
  skipped_steps: number;
  tokens_seen: number;
  [key: string]: unknown;
}

/** The folder name of the checkpoint after `step` optimizer steps. */
export function checkpointName(step: number): string {
  return `checkpoint-${step}`;
}

/** Writes config.json, the weights and the side files of a model directory into `dir`. */
export async function writeModelDir(dir: string, model: ModelSource): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await writeCheckpoint(dir, model.specs, (s) => model.bytes(s));
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(model.config, null, 2) + "\n");
  for (const src of model.sideFiles ?? []) {
    await Deno.copyFile(src, join(dir, src.split(/[\\/]/).pop()!));
  }
}

/** Writes the AdamW moments as one safetensors file, F32, with the step in its metadata. */
export async function writeOptimizerState(path: string, opt: OptimizerSource): Promise<void> {
  const specs: TensorSpec[] = [];
  for (const t of opt.tensors) {
    specs.push({ name: `${t.name}.exp_avg`, dtype: "F32", shape: t.shape });
    specs.push({ name: `${t.name}.exp_avg_sq`, dtype: "F32", shape: t.shape });
  }
  await writeSafetensors(path, specs, async (s) => {
    const dot = s.name.lastIndexOf(".");
    const moment = s.name.slice(dot + 1) as "exp_avg" | "exp_avg_sq";
    const x = await opt.read(s.name.slice(0, dot), moment);
    return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  }, { metadata: { format: "pt", step: String(opt.step) } });
}

/** Reads back the moments written by writeOptimizerState. Close it when done. */
export async function openOptimizerState(path: string): Promise<{
  step: number;
  names: string[];
  read(name: string, moment: "exp_avg" | "exp_avg_sq"): Promise<Float32Array>;
  close(): void;
}> {
  const f = await SafetensorsFile.open(path);
  const step = Number(f.metadata?.step);
  if (!Number.isInteger(step) || step < 0) {
    f.close();
    throw new Error(`Cannot read "${path}": metadata "step" is missing or not a whole number`);
  }
  const names = [...f.tensors.keys()]
    .filter((n) => n.endsWith(".exp_avg"))
    .map((n) => n.slice(0, -".exp_avg".length));
  return {
    step,
    names,
    read: (name, moment) => f.readF32(`${name}.${moment}`),
    close: () => f.close(),
  };
}

/** Builds a folder under a temporary name next to `dir`, then renames it to `dir`. */
async function atomicDir(dir: string, build: (tmp: string) => Promise<void>): Promise<void> {
  const parent = join(dir, "..");
  const base = dir.split(/[\\/]/).pop()!;
  const tmp = join(parent, `.${base}.tmp-${Deno.pid}`);
  await Deno.mkdir(parent, { recursive: true });
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  try {
    await build(tmp);
  } catch (err) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw err;
  }
  // an older folder of the same name (a re-run) is moved aside, then removed
  const old = join(parent, `.${base}.old-${Deno.pid}`);
  let hadOld = false;
  try {
    await Deno.rename(dir, old);
    hadOld = true;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  await Deno.rename(tmp, dir);
  if (hadOld) await Deno.remove(old, { recursive: true });
}

/** Writes `checkpoint-STEP/` atomically; returns its path. trainer_state.json is written last. */
export async function saveCheckpoint(
  outputDir: string,
  ckpt: { model: ModelSource; optimizer: OptimizerSource; state: TrainerState },
): Promise<string> {
  const dir = join(outputDir, checkpointName(ckpt.state.step));
  await atomicDir(dir, async (tmp) => {
    await writeModelDir(tmp, ckpt.model);
    await writeOptimizerState(join(tmp, OPTIMIZER_FILE), ckpt.optimizer);
    await Deno.writeTextFile(
      join(tmp, TRAINER_STATE_FILE),
      JSON.stringify(ckpt.state, null, 2) + "\n",
    );
  });
  return dir;
}

/** Writes `final/` (the model directory only) atomically; returns its path. */
export async function saveFinalModel(outputDir: string, model: ModelSource): Promise<string> {
  const dir = join(outputDir, FINAL_DIR);
  await atomicDir(dir, (tmp) => writeModelDir(tmp, model));
  return dir;
}

/** Reads a checkpoint's trainer_state.json. */
export async function readTrainerState(dir: string): Promise<TrainerState> {
  const path = join(dir, TRAINER_STATE_FILE);
  const raw = JSON.parse(await Deno.readTextFile(path));
  for (const k of ["step", "epoch", "data_index", "seed"]) {
    if (typeof raw?.[k] !== "number") {
      throw new Error(`Cannot read "${path}": field "${k}" is missing or not a number`);
    }
  }
  return raw as TrainerState;
}

/**
 * The complete checkpoint with the highest step in `outputDir`, or undefined. Leftover
 * temporary folders of an interrupted save are removed.
 */
export async function latestCheckpoint(
  outputDir: string,
): Promise<{ dir: string; state: TrainerState } | undefined> {
  let best: { dir: string; state: TrainerState } | undefined;
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(outputDir));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  for (const e of entries) {
    if (!e.isDirectory) continue;
    if (/^\.(checkpoint-\d+|final)\.(tmp|old)-\d+$/.test(e.name)) {
      await Deno.remove(join(outputDir, e.name), { recursive: true }).catch(() => {});
      continue;
    }
    const m = /^checkpoint-(\d+)$/.exec(e.name);
    if (!m) continue;
    const dir = join(outputDir, e.name);
    let state: TrainerState;
    try {
      state = await readTrainerState(dir);
    } catch {
      continue;
    }
    if (state.step !== Number(m[1])) continue;
    if (!best || state.step > best.state.step) best = { dir, state };
  }
  return best;
}
