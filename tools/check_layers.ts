/**
 * The layering check of `deno task check`: every import of product code must point down the
 * house's direction `main.ts → cli → train → {model, data, reward} → engine → wgsl`, and no
 * module may import itself back through a cycle. model/, data/ and reward/ are siblings that do
 * not import each other; data/ and reward/ import nothing of the engine. lib/ holds the leaf
 * packages (error classes, closestName, the Python-compatibility helpers): anyone may import
 * them and they import only lib/. tests/ and tools/ may import anything and are not checked.
 * Imports are read with regexes (static, re-exports, dynamic `import()`, type-only included).
 * Usage: deno run --allow-read tools/check_layers.ts [ROOT]   (exit 1 on any violation)
 */
import { dirname, join, normalize, relative } from "node:path";

/** What each part of the tree may import, besides itself and lib/. */
export const ALLOWED: Record<string, readonly string[]> = {
  "main.ts": ["cli"],
  cli: ["serve", "train", "model", "data", "reward", "engine"],
  serve: ["model", "data", "engine"],
  train: ["model", "data", "reward", "engine"],
  model: ["engine", "wgsl"],
  data: [],
  reward: [],
  engine: ["wgsl"],
  lib: [],
  wgsl: [],
};

/** The part of the tree a repository-relative path belongs to (undefined: not checked). */
export function partOf(path: string): string | undefined {
  if (path === "main.ts") return "main.ts";
  const top = path.split("/")[0];
  return Object.hasOwn(ALLOWED, top) && top !== "main.ts" ? top : undefined;
}

const IMPORT_RE = /(?:^|[\s;])(?:import|export)\b[^"';]*?\bfrom\s*["']([^"']+)["']/g;
const BARE_RE = /(?:^|[\s;])import\s*["']([^"']+)["']/g;
const DYNAMIC_RE = /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g;

/** The relative specifiers a source file imports (static, re-export, bare and dynamic). */
export function importsOf(source: string): string[] {
  const out: string[] = [];
  for (const re of [IMPORT_RE, BARE_RE, DYNAMIC_RE]) {
    for (const m of source.matchAll(re)) if (m[1].startsWith(".")) out.push(m[1]);
  }
  return out;
}

export interface LayerViolation {
  file: string;
  imports: string;
  reason: string;
}

/**
 * Checks a set of files given as repository-relative path → source. Returns every import
 * against the direction and every cycle (as one violation naming the modules in it).
 */
export function checkLayers(files: Map<string, string>): LayerViolation[] {
  const out: LayerViolation[] = [];
  const graph = new Map<string, string[]>();
  for (const [file, source] of files) {
    const from = partOf(file);
    if (!from) continue;
    const edges: string[] = [];
    for (const spec of importsOf(source)) {
      const target = normalize(join(dirname(file), spec)).replaceAll("\\", "/");
      const to = partOf(target);
      if (to === undefined) {
        out.push({ file, imports: target, reason: "imports from outside the product tree" });
        continue;
      }
      if (to !== from && to !== "lib" && !ALLOWED[from].includes(to)) {
        out.push({ file, imports: target, reason: `${from} may not import ${to}` });
      }
      if (files.has(target)) edges.push(target);
    }
    graph.set(file, edges);
  }
  for (const cycle of cyclesOf(graph)) {
    out.push({
      file: cycle[0],
      imports: cycle[1] ?? cycle[0],
      reason: `import cycle among ${cycle.join(", ")}`,
    });
  }
  return out;
}

/** The strongly connected components with more than one module, or a self-import (Tarjan). */
function cyclesOf(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.reverse());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return out;
}

/** Reads every .ts file of the checked parts under `root`. */
export async function readTree(root: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const path = join(dir, e.name);
      const rel = relative(root, path).replaceAll("\\", "/");
      if (e.isDirectory) {
        if (partOf(`${rel}/x`) !== undefined) await walk(path);
      } else if (e.isFile && rel.endsWith(".ts") && partOf(rel) !== undefined) {
        files.set(rel, await Deno.readTextFile(path));
      }
    }
  };
  await walk(root);
  return files;
}

if (import.meta.main) {
  const root = Deno.args[0] ?? ".";
  const files = await readTree(root);
  const bad = checkLayers(files);
  for (const v of bad) console.error(`layers: "${v.file}" imports "${v.imports}": ${v.reason}`);
  if (bad.length > 0) {
    console.error(`layers: ${bad.length} violation${bad.length > 1 ? "s" : ""}`);
    Deno.exit(1);
  }
  console.error(`layers: ${files.size} files, imports point one way, no cycles`);
}
