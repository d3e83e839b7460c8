import { assertClose, assertEquals, assertThrows } from "./assert.ts";
import { type Reward, RewardError, rouge, rougeTokens, simRlReward } from "../reward/mod.ts";
import { pyStrip } from "../lib/py/text.ts";

// ---- helpers: a prompt with a tools block, a completion and a label -----------------------

const WEATHER = {
  name: "get_weather",
  description: "Weather of a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string" }, days: { type: "integer" }, unit: { type: "string" } },
  },
};
const SEARCH = {
  name: "search",
  parameters: { query: { type: "str" }, limit: { type: "int" } }, // xLAM style: no properties
};

function prompt(tools: unknown[] | null = [WEATHER, SEARCH]): string {
  const block = tools === null
    ? ""
    : `# Tools\n<tools>\n${tools.map((t) => JSON.stringify(t)).join("\n")}\n</tools>\n`;
  return `<|im_start|>system\n${block}<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n` +
    `<|im_start|>assistant\n<think>`;
}
const calls = (...texts: string[]) =>
  texts.map((t) => `<tool_call>\n${t}\n</tool_call>`).join("\n");
const completion = (answer: string) => `\nthinking\n</think>\n\n${answer}<|im_end|>`;
const label = (answer: string) => `</think>\n\n${answer}<|im_end|>\n`;

function score(pred: string, gold: string, p = prompt()): Reward {
  return simRlReward(p, completion(pred), label(gold));
}
function assertAnswer(r: Reward, answer: number) {
  assertEquals(r.format, 1);
  assertClose(r.answer, answer, { atol: 1e-12 });
  assertClose(r.reward, answer, { atol: 1e-12 });
}
function assertFormatFails(r: Reward) {
  assertEquals(r, { reward: -1, format: -1, answer: 0 });
}

const W = (args: string) => `{"name": "get_weather", "arguments": ${args}}`;
const S = (args: string) => `{"name": "search", "arguments": ${args}}`;

// ---- fixture: the independent Python reference on adversarial and shared rows --------------

Deno.test("simRlReward() agrees with the Python reference to 1e-9 on every fixture row", async () => {
  const gz = await Deno.readFile(new URL("./testdata/score_fixture.jsonl.gz", import.meta.url));
  const text = await new Response(
    new Blob([gz]).stream().pipeThrough(new DecompressionStream("gzip")),
  ).text();
  let n = 0, errors = 0, fails = 0;
  const bad: string[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const { row, expected } = JSON.parse(line);
    const args = [row.prompt ?? row.inputs, row.completion, row.label ?? row.targets] as const;
    n++;
    let got: Reward | { error: string };
    try {
      got = simRlReward(...args);
    } catch (e) {
      if (!(e instanceof RewardError)) throw e;
      got = { error: e.message };
    }
    if ("error" in expected || "error" in got) {
      if (!("error" in expected && "error" in got)) bad.push(`${row.id}: ${JSON.stringify(got)}`);
      errors++;
      continue;
    }
    if (got.format === -1) fails++;
    if (
      got.format !== expected.format || Math.abs(got.reward - expected.reward) > 1e-9 ||
      Math.abs(got.answer - expected.answer) > 1e-9
    ) bad.push(`${row.id}: ${JSON.stringify(got)} vs ${JSON.stringify(expected)}`);
  }
  assertEquals(bad.slice(0, 10), []);
  assertEquals(n > 6000 && errors > 100 && fails > 500, true, `${n} ${errors} ${fails}`);
});

// ---- section 1 and 2: the generation and its parsing ----------------------------------------

Deno.test("simRlReward() scores an exact single call as 1", () => {
  assertAnswer(score(calls(W(`{"city": "Paris"}`)), calls(W(`{"city": "Paris"}`))), 1);
});

Deno.test("simRlReward() fails the format without exactly one think block", () => {
  const gold = label(calls(W(`{"city": "Paris"}`)));
  const good = calls(W(`{"city": "Paris"}`));
  // no closing tag
  assertFormatFails(simRlReward(prompt(), `\nhm\n\n${good}`, gold));
  // two complete think blocks
  assertFormatFails(simRlReward(prompt(), `a</think><think>b</think>${good}`, gold));
  // one block, a stray second </think>: the answer is what follows the last one
  assertAnswer(simRlReward(prompt(), `a</think>junk</think>\n${good}`, gold), 1);
  assertAnswer(simRlReward(prompt(), `a</think>${good}</think>`, gold), 0); // answer is ""
});

