import {
  type Json,
  mulberry32,
  rowSeed,
  type SynthRow,
  synthRows,
  synthRowsExcept,
  TOOLS,
  turnsKey,
} from "../data/synthetic.ts";
import { checkMessagesRow } from "../data/trainset.ts";
import { parsePyJson } from "../lib/py/json.ts";
import { assertEquals, assertNotEquals, assertOk, assertThrows } from "./assert.ts";
import { star } from "./_star.ts";

type Schema = {
  type: string;
  enum?: string[];
  properties?: Record<string, Schema>;
  required?: string[];
};

/** An independent JSON-schema check of the argument types the synthetic tools declare. */
function conforms(v: Json, s: Schema): boolean {
  switch (s.type) {
    case "string":
      return typeof v === "string" && (!s.enum || s.enum.includes(v));
    case "integer":
      return typeof v === "number" && Number.isInteger(v);
    case "number":
      return typeof v === "number";
    case "boolean":
      return typeof v === "boolean";
    case "object": {
      if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
      const props = s.properties ?? {};
      if (!(s.required ?? []).every((k) => k in v)) return false;
      return Object.entries(v).every(([k, x]) => k in props && conforms(x, props[k]));
    }
  }
  return false;
}

Deno.test("mulberry32() matches a Python big-integer transcription for seed 1", () => {
  // Computed with Python ints masked to 32 bits (the algorithm written out independently).
  const r = mulberry32(1);
  assertEquals([r(), r(), r()].map((x) => Math.round(x * 4294967296)), [
    2693262067,
    11749833,
    2265367787,
  ]);
});

Deno.test("rowSeed() matches a Python big-integer transcription", () => {
  // From tests/reference/synth_row_seed.py (the hash written out with ints masked to 32 bits).
  const cases = [
    [0, 0, 2856213345],
    [0, 1, 1863002342],
    [1, 0, 2571226413],
    [1, 1, 1300299365],
    [7, 12345, 2848732812],
    [4294967295, 3, 3664794242],
    [-1, 3, 3664794242],
    [90001, 4294967295, 2839453292],
  ];
  for (const [seed, index, want] of cases) {
    assertEquals(rowSeed(seed, index), want, `${seed} ${index}`);
  }
});

Deno.test("rowSeed() gives every (seed, index) of seeds 0..9 and indices below 10,000 its own seed", () => {
  const seen = new Set<number>();
  for (let seed = 0; seed < 10; seed++) {
    for (let i = 0; i < 10_000; i++) seen.add(rowSeed(seed, i));
  }
  assertEquals(seen.size, 100_000);
});

/** A row's content: everything but its id. */
const content = (r: SynthRow) => JSON.stringify([r.messages, r.tools]);

Deno.test("synthRows() of seeds 0..9 share rows only as often as chance repeats them within a seed", () => {
  const n = 200;
  const sets = Array.from({ length: 10 }, (_, seed) => [...synthRows(n, seed)].map(content));
  // The templates allow few distinct small-talk rows, so independent draws meet now and then. A
  // seed repeating D of its own rows implies a pair probability p with D ~ p n^2 / 2, so another
  // seed's n rows should meet it about p n^2 = 2 D times.
  const repeats = sets.reduce((a, s) => a + s.length - new Set(s).size, 0) / sets.length;
  let total = 0;
  for (const [a, sa] of sets.entries()) {
    const have = new Set(sa);
    for (const [b, sb] of sets.entries()) {
      if (a === b) continue;
      const shared = sb.filter((x) => have.has(x)).length;
      assertOk(shared <= n / 20, `seeds ${a} and ${b} share ${shared} of ${n} rows`);
      total += shared;
    }
  }
  const mean = total / 90;
  assertOk(mean <= 2 * (2 * repeats) + 1, `${mean} shared rows per pair, ${repeats} repeats`);
});

Deno.test("synthRowsExcept() skips the rows whose turns an excluded set has, and nothing else", () => {
  const opts = { maxCalls: 1, maxDistractors: 0 };
  const train = [...synthRows(300, 0, opts)];
  const asked = new Set(train.map(turnsKey));
  const got = [...synthRowsExcept(100, 1, train, opts)];
  assertEquals(got.length, 100);
  // The rows of seed 1 in order, less exactly those whose turns the training rows have.
  const last = Number(got.at(-1)!.id.split("-").at(-1));
  const want = [...synthRows(last + 1, 1, opts)].filter((r) => !asked.has(turnsKey(r)));
  assertEquals(got, want);
  assertOk(last + 1 > 100, "the small-talk turns alone make some of seed 1's rows repeats");
  // The system turn is not part of what is compared.
  const sys = {
    ...train[0],
    messages: [{ role: "system" as const, content: "x" }, ...train[0].messages],
  };
  assertEquals(turnsKey(sys), turnsKey(train[0]));
  assertThrows(
    () => [...synthRowsExcept(10, 1, synthRows(5000, 0, opts), { ...opts, maxCalls: 0 })],
  );
});

