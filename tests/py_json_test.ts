import { assertEquals, assertThrows } from "./assert.ts";
import {
  dumpsPyJson,
  isPyDict,
  parsePyJson,
  parseRange,
  pyFloatRepr,
  PyJsonError,
  pyRepr,
  pyStr,
  type PyValue,
} from "../lib/py/json.ts";

interface Case {
  kind: "loads" | "float" | "strrepr";
  text?: string;
  ok?: boolean;
  repr?: string;
  str?: string;
  ascii?: string;
  utf8?: string;
  indent?: string;
  error?: string;
  bits?: string;
  s?: string;
}

const cases: Case[] = (await Deno.readTextFile(
  new URL("./testdata/py_json_cases.jsonl", import.meta.url),
)).split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));

Deno.test("parsePyJson() and pyRepr()/pyStr()/dumpsPyJson() agree with CPython 3.11 on the fixture", () => {
  let n = 0;
  for (const c of cases.filter((c) => c.kind === "loads")) {
    const text = c.text!;
    if (!c.ok) {
      const err = assertThrows(() => parsePyJson(text), PyJsonError);
      // CPython's message starts with the same reason (the int-limit message is shortened).
      const reason = c.error!.split(":")[0].split(" (")[0];
      if (!err.message.startsWith(reason)) {
        throw new Error(`${JSON.stringify(text)}: got "${err.message}", CPython "${c.error}"`);
      }
      n++;
      continue;
    }
    let v: PyValue;
    try {
      v = parsePyJson(text);
    } catch (e) {
      throw new Error(`${JSON.stringify(text)} failed: ${(e as Error).message}`);
    }
    const ctx = JSON.stringify(text);
    assertEquals(pyRepr(v), c.repr, `repr of ${ctx}`);
    assertEquals(pyStr(v), c.str, `str of ${ctx}`);
    assertEquals(dumpsPyJson(v), c.ascii, `dumps of ${ctx}`);
    assertEquals(dumpsPyJson(v, { ensureAscii: false }), c.utf8, `dumps utf8 of ${ctx}`);
    assertEquals(dumpsPyJson(v, { indent: 2 }), c.indent, `dumps indent of ${ctx}`);
    n++;
  }
  assertEquals(n > 450, true);
});

Deno.test("parseRange() reads a slice in place exactly as parsePyJson() reads the slice", () => {
  // Text after the slice that would extend a value read past its end: a closing quote, digits,
  // the rest of a literal, closing brackets, an escape.
  const after = ['"', "0", "5e3", "ue", "l", "e", "N", "y", "]}", " ", "\\u0041", ".5"];
  // Literals cut short, which the text after them would complete.
  const cut = ["tr", "nul", "fals", "Na", "Infinit", "-Infinit", '"ab', '["x\\'];
  const texts = [...cases.filter((c) => c.kind === "loads").map((c) => c.text!), ...cut];
  let n = 0;
  for (const text of texts) {
    const want = outcome(() => parsePyJson(text));
    for (const tail of after) {
      const host = `{"x": [${tail}` + text + tail;
      const start = host.length - text.length - tail.length;
      const end = start + text.length;
      assertEquals(outcome(() => parseRange(host, start, end, false)), want, JSON.stringify(host));
      const quiet = parseRange(host, start, end, true);
      assertEquals(quiet === undefined, want.startsWith("error"), JSON.stringify(host));
      if (quiet !== undefined) assertEquals("value " + pyRepr(quiet), want);
      n++;
    }
  }
  assertEquals(n > 450 * after.length, true);
});

/** The repr of what parse() returns, or its error message and position. */
function outcome(parse: () => PyValue): string {
  try {
    return "value " + pyRepr(parse());
  } catch (e) {
    if (!(e instanceof PyJsonError)) throw e;
    return `error ${e.message} @${e.position}`;
  }
}

Deno.test("pyFloatRepr() agrees with CPython repr(float) on 5,000 values", () => {
  const buf = new DataView(new ArrayBuffer(8));
  let n = 0;
  for (const c of cases.filter((c) => c.kind === "float")) {
    buf.setBigUint64(0, BigInt("0x" + c.bits!));
    assertEquals(pyFloatRepr(buf.getFloat64(0)), c.repr, `bits ${c.bits}`);
    n++;
  }
  assertEquals(n > 5000, true);
});

