import { assertEquals, assertMatch, assertThrows } from "./assert.ts";
import { helpText, parseFlags } from "../cli/args.ts";
import { UsageError } from "../lib/errors.ts";
import { closestName, editDistance } from "../lib/suggest.ts";

const spec = {
  name: "demo-cmd",
  summary: "A command for tests",
  flags: {
    input: { type: "string", required: true, value: "FILE", description: "Input" },
    "top-k": { type: "integer", default: 0, description: "K" },
    temperature: { type: "number", description: "T" },
    verbose: { type: "boolean", description: "V" },
  },
} as const;

function usageMessage(argv: string[]): string {
  try {
    parseFlags(spec, argv);
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error("expected a UsageError");
}

Deno.test("parseFlags() reads strings, numbers, booleans and defaults", () => {
  const f = parseFlags(spec, ["--input", "a.jsonl", "--temperature=0.5", "--verbose"]);
  assertEquals(f, { input: "a.jsonl", "top-k": 0, temperature: 0.5, verbose: true });
});

Deno.test('parseFlags() rejects unknown flag "--bogus" in one line naming it', () => {
  const msg = usageMessage(["--input", "x", "--bogus"]);
  assertMatch(msg, /"--bogus"/);
  assertEquals(msg.includes("\n"), false);
});

Deno.test("parseFlags() rejects a missing required flag, a missing value and bad numbers", () => {
  assertMatch(usageMessage([]), /Missing required flag "--input"/);
  assertMatch(usageMessage(["--input"]), /"--input" needs a value/);
  assertMatch(usageMessage(["--input", "x", "--top-k", "1.5"]), /expects an integer, got "1.5"/);
  assertMatch(
    usageMessage(["--input", "x", "--temperature", "hot"]),
    /expects a number, got "hot"/,
  );
  assertMatch(usageMessage(["--input", "x", "extra"]), /Unexpected argument "extra"/);
  assertMatch(usageMessage(["--input", "x", "--verbose=yes"]), /takes no value/);
});

Deno.test("parseFlags() returns null for --help even without required flags", () => {
  assertEquals(parseFlags(spec, ["--help"]), null);
});

Deno.test("helpText() lists every flag with its default and required marks", () => {
  const text = helpText(spec);
  assertMatch(text, /^Usage: star demo-cmd --input FILE \[flags\]/);
  assertMatch(text, /--top-k N\s+K \(default 0\)/);
  assertMatch(text, /--input FILE\s+Input \(required\)/);
  assertMatch(text, /--help/);
});

Deno.test("closestName() suggests near names only", () => {
  assertEquals(editDistance("learnig_rate", "learning_rate"), 1);
  assertEquals(closestName("learnig_rate", ["seed", "learning_rate", "data"]), "learning_rate");
  assertEquals(closestName("zzzzzz", ["seed", "learning_rate"]), undefined);
  assertThrows(() => parseFlags(spec, ["--inptu", "x"]), UsageError);
});
