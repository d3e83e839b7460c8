/**
 * The shape of one command module: its spec (flags, help) and its entry point, and of a group
 * of such modules under one name (`star data format|label|mix`) that dispatches on its first
 * argument.
 * main.ts holds the table of commands and loads each module on demand, so start-up stays
 * fast for light commands such as `star score`.
 */
import {
  type CommandSpec,
  type FlagTable,
  helpText,
  type ParsedFlags,
  parseFlags,
} from "./args.ts";
import { UsageError } from "../lib/errors.ts";

export interface CommandModule<T extends FlagTable = FlagTable> {
  spec: CommandSpec<T>;
  /** Returns the process exit code (0 success, 1 when some rows failed). */
  run(flags: ParsedFlags<T>): Promise<number>;
}

/** Parses argv for a command module and runs it; prints help on --help. */
export async function runCommand<T extends FlagTable>(
  mod: CommandModule<T>,
  argv: string[],
): Promise<number> {
  const flags = parseFlags(mod.spec, argv);
  if (flags === null) {
    await writeOut(helpText(mod.spec));
    return 0;
  }
  return await mod.run(flags);
}

/** A command made of subcommands, each a CommandModule whose spec name is "group sub". */
export interface CommandGroup {
  name: string;
  summary: string;
  /** Extra paragraphs after the subcommand list. */
  details?: string;
  subcommands: Record<string, CommandModule>;
}

/** What main.ts's table loads for a name: one command module or a group of them. */
export type Command = CommandModule | CommandGroup;

export function isCommandGroup(c: Command): c is CommandGroup {
  return "subcommands" in c;
}

/** The usage text of a group: its subcommands with their summaries. */
export function groupHelpText(group: CommandGroup): string {
  const names = Object.keys(group.subcommands);
  const width = Math.max(...names.map((n) => n.length)) + 2;
  const lines = [
    `Usage: star ${group.name} <${names.join("|")}> [flags]`,
    "",
    group.summary,
    "",
    "Subcommands:",
    ...names.map((n) => `  ${n.padEnd(width)}${group.subcommands[n].spec.summary}`),
  ];
  if (group.details) lines.push("", group.details.trim());
  lines.push("", `Run \`star ${group.name} <subcommand> --help\` for its flags.`);
  return lines.join("\n") + "\n";
}

/**
 * Takes a group's subcommand from argv[0] and runs it with the rest. No subcommand prints the
 * group's help (exit 2), --help prints it (exit 0); an unknown one is a UsageError that suggests
 * the closest name.
 */
export async function runGroup(group: CommandGroup, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    await writeOut(groupHelpText(group));
    return sub === undefined ? 2 : 0;
  }
  const next = Object.hasOwn(group.subcommands, sub) ? group.subcommands[sub] : undefined;
  if (next === undefined) {
    const { closestName } = await import("../lib/suggest.ts");
    const near = closestName(sub, Object.keys(group.subcommands));
    throw new UsageError(
      `Unknown subcommand "${sub}" for "star ${group.name}"${
        near ? `; did you mean "${near}"?` : ""
      } (see star ${group.name} --help)`,
    );
  }
  return await runCommand(next, rest);
}

export async function writeOut(text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  let off = 0;
  while (off < bytes.length) off += await Deno.stdout.write(bytes.subarray(off));
}