Deno.test("pyRepr() of strings agrees with CPython on every isprintable() boundary", () => {
  let n = 0;
  for (const c of cases.filter((c) => c.kind === "strrepr")) {
    assertEquals(pyRepr(c.s!), c.repr, `repr of ${JSON.stringify(c.s)}`);
    n++;
  }
  assertEquals(n > 1000, true);
});

Deno.test("parsePyJson() keeps ints and floats apart and ints exact", () => {
  assertEquals(parsePyJson("1"), 1n);
  assertEquals(parsePyJson("1.0"), 1);
  assertEquals(parsePyJson("1e2"), 100);
  assertEquals(typeof parsePyJson("1e2"), "number");
  assertEquals(parsePyJson("-0"), 0n);
  assertEquals(Object.is(parsePyJson("-0.0"), -0), true);
  assertEquals(parsePyJson("12345678901234567890123"), 12345678901234567890123n);
  // 15 digits are summed as a float, exactly; from 16 on the digits go to BigInt
  assertEquals(parsePyJson("999999999999999"), 999999999999999n);
  assertEquals(parsePyJson("-999999999999999"), -999999999999999n);
  assertEquals(parsePyJson("9007199254740993"), 9007199254740993n);
  assertEquals(parsePyJson("[-0, 10, 1E2, 7e-1]"), [0n, 10n, 100, 0.7]);
  assertEquals(Number.isNaN(parsePyJson(" NaN ")), true);
  assertEquals(parsePyJson("-Infinity"), -Infinity);
});

Deno.test("parsePyJson() gives a repeated key its first position and last value", () => {
  const v = parsePyJson('{"a": 1, "b": 2, "a": 3}');
  if (!isPyDict(v)) throw new Error("not a dict");
  assertEquals([...v.entries()], [["a", 3n], ["b", 2n]]);
});

Deno.test("parsePyJson() refuses a 4,301-digit int and accepts 4,300 digits", () => {
  assertEquals(typeof parsePyJson("9".repeat(4300)), "bigint");
  assertThrows(() => parsePyJson("9".repeat(4301)), PyJsonError, "Exceeds the limit");
  assertThrows(() => parsePyJson("-" + "9".repeat(4301)), PyJsonError, "Exceeds the limit");
});

Deno.test("parsePyJson() refuses raw control characters in strings and reports the position", () => {
  const err = assertThrows(() => parsePyJson('["a\nb"]'), PyJsonError);
  assertEquals((err as PyJsonError).position, 3);
  assertEquals(err.message, "Invalid control character at: line 1 column 4 (char 3)");
});

Deno.test("parsePyJson() refuses nesting deep enough to exhaust CPython's recursion limit", () => {
  assertThrows(() => parsePyJson("[".repeat(5000) + "]".repeat(5000)), PyJsonError);
});

Deno.test("pyFloatRepr() switches to exponent form below 1e-4 and from 1e16", () => {
  assertEquals(pyFloatRepr(1e-5), "1e-05");
  assertEquals(pyFloatRepr(0.0001), "0.0001");
  assertEquals(pyFloatRepr(1e16), "1e+16");
  assertEquals(pyFloatRepr(1e15), "1000000000000000.0");
  assertEquals(pyFloatRepr(1.5e300), "1.5e+300");
  assertEquals(pyFloatRepr(100), "100.0");
  assertEquals(pyFloatRepr(-0), "-0.0");
  assertEquals(pyFloatRepr(Infinity), "inf");
  assertEquals(pyFloatRepr(NaN), "nan");
});

Deno.test("pyStr() prints None, True and quoted reprs inside containers", () => {
  const v = parsePyJson('[null, true, "it\'s", "a", {"k": 1.0}]');
  assertEquals(pyStr(v), `[None, True, "it's", 'a', {'k': 1.0}]`);
  assertEquals(pyStr("plain"), "plain");
});
