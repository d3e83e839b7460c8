import { assertEquals, assertMatch, assertRejects, assertThrows } from "./assert.ts";
import { join } from "node:path";
import YAML from "yaml";
import {
  ckdConfigSchema,
  ConfigError,
  loadConfig,
  parseConfig,
  simrlConfigSchema,
  writeResolvedConfig,
} from "../train/config.ts";

const base = "student: ./student\nteacher: /abs/teacher\ndata: data/train.jsonl\noutput_dir: out\n";

Deno.test("parseConfig() fills STAR's CKD defaults and resolves relative paths", () => {
  const cfg = parseConfig(base, ckdConfigSchema, "/cfg/dir/ckd.yaml");
  assertEquals(cfg.student, "/cfg/dir/student");
  assertEquals(cfg.teacher, "/abs/teacher");
  assertEquals(cfg.data, "/cfg/dir/data/train.jsonl");
  assertEquals(cfg.learning_rate, 3e-6);
  assertEquals(cfg.kd_topk, 100);
  assertEquals(cfg.kd_student_topm, 100);
  assertEquals(cfg.kd_kl_l1_coef, 10);
  assertEquals(cfg.adam_betas, [0.9, 0.95]);
  assertEquals(cfg.weight_decay, 1e-4);
  assertEquals(cfg.max_norm, 1.0);
});

Deno.test("parseConfig() rejects a misspelt key and suggests the right one", () => {
  const err = assertThrows(
    () => parseConfig(base + "learnig_rate: 1e-5\n", ckdConfigSchema, "ckd.yaml"),
    ConfigError,
  ) as ConfigError;
  assertMatch(err.message, /"learnig_rate" \(did you mean "learning_rate"\?\)/);
  assertMatch(err.message, /ckd\.yaml/);
});

Deno.test("parseConfig() names the key and expected type on a type error", () => {
  const err = assertThrows(
    () => parseConfig(base + "kd_topk: many\n", ckdConfigSchema, "ckd.yaml"),
    ConfigError,
  ) as ConfigError;
  assertMatch(err.message, /key "kd_topk": expected number, got "many"/);
  const missing = assertThrows(
    () => parseConfig("data: x\noutput_dir: y\n", ckdConfigSchema, "ckd.yaml"),
    ConfigError,
  ) as ConfigError;
  assertMatch(missing.message, /key "student": is required/);
  assertThrows(() => parseConfig("kd_kl_type: [", ckdConfigSchema, "bad.yaml"), ConfigError);
  assertThrows(() => parseConfig("- a\n- b\n", ckdConfigSchema, "list.yaml"), /must be a mapping/);
});

Deno.test("parseConfig() applies Sim-RL defaults", () => {
  const cfg = parseConfig("pretrain: p\ndata: d\noutput_dir: o\n", simrlConfigSchema, "/x/s.yaml");
  assertEquals(cfg.n_samples_per_prompt, 8);
  assertEquals(cfg.learning_rate, 3e-7);
  assertEquals(cfg.init_kl_coef, 1e-3);
  assertEquals(cfg.eps_clip, 0.2);
  assertEquals(cfg.dynamic_filtering_reward_range, [0.01, 0.99]);
});

Deno.test("loadConfig() + writeResolvedConfig() write the resolved config into output_dir", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "ckd.yaml");
  await Deno.writeTextFile(file, base);
  const cfg = await loadConfig(file, ckdConfigSchema);
  const out = await writeResolvedConfig(cfg);
  assertEquals(out, join(dir, "out", "config.yaml"));
  const back = YAML.parse(await Deno.readTextFile(out));
  assertEquals(back.student, join(dir, "student"));
  assertEquals(back.kd_kl_type, "fkl");
  await assertRejects(() => loadConfig(join(dir, "nope.yaml"), ckdConfigSchema), ConfigError);
  await Deno.remove(dir, { recursive: true });
});
