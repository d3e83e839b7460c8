import { assertEquals, assertMatch } from "./assert.ts";

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

Deno.test("star --help lists the commands that exist and exits 0", async () => {
  const r = await star(["--help"]);
  assertEquals(r.code, 0);
  assertMatch(r.stdout, /Usage: star <command>/);
  const { COMMANDS } = await import("../main.ts");
  for (const name of Object.keys(COMMANDS)) assertMatch(r.stdout, new RegExp(`\\n  ${name} `));
});

Deno.test("star with an unknown command exits 2 with one line", async () => {
  const r = await star(["frobnicate"]);
  assertEquals(r.code, 2);
  assertMatch(r.stderr, /Unknown command "frobnicate"/);
  assertEquals(r.stderr.trim().split("\n").length, 1);
});
