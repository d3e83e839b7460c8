/** The CLI as a user runs it, from source, for tests. */
const root = new URL("..", import.meta.url).pathname;

/** Runs the CLI from source as a user would. */
export async function star(args: string[], stdin?: string) {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: root,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { STAR_DEBUG: "0", NO_COLOR: "1" },
  });
  const child = cmd.spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
