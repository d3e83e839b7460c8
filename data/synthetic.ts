/**
 * A synthetic tool-calling data set in the messages format (CONTRACT.md), deterministic from a
 * seed. A dozen tools with typed parameters (strings, integers, numbers, enums, booleans and
 * nested objects); each row offers the needed tools plus distractors and asks for zero, one
 * or several parallel calls; the gold assistant turn holds the calls (content null) or a short
 * reply when no tool fits.
 * The phrasing comes from a small vocabulary of templates on purpose: a model of a few million
 * parameters can learn to pick the tool and copy the values in minutes on a CPU, and the
 * reward still has something to measure (names, argument keys and values, call counts).
 */

/** JSON-like values of the generated rows. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export interface SynthMessage {
  role: "system" | "user" | "assistant";
  content: string | null;
  tool_calls?: { name: string; arguments: { [k: string]: Json } }[];
}

export interface SynthRow {
  id: string;
  messages: SynthMessage[];
  tools: { name: string; description: string; parameters: Json }[];
}

/** mulberry32: a small, fast 32-bit PRNG; every row draws from its own seed (seed, index). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** murmur3's 32-bit finaliser: a bijection on 32-bit words; each input bit flips half the output. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The PRNG seed of row `index` of data set `seed`: the seed is hashed on its own first and only
 * then combined with the index, so that rows of different seeds are unrelated (mixing both in
 * before hashing lets a near seed repeat the rows at shifted indices). For one seed, indices
 * below 2^32 get distinct row seeds; seeds are taken modulo 2^32.
 */
export function rowSeed(seed: number, index: number): number {
  return fmix32((fmix32((seed ^ 0x9e3779b9) >>> 0) ^ index) >>> 0);
}

class Rng {
  next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** k distinct items in random order. */
  sample<T>(xs: readonly T[], k: number): T[] {
    const a = xs.slice();
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a.slice(0, k);
  }
}

const CITIES = [
  "Paris",
  "Tokyo",
  "Lima",
  "Oslo",
  "Cairo",
  "Berlin",
  "Sydney",
  "Toronto",
  "Madrid",
  "Seoul",
];
const CURRENCIES = ["USD", "EUR", "JPY", "GBP", "CHF", "CAD"];
const PEOPLE = ["anna", "ben", "chen", "dana", "eli", "fatima", "gus", "hana"];
const ARTISTS = ["Miles Davis", "Adele", "Daft Punk", "Nina Simone", "Queen", "Bach"];
const LANGUAGES = ["french", "german", "spanish", "japanese", "italian"];
const TICKERS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOG"];
const TOPICS = ["lunch", "budget", "trip", "launch", "review", "party"];
const PHRASES = [
  "good morning",
  "thank you",
  "where is the station",
  "see you soon",
  "how are you",
];
const CUISINES = ["italian", "thai", "mexican", "indian", "japanese"];

const pad2 = (n: number) => String(n).padStart(2, "0");

/** One tool: its schema, a way to draw arguments, and how a user asks for it. */
interface ToolSpec {
  name: string;
  description: string;
  parameters: Json;
  /** Draws arguments (keys in schema order) and the phrase of a request for them. */
  draw(r: Rng): { args: { [k: string]: Json }; ask: string };
}

const obj = (properties: { [k: string]: Json }, required: string[]): Json => ({
  type: "object",
  properties,
  required,
});

const date = (r: Rng) => `2025-${pad2(r.int(1, 12))}-${pad2(r.int(1, 28))}`;
const time = (r: Rng) => `${pad2(r.int(6, 22))}:${r.pick(["00", "15", "30", "45"])}`;

