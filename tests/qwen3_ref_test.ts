import { assertClose, assertEquals, assertOk } from "./assert.ts";
import { type ModelConfig, parseModelConfig } from "../model/config.ts";
import {
  crossEntropyRef,
  forwardRef,
  greedyGenerateRef,
  IGNORE_INDEX,
  logProbsRef,
  lossAndGradRef,
  randomRefModel,
  type RefModel,
} from "../model/ref.ts";
import { topK } from "../model/sampling.ts";
import { weightSpecs } from "../model/weights.ts";

/** A toy Qwen3: vocab 37, 2 layers, 4 query heads sharing 2 kv heads, head_dim 8. */
function toyConfig(tied: boolean): ModelConfig {
  return parseModelConfig({
    model_type: "qwen3",
    vocab_size: 37,
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 8,
    rope_theta: 10000,
    tie_word_embeddings: tied,
  });
}

const seqs = [[3, 17, 5, 36, 0, 9], [12, 12, 4]];
const labels = [[IGNORE_INDEX, IGNORE_INDEX, 5, 36, IGNORE_INDEX, 9], [12, 12, 4]];

function lossOf(model: RefModel): number {
  const f = forwardRef(model, seqs);
  return crossEntropyRef(f, model.config.vocab_size, labels).loss;
}

for (const tied of [true, false]) {
  Deno.test(`backwardRef() matches central finite differences for every parameter (tied=${tied})`, () => {
    // large weights and jittered norms so every term matters
    const model = randomRefModel(toyConfig(tied), 11, { std: 0.5, normJitter: 0.3 });
    const { grads, count } = lossAndGradRef(model, seqs, labels);
    assertEquals(count, 5);
    const h = 1e-5;
    let checked = 0;
    for (const spec of weightSpecs(model.config)) {
      const p = model.params[spec.name];
      const g = grads[spec.name];
      // a few entries per tensor, plus for the embedding: a row used only as an input (3),
      // a row only the LM head sees (30), a row used as both (12)
      const picks = spec.name === "model.embed_tokens.weight"
        ? [3 * 16 + 1, 30 * 16 + 7, 12 * 16 + 15]
        : [0, Math.floor(p.length / 3), Math.floor((2 * p.length) / 3), p.length - 1];
      for (const i of picks) {
        const old = p[i];
        p[i] = old + h;
        const up = lossOf(model);
        p[i] = old - h;
        const down = lossOf(model);
        p[i] = old;
        const fd = (up - down) / (2 * h);
        assertClose(g[i], fd, { atol: 1e-8, rtol: 1e-5, msg: `${spec.name}[${i}]` });
        checked++;
      }
    }
    assertOk(checked > 40);
    // the tied embedding's LM-head gradient reaches rows that never appear as inputs
    if (tied) assertOk(Math.abs(grads["model.embed_tokens.weight"][30 * 16 + 7]) > 1e-6);
  });
}

Deno.test("forwardRef() on packed sequences equals each sequence run alone", () => {
  const model = randomRefModel(toyConfig(true), 5, { std: 0.3 });
  const both = forwardRef(model, seqs);
  const V = model.config.vocab_size;
  for (let s = 0; s < seqs.length; s++) {
    const alone = forwardRef(model, [seqs[s]]);
    const off = both.offsets[s] * V;
    assertClose(both.logits.subarray(off, off + seqs[s].length * V), alone.logits, { atol: 1e-12 });
  }
});

Deno.test("logProbsRef() gives log p(ids[t+1] | ids[..t]) and sorted top-k", () => {
  const model = randomRefModel(toyConfig(false), 9, { std: 0.3 });
  const [r] = logProbsRef(model, [seqs[0]], { topK: 4 });
  assertEquals(r.logprobs.length, seqs[0].length - 1);
  const f = forwardRef(model, [seqs[0]]);
  const V = model.config.vocab_size;
  for (let t = 0; t + 1 < seqs[0].length; t++) {
    const row = [...f.logits.subarray(t * V, t * V + V)];
    const lse = Math.log(row.reduce((a, x) => a + Math.exp(x), 0));
    assertClose(r.logprobs[t], row[seqs[0][t + 1]] - lse, { atol: 1e-12 });
    const best = row.indexOf(Math.max(...row));
    assertEquals(r.topkIds![t][0], best);
    for (let j = 1; j < 4; j++) assertOk(r.topkLogprobs![t][j] <= r.topkLogprobs![t][j - 1]);
  }
});

Deno.test("greedyGenerateRef() with a KV cache gives the tokens and log-probs of full recompute", () => {
  const model = randomRefModel(toyConfig(true), 21, { std: 0.4, normJitter: 0.2 });
  for (const prompt of [[1], [4, 8, 15, 16, 23]]) {
    const a = greedyGenerateRef(model, prompt, { maxNewTokens: 12 });
    const b = greedyGenerateRef(model, prompt, { maxNewTokens: 12, useCache: true });
    assertEquals(b.ids, a.ids);
    assertClose(b.logprobs, a.logprobs, { atol: 1e-10 });
    assertEquals(a.finishReason, "length");
    // stopping: make the third generated token a stop id
    const s = greedyGenerateRef(model, prompt, {
      maxNewTokens: 12,
      stopIds: [a.ids[2]],
      useCache: true,
    });
    assertEquals(s.finishReason, "stop");
    assertEquals(s.ids, a.ids.slice(0, a.ids.indexOf(a.ids[2]) + 1));
  }
});

Deno.test("topK() returns the k largest indices in descending order, lower index first on ties", () => {
  const x = [0.5, 3, -1, 3, 7, 0.5, 2];
  assertEquals(topK(x, 3), [4, 1, 3]);
  assertEquals(topK(x, 1), [4]);
  assertEquals(topK(x, 7), [4, 1, 3, 6, 0, 5, 2]);
  const rnd = Array.from({ length: 500 }, (_, i) => Math.sin(i * 12.9898) * 43758.5453 % 1);
  const sorted = [...rnd.keys()].sort((a, b) => rnd[b] - rnd[a] || a - b);
  assertEquals(topK(rnd, 20), sorted.slice(0, 20));
});
