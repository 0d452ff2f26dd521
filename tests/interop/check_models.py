#!/usr/bin/env python3
"""Model outputs: checkpoints written by transformers, loaded by `lorascope hf logits`.

Each case builds a random-init transformers model (float32, initializer_range raised so that
attention is peaked and a position or masking error shows up in the logits), saves it with
save_pretrained (safetensors; sharded with max_shard_size where named), runs the same batch through
transformers and through lorascope, and compares max |lorascope - transformers| / max |transformers|
against 1e-5.

Batches have padding: rows right-padded and left-padded with attention_mask 0 (pad ids are the
config's pad_token_id, real ids never equal it), plus an unpadded batch (lorascope then takes the
causal-attention path without a mask). What is compared is what transformers defines:
  - decoders (LLaMA): logits at positions with attention_mask 1. Positions are 0..T-1 in every
    row on both sides (transformers' forward without position_ids), so a left-padded row's first
    real token is at position = its number of pads. Pad positions (queries with nothing to attend
    to in a left-padded row) are undefined and skipped.
  - LlamaForSequenceClassification: every row (both pool the last non-pad token).
  - encoders (RoBERTa, BERT): every position of every row (pads attend to the real tokens;
    RoBERTa's position ids count real tokens from pad_token_id + 1, BERT's are 0..T-1).
"""
import copy
import json
import os

import interop_common as ic

TOL = 1e-5
LLAMA_BASE = dict(vocab_size=320, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                  rms_norm_eps=1e-6, initializer_range=0.15, pad_token_id=0, bos_token_id=1,
                  eos_token_id=2, tie_word_embeddings=False)
