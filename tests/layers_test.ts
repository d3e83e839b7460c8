import { assertEquals, assertMatch, assertOk } from "./assert.ts";
import { dirname, join } from "node:path";
import { checkLayers, importsOf, readTree } from "../tools/check_layers.ts";

const ROOT = new URL("..", import.meta.url).pathname;

function tree(files: Record<string, string>): Map<string, string> {
  return new Map(Object.entries(files));
}

Deno.test("checkLayers() finds no violation in the repository", async () => {
  const files = await readTree(ROOT);
  assertOk(files.size > 50, `only ${files.size} files read`);
  assertEquals(checkLayers(files), []);
});

Deno.test("importsOf() reads static, type-only, re-export, bare and dynamic imports", () => {
  const src = `import { a } from "./a.ts";
import type { B } from "../b.ts";
export { c } from "./c.ts";
import "./d.ts";
const e = await import("../e.ts");
type F = typeof import("./f.ts");
import x from "npm:zod";`;
  assertEquals(importsOf(src).toSorted(), [
    "../b.ts",
    "../e.ts",
    "./a.ts",
    "./c.ts",
    "./d.ts",
    "./f.ts",
  ]);
});

Deno.test("checkLayers() rejects upward, sideways and leaf-breaking imports", () => {
  const bad = checkLayers(tree({
    "engine/a.ts": 'import { x } from "../train/b.ts";',
    "train/b.ts": "export const x = 1;",
    "data/c.ts": 'const r = await import("../reward/d.ts");',
    "reward/d.ts": 'import { y } from "../engine/a.ts";',
    "lib/e.ts": 'import { z } from "../data/c.ts";',
    "model/f.ts": 'import { DataError } from "../lib/e.ts"; import { t } from "../engine/a.ts";',
  }));
  assertEquals(bad.map((v) => `${v.file} -> ${v.imports}: ${v.reason}`).toSorted(), [
    "data/c.ts -> reward/d.ts: data may not import reward",
    "engine/a.ts -> train/b.ts: engine may not import train",
    "lib/e.ts -> data/c.ts: lib may not import data",
    "reward/d.ts -> engine/a.ts: reward may not import engine",
  ]);
});

Deno.test("checkLayers() rejects an import cycle inside one folder", () => {
  const bad = checkLayers(tree({
    "engine/a.ts": 'import { b } from "./b.ts";',
    "engine/b.ts": 'import type { c } from "./ops/c.ts";',
    "engine/ops/c.ts": 'export { a } from "../a.ts";',
    "engine/d.ts": 'import { a } from "./a.ts";',
  }));
  assertEquals(bad.length, 1);
  assertMatch(bad[0].reason, /import cycle among engine\/a\.ts, engine\/b\.ts, engine\/ops\/c\.ts/);
});

Deno.test({
  name: "deno task check fails on a planted upward import in a copy of the repository",
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "star-layers-" });
    try {
      const ls = await new Deno.Command("git", {
        args: ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd: ROOT,
      }).output();
      const names = new TextDecoder().decode(ls.stdout).split("\0").filter((n) =>
        n && !n.startsWith("tests/testdata/") &&
        (n.endsWith(".ts") || n.endsWith(".wgsl") || n === "deno.json" || n === "deno.lock")
      );
      for (const n of names) {
        await Deno.mkdir(join(tmp, dirname(n)), { recursive: true });
        await Deno.copyFile(join(ROOT, n), join(tmp, n));
      }
      const victim = join(tmp, "engine/pool.ts");
      const src = await Deno.readTextFile(victim);
      await Deno.writeTextFile(
        victim,
        `import { lrSchedule } from "../train/schedule.ts";\nexport const planted = lrSchedule;\n${src}`,
      );
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["task", "check"],
        cwd: tmp,
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
      assertOk(!out.success, "deno task check passed with an upward import");
      assertMatch(
        text,
        /"engine\/pool\.ts" imports "train\/schedule\.ts": engine may not import train/,
      );
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
