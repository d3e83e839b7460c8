/**
 * The Sim-RL reward (shared/SIMRL_REWARD.md): format 1 or -1, an answer score in [0, 1], and
 * reward = answer when the format holds, else -1.
 */
import { callSimilarity, callsValid } from "./calls.ts";
import { parseGeneration, parseLabel } from "./generation.ts";
import { rouge } from "./rouge.ts";
import { promptTools } from "./tools.ts";

export interface Reward {
  reward: number;
  format: 1 | -1;
  answer: number;
}

const FORMAT_FAILED: Reward = Object.freeze({ reward: -1, format: -1, answer: 0 });

/** Scores one generation; throws RewardError when the label or the tools block is malformed. */
export function simRlReward(prompt: string, completion: string, label: string): Reward {
  const gold = parseLabel(label);
  const tools = promptTools(prompt);
  const pred = parseGeneration(prompt, completion);
  if (pred === null || !callsValid(pred.calls, tools)) return { ...FORMAT_FAILED };
  let answer: number;
  if (gold.calls.length > 0) {
    answer = pred.calls.length === 0 ? 0 : callSimilarity(pred.calls, gold.calls);
  } else {
    answer = pred.reply !== null && pred.reply !== "" ? rouge(pred.reply, gold.reply!) : 0;
  }
  return { reward: answer, format: 1, answer };
}
