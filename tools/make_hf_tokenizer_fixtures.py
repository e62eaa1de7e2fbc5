"""Expected tokenizer_config.json / special_tokens_map.json text and special-token ids.

Run: /usr/bin/python3 tools/make_hf_tokenizer_fixtures.py   (from the repository root; no torch needed)
Writes test/fixtures/hf-tokenizer/: three small tokenizer.json inputs and expected.json.

What a converted GPT-NeoX folder should carry beside tokenizer.json, per the published Pythia
repositories (EleutherAI/pythia-*-deduped, uploaded with transformers 4.24):
  tokenizer_config.json  {"add_prefix_space": false, "bos_token": "<|endoftext|>",
                          "eos_token": "<|endoftext|>", "tokenizer_class": "GPTNeoXTokenizer",
                          "unk_token": "<|endoftext|>"}  (their "name_or_path" and
                          "special_tokens_map_file" -- a path on the uploader's machine -- left out)
  special_tokens_map.json {"bos_token": ..., "eos_token": ..., "unk_token": ...}
transformers' save_pretrained writes both as json.dumps(obj, indent=2, sort_keys=True,
ensure_ascii=False) + "\n", which is what this script does. The end-of-text id is GPT-NeoX's
HFTokenizer.eod: Tokenizer.token_to_id("<|endoftext|>"), an added token or a vocabulary entry.
"""
import json
import os

OUT = "test/fixtures/hf-tokenizer"
EOD = "<|endoftext|>"


def dumps(obj):
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def added(i, content):
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def tokenizer(added_tokens, vocab, pre_tokenizer, post_processor=None, unk=None):
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens,
        "normalizer": None, "pre_tokenizer": pre_tokenizer, "post_processor": post_processor,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": unk, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "vocab": vocab, "merges": []},
    }


def byte_level(add_prefix_space):
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": True,
            "use_regex": True}


def token_to_id(t, content):
    for a in t["added_tokens"]:
        if a["content"] == content:
            return a["id"]
    return t["model"]["vocab"].get(content)


letters = {c: i for i, c in enumerate("abcdefghij")}
inputs = {
    # <|endoftext|> an added token at id 7, a prefix space: as NeoX's tokenizer, other ids
    "eod-added-7.json": tokenizer(
        [added(7, EOD), added(11, "<|padding|>")],
        {**{c: i for c, i in letters.items() if i != 7}, "Ġ": 10}, byte_level(True)),
    # <|endoftext|> only in the vocabulary (token_to_id still finds it)
    "eod-in-vocab.json": tokenizer([], {**letters, EOD: 10}, byte_level(False)),
    # no <|endoftext|>: the special tokens its post-processor's template adds, and its unk
    "template.json": tokenizer(
        [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
        {"<unk>": 0, "<s>": 1, "</s>": 2, **{c: i + 3 for c, i in letters.items()}},
        {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                               byte_level(False)]},
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": "</s>", "type_id": 0}}],
         "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                  {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
         "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]},
                            "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
        unk="<unk>"),
}

os.makedirs(OUT, exist_ok=True)
expected = {}
for name, t in inputs.items():
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(t, f, indent=1)
    eod = token_to_id(t, EOD)
    pre = t["pre_tokenizer"]
    aps = pre["add_prefix_space"] if pre["type"] == "ByteLevel" else pre["pretokenizers"][-1]["add_prefix_space"]
    if eod is not None:
        special = {"bos_token": EOD, "eos_token": EOD, "unk_token": EOD}
        ids = {"bos": eod, "eos": eod, "unk": eod}
        cls = "GPTNeoXTokenizer"
    else:
        special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
        ids = {"bos": 1, "eos": 2, "unk": 0}
        cls = "PreTrainedTokenizerFast"
    config = {"add_prefix_space": aps, **special, "tokenizer_class": cls}
    expected[name] = {
        "ids": ids,
        "tokenizer_config": dumps(config),
        "special_tokens_map": dumps(special),
    }

# The demo series' tokenizer (GPT-NeoX-20B style): the published Pythia files exactly.
with open("data/pythia-micro/tokenizer.json") as f:
    demo = json.load(f)
pythia = {"bos_token": EOD, "eos_token": EOD, "unk_token": EOD}
expected["demo"] = {
    "ids": {k: token_to_id(demo, EOD) for k in ("bos", "eos", "unk")},
    "tokenizer_config": dumps({"add_prefix_space": False, **pythia, "tokenizer_class": "GPTNeoXTokenizer"}),
    "special_tokens_map": dumps(pythia),
}
with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
    f.write("\n")
print("wrote", OUT, sorted(expected))
