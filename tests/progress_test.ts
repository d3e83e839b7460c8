import { assertEquals } from "./assert.ts";
import { formatDuration, Progress } from "../train/progress.ts";

function clocked(tty: boolean, startStep = 0) {
  const out: string[] = [];
  let t = 0;
  const p = new Progress({
    totalSteps: 100,
    startStep,
    tty,
    write: (s) => out.push(s),
    now: () => t,
    label: "ckd",
  });
  return { p, out, advance: (ms: number) => (t += ms) };
}

Deno.test("Progress.update() prints step, loss, lr, tokens/s and the ETA from the mean step time", () => {
  const { p, out, advance } = clocked(false);
  advance(20_000); // 10 steps in 20 s -> 2 s per step, 90 steps left -> 180 s
  p.update({ step: 10, loss: 1.23456, lr: 3e-6, tokensPerSecond: 1234.4 });
  assertEquals(out, ["ckd step 10/100 | loss 1.2346 | lr 3.00e-6 | 1234 tok/s | ETA 3m00s\n"]);
});

Deno.test("Progress redraws in place on a terminal and ends the line on done()", () => {
  const { p, out, advance } = clocked(true, 50);
  advance(10_000); // resumed at 50: 5 steps in 10 s, 45 left -> 90 s
  p.update({ step: 55, loss: 0.5, lr: 1e-5, tokensPerSecond: 10 });
  p.done();
  assertEquals(out, [
    "\rckd step 55/100 | loss 0.5000 | lr 1.00e-5 | 10 tok/s | ETA 1m30s\x1b[K",
    "\n",
  ]);
});

Deno.test("Progress without a terminal never writes control characters", () => {
  const { p, out, advance } = clocked(false);
  advance(1);
  p.update({ step: 1, loss: NaN, lr: 1e-5, tokensPerSecond: 0 });
  p.done();
  assertEquals(out.length, 1);
  assertEquals(out[0].includes("\r") || out[0].includes("\x1b"), false);
  assertEquals(out[0].includes("loss NaN"), true);
});

Deno.test("formatDuration() picks seconds, minutes or hours", () => {
  assertEquals(
    [formatDuration(42.4), formatDuration(185), formatDuration(7620), formatDuration(NaN)],
    ["42s", "3m05s", "2h07m", "?"],
  );
});
