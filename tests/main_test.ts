import { assertEquals, assertMatch } from "./assert.ts";
import { star } from "./_star.ts";

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