Deno.test("synthRows() is deterministic per seed and differs across seeds", () => {
  const a = [...synthRows(50, 7)];
  assertEquals(a, [...synthRows(50, 7)]);
  assertNotEquals(a, [...synthRows(50, 8)]);
  // Row i does not depend on how many rows are drawn.
  assertEquals([...synthRows(10, 7)], a.slice(0, 10));
});

Deno.test("synthRows() rows are valid messages rows whose calls follow the offered tools' schemas", () => {
  const counts = [0, 0, 0, 0];
  const typesSeen = new Set<string>();
  const toolsUsed = new Set<string>();
  for (const row of synthRows(2000, 11)) {
    checkMessagesRow(parsePyJson(JSON.stringify(row)), { file: "synth", line: 1 });
    const last = row.messages.at(-1)!;
    const calls = last.tool_calls ?? [];
    counts[calls.length]++;
    if (calls.length === 0) assertOk(typeof last.content === "string" && last.content.length > 0);
    const offered = new Map(row.tools.map((t) => [t.name, t.parameters as Schema]));
    for (const c of calls) {
      const schema = offered.get(c.name);
      assertOk(schema, `${row.id}: ${c.name} is offered`);
      assertOk(conforms(c.arguments, schema), `${row.id}: ${JSON.stringify(c)}`);
      toolsUsed.add(c.name);
      for (const [k, v] of Object.entries(c.arguments)) {
        typesSeen.add(schema.properties![k].enum ? "enum" : schema.properties![k].type);
        // Every argument value is stated in the request (so the task is learnable).
        if (typeof v === "string" || typeof v === "number") {
          const user = row.messages.find((m) => m.role === "user")!.content!;
          assertOk(user.includes(String(v)), `${row.id}: "${v}" in "${user}"`);
        }
      }
    }
  }
  assertEquals(toolsUsed.size, TOOLS.length);
  for (const t of ["string", "integer", "number", "boolean", "object", "enum"]) {
    assertOk(typesSeen.has(t), t);
  }
  // Zero, one and several calls all occur in fair numbers.
  for (const n of counts) assertOk(n > 150, `call counts ${counts}`);
});

Deno.test("star synth writes N rows, the same for the same seed", async () => {
  const a = await star(["synth", "--output", "-", "--n", "5", "--seed", "3"]);
  const b = await star(["synth", "--output", "-", "--n", "5", "--seed", "3"]);
  assertEquals(a.code, 0);
  assertEquals(a.stdout, b.stdout);
  assertEquals(a.stdout.trim().split("\n").length, 5);
  assertEquals(JSON.parse(a.stdout.split("\n")[0]), [...synthRows(1, 3)][0]);
  const bad = await star(["synth", "--output", "-"]);
  assertEquals(bad.code, 2);
});

Deno.test("synthRows() with maxCalls 1 and maxDistractors 0 offers exactly the tool it calls", () => {
  const full = [...synthRows(300, 5)];
  const narrow = [...synthRows(300, 5, { maxCalls: 1, maxDistractors: 0 })];
  // The defaults are the full set: options left out change nothing.
  assertEquals([...synthRows(300, 5, {})], full);
  let calls = 0, replies = 0;
  narrow.forEach((row, i) => {
    checkMessagesRow(parsePyJson(JSON.stringify(row)), { file: "synth", line: i + 1 });
    const last = row.messages.at(-1)!;
    const called = (last.tool_calls ?? []).map((c) => c.name);
    assertOk(called.length <= 1, row.id);
    assertEquals(row.tools.length, 1, row.id);
    if (called.length === 1) {
      calls++;
      assertEquals(row.tools[0].name, called[0], row.id);
    } else replies++;
    // Rows that asked for no call in the full set ask for none here either.
    if ((full[i].messages.at(-1)!.tool_calls ?? []).length === 0) assertEquals(called.length, 0);
  });
  assertOk(calls > 200 && replies > 20, `${calls} calls, ${replies} replies`);
});