Deno.test("simRlReward() reads the generation after the last assistant header", () => {
  const p = prompt().replace(
    "<|im_start|>assistant\n<think>",
    "<|im_start|>assistant\n<think>old</think>bye<|im_end|>\n<|im_start|>assistant\n<think>",
  );
  // the earlier turn's think block does not count
  assertAnswer(score(calls(W(`{"city": "Paris"}`)), calls(W(`{"city": "Paris"}`)), p), 1);
  // a header inside the completion restarts the generation
  const c = `x</think>no<|im_end|>\n<|im_start|>assistant\nno think tags`;
  assertFormatFails(simRlReward(prompt(), c, label("yes")));
});

Deno.test("simRlReward() finds the last assistant header wherever prompt and completion meet", () => {
  // An earlier turn with two "</think>": reading from its header would fail the format.
  const text = prompt().replace(
    "<|im_start|>assistant\n<think>",
    "<|im_start|>assistant\n<think>a</think>b</think><|im_end|>\n",
  ) + "<|im_start|>assistant\n<think>t</think>\n" + calls(W(`{"city": "Paris"}`)) + "<|im_end|>";
  const gold = label(calls(W(`{"city": "Paris"}`)));
  // Every cut after the tools block: the header wholly in the prompt, split, or in the completion.
  let n = 0;
  for (let k = text.indexOf("</tools>") + 8; k <= text.length; k++) {
    assertAnswer(simRlReward(text.slice(0, k), text.slice(k), gold), 1);
    n++;
  }
  assertEquals(n > 100, true);
  // With no header at all, the whole text is the generation: here, two think blocks.
  const bare = text.replaceAll("<|im_start|>assistant\n", "");
  assertFormatFails(simRlReward(bare.slice(0, 200), bare.slice(200), gold));
});

Deno.test("simRlReward() fails the format on a tool call that is not a call object", () => {
  const gold = calls(W(`{"city": "Paris"}`));
  assertFormatFails(score(calls(`{"name": "get_weather", "arguments": {"city": "Paris"}`), gold));
  assertFormatFails(score(calls(`[1, 2]`), gold));
  assertFormatFails(score(calls(`{"name": "get_weather"}`), gold));
  assertFormatFails(score(calls(`{'name': 'get_weather', 'arguments': {}}`), gold));
  // the second call is broken: the whole generation fails
  assertFormatFails(score(calls(W(`{"city": "Paris"}`), W(`{"city": "Paris",}`)), gold));
});

Deno.test("simRlReward() gives 0 calls and no reply to an unclosed <tool_call>", () => {
  const r = score(`<tool_call>\n${W(`{"city": "Paris"}`)}`, calls(W(`{"city": "Paris"}`)));
  assertAnswer(r, 0);
  assertAnswer(score(`<tool_call> hello`, "hello"), 0);
});

// ---- section 3 and 4: tools and validity -----------------------------------------------------

Deno.test("simRlReward() fails the format on a hallucinated tool or argument", () => {
  const gold = calls(W(`{"city": "Paris"}`));
  assertFormatFails(score(calls(`{"name": "get_wether", "arguments": {"city": "Paris"}}`), gold));
  assertFormatFails(score(calls(W(`{"city": "Paris", "country": "FR"}`)), gold));
  // xLAM-style parameters: their own keys are the argument names
  assertAnswer(score(calls(S(`{"query": "q"}`)), calls(S(`{"query": "q"}`))), 1);
  assertFormatFails(score(calls(S(`{"type": "q"}`)), calls(S(`{"query": "q"}`))));
});

Deno.test("simRlReward() uses parameter keys when properties has no non-null type", () => {
  const t = { name: "f", parameters: { type: null, properties: { a: {} } } };
  const gold = calls(`{"name": "f", "arguments": {"properties": 1}}`);
  assertAnswer(score(calls(`{"name": "f", "arguments": {"properties": 1}}`), gold, prompt([t])), 1);
  assertFormatFails(score(calls(`{"name": "f", "arguments": {"a": 1}}`), gold, prompt([t])));
});

Deno.test("simRlReward() lets a later tool of the same name replace an earlier one", () => {
  const t1 = { name: "f", parameters: { a: {} } };
  const t2 = { name: "f", parameters: { b: {} } };
  const gold = calls(`{"name": "f", "arguments": {"b": 1}}`);
  assertAnswer(score(calls(`{"name": "f", "arguments": {"b": 1}}`), gold, prompt([t1, t2])), 1);
  assertFormatFails(score(calls(`{"name": "f", "arguments": {"a": 1}}`), gold, prompt([t1, t2])));
});

