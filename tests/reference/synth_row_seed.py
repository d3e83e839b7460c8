"""Row seeds of data/synthetic.ts written out with Python integers masked to 32 bits: murmur3's
fmix32 of (fmix32(seed XOR 0x9e3779b9) XOR index). Prints [seed, index, row seed] triples for
tests/synthetic_test.ts. Usage: python3 tests/reference/synth_row_seed.py"""
import json

M = 0xFFFFFFFF


def fmix32(h):
    h &= M
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M
    h ^= h >> 16
    return h


def row_seed(seed, index):
    return fmix32(fmix32((seed & M) ^ 0x9E3779B9) ^ (index & M))


cases = [(0, 0), (0, 1), (1, 0), (1, 1), (7, 12345), (2**32 - 1, 3), (-1, 3), (90001, 4294967295)]
print(json.dumps([[s, i, row_seed(s, i)] for s, i in cases]))
