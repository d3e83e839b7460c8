/**
 * data/recipe: STAR's data recipe (format_data.py, labeling_messages.py, data_proportion.py)
 * without Python: public tool-calling sets to messages rows, assistant-turn labels and their
 * statistics, and the stratified mix. Pure parts (call parser, labels, sampler, Python's
 * random) are separate from the streaming file functions. Scoring rows with the Sim-RL reward
 * is the caller's (data/ does not import reward's scoring): formatFile takes a `keep` callback.
 */
export { PyRandom } from "./py_random.ts";
export { literalEval, LiteralSyntaxError, NotJsonError } from "./py_literal.ts";
export { CallSyntaxError, parseArguments, parsePythonCalls, type PyCall } from "./py_calls.ts";
export {
  checkCallArguments,
  closestToolName,
  formatTool,
  repairToolNames,
  RowProblem,
} from "./tools.ts";
export {
  type ConvertContext,
  type Converted,
  CONVERTERS,
  convertRow,
  type DatasetName,
  DATASETS,
} from "./formats.ts";
export {
  type AssistantLabel,
  labelAssistant,
  type LabeledRow,
  labelRow,
  LabelStats,
  RowShapeError,
} from "./label.ts";
export {
  CATEGORIES,
  type Category,
  type CategoryCounts,
  finalDraw,
  greedySample,
  minCounts,
  MIX_DEFAULTS,
  type MixRates,
  type MixReport,
  mixReportJson,
  mixReportText,
  type RowSummary,
  summarizeRow,
} from "./mix.ts";
export { countRows, fileKind, parseRow, type RawRow, readRawRows } from "./rows.ts";
export { writeJsonlAtomically, writeTextAtomically } from "./output.ts";
export { promptTokens, type SelfCheckTexts, selfCheckTexts } from "./render.ts";
export { formatFile, type FormatOptions, type FormatSummary } from "./format_file.ts";
export { labelFile, type LabelFileSummary } from "./label_file.ts";
export { mixFiles, type MixFileSummary, type MixOptions, NothingLeftError } from "./mix_file.ts";
