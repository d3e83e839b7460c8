/**
 * The chat-template texts of the recipe, with the tokenizer's own template (content: null as ""):
 * selfCheckTexts, what filter_on_simrl scores (the prompt, and the last message rendered alone as
 * the answer), and promptTokens, data_proportion.py's prompt length in tokens (the messages before
 * the last assistant message, with tools and the generation prompt).
 */
import { isPyDict, type PyDict, type PyValue } from "../../lib/py/json.ts";
import { TemplateError } from "../chat_template.ts";
import type { Tokenizer } from "../tokenizer.ts";
import { withContent } from "../trainset.ts";
import { lastAssistantIndex } from "./mix.ts";
import { RowProblem } from "./tools.ts";

function messagesOf(row: PyDict, required: boolean): PyDict[] {
  const m = row.get("messages");
  if (m === undefined && !required) return [];
  if (!Array.isArray(m)) throw new RowProblem(`field "messages" is not a list`);
  return m.map((x) => {
    if (!isPyDict(x)) throw new RowProblem("a message is not an object");
    return x;
  });
}

function render(
  tokenizer: Tokenizer,
  messages: PyDict[],
  tools: PyValue,
  generationPrompt: boolean,
): string {
  try {
    return tokenizer.chatTemplate(tools !== null).render({
      messages: messages.map(withContent),
      tools,
      add_generation_prompt: generationPrompt,
    });
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    throw new RowProblem("the chat template failed", err.message);
  }
}

export interface SelfCheckTexts {
  prompt: string;
  solution: string;
}

export function selfCheckTexts(row: PyDict, tokenizer: Tokenizer): SelfCheckTexts {
  const messages = messagesOf(row, true);
  if (!row.has("tools")) throw new RowProblem(`field "tools" is missing`);
  const tools = row.get("tools")!;
  const prompt = render(tokenizer, messages.slice(0, -1), tools, true);
  let solution = render(tokenizer, messages.slice(-1), null, false)
    .replaceAll("<|im_start|>assistant", "");
  if (!solution.includes("</think>")) solution = "<think></think>" + solution;
  return { prompt, solution };
}

export function promptTokens(row: PyDict, tokenizer: Tokenizer): number {
  const messages = messagesOf(row, false);
  const tools = row.has("tools") ? row.get("tools")! : [];
  const last = lastAssistantIndex(messages);
  const prompt = last < 0 ? messages : messages.slice(0, last);
  return tokenizer.encode(render(tokenizer, prompt, tools, true)).length;
}
