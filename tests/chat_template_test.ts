import { ChatTemplate, pyJsonDumps, TemplateError } from "../data/chat_template.ts";
import { pyStripChars as pyStrip } from "../lib/py/text.ts";
import { parsePyJson } from "../lib/py/json.ts";
import { assertEquals, assertMatch, assertThrows } from "./assert.ts";

interface Case {
  name: string;
  template: string;
  vars: string;
  output?: string;
  error?: string;
}

const cases: Case[] = (await Deno.readTextFile(
  new URL("./testdata/template_cases.jsonl", import.meta.url),
)).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));

function render(c: Case): string {
  const vars = parsePyJson(c.vars) as Map<string, never>;
  return new ChatTemplate(c.template).render({ messages: [], ...Object.fromEntries(vars) });
}

// Each case was rendered by Python's jinja2 set up as transformers sets it up
// (tests/reference/gen_template_cases.py).
for (const c of cases) {
  Deno.test(`ChatTemplate.render() matches Python jinja2: ${c.name}`, () => {
    if (c.error !== undefined) {
      const err = assertThrows(() => render(c), TemplateError);
      if (c.error.startsWith("TemplateError: ")) {
        assertEquals(err.message, c.error.slice("TemplateError: ".length));
      }
    } else {
      assertEquals(render(c), c.output);
    }
  });
}

Deno.test("pyStripChars() follows str.strip: argument is a set of characters", () => {
  assertEquals(pyStrip("\n\n  x \n", "\n", true, true), "  x ");
  assertEquals(pyStrip("abcxcba", "ab", true, false), "cxcba");
  assertEquals(pyStrip("abcxcba", "ab", false, true), "abcxc");
  // Python whitespace: includes \x1c..\x1f and U+0085, excludes U+FEFF (unlike String.trim).
  assertEquals(pyStrip("\x1c\x85 a \ufeff", null, true, true), "a \ufeff");
  assertEquals(pyStrip("😀a😀", "😀", true, true), "a");
});

Deno.test("pyJsonDumps() writes floats, ints and keys as json.dumps", () => {
  const v = parsePyJson('{"2": 1.0, "1": [1e-7, 10000000000000000.0, 3], "x": {}}');
  assertEquals(pyJsonDumps(v), '{"2": 1.0, "1": [1e-07, 1e+16, 3], "x": {}}');
  assertEquals(
    pyJsonDumps(v, { indent: 1 }),
    '{\n "2": 1.0,\n "1": [\n  1e-07,\n  1e+16,\n  3\n ],\n "x": {}\n}',
  );
  assertEquals(
    pyJsonDumps(v, { sortKeys: true, separators: [",", ":"] }),
    '{"1":[1e-07,1e+16,3],"2":1.0,"x":{}}',
  );
});

Deno.test("ChatTemplate passes special tokens as variables and reports parse errors", () => {
  const t = new ChatTemplate("{{ eos_token }}{{ bos_token is defined }}", { eos_token: "<e>" });
  assertEquals(t.render({ messages: [] }), "<e>False");
  const err = assertThrows(() => new ChatTemplate("{% if %}"), TemplateError);
  assertMatch(err.message, /Cannot parse the chat template/);
});
