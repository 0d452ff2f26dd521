#!/usr/bin/env python3
"""The trainer's gradient-based LoRA inits end to end: LoRA-GA against PEFT's path on the same data.

    python check_gradient_init.py --lorascope build/lorascope --work /tmp/w --data .cache/data

check_lora_optimizers.py compares the init FUNCTION (models/lora_init.h) with PEFT's on a gradient
PEFT averaged; this compares what `lorascope finetune` with lora.init = lora_ga_peft starts from,
its own gradient collection included (trainer/gradient_init.cpp: the gradient of the mean loss over
the first lora.init_batches training micro-batches of epoch 0, eval mode), with PEFT's
preprocess_loraga + LoraConfig(init_lora_weights="lora_ga", lora_ga_config=LoraGAConfig()) on the
same examples.

Setup: a random-init BertForSequenceClassification (hidden 16, 2 layers, dropout 0, 2 labels) with
the committed WordPiece tokenizer (tests/golden/tokenizers/wordpiece.json) as its tokenizer.json;
a glue_tsv file of N = 48 seeded sentences (24 per label); LoRA r = 4, alpha 8 on query and value
(4 modules). lorascope: validation_fraction = test_fraction = 0 (the train split is the whole
file), batch_size 8, lora.init_batches 6 = every micro-batch of epoch 0, train.max_steps 1; its
starting factors are the second half of the rank-2r adapter it exports for the unmodified base
(lora_A = [A; A0], lora_B = [B, -B0], models/peft_adapter.h); the one step runs at lr 1e-9, so
that B A = B0 A0 after it, which checks that sign convention.

Why the two sides see the same gradient although lorascope shuffles: with every micro-batch of the
epoch read and all of them of the same size (N divisible by batch_size, one target per row), the
mean loss over the batches is the mean over all N examples, whatever the order and partition.
PEFT's estimate_gradients sums the gradients of whatever train_step backpropagates and divides by
the number of backward passes through each module (a backward hook counts them); train_step here
runs one backward per batch of 8 with transformers' mean cross entropy, so PEFT's gradient is also
the mean over the N examples. PEFT runs train_step in train mode, lorascope in eval mode: equal
with dropout 0. PEFT's torch.svd_lowrank(q = min(4r, 16) = 16) spans the whole 16-dim space, so it
is an exact SVD up to float32 rounding (it is randomized, and would differ, for q < min(out, in)).

Checks (one line each):
  gradient         PEFT's averaged gradient (_peft_loraga_grad) vs the float64 gradient of the mean
                   loss over all N examples in one batch: confirms the averaging above. 1e-5.
  export sign      s B A after the lr-1e-9 step vs s B0 A0 (would be 2 with lora_B = [B, +B0]). 1e-5.
  lora_ga_peft vs PEFT     lorascope's A0, B0 vs PEFT's lora_A, lora_B: sign-invariant A0^T A0 and
                   B0 B0^T, then the factors and s B0 A0 with each A row / B column flipped to
                   PEFT's sign (singular vectors are unique up to sign; B0 A0 pairs v_i with
                   u_{r+i}, so even the product depends on those signs).
  lora_ga_peft vs float64  the same against PEFT's formula (ArB2r, stable, gamma 16) evaluated in
                   float64 with an exact SVD of the float64 gradient.
  lora_ga vs float64       lora.init = lora_ga (the paper's flavor, which PEFT does not have:
                   A = c V_r^T, B = c U_{r+1..2r}) against its formula on the float64 gradient;
                   run with lora.init_batches 7, one more than the epoch has, so lorascope reads
                   all 6 and says "an epoch has 6 micro-batches": N = 48 rows in 6 batches of at
                   most 8 confirms that every batch has 8 (the equal-size assumption). Both its
                   factors are scale-free in G: it cannot see a wrong 1/count, lora_ga_peft can.
  lora_one vs float64      lora.init = lora_one (not in PEFT): s B A = s (-G)_r / (gamma sigma_1) on
                   the float64 gradient (sign-free but for G's own sign; tolerance as A0^T A0's);
                   its export is rank r, the factors after the 1e-9 step.
  negative control lorascope with lora.init_batches 5 (one batch left out, so the gradient depends
                   on its shuffled order) must differ from PEFT by more than 100 x the tolerance:
                   the comparison can fail.
Tolerances (float32): the gradients agree to ~1e-6 relative (float32 sums in different orders;
1e-5 as check_train_step.py). A singular vector moves by about |dG| / gap (Wedin), so with
|dG| <= 1e-5 sigma_1 the factor tolerance is 1e-5 x kappa, kappa = sigma_1 / (smallest gap among
sigma_1..sigma_{2r+1} of the float64 gradient, worst of the 4 modules), and for the sign-free
A0^T A0, B0 B0^T 1e-5 x sigma_1 / (the smaller of the gaps after sigma_r and sigma_2r), each at
least 1e-5. With the seeds below both kappas are 149 (tolerance 1.5e-3); the errors measured are
~1e-5 (the conditioning line prints them; kappa above 1000 fails: data too ill-conditioned to say
anything).
Seen to fail (2026-12-03, each perturbation undone): PEFT's train_step given 5 of the 6 batches
(gradient 0.41, lora_ga_peft vs PEFT 0.59 / 1.44 / 1.23: 4 FAIL); trainer/gradient_init.cpp summing
the 6 batch means instead of averaging them (lora_ga_peft vs PEFT and float64: 35 / 5.0: 5 FAIL;
lora_ga still passes, its factors do not depend on the gradient's scale); B0 read as +lora_B[:, r:]
(export sign 2.0: 1 FAIL, the sign-aligned comparisons cannot see it); the lora_one reference
built from +G instead of -G (2.0: 1 FAIL).
"""
import json
import os
import random
import shutil