export const TOOLS: readonly ToolSpec[] = [
  {
    name: "get_weather",
    description: "Get the weather forecast for a city.",
    parameters: obj({
      city: { type: "string", description: "City name" },
      unit: { type: "string", enum: ["celsius", "fahrenheit"] },
      days: { type: "integer", description: "Number of days, 1 to 7" },
    }, ["city"]),
    draw(r) {
      const city = r.pick(CITIES);
      const args: { [k: string]: Json } = { city };
      let ask = `what is the weather in ${city}`;
      if (r.chance(0.5)) {
        args.unit = r.pick(["celsius", "fahrenheit"]);
        ask += ` in ${args.unit}`;
      }
      if (r.chance(0.4)) {
        args.days = r.int(1, 7);
        ask += ` for ${args.days} days`;
      }
      return { args, ask };
    },
  },
  {
    name: "convert_currency",
    description: "Convert an amount of money from one currency to another.",
    parameters: obj({
      amount: { type: "number" },
      from_currency: { type: "string", enum: CURRENCIES },
      to_currency: { type: "string", enum: CURRENCIES },
    }, ["amount", "from_currency", "to_currency"]),
    draw(r) {
      const [from, to] = r.sample(CURRENCIES, 2);
      const amount = r.chance(0.5) ? r.int(1, 500) : r.int(10, 9999) / 10;
      return {
        args: { amount, from_currency: from, to_currency: to },
        ask: `convert ${amount} ${from} to ${to}`,
      };
    },
  },
  {
    name: "set_alarm",
    description: "Set an alarm on the phone.",
    parameters: obj({
      time: { type: "string", description: "HH:MM, 24-hour clock" },
      label: { type: "string" },
      repeat_daily: { type: "boolean" },
    }, ["time"]),
    draw(r) {
      const t = time(r);
      const args: { [k: string]: Json } = { time: t };
      let ask = `set an alarm for ${t}`;
      if (r.chance(0.4)) {
        args.label = r.pick(TOPICS);
        ask += ` called ${args.label}`;
      }
      if (r.chance(0.4)) {
        args.repeat_daily = r.chance(0.5);
        ask += args.repeat_daily ? " every day" : " just once";
      }
      return { args, ask };
    },
  },
  {
    name: "search_flights",
    description: "Search for flights between two cities on a date.",
    parameters: obj({
      origin: { type: "string" },
      destination: { type: "string" },
      date: { type: "string", description: "YYYY-MM-DD" },
      passengers: { type: "integer" },
      cabin: { type: "string", enum: ["economy", "business", "first"] },
    }, ["origin", "destination", "date"]),
    draw(r) {
      const [origin, destination] = r.sample(CITIES, 2);
      const d = date(r);
      const args: { [k: string]: Json } = { origin, destination, date: d };
      let ask = `find flights from ${origin} to ${destination} on ${d}`;
      if (r.chance(0.4)) {
        args.passengers = r.int(1, 6);
        ask += ` for ${args.passengers} people`;
      }
      if (r.chance(0.3)) {
        args.cabin = r.pick(["economy", "business", "first"]);
        ask += ` in ${args.cabin}`;
      }
      return { args, ask };
    },
  },
  {
    name: "send_email",
    description: "Send an email to a contact.",
    parameters: obj({
      to: { type: "string" },
      subject: { type: "string" },
      urgent: { type: "boolean" },
    }, ["to", "subject"]),
    draw(r) {
      const to = `${r.pick(PEOPLE)}@example.com`;
      const subject = r.pick(TOPICS);
      const args: { [k: string]: Json } = { to, subject };
      let ask = `email ${to} about the ${subject}`;
      if (r.chance(0.3)) {
        args.urgent = true;
        ask += ", it is urgent";
      }
      return { args, ask };
    },
  },
  {
    name: "create_event",
    description: "Create a calendar event.",
    parameters: obj({
      title: { type: "string" },
      start: obj({ date: { type: "string" }, time: { type: "string" } }, ["date", "time"]),
      duration_minutes: { type: "integer" },
      reminder: { type: "boolean" },
    }, ["title", "start"]),
    draw(r) {
      const title = r.pick(TOPICS);
      const start = { date: date(r), time: time(r) };
      const args: { [k: string]: Json } = { title, start };
      let ask = `add a ${title} event on ${start.date} at ${start.time}`;
      if (r.chance(0.5)) {
        args.duration_minutes = r.pick([15, 30, 45, 60, 90]);
        ask += ` for ${args.duration_minutes} minutes`;
      }
      if (r.chance(0.3)) {
        args.reminder = r.chance(0.5);
        ask += args.reminder ? " with a reminder" : " without a reminder";
      }
      return { args, ask };
    },
  },
  {
    name: "play_music",
    description: "Play music by an artist.",
    parameters: obj({
      artist: { type: "string" },
      shuffle: { type: "boolean" },
      volume: { type: "integer", description: "0 to 100" },
    }, ["artist"]),
    draw(r) {
      const artist = r.pick(ARTISTS);
      const args: { [k: string]: Json } = { artist };
      let ask = `play ${artist}`;
      if (r.chance(0.4)) {
        args.shuffle = r.chance(0.5);
        ask += args.shuffle ? " on shuffle" : " in order";
      }
      if (r.chance(0.4)) {
        args.volume = r.int(1, 10) * 10;
        ask += ` at volume ${args.volume}`;
      }
      return { args, ask };
    },
  },
  {
    name: "calculate_tip",
    description: "Work out the tip for a bill.",
    parameters: obj({
      bill: { type: "number" },
      percent: { type: "number" },
      split: { type: "integer" },
    }, ["bill", "percent"]),
    draw(r) {
      const bill = r.int(100, 20000) / 100;
      const percent = r.pick([10, 12.5, 15, 18, 20]);
      const args: { [k: string]: Json } = { bill, percent };
      let ask = `what is a ${percent} percent tip on ${bill}`;
      if (r.chance(0.4)) {
        args.split = r.int(2, 6);
        ask += ` split ${args.split} ways`;
      }
      return { args, ask };
    },
  },
  {
    name: "translate_text",
    description: "Translate a short text.",
    parameters: obj({
      text: { type: "string" },
      target_language: { type: "string", enum: LANGUAGES },
    }, ["text", "target_language"]),
    draw(r) {
      const text = r.pick(PHRASES);
      const lang = r.pick(LANGUAGES);
      return { args: { text, target_language: lang }, ask: `translate "${text}" to ${lang}` };
    },
  },
  {
    name: "get_stock_price",
    description: "Get the latest price of a stock.",
    parameters: obj({ ticker: { type: "string" } }, ["ticker"]),
    draw(r) {
      const ticker = r.pick(TICKERS);
      return { args: { ticker }, ask: `what is ${ticker} trading at` };
    },
  },
  {
    name: "book_restaurant",
    description: "Book a table at a restaurant.",
    parameters: obj({
      city: { type: "string" },
      party_size: { type: "integer" },
      time: { type: "string" },
      preferences: obj({
        cuisine: { type: "string", enum: CUISINES },
        outdoor: { type: "boolean" },
      }, []),
    }, ["city", "party_size", "time"]),
    draw(r) {
      const city = r.pick(CITIES);
      const party = r.int(1, 8);
      const t = time(r);
      const args: { [k: string]: Json } = { city, party_size: party, time: t };
      let ask = `book a table for ${party} in ${city} at ${t}`;
      if (r.chance(0.5)) {
        const prefs: { [k: string]: Json } = { cuisine: r.pick(CUISINES) };
        ask += `, ${prefs.cuisine} food`;
        if (r.chance(0.5)) {
          prefs.outdoor = true;
          ask += " outside";
        }
        args.preferences = prefs;
      }
      return { args, ask };
    },
  },
  {
    name: "set_thermostat",
    description: "Set the home thermostat.",
    parameters: obj({
      temperature: { type: "number" },
      mode: { type: "string", enum: ["heat", "cool", "auto"] },
    }, ["temperature"]),
    draw(r) {
      const temperature = r.int(32, 52) / 2;
      const args: { [k: string]: Json } = { temperature };
      let ask = `set the heating to ${temperature} degrees`;
      if (r.chance(0.4)) {
        args.mode = r.pick(["heat", "cool", "auto"]);
        ask = `set the thermostat to ${temperature} degrees on ${args.mode}`;
      }
      return { args, ask };
    },
  },
];

