/**
 * Decode attention split over keys (attentionDecode) at Qwen3-0.6B heads (H 16, K 8, E 128):
 * B query rows, each attending to its own cache slot of `keys` keys. "attention_decode" runs the
 * adapter's variant, "attention_decode_tiled" the GPU-shaped one. Rate: the K and V bytes each
 * row must read once (2 · B · keys · K · E · 4), beside the GEMV's weight bandwidth of the same
 * run. Shape [B, keys, H, K, E]; B · keys stays within one 128 MiB cache binding.
 */
import { createTensor, type Gpu } from "../../engine/mod.ts";
import { attentionRangeTable } from "../../engine/ops/attention.ts";
import {
  attentionDecode,
  attentionDecodeScratchSize,
  type AttentionDecodeVariant,
} from "../../engine/ops/attention_decode.ts";
import type { BenchCase } from "./_types.ts";

function decodeCase(B: number, keys: number, variant?: AttentionDecodeVariant): BenchCase {
  const H = 16, K = 8, E = 128;
  return {
    name: variant ? `attention_decode_${variant}` : "attention_decode",
    shape: [B, keys, H, K, E],
    bytes: 2 * B * keys * K * E * 4,
    relativeTo: "gemv",
    setup(gpu: Gpu) {
      const t = (label: string, n: number, fill = true) =>
        createTensor(gpu, {
          shape: [n],
          dtype: "f32",
          label,
          data: fill ? Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.61)) : undefined,
        });
      const dims = { queryRows: B, keyRows: B * keys, heads: H, kvHeads: K, headDim: E };
      const seqs = Array.from({ length: B }, (_, r) => ({
        qStart: r,
        qLen: 1,
        kStart: r * keys,
        past: keys - 1,
      }));
      const ranges = createTensor(gpu, {
        shape: [2 * (B + B * keys)],
        dtype: "u32",
        label: "ranges",
        data: attentionRangeTable(seqs, dims),
      });
      const d = { ...dims, maxKeys: keys, variant };
      const io = {
        ...d,
        q: t("q", B * H * E),
        k: t("k", B * keys * K * E),
        v: t("v", B * keys * K * E),
        ranges,
        stats: t("stats", 2 * B * H, false),
        o: t("o", B * H * E, false),
        scratch: t("scratch", attentionDecodeScratchSize(gpu, d), false),
      };
      return { record: (rec) => attentionDecode(rec, io) };
    },
  };
}

export const cases: BenchCase[] = [
  ...[[1, 1000], [1, 5000], [8, 1000], [8, 4000], [64, 500]].map(([B, keys]) =>
    decodeCase(B, keys)
  ),
  decodeCase(1, 5000, "tiled"),
  decodeCase(8, 4000, "tiled"),
];