Deno.test("simRlReward() reads only the last tools block and fails calls when there is none", () => {
  const gold = calls(W(`{"city": "Paris"}`));
  const two = prompt([SEARCH]).replace(
    "<|im_end|>",
    `<tools>\n${JSON.stringify(WEATHER)}\n</tools>`,
  );
  assertAnswer(score(calls(W(`{"city": "Paris"}`)), gold, two), 1);
  assertFormatFails(score(calls(W(`{"city": "Paris"}`)), gold, prompt(null)));
  // a reply needs no tools
  assertAnswer(score("hello there", "hello there", prompt(null)), 1);
});

Deno.test('simRlReward() accepts "" and [] as no arguments and refuses other non-objects', () => {
  assertAnswer(score(calls(W(`""`)), calls(W(`{}`))), 1);
  assertAnswer(score(calls(W(`[]`)), calls(W(`{}`))), 1);
  assertAnswer(score(calls(W(`""`)), calls(W(`{"city": "Paris"}`))), 0); // 0 / (0 + 1)
  for (const bad of [`null`, `1`, `true`, `"x"`, `[1]`, `[{}]`]) {
    assertFormatFails(score(calls(W(bad)), calls(W(`{}`))));
  }
});

Deno.test("simRlReward() throws RewardError on a malformed tools line, skipping blank lines", () => {
  const p = prompt().replace("</tools>", '  \u3000\n{"name": "x"}\n</tools>');
  assertThrows(() => score("hi", "hi", p), RewardError);
  const p2 = prompt().replace("</tools>", '{"name": "x", "parameters": \n</tools>');
  assertThrows(() => score("hi", "hi", p2), RewardError);
  const p3 = prompt().replace("</tools>", "\u00a0\n\u3000 \n</tools>");
  assertAnswer(score("hi", "hi", p3), 1);
});

// ---- section 5: the label -------------------------------------------------------------------

Deno.test("simRlReward() throws RewardError on a malformed label", () => {
  const c = completion("hi");
  assertThrows(() => simRlReward(prompt(), c, "no think tag"), RewardError);
  assertThrows(() => simRlReward(prompt(), c, "</think>a</think>b"), RewardError);
  assertThrows(() => simRlReward(prompt(), c, label(calls(W(`{"city": }`)))), RewardError);
  assertThrows(() => simRlReward(prompt(), c, label(calls(W(`""`)))), RewardError);
  assertThrows(() => simRlReward(prompt(), c, label(`<tool_call>\n${W(`{}`)}`)), RewardError);
  assertThrows(() => simRlReward(prompt(), c, label(calls(`{"name": "f"}`))), RewardError);
});

// ---- section 6: the answer score --------------------------------------------------------------

Deno.test("simRlReward() gives partial credit per argument", () => {
  const gold = calls(W(`{"city": "Paris", "days": 3}`));
  assertAnswer(score(calls(W(`{"city": "Paris", "days": 4}`)), gold), 1 / 2); // (1 + 0) / 2
  assertAnswer(score(calls(W(`{"city": "Paris"}`)), gold), 1 / 2); // 1 / (1 + 1 left)
  assertAnswer(score(calls(W(`{"city": "Paris", "days": 3, "unit": "C"}`)), gold), 2 / 3);
  assertAnswer(score(calls(W(`{"unit": "C"}`)), gold), 0); // 0 / (1 + 2)
  // string arguments are compared with ROUGE-L: "new york city" vs "york": P 1/3, R 1, F 1/2
  assertAnswer(score(calls(W(`{"city": "new york city"}`)), calls(W(`{"city": "York"}`))), 1 / 2);
});

Deno.test("simRlReward() compares numbers as Python does and other values by str()", () => {
  const one = (g: string, p: string) =>
    score(calls(W(`{"days": ${p}}`)), calls(W(`{"days": ${g}}`)));
  assertAnswer(one("1", "1.0"), 1); // 1 == 1.0
  assertAnswer(one("1", "true"), 1); // 1 == True
  assertAnswer(one("0", "-0.0"), 1);
  assertAnswer(one("1", "1e0"), 1);
  assertAnswer(one("NaN", "NaN"), 0); // nan != nan
  assertAnswer(one("9007199254740993", "9007199254740992.0"), 0); // exact int/float compare
  assertAnswer(one("9007199254740992", "9007199254740992.0"), 1);
  assertAnswer(one("1", `"1"`), 1); // str(1) == "1"
  assertAnswer(one("1.0", `"1"`), 0); // str(1.0) == "1.0"
  assertAnswer(one("null", `"None"`), 1);
  assertAnswer(one("true", `"True"`), 1);
  assertAnswer(one("[1]", "[1.0]"), 0); // '[1]' != '[1.0]'
  assertAnswer(one('[1, "a"]', '[1, "a"]'), 1);
  assertAnswer(one(`{"a": 1, "b": 2}`, `{"b": 2, "a": 1}`), 0); // key order shows in str()
  assertAnswer(one(`{"a": 1, "b": 2}`, `{"a": 1, "b": 2}`), 1);
  assertAnswer(one(`{"a": 1, "a": 2}`, `{"a": 2}`), 1); // a repeated key keeps the last value
  assertAnswer(one(`["it's"]`, `["it's"]`), 1);
  assertAnswer(one(`[1e-05]`, `"[1e-05]"`), 1); // str of a list uses float repr
  assertAnswer(one(`1e16`, `"1e+16"`), 1); // a float and a string: str(1e16) is "1e+16"
});

