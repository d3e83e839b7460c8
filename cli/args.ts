/**
 * Flag parsing for every command, on `node:util` parseArgs (the @std/cli substitute).
 * A command declares its flags once; the same table drives parsing, validation and --help.
 * Errors are UsageError with one line that names the flag and the command.
 */
import { parseArgs } from "node:util";
import { UsageError } from "../lib/errors.ts";

export type FlagType = "string" | "boolean" | "number" | "integer";

export interface FlagSpec {
  type: FlagType;
  description: string;
  required?: boolean;
  /** Shown in --help and used when the flag is absent. */
  default?: string | number | boolean;
  /** Placeholder in --help, e.g. FILE. */
  value?: string;
  short?: string;
}

export type FlagTable = Record<string, FlagSpec>;

type ValueOf<S extends FlagSpec> = S["type"] extends "boolean" ? boolean
  : S["type"] extends "number" | "integer" ? number
  : string;

/** Parsed flags: required or defaulted flags are present, others may be undefined. */
export type ParsedFlags<T extends FlagTable> = {
  [K in keyof T]: T[K]["required"] extends true ? ValueOf<T[K]>
    : T[K]["default"] extends string | number | boolean ? ValueOf<T[K]>
    : ValueOf<T[K]> | undefined;
};

export interface CommandSpec<T extends FlagTable = FlagTable> {
  name: string;
  summary: string;
  /** Extra paragraphs after the flag list. */
  details?: string;
  flags: T;
}

/** Flags every command accepts. */
const COMMON: FlagTable = {
  help: { type: "boolean", short: "h", description: "Print this help and exit" },
  debug: { type: "boolean", description: "Show stack traces of errors (same as STAR_DEBUG=1)" },
};

/** Returns null when --help was asked for (the caller prints helpText). */
export function parseFlags<T extends FlagTable>(
  spec: CommandSpec<T>,
  argv: string[],
): ParsedFlags<T> | null {
  const table: FlagTable = { ...COMMON, ...spec.flags };
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, f] of Object.entries(table)) {
    options[name] = { type: f.type === "boolean" ? "boolean" : "string" };
    if (f.short) options[name].short = f.short;
  }
  const where = `"star ${spec.name}"`;
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options,
      strict: false,
      tokens: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split("\n")[0]} (${where})`);
  }
  const out: Record<string, unknown> = {};
  for (const tok of parsed.tokens ?? []) {
    if (tok.kind === "positional") {
      throw new UsageError(`Unexpected argument "${tok.value}" for ${where}; see --help`);
    }
    if (tok.kind !== "option") continue;
    const f = table[tok.name];
    if (!f) {
      throw new UsageError(`Unknown flag "${tok.rawName}" for ${where}; see --help`);
    }
    if (f.type === "boolean") {
      if (tok.value !== undefined) {
        throw new UsageError(`Flag "--${tok.name}" takes no value (${where})`);
      }
      out[tok.name] = true;
      continue;
    }
    if (tok.value === undefined) {
      throw new UsageError(`Flag "--${tok.name}" needs a value (${where})`);
    }
    out[tok.name] = convert(tok.name, f, tok.value, where);
  }
  if (out.help) return null;
  for (const [name, f] of Object.entries(table)) {
    if (out[name] !== undefined) continue;
    if (f.required) throw new UsageError(`Missing required flag "--${name}" for ${where}`);
    if (f.default !== undefined) out[name] = f.default;
  }
  return out as ParsedFlags<T>;
}

function convert(name: string, f: FlagSpec, raw: string, where: string): string | number {
  if (f.type === "string") return raw;
  const n = raw.trim() === "" ? NaN : Number(raw);
  if (!Number.isFinite(n)) {
    throw new UsageError(`Flag "--${name}" expects a number, got "${raw}" (${where})`);
  }
  if (f.type === "integer" && !Number.isSafeInteger(n)) {
    throw new UsageError(`Flag "--${name}" expects an integer, got "${raw}" (${where})`);
  }
  return n;
}

/** The usage text of a command, generated from its flag table. */
export function helpText(spec: CommandSpec): string {
  const table: FlagTable = { ...spec.flags, ...COMMON };
  const required = Object.entries(spec.flags).filter(([, f]) => f.required);
  const head = [
    `star ${spec.name}`,
    ...required.map(([n, f]) => `--${n} ${f.value ?? placeholder(f)}`),
    Object.keys(table).length > required.length ? "[flags]" : "",
  ].filter(Boolean).join(" ");
  const rows = Object.entries(table).map(([n, f]) => {
    const left = `  ${f.short ? `-${f.short}, ` : ""}--${n}${
      f.type === "boolean" ? "" : ` ${f.value ?? placeholder(f)}`
    }`;
    const extra = f.required
      ? " (required)"
      : f.default !== undefined
      ? ` (default ${f.default})`
      : "";
    return [left, f.description + extra] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  const lines = [
    `Usage: ${head}`,
    "",
    spec.summary,
    "",
    "Flags:",
    ...rows.map(([l, r]) => l.padEnd(width) + r),
  ];
  if (spec.details) lines.push("", spec.details.trim());
  return lines.join("\n") + "\n";
}

function placeholder(f: FlagSpec): string {
  return f.type === "string"
    ? "VALUE"
    : f.type === "integer"
    ? "N"
    : f.type === "number"
    ? "X"
    : "";
}
