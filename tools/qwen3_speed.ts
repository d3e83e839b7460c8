/**
 * Load time, peak memory and tokens/s of the GPU Qwen3 on a model directory:
 *   deno run -A tools/qwen3_speed.ts DIR [TOKENS=32] [DECODE=8]
 * Scores TOKENS random ids (`logprobs`: forward + vocabulary pass), then prefills them into a
 * KV cache and decodes DECODE tokens greedily, one submit per token. The first scoring call
 * also compiles the pipelines, so it is reported apart from a second, warm one. On the texture
 * matmul variant the weights are packed once first (STAR_NO_PACK=1 skips that).
 * STAR_DECODE_BATCH=B also decodes B sequences together. STAR_TRAIN_TOKENS=N then also loads the model again as trainable (f32 weights and gradients)
 * and times two forward+backward steps over N tokens (two packed sequences).
 */
import { checkErrors, getGpu } from "../engine/device.ts";
import { GpuModel } from "../model/gpu_model.ts";
import { argmax } from "../model/sampling.ts";
import { lossAndGrad } from "../tests/_model.ts";

const [dir, tokensArg = "32", decodeArg = "8"] = Deno.args;
if (!dir) throw new Error("usage: tools/qwen3_speed.ts DIR [TOKENS] [DECODE]");
const tokens = Number(tokensArg), decode = Number(decodeArg);

function peakRssMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
  return m ? Number(m[1]) / 1024 : NaN;
}
function loadavg(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
}

const gpu = await getGpu();
console.log(`adapter: ${gpu.info.description || gpu.info.device} (${gpu.info.vendor})`);
console.log(`load average before: ${loadavg()}`);
let t = performance.now();
const model = await GpuModel.load(dir, { precision: "checkpoint" });
await checkErrors(gpu);
const loadS = (performance.now() - t) / 1000;
const dtype = model.weights.w("model.layers.0.mlp.up_proj.weight").dtype;
console.log(
  `load: ${loadS.toFixed(2)} s (linear weights ${dtype}), peak RSS ${peakRssMiB().toFixed(0)} MiB`,
);
if (Deno.env.get("STAR_NO_PACK") !== "1") {
  t = performance.now();
  const packed = await model.packWeights();
  console.log(
    packed
      ? `packed weight textures: ${((performance.now() - t) / 1000).toFixed(2)} s, ` +
        `peak RSS ${peakRssMiB().toFixed(0)} MiB`
      : "weights not packed (tiled matmul variant)",
  );
}

const V = model.config.vocab_size;
const ids = Array.from({ length: tokens }, (_, i) => (i * 7919 + 13) % V);
for (const label of ["score (cold)", "score (warm)"]) {
  t = performance.now();
  const r = await model.logprobs([ids]);
  const s = (performance.now() - t) / 1000;
  console.log(
    `${label}: ${tokens} tokens in ${s.toFixed(2)} s = ${(tokens / s).toFixed(1)} tokens/s; ` +
      `mean log-prob ${(r[0].logprobs.reduce((a, b) => a + b, 0) / (tokens - 1)).toFixed(4)}`,
  );
}

const cache = model.newCache(1, tokens + decode + 1);
t = performance.now();
let rows = await model.lastLogits(cache, [{ slot: 0, ids }]);
const prefillS = (performance.now() - t) / 1000;
console.log(
  `prefill into the cache: ${tokens} tokens in ${prefillS.toFixed(2)} s = ${
    (tokens / prefillS).toFixed(1)
  } tokens/s`,
);
const times: number[] = [];
const out: number[] = [];
for (let i = 0; i < decode; i++) {
  const next = argmax(rows[0]);
  out.push(next);
  t = performance.now();
  rows = await model.lastLogits(cache, [{ slot: 0, ids: [next] }]);
  times.push((performance.now() - t) / 1000);
}
const mean = times.reduce((a, b) => a + b, 0) / times.length;
console.log(
  `decode: ${decode} tokens, ${mean.toFixed(3)} s/token = ${(1 / mean).toFixed(2)} tokens/s ` +
    `(per token: ${times.map((x) => x.toFixed(2)).join(", ")})`,
);
console.log(`greedy ids: ${out.join(" ")}`);
console.log(`peak RSS: ${peakRssMiB().toFixed(0)} MiB; load average after: ${loadavg()}`);
cache.release();

const batch = Number(Deno.env.get("STAR_DECODE_BATCH") ?? "0");
if (batch > 1) {
  // B sequences decoded together: the prompt prefilled once and copied to every slot
  const bc = model.newCache(batch, tokens + decode + 1);
  let first = await model.lastLogits(bc, [{ slot: 0, ids }]);
  bc.copySlots(Array.from({ length: batch - 1 }, (_, i) => ({ from: 0, to: i + 1 })));
  let next = Array.from({ length: batch }, () => argmax(first[0]));
  const bt: number[] = [];
  for (let i = 0; i < decode; i++) {
    t = performance.now();
    first = await model.lastLogits(bc, next.map((id, s) => ({ slot: s, ids: [id] })));
    bt.push((performance.now() - t) / 1000);
    next = first.map((r) => argmax(r));
  }
  const m = bt.reduce((a, b) => a + b, 0) / bt.length;
  console.log(
    `decode x${batch}: ${m.toFixed(3)} s/step = ${(batch / m).toFixed(2)} tokens/s ` +
      `(per step: ${bt.map((x) => x.toFixed(2)).join(", ")})`,
  );
  bc.release();
}
model.release();

const trainTokens = Number(Deno.env.get("STAR_TRAIN_TOKENS") ?? "0");
if (trainTokens > 0) {
  t = performance.now();
  const tm = await GpuModel.load(dir, { trainable: true });
  await checkErrors(gpu);
  console.log(
    `trainable load (f32 weights + gradients): ${((performance.now() - t) / 1000).toFixed(2)} s`,
  );
  const half = Math.floor(trainTokens / 2);
  const seqs = [
    ids.slice(0, 1).concat(Array.from({ length: half - 1 }, (_, i) => (i * 31 + 5) % V)),
    Array.from({ length: trainTokens - half }, (_, i) => (i * 17 + 3) % V),
  ];
  for (const label of ["train step (cold)", "train step (warm)"]) {
    t = performance.now();
    const r = await lossAndGrad(tm, seqs);
    const s = (performance.now() - t) / 1000;
    console.log(
      `${label}: ${trainTokens} tokens forward+backward in ${s.toFixed(2)} s = ` +
        `${(trainTokens / s).toFixed(1)} tokens/s, loss ${r.loss.toFixed(4)}, ` +
        `peak RSS ${peakRssMiB().toFixed(0)} MiB`,
    );
  }
  tm.release();
}
