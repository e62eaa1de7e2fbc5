#!/usr/bin/python3
"""Train a tiny GPT-NeoX-20B-style byte-level BPE tokenizer on tools/demo/corpus.txt and write
it as a Hugging Face `tokenizer.json` (data/pythia-micro/tokenizer.json).

Usage (from the repository root; standard library only):

    /usr/bin/python3 tools/demo/make_tokenizer.py [--size 250] [--out data/pythia-micro/tokenizer.json]

Structure follows EleutherAI's 20B_tokenizer.json: added tokens `<|endoftext|>` (id 0) and
`<|padding|>` (id 1) as special tokens (also present in the BPE vocab), NFC normalizer,
ByteLevel pre-tokenizer / post-processor / decoder with add_prefix_space false, BPE model with
`vocab` and `merges` ("left right" strings). The base alphabet is the byte-level characters of printable
ASCII (0x20-0x7e) plus tab and newline (98 characters, a superset of those in the corpus, so
any such ASCII text can be encoded; there is no unk token and no byte fallback), ordered like
the GPT-2 byte table; then one token per merge, in merge order. Total size <= 250 so that the padded
vocabulary (multiple of 128 x TP 2) is 256.

The encoder here (`ByteLevelBPE.encode`) reproduces the HF pipeline for ASCII text: the GPT-2
pre-tokenizer regex (with \\p{L} = [A-Za-z], \\p{N} = [0-9], which is exact for ASCII), byte-level
mapping, then lowest-rank-first BPE merges within each pre-token.
"""

import argparse
import collections
import json
import os
import re
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

SPECIALS = ["<|endoftext|>", "<|padding|>"]

# GPT-2 / HF ByteLevel split regex:
#   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
# written for ASCII input (exact there).
_WS = r"[ \t\n\r\f\v]"
_NWS = r"[^ \t\n\r\f\v]"
PAT = re.compile(
    r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^ \t\n\r\f\vA-Za-z0-9]+|"
    + _WS + r"+(?!" + _NWS + r")|" + _WS + r"+"
)


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode character table (ordered list)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [(b, chr(c)) for b, c in zip(bs, cs)]


BYTE_TABLE = bytes_to_unicode()
BYTE_ENCODER = dict(BYTE_TABLE)
BYTE_DECODER = {c: b for b, c in BYTE_TABLE}
BYTE_ORDER = {c: i for i, (_, c) in enumerate(BYTE_TABLE)}


def pretokenize(text):
    """Split like HF ByteLevel(use_regex=True) and map each piece to byte-level characters."""
    return ["".join(BYTE_ENCODER[b] for b in piece.encode("utf-8")) for piece in PAT.findall(text)]


def train_bpe(text, size):
    words = collections.Counter(pretokenize(text))
    base = {BYTE_ENCODER[b] for b in list(range(0x20, 0x7f)) + [0x09, 0x0A]}
    alphabet = sorted(base | {ch for w in words for ch in w}, key=lambda c: BYTE_ORDER[c])
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for ch in alphabet:
        vocab[ch] = len(vocab)
    merges = []
    splits = {w: list(w) for w in words}
    while len(vocab) < size:
        pairs = collections.Counter()
        for w, cnt in words.items():
            s = splits[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += cnt
        if not pairs:
            break
        # most frequent pair; ties -> lexicographically smallest (deterministic)
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if best[1] < 2:
            break
        a, b = best[0]
        merges.append((a, b))
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
        for w in words:
            s = splits[w]
            if len(s) < 2:
                continue
            out = []
            i = 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            splits[w] = out
    return vocab, merges


class ByteLevelBPE:
    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.merges = [tuple(m) for m in merges]
        self.ranks = {m: i for i, m in enumerate(self.merges)}
        self.id_to_token = {i: t for t, i in vocab.items()}
        self.cache = {}

    @property
    def vocab_size(self):
        return len(self.vocab)

    @classmethod
    def load(cls, path):
        with open(path, "r", encoding="utf-8") as f:
            j = json.load(f)
        merges = [m.split(" ") if isinstance(m, str) else m for m in j["model"]["merges"]]
        vocab = dict(j["model"]["vocab"])
        for t in j.get("added_tokens", []):
            vocab[t["content"]] = t["id"]
        return cls(vocab, merges)

    def bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            best = None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        self.cache[word] = parts
        return parts

    def encode(self, text):
        """ASCII text -> ids (special-token strings in the text are matched as specials)."""
        text = unicodedata.normalize("NFC", text)
        ids = []
        for chunk in re.split("(" + "|".join(re.escape(s) for s in SPECIALS) + ")", text):
            if not chunk:
                continue
            if chunk in SPECIALS:
                ids.append(self.vocab[chunk])
                continue
            for word in pretokenize(chunk):
                for piece in self.bpe(word):
                    if piece not in self.vocab:
                        raise ValueError(f"character {piece!r} is outside the tokenizer's alphabet")
                    ids.append(self.vocab[piece])
        return ids

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            t = self.id_to_token[i]
            if t in SPECIALS:
                out += t.encode("utf-8")
            else:
                out += bytes(BYTE_DECODER[c] for c in t)
        return out.decode("utf-8", errors="replace")


def tokenizer_json(vocab, merges):
    added = [{"id": i, "special": True, "content": s, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False} for i, s in enumerate(SPECIALS)]
    bytelevel = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": dict(bytelevel),
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "vocab": vocab,
            "merges": [a + " " + b for a, b in merges],
        },
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.path.join(HERE, "corpus.txt"))
    ap.add_argument("--size", type=int, default=250, help="total tokens incl. the 2 specials")
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "pythia-micro", "tokenizer.json"))
    args = ap.parse_args()

    with open(args.corpus, "r", encoding="ascii") as f:
        text = f.read()
    vocab, merges = train_bpe(text, args.size)
    assert len(vocab) <= args.size and sorted(vocab.values()) == list(range(len(vocab)))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(vocab, merges), f, ensure_ascii=False, indent=2)
        f.write("\n")

    tok = ByteLevelBPE.load(args.out)
    ids = tok.encode(text)
    assert tok.decode(ids) == text, "round trip failed"
    n_alpha = len(vocab) - len(SPECIALS) - len({a + b for a, b in merges})
    print(f"wrote {args.out}: {len(vocab)} tokens ({len(SPECIALS)} special, {n_alpha} base, "
          f"{len(merges)} merges); corpus {len(text)} chars -> {len(ids)} tokens "
          f"({len(text) / len(ids):.2f} chars/token)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
