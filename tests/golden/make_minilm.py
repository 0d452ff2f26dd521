#!/usr/bin/env python3
"""Regenerates tests/golden/minilm/: a tiny *random* BERT laid out like all-MiniLM-L6-v2 (BertModel
with its pooler, sentence-transformers' modules.json: Transformer -> mean Pooling -> Normalize),
a few sentences' token ids, and what transformers computes on them. tests/test_minilm.cpp checks
lorascope against these files; the real MiniLM weights are never committed (scripts/fetch_model.sh
fetches them, tests/interop/check_embeddings.py compares them).

    PY=$(bash scripts/reference_env.sh | tail -1)
    OMP_NUM_THREADS=1 $PY tests/golden/make_minilm.py

Files:
  model/       config.json, model.safetensors (transformers' save_pretrained), tokenizer.json (a
               WordPiece vocabulary of ~150 pieces trained here with `tokenizers`, BERT normalizer
               and pre-tokenizer, [CLS] $A [SEP]), modules.json, 1_Pooling/config.json
  ids.json     {"sentences", "input_ids", "attention_mask"}: the tokenizer's encodings, right-padded
               with [PAD] = 0
  expected.safetensors  float32, from BertModel in float32 on CPU:
               last_hidden_state (B, T, C), pooler_output (B, C) = tanh(dense(h_0)),
               mean (B, C) = sum_t m h / max(sum_t m, 1e-9) (sentence-transformers' Pooling),
               embeddings (B, C) = F.normalize(mean) (its Normalize), cls (B, C) = h_0
"""
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertModel

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "minilm")

# Training text for the vocabulary, and the sentences embedded (different lengths, punctuation,
# accents and case for the normalizer, a word outside the vocabulary, one very short).
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Call me Ishmael. Some years ago, never mind how long precisely, I thought I would sail about.",
    "Free money!!! Click here to claim your prize before Friday.",
    "The committee met on Tuesday to discuss the budget for the new school.",
    "She walked to the river and watched the boats drift past the old mill.",
    "Unsubscribe from this list by replying with the word STOP.",
    "Weather today: cloudy, with a chance of rain in the evening.",
    "He said that the results were encouraging but not yet conclusive.",
    "Café owners in Zürich raised their prices again this spring.",
    "A whale! A whale! cried the sailors from the mast.",
]
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Free money!!! Click here to claim your prize.",
    "Call me Ishmael.",
    "Café prices rose in Zürich; the committee met on Tuesday to discuss it.",
    "Hi",
    "Xylophones quietly vanish.",
]


def make_tokenizer():
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                                lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=150, special_tokens=special,
                                                              continuing_subword_prefix="##"))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    return tok


def main():
    torch.manual_seed(0)
    shutil.rmtree(OUT, ignore_errors=True)
    model_dir = os.path.join(OUT, "model")
    os.makedirs(os.path.join(model_dir, "1_Pooling"))

    tok = make_tokenizer()
    assert tok.token_to_id("[PAD]") == 0
    tok.save(os.path.join(model_dir, "tokenizer.json"))
    enc = tok.encode_batch(SENTENCES)
    T = max(len(e.ids) for e in enc)
    ids = [e.ids + [0] * (T - len(e.ids)) for e in enc]
    mask = [[1] * len(e.ids) + [0] * (T - len(e.ids)) for e in enc]
    with open(os.path.join(OUT, "ids.json"), "w") as f:
        json.dump({"sentences": SENTENCES, "input_ids": ids, "attention_mask": mask}, f)

    # MiniLM's shape, shrunk; a wide init and random LayerNorm affines so a wrong op shows.
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12,
                        initializer_range=0.2, pad_token_id=0, hidden_act="gelu", position_embedding_type="absolute")
    config.architectures = ["BertModel"]
    model = BertModel(config)  # with its pooler, as MiniLM's checkpoint has
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.copy_(torch.rand_like(p) + 0.5 if name.endswith("weight") else torch.randn_like(p) * 0.1)
            elif name.endswith("bias"):
                p.normal_(0, 0.1)
    model.eval()
    model.save_pretrained(model_dir)
    for extra in os.listdir(model_dir):  # only what a MiniLM checkpoint holds
        if extra not in ("config.json", "model.safetensors", "tokenizer.json", "1_Pooling"):
            os.remove(os.path.join(model_dir, extra))
    with open(os.path.join(model_dir, "modules.json"), "w") as f:
        json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                   {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
                  f, indent=2)
    with open(os.path.join(model_dir, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
                   "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}, f, indent=2)

    # Reloaded from the files, as a user of the directory would.
    ref = BertModel.from_pretrained(model_dir).eval()
    ids_t, mask_t = torch.tensor(ids), torch.tensor(mask)
    with torch.no_grad():
        out = ref(input_ids=ids_t, attention_mask=mask_t, token_type_ids=torch.zeros_like(ids_t))
    h = out.last_hidden_state
    m = mask_t.unsqueeze(-1).to(h.dtype)
    mean = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    expected = {
        "last_hidden_state": h.contiguous(),
        "pooler_output": out.pooler_output.contiguous(),
        "mean": mean.contiguous(),
        "embeddings": torch.nn.functional.normalize(mean, p=2, dim=1).contiguous(),
        "cls": h[:, 0].contiguous(),
    }
    save_file(expected, os.path.join(OUT, "expected.safetensors"), metadata={"made_by": "tests/golden/make_minilm.py"})
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"make_minilm: {len(SENTENCES)} sentences, T = {T}, vocab {config.vocab_size}, {total} bytes -> {OUT}")


if __name__ == "__main__":
    main()
