/**
 * BFCL single-turn AST accuracy, as the Berkeley Function Calling Leaderboard judges a Qwen3
 * FC model: its prompt text, its output decoding, its AST checker and its leaderboard formulas.
 * Pure: no I/O, no engine. shared/BFCL.md is the spec.
 */
export {
  BFCL_CATEGORIES,
  BFCL_V4_SIZES,
  type BfclCategory,
  type BfclEntry,
  isRelevanceCategory,
  judge,
  type Verdict,
} from "./judge.ts";
export { buildPrompt, categoryLanguage, docsForPrompt, formatQwenPrompt } from "./prompt.ts";
export { cleanCompletion, decodeAst, type DecodedCall, extractToolCalls } from "./decode.ts";
export {
  astCheck,
  checkCall,
  type CheckerKind,
  checkerKind,
  type CheckResult,
  type Language,
  standardizeString,
} from "./checker.ts";
export { javaConvert } from "./java_convert.ts";
export { jsConvert } from "./js_convert.ts";
export {
  type CategoryCount,
  formatFixed2,
  leaderboardScores,
  percent,
  SCORE_COLUMNS,
  type ScoreColumn,
} from "./score.ts";
export { PyException } from "./_py.ts";
