#!/bin/sh
# Rebuilds tests/testdata/vocab_cut/bpe_ref.jsonl: a small synthetic corpus and texts outside it,
# each encoded by the stdlib byte-level BPE of bpe_ref.py with the full built-in Qwen3 tokenizer
# and with the tokenizer data/vocab_cut.ts cuts to that corpus.
set -e
cd "$(dirname "$0")/../.."
TMP=$(mktemp -d)
deno run -A tests/reference/vocab_cut_texts.ts "$TMP"
/usr/bin/python3 tests/reference/bpe_ref.py --full "$TMP/full/tokenizer.json" \
  --cut "$TMP/cut/tokenizer.json" --texts "$TMP/texts.jsonl" \
  --output tests/testdata/vocab_cut/bpe_ref.jsonl
rm -rf "$TMP"
