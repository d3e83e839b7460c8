/**
 * The debug dial: STAR_DEBUG=1 prints the adapter and step timings, 2 every dispatch
 * (label, grid), 3 the WGSL sources as compiled. Read once per process.
 */
let level: number | undefined;

export function debugLevel(): number {
  if (level === undefined) {
    let raw: string | undefined;
    try {
      raw = Deno.env.get("STAR_DEBUG");
    } catch {
      raw = undefined; // no --allow-env: the dial stays at 0
    }
    const n = Number(raw ?? "0");
    level = Number.isFinite(n) ? n : 0;
  }
  return level;
}

export function debugLog(min: number, ...args: unknown[]): void {
  if (debugLevel() >= min) console.error("[star]", ...args);
}
