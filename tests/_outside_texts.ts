/**
 * Texts no synthetic row contains: other scripts, emoji (with joiners and flags), control
 * characters, runs of spaces and newlines, contractions, special tokens mid-text. All in NFC,
 * so that byte-level BPE gives each back exactly.
 */
export const OUTSIDE_TEXTS: readonly string[] = [
  "naïve café 你好 😀 \u0001\t\r\n",
  "Ünïcödé — “quotes” ½ ∑ 𝔘 👩‍👩‍👧 🇯🇵 \u00a0nbsp",
  "  multiple   spaces\n\n\n  and\ttabs\r\n",
  '1.0e-05 x=3; y<=4 && z != 0x1F // {"k": [1, 2]}',
  "<|im_start|>user\nQuelle heure est-il à Zürich ?<|im_end|>\n<think>\n\n</think>",
  "DON'T we'll I'M they've She'd",
  "Привет мир, γειά σου κόσμε, مرحبا بالعالم, नमस्ते दुनिया",
  "zzqxj qwertyuiop ASDFGHJKL éèêë ßẞ ﬁ",
  '<tool_call>\n{"name": "unknown_tool", "arguments": {"emoji": "🦄"}}\n</tool_call><|endoftext|>',
];