import interop_common as ic

HERE = os.path.dirname(os.path.abspath(__file__))
TOKENIZER = os.path.join(HERE, "..", "golden", "tokenizers", "wordpiece.json")
R, ALPHA, GAMMA = 4, 8, 16
SCALING = ALPHA / R
HIDDEN = 16
N, BATCH = 48, 8
# Seeds of the random base and of the sentences, chosen (by a scan of a few) for well separated
# singular values: kappa below is 149 here, up to 7e4 for other seeds (near-equal sigma_6, sigma_7).
BASE_SEED, DATA_SEED = 3, 1
TARGETS = ["query", "value"]
TOL_GRAD = 1e-5
BERT = dict(vocab_size=400, hidden_size=HIDDEN, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=40, type_vocab_size=2, pad_token_id=0, initializer_range=0.5,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=2)


def make_base(torch, transformers, work):
    """A random BertForSequenceClassification with the committed WordPiece tokenizer."""
    d = os.path.join(work, "bert")
    cfg = transformers.BertConfig(**BERT)
    cfg.architectures = ["BertForSequenceClassification"]
    torch.manual_seed(BASE_SEED)
    ic.save_pretrained(transformers.BertForSequenceClassification(cfg).float().eval(), d)
    shutil.copy(TOKENIZER, os.path.join(d, "tokenizer.json"))
    return d


