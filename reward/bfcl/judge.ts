/**
 * One BFCL entry and one raw completion -> BFCL's verdict, as its eval runner gives it for the
 * single-turn categories: the completion cleaned and decoded as the Qwen FC handler does, then
 * the relevance rule (irrelevance: pass iff no call decodes; live_relevance: pass iff one does)
 * or the AST checker with the category's path and language. Where BFCL's own code would raise
 * (its run stops there), the row is counted wrong with error type "ast_checker:python_exception".
 */
import type { PyDict, PyValue } from "../../lib/py/json.ts";
import { astCheck, checkerKind, type CheckResult } from "./checker.ts";
import { cleanCompletion, decodeAst } from "./decode.ts";
import { categoryLanguage } from "./prompt.ts";
import { PyException } from "./_py.ts";

/** The 13 single-turn categories, in BFCL's leaderboard order. */
export const BFCL_CATEGORIES = [
  "simple_python",
  "simple_java",
  "simple_javascript",
  "multiple",
  "parallel",
  "parallel_multiple",
  "live_simple",
  "live_multiple",
  "live_parallel",
  "live_parallel_multiple",
  "irrelevance",
  "live_irrelevance",
  "live_relevance",
] as const;

export type BfclCategory = typeof BFCL_CATEGORIES[number];

/** Entries per category in BFCL v4's data (the weight of a category that was not run). */
export const BFCL_V4_SIZES: Record<BfclCategory, number> = {
  simple_python: 400,
  simple_java: 100,
  simple_javascript: 50,
  multiple: 200,
  parallel: 200,
  parallel_multiple: 200,
  live_simple: 258,
  live_multiple: 1053,
  live_parallel: 16,
  live_parallel_multiple: 24,
  irrelevance: 240,
  live_irrelevance: 884,
  live_relevance: 16,
};

/** True for the categories judged by the (ir)relevance rule; they have no answer file. */
export function isRelevanceCategory(category: string): boolean {
  return category.includes("relevance");
}

/** One entry of `BFCL_v4_<category>.json` with its answer (null for (ir)relevance). */
export interface BfclEntry {
  id: string;
  category: string;
  /** `question[0]`: the messages of the single turn, `{role, content}` and more. */
  messages: PyDict[];
  /** The function docs as in the file (no hints: the checker reads these). */
  functions: PyValue[];
  /** `ground_truth`: one `{function: {param: [acceptable values]}}` per expected call. */
  answer: PyDict[] | null;
}

export interface Verdict {
  valid: boolean;
  /** BFCL's error type, e.g. "value_error:string"; null when valid. */
  errorType: string | null;
  /** BFCL's error message(s) as one line; null when valid. */
  error: string | null;
}

function verdict(r: CheckResult): Verdict {
  return r.valid
    ? { valid: true, errorType: null, error: null }
    : { valid: false, errorType: r.errorType, error: r.errors.join(" ") };
}

/** BFCL's verdict on one raw completion (the text generated after the prompt). */
export function judge(entry: BfclEntry, completion: string): Verdict {
  const result = cleanCompletion(completion);
  const decoded = decodeAst(result);
  if (isRelevanceCategory(entry.category)) {
    const hasCall = decoded.ok && decoded.calls.length > 0;
    if (entry.category.includes("irrelevance")) {
      return hasCall
        ? {
          valid: false,
          errorType: "irrelevance_error:decoder_success",
          error: "Valid syntax. Successfully decode AST when it should not.",
        }
        : { valid: true, errorType: null, error: null };
    }
    return hasCall ? { valid: true, errorType: null, error: null } : {
      valid: false,
      errorType: "relevance_error:decoder_failed",
      error: `Invalid syntax. Failed to decode AST when it should have. ${
        decoded.ok ? "None" : decoded.error
      }`,
    };
  }
  if (!decoded.ok) {
    return {
      valid: false,
      errorType: "ast_decoder:decoder_failed",
      error: `Invalid syntax. Failed to decode AST. ${decoded.error}`,
    };
  }
  if (entry.answer === null) throw new Error(`Entry "${entry.id}" has no answer to check against`);
  try {
    return verdict(
      astCheck(
        entry.functions,
        decoded.calls,
        entry.answer,
        categoryLanguage(entry.category),
        checkerKind(entry.category),
      ),
    );
  } catch (e) {
    if (!(e instanceof PyException)) throw e;
    return {
      valid: false,
      errorType: "ast_checker:python_exception",
      error: `BFCL's checker raises ${e.message} on this output (its run would stop there)`,
    };
  }
}
