import { type Json, mulberry32, synthRows, TOOLS } from "../data/synthetic.ts";
import { checkMessagesRow } from "../data/trainset.ts";
import { parsePyJson } from "../lib/py/json.ts";
import { assertEquals, assertNotEquals, assertOk } from "./assert.ts";
import { star } from "./main_test.ts";

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