const OPENERS = ["", "", "", "hi, ", "hey, ", "quick one: "];
const JOINERS = [" and ", ", and also ", ". also "];
const SMALL_TALK: readonly [string, string][] = [
  ["hello", "Hello! How can I help you today?"],
  ["thanks a lot", "You are welcome!"],
  ["who are you", "I am an assistant that can use tools to help you."],
  ["tell me a joke", "I only know how to call tools, but I hope your day is going well!"],
  ["what can you do", "I can call the tools listed above for you."],
  ["good night", "Good night!"],
];
const SYSTEMS = ["You are a helpful assistant.", "You are a concise assistant that uses tools."];

/**
 * Narrower variants of the set. The defaults give the full set; smaller values give shorter
 * prompts and answers (the demo uses one call and no distractor, so that a tiny model trained
 * for minutes on a CPU sees mostly the part it has to learn).
 */
export interface SynthOptions {
  /** Most calls in one answer (1 to 3; default 3): rows that would ask for more ask for this many. */
  maxCalls?: number;
  /** Most distractor tools offered beside the needed ones (0 or 1; default 1). */
  maxDistractors?: number;
  /** Only tools without decimal-number parameters (no `number` type; integers stay). */
  noDecimals?: boolean;
}

const TOOLS_NO_DECIMALS = TOOLS.filter((t) => {
  const props = (t.parameters as { properties: Record<string, { type?: string }> }).properties;
  return !Object.values(props).some((p) => p.type === "number");
});

