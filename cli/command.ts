/**
 * The shape of one command module: its spec (flags, help) and its entry point.
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

export async function writeOut(text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  let off = 0;
  while (off < bytes.length) off += await Deno.stdout.write(bytes.subarray(off));
}
