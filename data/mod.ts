/**
 * data/: everything between users' files and token batches. Streaming JSONL, chat templates
 * rendered as transformers renders them, tokenizers, the STAR trainset conversion
 * (`star prepare`), the synthetic data set (`star synth`), vocabularies cut down to a corpus and
 * tokenized trainset rows.
 * Nothing here touches the GPU.
 */
export { DataError } from "../lib/errors.ts";
export {
  decodeLines,
  JsonlWriter,
  type Line,
  type LineBytes,
  readJsonl,
  readLineBytes,
  readLines,
} from "./jsonl.ts";
export {
  ChatTemplate,
  chatTemplateSource,
  pyJsonDumps,
  specialTokensOf,
  TemplateError,
} from "./chat_template.ts";
export {
  QWEN3_SPECIAL_IDS,
  readTokenizerFiles,
  Tokenizer,
  type TokenizerFiles,
} from "./tokenizer.ts";
export { cutVocab, paddedVocabSize, type VocabCut, writeVocabCut } from "./vocab_cut.ts";
export {
  checkMessagesRow,
  formatTrainsetRow,
  type MessagesRow,
  promptText,
  toTrainsetRow,
  type TrainsetRow,
} from "./trainset.ts";
export { prepareFile, type PrepareSummary } from "./prepare.ts";
export { synthRow, synthRows, TOOLS as SYNTH_TOOLS } from "./synthetic.ts";
export { emptyStats, loadTrainset, type Sample, tokenizeRow, type TokenizeStats } from "./batch.ts";
