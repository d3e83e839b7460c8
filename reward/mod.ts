/**
 * The Sim-RL reward package: pure TypeScript, no runtime APIs, shared by `star score`, the
 * trainers and the eval harness; and STAR's teacher-rollout filter (format check, dedupe).
 */
export { type Reward, simRlReward } from "./sim_rl.ts";
export { RewardError } from "./errors.ts";
export { rouge, rougeL, rougeTokens } from "./rouge.ts";
export { porterStem } from "./porter.ts";
export {
  dumpsPyJson,
  isPyDict,
  parsePyJson,
  type PyDict,
  pyFloatRepr,
  PyJsonError,
  pyRepr,
  pyStr,
  type PyValue,
} from "../lib/py/json.ts";
export {
  dedupeKey,
  judgeCompletion,
  messageDict,
  type RejectReason,
  type RolloutMessage,
  rolloutRows,
  rolloutTools,
  uniqueMessages,
  type Verdict,
} from "./rollout_format.ts";
export { exactCalls, labelKind, pyEqual, type RowKind } from "./exact.ts";
