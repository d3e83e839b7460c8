import { assertClose, assertEquals, assertThrows } from "./assert.ts";
import { lrSchedule, stepBudget } from "../train/schedule.ts";

const cosine = (totalSteps: number, warmupRatio: number) =>
  lrSchedule({
    name: "cosine_with_min_lr",
    learningRate: 2e-5,
    totalSteps,
    warmupRatio,
    minLrRatio: 0.1,
  });

Deno.test("lrSchedule() cosine_with_min_lr: warmup of ceil(ratio × N) steps rising from 0", () => {
  const s = cosine(100, 0.1);
  assertEquals(s.warmupSteps, 10);
  assertEquals(s.factor(0), 0);
  assertEquals(s.factor(5), 0.5);
  assertEquals(s.factor(9), 0.9);
  assertEquals(s.factor(10), 1);
  // ceil: 0.03 × 50 = 1.5 -> 2 warmup steps
  assertEquals(cosine(50, 0.03).warmupSteps, 2);
  assertEquals(cosine(50, 0.03).factor(1), 0.5);
});

Deno.test("lrSchedule() cosine_with_min_lr: hand-computed points of the decay to 0.1 × lr", () => {
  const s = cosine(100, 0.1);
  // s = 40: progress 30/90 = 1/3, cos(π/3) = 1/2, c = 3/4 -> 0.75 × 0.9 + 0.1 = 0.775
  assertClose(s.factor(40), 0.775, { rtol: 1e-14 });
  // s = 55: progress 1/2, c = 1/2 -> 0.55
  assertClose(s.factor(55), 0.55, { rtol: 1e-14 });
  // s = 70: progress 2/3, cos(2π/3) = -1/2, c = 1/4 -> 0.325
  assertClose(s.factor(70), 0.325, { rtol: 1e-14 });
  // the end and beyond it (HF keeps following the cosine; max(0, ...) only guards negatives)
  assertClose(s.factor(100), 0.1, { rtol: 1e-14 });
  assertClose(s.lr(55), 1.1e-5, { rtol: 1e-14 });
});

Deno.test("lrSchedule() cosine_with_min_lr with no warmup starts at the peak", () => {
  const s = cosine(4, 0);
  assertEquals(s.warmupSteps, 0);
  assertEquals(s.factor(0), 1);
  // s = 2: progress 1/2 -> 0.55
  assertClose(s.factor(2), 0.55, { rtol: 1e-14 });
});

Deno.test("lrSchedule() constant ignores the warmup ratio, constant_with_warmup does not", () => {
  const opts = { learningRate: 1e-3, totalSteps: 20, warmupRatio: 0.2, minLrRatio: 0.1 };
  const c = lrSchedule({ ...opts, name: "constant" });
  assertEquals(c.warmupSteps, 0);
  assertEquals([c.lr(0), c.lr(3), c.lr(19)], [1e-3, 1e-3, 1e-3]);
  const w = lrSchedule({ ...opts, name: "constant_with_warmup" });
  assertEquals(w.warmupSteps, 4);
  assertEquals([w.factor(0), w.factor(1), w.factor(3), w.factor(4), w.factor(19)], [
    0,
    0.25,
    0.75,
    1,
    1,
  ]);
});

Deno.test("stepBudget() drops the partial batch of each epoch and caps at max_steps", () => {
  assertEquals(
    stepBudget({ samples: 1000, trainBatchSize: 128, microTrainBatchSize: 2, maxEpochs: 1 }),
    { stepsPerEpoch: 7, accumulation: 64, totalSteps: 7 },
  );
  assertEquals(
    stepBudget({ samples: 100, trainBatchSize: 8, microTrainBatchSize: 4, maxEpochs: 3 }),
    { stepsPerEpoch: 12, accumulation: 2, totalSteps: 36 },
  );
  assertEquals(
    stepBudget({
      samples: 100,
      trainBatchSize: 8,
      microTrainBatchSize: 4,
      maxEpochs: 3,
      maxSteps: 20,
    })
      .totalSteps,
    20,
  );
});

Deno.test("stepBudget() rejects a batch that is not a multiple of the micro-batch, and tiny data", () => {
  assertThrows(
    () => stepBudget({ samples: 100, trainBatchSize: 8, microTrainBatchSize: 3, maxEpochs: 1 }),
    /multiple of "micro_train_batch_size"/,
  );
  assertThrows(
    () => stepBudget({ samples: 5, trainBatchSize: 8, microTrainBatchSize: 1, maxEpochs: 1 }),
    /5 usable rows, fewer than one batch/,
  );
});