/** Row `index` of the data set of seed `seed` (independent of the other rows). */
export function synthRow(seed: number, index: number, opts: SynthOptions = {}): SynthRow {
  const r = new Rng(rowSeed(seed, index));
  const u = r.next();
  const nCalls = Math.min(u < 0.15 ? 0 : u < 0.6 ? 1 : u < 0.85 ? 2 : 3, opts.maxCalls ?? 3);
  const tools = opts.noDecimals ? TOOLS_NO_DECIMALS : TOOLS;
  const chosen = r.sample(tools, Math.max(nCalls, 1));
  // Parallel calls may use the same tool twice (two cities, two tickers).
  const used = nCalls >= 2 && r.chance(0.25) ? [chosen[0], ...chosen.slice(0, nCalls - 1)] : chosen
    .slice(0, nCalls);
  const nDistractors = Math.min(r.int(0, 1), opts.maxDistractors ?? 1);
  const distractors = r.sample(tools.filter((t) => !chosen.includes(t)), nDistractors);
  const offered = r.sample(
    [...new Set([...chosen.slice(0, Math.max(nCalls, 1)), ...distractors])],
    99,
  );
  const messages: SynthMessage[] = [];
  if (r.chance(0.3)) messages.push({ role: "system", content: r.pick(SYSTEMS) });
  if (nCalls === 0) {
    const [ask, reply] = r.pick(SMALL_TALK);
    messages.push({ role: "user", content: ask });
    messages.push({ role: "assistant", content: reply });
  } else {
    const calls: { tool: ToolSpec; args: { [k: string]: Json }; ask: string }[] = [];
    for (const t of used) {
      // A tool used twice gets different requests (redrawn a few times if needed).
      let c = t.draw(r);
      for (let k = 0; k < 5 && calls.some((p) => p.ask === c.ask); k++) c = t.draw(r);
      calls.push({ tool: t, ...c });
    }
    let text = r.pick(OPENERS) + calls[0].ask;
    for (const c of calls.slice(1)) text += r.pick(JOINERS) + c.ask;
    messages.push({ role: "user", content: text });
    messages.push({
      role: "assistant",
      content: null,
      tool_calls: calls.map((c) => ({ name: c.tool.name, arguments: c.args })),
    });
  }
  return {
    id: `synth-${seed}-${index}`,
    messages,
    tools: offered.map((t) => ({
      name: t.name,
      description: t.description,
      parameters: t.parameters,
    })),
  };
}

/** Rows 0..n-1 of the data set of `seed`. */
export function* synthRows(n: number, seed = 0, opts: SynthOptions = {}): Generator<SynthRow> {
  for (let i = 0; i < n; i++) yield synthRow(seed, i, opts);
}

/** What a model that reads a row from the user turn on sees of it: its turns after the system one. */
export function turnsKey(row: SynthRow): string {
  return JSON.stringify(row.messages.filter((m) => m.role !== "system"));
}

/**
 * `n` rows of `seed`, from index 0 on, skipping those whose turns (system turn aside, see
 * turnsKey) a row of `exclude` has: a held-out set that asks nothing a training set asks. The
 * template space is small, so independent seeds still share a few rows by chance (about 1 in
 * 100 of a 200-row set). Skipped rows leave gaps in the ids. Throws when `exclude` leaves too
 * few rows to find `n` in `64 n + 4096` draws.
 */
export function* synthRowsExcept(
  n: number,
  seed: number,
  exclude: Iterable<SynthRow>,
  opts: SynthOptions = {},
): Generator<SynthRow> {
  const seen = new Set<string>();
  for (const r of exclude) seen.add(turnsKey(r));
  const limit = 64 * n + 4096;
  let given = 0;
  for (let i = 0; given < n; i++) {
    if (i >= limit) {
      throw new Error(`Only ${given} of ${n} synthetic rows of seed ${seed} are new in ${i} draws`);
    }
    const r = synthRow(seed, i, opts);
    if (seen.has(turnsKey(r))) continue;
    given++;
    yield r;
  }
}