Deno.test("simRlReward() matches duplicate and reordered calls greedily by name", () => {
  const f1 = W(`{"city": "Paris"}`);
  const g1 = S(`{"query": "x"}`);
  assertAnswer(score(calls(g1, f1), calls(f1, g1)), 1); // order does not matter
  assertAnswer(score(calls(f1, f1), calls(f1)), 1 / 2); // 1 / (0 left + 2 predicted)
  assertAnswer(score(calls(f1), calls(f1, f1)), 1 / 2); // 1 / (1 left + 1 predicted)
  assertAnswer(score(calls(f1), calls(f1, g1)), 1 / 2);
  // a tie goes to the first gold call left: then the second prediction finds its exact match
  const gold = calls(W(`{"city": "Paris", "days": 2}`), W(`{"city": "Paris", "days": 3}`));
  const pred = calls(W(`{"city": "Paris", "days": 9}`), W(`{"city": "Paris", "days": 3}`));
  assertAnswer(score(pred, gold), (0.5 + 1) / 2);
});

Deno.test("simRlReward() gives 0 when calls are expected and a reply comes, and vice versa", () => {
  assertAnswer(score("Paris is sunny", calls(W(`{"city": "Paris"}`))), 0);
  assertAnswer(score(calls(W(`{"city": "Paris"}`)), "Paris is sunny"), 0);
});

Deno.test("simRlReward() scores a reply by ROUGE-L with stemming", () => {
  // The reply runs to the end of the text, so "<|im_end|>" adds the tokens "im end" to both.
  // gold: the weather in pari is sunni im end / pred: pari weather is sunni im end
  // LCS 5 (weather is sunni im end), P 5/6, R 5/8
  const f = 2 * (5 / 6) * (5 / 8) / (5 / 6 + 5 / 8);
  assertAnswer(score("Paris weather is sunny", "The weather in Paris is sunny"), f);
  assertAnswer(score("Same text", "Same text"), 1);
  // without the end token: the texts as they are
  const raw = (pred: string, gold: string) =>
    simRlReward(prompt(), `x</think>${pred}`, `</think>${gold}`);
  assertAnswer(raw("", "something"), 0); // an empty reply scores 0
  assertAnswer(raw("something", "   "), 0); // a blank gold reply too
  assertAnswer(raw("\u3000\x1c", "something"), 0); // stripped to nothing
  assertAnswer(raw(" \u00a0Same\x85", "\nSame "), 1); // stripped on both sides, then equal
  assertAnswer(raw("\ufeffSame", "Same"), 1); // U+FEFF is kept, but is no token: F = 1
  assertAnswer(raw("!!!", "???"), 0); // no tokens on either side
  assertAnswer(raw("İ", "I"), 1); // "i" plus a combining dot vs "i"
});

Deno.test("rouge() is 1 on equal texts, 0 on blank ones, else ROUGE-L F", () => {
  assertEquals(rouge("", ""), 1);
  assertEquals(rouge(" ", "  "), 0);
  assertEquals(rouge("a b", "\u00a0"), 0);
  assertEquals(rouge("Running dogs", "run dog"), 1); // stems meet
  assertClose(rouge("a b c d", "a c"), 2 * 0.5 * 1 / 1.5); // LCS 2: P 2/4, R 2/2
});

Deno.test("rougeTokens() lowercases as Python does and keeps only [a-z0-9] runs", () => {
  assertEquals(rougeTokens("İstanbul \u212aelvin CAFÉ x_y 42"), [
    "i",
    "stanbul",
    "kelvin",
    "caf",
    "x",
    "y",
    "42",
  ]);
  assertEquals(rougeTokens("The flights were booked"), ["the", "flight", "were", "book"]);
  assertEquals(rougeTokens("ΣΟΣ 中文 😀"), []);
});

Deno.test("pyStrip() removes CPython's whitespace set, not JavaScript's", () => {
  assertEquals(pyStrip("\x1c\x1d\x1e\x1f\x85\u00a0\u2003\u3000 a \t\n\r\x0b\x0c"), "a");
  assertEquals(pyStrip("\ufeffa\u200b"), "\ufeffa\u200b"); // not whitespace for Python
});