def make_data(work, tok):
    """N seeded sentences of whole vocabulary words, labels 0 and 1 alternating; (tsv path, [(text, label)])."""
    words = sorted(w for w in tok.get_vocab() if w.isalpha() and len(w) > 1)
    rng = random.Random(DATA_SEED)
    rows = [(" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))), i % 2) for i in range(N)]
    path = os.path.join(work, "train.tsv")
    with open(path, "w") as f:
        f.write("sentence\tlabel\n")
        for text, label in rows:
            f.write(f"{text}\t{label}\n")
    return path, rows


def encode(torch, tok, rows):
    """Right-padded ids, mask and labels of rows ([CLS] text [SEP], the tokenizer's template)."""
    ids = [tok.encode(t).ids for t, _ in rows]
    T = max(len(x) for x in ids)
    input_ids = torch.zeros(len(ids), T, dtype=torch.long)
    mask = torch.zeros(len(ids), T, dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, :len(x)] = torch.tensor(x)
        mask[i, :len(x)] = 1
    return input_ids, mask, torch.tensor([y for _, y in rows])


def target_names(model):
    return [n for n, m in model.named_modules() if n.split(".")[-1] in TARGETS]


def float64_gradient(torch, transformers, base, tok, rows):
    """{module: dL/dW} of the mean cross entropy over all rows, one batch, float64."""
    model = transformers.BertForSequenceClassification.from_pretrained(base, dtype=torch.float64).eval()
    ids, mask, y = encode(torch, tok, rows)
    model(input_ids=ids, attention_mask=mask, labels=y).loss.backward()
    mods = dict(model.named_modules())
    return {n: mods[n].weight.grad.detach().clone() for n in target_names(model)}


def peft_lora_ga(torch, transformers, peft, base, tok, rows):
    """PEFT's own path: preprocess_loraga with one backward per batch of BATCH rows, then
    get_peft_model. Returns ({module: gradient PEFT averaged}, {module: (A, B)})."""
    from peft.tuners.lora import LoraGAConfig, preprocess_loraga
    model = transformers.BertForSequenceClassification.from_pretrained(base, dtype=torch.float32)
    config = peft.LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS, task_type="SEQ_CLS",
                             init_lora_weights="lora_ga", lora_ga_config=LoraGAConfig(stable_gamma=GAMMA))

    def train_step():
        for b in range(0, len(rows), BATCH):
            ids, mask, y = encode(torch, tok, rows[b:b + BATCH])
            model(input_ids=ids, attention_mask=mask, labels=y).loss.backward()

    preprocess_loraga(model, config, train_step)
    mods = dict(model.named_modules())
    grads = {n: mods[n]._peft_loraga_grad.detach().clone() for n in target_names(model)}
    pm = peft.get_peft_model(model, config)
    factors = {}
    for n in grads:
        m = pm.base_model.model.get_submodule(n)
        factors[n] = (m.lora_A["default"].weight.detach().clone(), m.lora_B["default"].weight.detach().clone())
    return grads, factors


def float64_init(torch, G, flavor):
    """LoRA-GA ArB2r + stable scaling on G in float64 with an exact SVD (models/lora_init.h)."""
    U, S, Vh = torch.linalg.svd(G.double(), full_matrices=False)
    c = G.shape[0] ** 0.25 / GAMMA ** 0.5
    A, B = Vh[:R], U[:, R:2 * R]
    if flavor == "peft":
        return A, B * S[R:2 * R] * c
    return A * c, B * c


def kappa(torch, G):
    """How much a relative gradient error can move what the init reads: sigma_1 / the smallest gap
    among sigma_1..sigma_{2r+1} (each singular vector 1..2r), and sigma_1 / the smaller of the gaps
    after sigma_r and after sigma_2r (only the subspaces that A0^T A0 and B0 B0^T depend on)."""
    S = torch.linalg.svdvals(G.double())[:2 * R + 1]
    gaps = S[:-1] - S[1:]
    return float(S[0] / gaps.min()), float(S[0] / min(gaps[R - 1], gaps[2 * R - 1]))


def lorascope_factors(a, base, tsv, init, init_batches, tag):
    """Runs `lorascope finetune` (1 step at lr 1e-9) and returns ({module: (A0, B0)} from its rank-2r
    export, max over modules of rel_err(s B A, s B0 A0) with A, B the factors after that step,
    lorascope's stderr). lora_one keeps the base, so its export is rank r: (A, B) after the step,
    which at lr 1e-9 are the starting factors to ~1e-8 relative; the second value is then 0."""
    from safetensors.torch import load_file
    cfg = {"name": tag, "seed": 0, "base": base, "device": ic.device(),
           "data": {"kind": "glue_tsv", "path": tsv, "max_len": 32, "validation_fraction": 0, "test_fraction": 0},
           "lora": {"r": R, "alpha": ALPHA, "targets": TARGETS, "dropout": 0, "init": init, "init_gamma": GAMMA,
                    "init_batches": init_batches},
           "optim": {"name": "adamw", "lr": 1e-9, "weight_decay": 0},
           "train": {"epochs": 1, "max_steps": 1, "batch_size": BATCH, "log_every": 1}}
    out = os.path.join(a.work, "runs")
    p = ic.lorascope(a.lorascope, "finetune", "--config", ic.write_json(os.path.join(a.work, tag + ".json"), cfg),
                     "--out", out)
    adapter = os.path.join(out, tag, "adapter")
    with open(os.path.join(adapter, "adapter_config.json")) as f:
        acfg = json.load(f)
    rank = R if init == "lora_one" else 2 * R
    if acfg["r"] != rank:
        raise RuntimeError(f"{adapter}: r {acfg['r']}, expected {rank} (rank 2r: the export of a base-changing init)")
    state = load_file(os.path.join(adapter, "adapter_model.safetensors"))
    got, moved = {}, 0.0
    for k, A in state.items():
        if ".lora_A." in k:
            B = state[k.replace(".lora_A.", ".lora_B.")]
            if init == "lora_one":
                got[k.split(".lora_A.")[0].replace("base_model.model.", "")] = (A, B)
                continue
            A0, B0 = A[R:], -B[:, R:]
            got[k.split(".lora_A.")[0].replace("base_model.model.", "")] = (A0, B0)
            moved = max(moved, ic.rel_err(SCALING * B[:, :R].double() @ A[:R].double(),
                                          SCALING * B0.double() @ A0.double()))
    return got, moved, p.stderr


def align(ours, ref, dim):
    """ours with each row (dim 0) or column (dim 1) flipped to the sign of ref's."""
    dots = (ours.double() * ref.double()).sum(dim=1 - dim)
    signs = (dots < 0).double() * -2 + 1
    return ours.double() * (signs.unsqueeze(1) if dim == 0 else signs.unsqueeze(0))


def compare(ours, ref):
    """Max over modules of (projector error, factor error, product error), rel_err each."""
    proj = fac = prod = 0.0
    for n, (rA, rB) in ref.items():
        if n not in ours:
            raise RuntimeError(f"lorascope exported no adapter for {n} (it has {sorted(ours)})")
        A0, B0 = ours[n]
        rA, rB = rA.double(), rB.double()
        proj = max(proj, ic.rel_err(A0.double().T @ A0.double(), rA.T @ rA),
                   ic.rel_err(B0.double() @ B0.double().T, rB @ rB.T))
        a0, b0 = align(A0, rA, 0), align(B0, rB, 1)
        fac = max(fac, ic.rel_err(a0, rA), ic.rel_err(b0, rB))
        prod = max(prod, ic.rel_err(SCALING * b0 @ a0, SCALING * rB @ rA))
    return proj, fac, prod


def close(rep, name, err, tol):
    """rep.close with the tolerance printed to two digits (it is not a round number here)."""
    return rep.check(name, err <= tol, f"max rel err {err:.2e}", f"{tol:.1e}")


def run(a, rep, torch, transformers, peft):
    from tokenizers import Tokenizer
    if 4 * R < HIDDEN or N % BATCH:
        raise RuntimeError("the setup needs 4r >= hidden (PEFT's svd_lowrank exact) and N divisible by BATCH")
    base = make_base(torch, transformers, a.work)
    tok = Tokenizer.from_file(os.path.join(base, "tokenizer.json"))
    tsv, rows = make_data(a.work, tok)
    longest = max(len(tok.encode(t).ids) for t, _ in rows)
    if longest > 32:
        raise RuntimeError(f"a sentence of {longest} ids would be truncated (data.max_len 32)")

    G64 = float64_gradient(torch, transformers, base, tok, rows)
    G_peft, peft_factors = peft_lora_ga(torch, transformers, peft, base, tok, rows)
    if set(G_peft) != set(G64) or len(G64) != 4:
        raise RuntimeError(f"modules differ: PEFT {sorted(G_peft)}, float64 {sorted(G64)}")
    grad_err = max(ic.rel_err(G_peft[n], G64[n]) for n in G64)
    close(rep, f"gradient: PEFT's averaged gradient vs float64 mean over {N} examples ({len(G64)} modules)",
              grad_err, TOL_GRAD)
    ks = [kappa(torch, G) for G in G64.values()]
    k_all, k_edge = max(k[0] for k in ks), max(k[1] for k in ks)
    tol, tol_edge = max(1e-5, TOL_GRAD * k_all), max(1e-5, TOL_GRAD * k_edge)
    rep.check(f"conditioning: kappa = sigma_1 / min gap of sigma_1..sigma_{2 * R + 1}", k_all <= 1000,
              f"{k_all:.1f} (factors: tolerance {tol:.1e}), {k_edge:.1f} at the gaps after sigma_{R} and "
              f"sigma_{2 * R} (A0^T A0, B0 B0^T: tolerance {tol_edge:.1e})", "kappa <= 1000")

    n_batches = N // BATCH
    ours, moved, log = lorascope_factors(a, base, tsv, "lora_ga_peft", n_batches, "lora_ga_peft")
    if "init_batches" in log:
        raise RuntimeError(f"lorascope warned about lora.init_batches: {log.strip()[-300:]}")
    # The export's sign convention, which A0 = lora_A[r:], B0 = -lora_B[:, r:] above relies on: one
    # step at lr 1e-9 leaves B A = B0 A0, so the export's delta s (B A - B0 A0) vanishes; with
    # lora_B = [B, +B0] it would be 2 s B0 A0.
    close(rep, "lora_ga_peft export: s B A after one step at lr 1e-9 vs s B0 A0 (lora_B = [B, -B0])", moved, TOL_GRAD)
    proj, fac, prod = compare(ours, peft_factors)
    close(rep, f"lora_ga_peft vs PEFT: A0^T A0, B0 B0^T (sign-free), init_batches {n_batches} of {n_batches}",
              proj, tol_edge)
    close(rep, "lora_ga_peft vs PEFT: A0, B0 (signs aligned)", fac, tol)
    close(rep, "lora_ga_peft vs PEFT: s B0 A0 (signs aligned)", prod, tol)
    proj, fac, prod = compare(ours, {n: float64_init(torch, G, "peft") for n, G in G64.items()})
    close(rep, "lora_ga_peft vs float64: A0^T A0, B0 B0^T", proj, tol_edge)
    close(rep, "lora_ga_peft vs float64: A0, B0, s B0 A0 (signs aligned)", max(fac, prod), tol)

    # One more than the epoch has: lorascope reads all and says how many there are, which confirms
    # the equal-size assumption (N rows in n_batches micro-batches of at most BATCH rows).
    paper, _, log = lorascope_factors(a, base, tsv, "lora_ga", n_batches + 1, "lora_ga")
    said = f"lora.init_batches: an epoch has {n_batches} micro-batches"
    rep.check(f"lorascope's epoch 0: {n_batches} micro-batches of {BATCH} of the {N} rows", said in log,
              said if said in log else f"lorascope said: {log.strip()[-300:]!r}", "exact")
    proj, fac, prod = compare(paper, {n: float64_init(torch, G, "paper") for n, G in G64.items()})
    close(rep, "lora_ga (paper flavor) vs float64: A0^T A0, B0 B0^T", proj, tol_edge)
    close(rep, "lora_ga (paper flavor) vs float64: A0, B0, s B0 A0 (signs aligned)", max(fac, prod), tol)

    # LoRA-One (not in PEFT): s B A = (s / (gamma sigma_1)) (-G)_r, free of singular-vector signs but
    # not of G's sign; it depends on the subspace after sigma_r only.
    one, _, _ = lorascope_factors(a, base, tsv, "lora_one", n_batches, "lora_one")
    worst = 0.0
    for n, G in G64.items():
        U, S, Vh = torch.linalg.svd(-G, full_matrices=False)
        want = SCALING / (GAMMA * S[0]) * (U[:, :R] * S[:R]) @ Vh[:R]
        A, B = one[n]
        worst = max(worst, ic.rel_err(SCALING * B.double() @ A.double(), want))
    close(rep, "lora_one vs float64: s B A = s (-G)_r / (gamma sigma_1)", worst, tol_edge)

    # One micro-batch left out: a different gradient, which the comparison above must see.
    short, _, _ = lorascope_factors(a, base, tsv, "lora_ga_peft", n_batches - 1, "negative_control")
    proj, fac, prod = compare(short, peft_factors)
    worst = max(proj, fac, prod)
    rep.check(f"negative control: init_batches {n_batches - 1} of {n_batches} differs from PEFT", worst > 100 * tol,
              f"max rel err {worst:.2e}", f"must be > {100 * tol:.1e}")


def main():
    a, torch, transformers, peft = ic.setup_peft(__doc__)
    rep = ic.Report("check_gradient_init")
    rep.guarded("lora_ga trainer init vs PEFT", run, a, rep, torch, transformers, peft)
    rep.finish()


if __name__ == "__main__":
    main()