ENCODER_BASE = dict(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                    num_attention_heads=4, max_position_embeddings=48, initializer_range=0.15,
                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

LLAMA_CASES = [
    # name, class, config overrides, save_pretrained kwargs
    ("llama_mha_untied", "LlamaForCausalLM", {}, {}),
    ("llama_gqa_headdim_theta_tied", "LlamaForCausalLM",
     dict(num_key_value_heads=2, head_dim=24, rope_theta=500000.0, tie_word_embeddings=True), {}),
    ("llama_mqa_rope_llama3", "LlamaForCausalLM",
     dict(num_key_value_heads=1, rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                               "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
     {}),
    ("llama_rope_linear", "LlamaForCausalLM",
     dict(num_key_value_heads=2, rope_scaling={"rope_type": "linear", "factor": 4.0}), {}),
    ("llama_sharded", "LlamaForCausalLM", dict(num_key_value_heads=2), dict(max_shard_size="60KB")),
    ("llama_seq_cls", "LlamaForSequenceClassification", dict(num_key_value_heads=2, num_labels=3), {}),
]
ENCODER_CASES = [
    ("roberta_seq_cls", "RobertaForSequenceClassification", dict(pad_token_id=1, num_labels=3, type_vocab_size=1)),
    ("roberta_masked_lm", "RobertaForMaskedLM", dict(pad_token_id=1, type_vocab_size=1)),
    ("bert_model", "BertModel", dict(pad_token_id=0, type_vocab_size=2)),
    ("bert_seq_cls", "BertForSequenceClassification", dict(pad_token_id=0, num_labels=4, type_vocab_size=2)),
    ("bert_masked_lm", "BertForMaskedLM", dict(pad_token_id=0, type_vocab_size=2)),
]


def make_batch(torch, vocab, pad, B=4, T=16, padded=True, seed=0):
    """ids in [3, vocab) (never the pad id), rows: full, right-padded by 5, left-padded by 4,
    right-padded by 9 (padded=False: all full)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (B, T), generator=g)
    ids[ids == pad] = pad + 3 if pad + 3 < vocab else 3
    mask = torch.ones(B, T, dtype=torch.long)
    if padded:
        for row, (left, right) in enumerate([(0, 0), (0, 5), (4, 0), (0, 9)][:B]):
            if left:
                mask[row, :left] = 0
            if right:
                mask[row, T - right:] = 0
        ids[mask == 0] = pad
    return ids, mask


def build(torch, transformers, cls_name, overrides, base):
    cls = getattr(transformers, cls_name)
    cfg_cls = cls.config_class
    cfg = cfg_cls(**{**base, **overrides})
    cfg.architectures = [cls_name]
    torch.manual_seed(0)
    return cls(cfg).float().eval()


def hf_forward(torch, model, ids, mask, cls_name):
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
    if cls_name == "BertModel":
        return {"last_hidden_state": out.last_hidden_state, "pooler_output": out.pooler_output}
    return {"logits": out.logits}


def ls_forward(a, d, tag, ids, mask, head, extra=()):
    from safetensors.torch import load_file
    ids_path = ic.write_json(os.path.join(a.work, f"{tag}_ids.json"),
                             {"input_ids": ids.tolist(), "attention_mask": mask.tolist()})
    out = os.path.join(a.work, f"{tag}_out.safetensors")
    ic.lorascope(a.lorascope, "hf", "logits", "--model", d, "--ids", ids_path, "--out", out, "--head", head,
                 "--device", ic.device(), *extra)
    return load_file(out)


def compare(torch, rep, name, ours, ref, mask, decoder_tokens):
    """decoder_tokens: compare (B, T, V) at mask 1 only."""
    worst = 0.0
    for key, r in ref.items():
        o = ours[key]
        if decoder_tokens and r.dim() == 3:
            o, r = o[mask.bool()], r[mask.bool()]
        worst = max(worst, ic.rel_err(o, r))
    rep.close(name, worst, TOL)
    return worst


def llama_case(a, rep, torch, transformers, name, cls_name, overrides, save_kwargs):
    model = build(torch, transformers, cls_name, overrides, LLAMA_BASE)
    d = ic.save_pretrained(model, os.path.join(a.work, name), **save_kwargs)
    if save_kwargs.get("max_shard_size"):
        with open(os.path.join(d, "model.safetensors.index.json")) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        print(f"{name}: {len(shards)} shards", flush=True)
        if len(shards) < 2:
            raise RuntimeError(f"max_shard_size gave {len(shards)} shard(s); expected a sharded checkpoint")
    head = "classification" if "SequenceClassification" in cls_name else "causal_lm"
    vocab = LLAMA_BASE["vocab_size"]
    for padded in (True, False):
        ids, mask = make_batch(torch, vocab, LLAMA_BASE["pad_token_id"], padded=padded)
        ref = hf_forward(torch, model, ids, mask, cls_name)
        ours = ls_forward(a, d, f"{name}_{int(padded)}", ids, mask, head)
        tag = "padded_right_left" if padded else "unpadded"
        compare(torch, rep, f"{name} {tag}", ours, ref, mask, decoder_tokens=head == "causal_lm")
    if "rope_scaling" in overrides or "rope_theta" in overrides:
        # The check can see a rope error: the same weights without the scaling / theta change the
        # logits far beyond the tolerance.
        plain = copy.deepcopy(model)
        cfg = copy.deepcopy(model.config)
        cfg.rope_parameters = {"rope_type": "default", "rope_theta": 10000.0}
        plain2 = type(model)(cfg).float().eval()
        plain2.load_state_dict(plain.state_dict())
        ids, mask = make_batch(torch, vocab, LLAMA_BASE["pad_token_id"], padded=False)
        moved = ic.rel_err(hf_forward(torch, plain2, ids, mask, cls_name)["logits"],
                           hf_forward(torch, model, ids, mask, cls_name)["logits"])
        rep.check(f"{name} rope sensitivity", moved > 100 * TOL,
                  f"default rope moves the logits by {moved:.2e}", f"> {100 * TOL:.0e}")


def encoder_case(a, rep, torch, transformers, name, cls_name, overrides):
    model = build(torch, transformers, cls_name, overrides, ENCODER_BASE)
    d = ic.save_pretrained(model, os.path.join(a.work, name))
    head = {"BertModel": "hidden", "RobertaForMaskedLM": "masked_lm", "BertForMaskedLM": "masked_lm"}.get(
        cls_name, "classification")
    ids, mask = make_batch(torch, ENCODER_BASE["vocab_size"], overrides["pad_token_id"], T=20)
    ref = hf_forward(torch, model, ids, mask, cls_name)
    ours = ls_forward(a, d, name, ids, mask, head)
    compare(torch, rep, f"{name} padded_right_left", ours, ref, mask, decoder_tokens=False)


def main():
    a = ic.parse_args(__doc__)
    torch = ic.setup_torch()
    import transformers
    transformers.utils.logging.set_verbosity_error()
    rep = ic.Report("check_models")
    print(f"torch {torch.__version__}, transformers {transformers.__version__}", flush=True)
    for name, cls_name, overrides, save_kwargs in LLAMA_CASES:
        rep.guarded(name, llama_case, a, rep, torch, transformers, name, cls_name, overrides, save_kwargs)
    for name, cls_name, overrides in ENCODER_CASES:
        rep.guarded(name, encoder_case, a, rep, torch, transformers, name, cls_name, overrides)
    rep.finish()


if __name__ == "__main__":
    main()
