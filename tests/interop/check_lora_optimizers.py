#!/usr/bin/env python3
"""lorascope's LoRA optimizers and initializations against PEFT's own, on the same tensors.

    python tests/interop/check_lora_optimizers.py --lorascope build/lorascope --work /tmp/w \
        --data .cache/data            # (the interop protocol; --data is not used here)

The driver is build/tests/lorascope_lora_optim_driver (target lorascope_lora_optim_driver, built
with lorascope_tests), found next to --lorascope or given by --driver. A tiny MLP
(Linear 16->24, Tanh, Linear 24->16, LoRA r = 4 on both, alpha 8) runs a few optimizer steps on
random data in PEFT; the driver runs the same steps from the same tensors; every A and B after
every step is compared (max |a - b| / max |b| over the trajectory).

Checks:
  lora_plus          peft.optimizers.create_loraplus_optimizer(torch.optim.AdamW, ratio 16,
                     loraplus_weight_decay) vs lorascope lora_plus (AdamW, B at 16 x lr). float64.
  riemannian_adamw   peft.optimizers.create_riemannian_optimizer(torch.optim.AdamW, reg) vs
                     RiemannianLora over AdamW. float64.
  riemannian_sgd     the same over torch.optim.SGD with momentum. float64.
  lora_fa            peft.optimizers.create_lorafa_optimizer vs RiemannianLora(lora_fa_options)
                     over AdamWHF. float64 (PEFT's CPU bf16 autocast does not touch float64).
  lora_fa_float32    the same in float32: PEFT multiplies grad_B by the preconditioner under
                     torch.autocast(bf16) when bf16 is available (it is on this CPU), lorascope in
                     float64: 1.8e-3 measured, tolerance 1e-2 (bf16's).
  lora_fa_float32_no_autocast  the same with PEFT's other branch (its is_bf16_available patched to
                     False for this check only): 2.8e-7 measured, tolerance 1e-5, so the float32
                     difference above is PEFT's bf16 rounding and nothing else.
  olora              LoraConfig(init_lora_weights="olora") vs olora_init: A, B, corrected W. float32
                     (PEFT refuses other dtypes), tolerance 1e-5 relative.
  lora_ga_peft       preprocess_loraga + init_lora_weights="lora_ga" (ArB2r, stable, gamma 16) vs
                     lora_ga_init(flavor Peft) on the gradient PEFT averaged; singular vectors are
                     compared up to the sign of each pair. float32, 1e-4 relative. (The trainer's
                     gradient collection for it, end to end against PEFT: check_gradient_init.py.)
Prints PASS/FAIL/SKIP lines; exits 1 if any check failed.
"""
import argparse
import os
import subprocess
import sys
import traceback

import torch
from safetensors.torch import load_file, save_file

FAILED = []


def report(name, ok, measured, tol):
    print(f"{'PASS' if ok else 'FAIL'} {name}: {measured} (tolerance {tol})", flush=True)
    if not ok:
        FAILED.append(name)


def run_driver(driver, work, name, tensors, *args):
    inp, out = os.path.join(work, f"{name}.in.safetensors"), os.path.join(work, f"{name}.out.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, inp)
    p = subprocess.run([driver, "--in", inp, "--out", out, *map(str, args)], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"driver exited {p.returncode}: {p.stderr.strip()[-500:]}")
    return load_file(out)


def mlp(dtype, seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(16, 24), torch.nn.Tanh(), torch.nn.Linear(24, 16)).to(dtype)


def peft_model(base, **lora_kwargs):
    from peft import LoraConfig, get_peft_model
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["0", "2"], **lora_kwargs)
    return get_peft_model(base, config)


def lora_modules(model):
    return [model.base_model.model[0], model.base_model.model[2]]


def inputs_of(model, x, t):
    """The driver's input: data, frozen base weights and the current adapters, in float64 or float32."""
    d = {"x": x, "t": t}
    for k, m in enumerate(lora_modules(model)):
        d[f"W{k}"] = m.base_layer.weight.detach().clone()
        d[f"b{k}"] = m.base_layer.bias.detach().clone()
        d[f"A{k}"] = m.lora_A["default"].weight.detach().clone()
        d[f"B{k}"] = m.lora_B["default"].weight.detach().clone()
    return d


def run_peft_steps(model, opt, x, t, steps):
    traj = {}
    for step in range(1, steps + 1):
        opt.zero_grad()
        loss = ((model(x) - t) ** 2).mean()
        loss.backward()
        opt.step()
        for k, m in enumerate(lora_modules(model)):
            traj[f"A{k}.step{step}"] = m.lora_A["default"].weight.detach().clone()
            traj[f"B{k}.step{step}"] = m.lora_B["default"].weight.detach().clone()
    return traj


def trajectory_error(ours, theirs):
    worst = 0.0
    for key, ref in theirs.items():
        scale = ref.abs().max().item() or 1.0
        worst = max(worst, (ours[key].to(ref.dtype) - ref).abs().max().item() / scale)
    return worst


def optimizer_check(driver, work, name, dtype, tol, make_peft_optimizer, driver_args, steps=6, freeze_a=False):
    torch.manual_seed(1)
    base = mlp(dtype, 0)
    model = peft_model(base, init_lora_weights=False)  # random nonzero A and B (nn.Linear init)
    if freeze_a:
        for m in lora_modules(model):
            m.lora_A["default"].weight.requires_grad_(False)
    x = torch.randn(32, 16, dtype=dtype)
    t = torch.randn(32, 16, dtype=dtype)
    start = inputs_of(model, x, t)
    theirs = run_peft_steps(model, make_peft_optimizer(model), x, t, steps)
    ours = run_driver(driver, work, name, start, "--steps", steps, "--scaling", 2.0, *driver_args)
    err = trajectory_error(ours, theirs)
    moved = max((theirs[f"B0.step{steps}"] - start["B0"]).abs().max().item(), 1e-300)
    report(name, err <= tol and moved > 0, f"max relative difference {err:.2e} over {steps} steps, all A and B", tol)


def check_optimizers(driver, work):
    from peft.optimizers import create_lorafa_optimizer, create_loraplus_optimizer, create_riemannian_optimizer

    lr, wd = 1e-2, 0.05
    optimizer_check(
        driver, work, "lora_plus", torch.float64, 1e-10,
        lambda m: create_loraplus_optimizer(m, torch.optim.AdamW, lr=lr, loraplus_lr_ratio=16.0, loraplus_weight_decay=wd),
        ["--method", "lora_plus", "--lr", lr, "--ratio", 16, "--weight-decay", wd])
    optimizer_check(
        driver, work, "riemannian_adamw", torch.float64, 1e-10,
        lambda m: create_riemannian_optimizer(m, torch.optim.AdamW, lr=lr, reg=1e-2, weight_decay=wd),
        ["--method", "riemannian_adamw", "--lr", lr, "--delta", 1e-2, "--weight-decay", wd])
    optimizer_check(
        driver, work, "riemannian_sgd", torch.float64, 1e-10,
        lambda m: create_riemannian_optimizer(m, torch.optim.SGD, lr=0.05, reg=1e-3, momentum=0.9, weight_decay=wd),
        ["--method", "riemannian_sgd", "--lr", 0.05, "--delta", 1e-3, "--momentum", 0.9, "--weight-decay", wd])
    import peft.optimizers.lorafa as lorafa
    bf16_available = lorafa.is_bf16_available
    for dtype, name, tol, bf16 in ((torch.float64, "lora_fa", 1e-10, True),
                                   (torch.float32, "lora_fa_float32", 1e-2, True),
                                   (torch.float32, "lora_fa_float32_no_autocast", 1e-5, False)):
        lorafa.is_bf16_available = bf16_available if bf16 else (lambda: False)
        try:
            optimizer_check(
                driver, work, name, dtype, tol,
                lambda m: create_lorafa_optimizer(m, r=4, lora_alpha=8, lr=lr, weight_decay=wd),
                ["--method", "lora_fa", "--lr", lr, "--eps", 1e-6, "--weight-decay", wd], freeze_a=True)
        finally:
            lorafa.is_bf16_available = bf16_available


def align_signs(ours, theirs, dim):
    """Flips ours' columns (dim=1) or rows (dim=0) to the sign of theirs' (singular vectors are
    determined up to sign)."""
    dots = (ours * theirs).sum(dim=1 - dim)
    signs = torch.where(dots < 0, -1.0, 1.0).to(ours.dtype)
    return ours * (signs.unsqueeze(0) if dim == 1 else signs.unsqueeze(1))


def check_olora(driver, work):
    base = mlp(torch.float32, 2)
    W = {f"W{k}": base[i].weight.detach().clone() for k, i in enumerate((0, 2))}
    model = peft_model(base, init_lora_weights="olora")
    ours = run_driver(driver, work, "olora", W, "--method", "olora", "--rank", 4, "--scaling", 2.0)
    worst = 0.0
    for k, m in enumerate(lora_modules(model)):
        for ours_t, ref in ((ours[f"A{k}"], m.lora_A["default"].weight), (ours[f"B{k}"], m.lora_B["default"].weight),
                            (ours[f"W{k}"], m.base_layer.weight)):
            worst = max(worst, (ours_t - ref.detach()).abs().max().item() / ref.abs().max().item())
    report("olora", worst <= 1e-5, f"max relative difference {worst:.2e} in A, B and the corrected W", 1e-5)


def check_lora_ga(driver, work):
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import LoraGAConfig, preprocess_loraga

    base = mlp(torch.float32, 3)
    torch.manual_seed(4)
    batches = [(torch.randn(8, 16), torch.randn(8, 16)) for _ in range(3)]

    def train_step():
        for x, t in batches:
            ((base(x) - t) ** 2).mean().backward()

    # The averaged gradient PEFT will use, computed here the same way on a copy.
    probe = mlp(torch.float32, 3)
    for x, t in batches:
        ((probe(x) - t) ** 2).mean().backward()
    inputs = {}
    for k, i in enumerate((0, 2)):
        inputs[f"W{k}"] = base[i].weight.detach().clone()
        inputs[f"G{k}"] = probe[i].weight.grad.detach() / len(batches)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["0", "2"], init_lora_weights="lora_ga",
                        lora_ga_config=LoraGAConfig())
    preprocess_loraga(base, config, train_step)
    model = get_peft_model(base, config)
    ours = run_driver(driver, work, "lora_ga_peft", inputs, "--method", "lora_ga_peft", "--rank", 4, "--scaling", 2.0)
    worst = 0.0
    for k, m in enumerate(lora_modules(model)):
        A, B = m.lora_A["default"].weight.detach(), m.lora_B["default"].weight.detach()
        oa, ob = align_signs(ours[f"A{k}"], A, 0), align_signs(ours[f"B{k}"], B, 1)
        worst = max(worst, (oa - A).abs().max().item() / A.abs().max().item(),
                    (ob - B).abs().max().item() / B.abs().max().item())
        # The base correction: ours keeps the output (W' + s B A = W) as PEFT's does.
        w0 = inputs[f"W{k}"].double()
        ours_keep = (ours[f"W{k}"].double() + 2.0 * ours[f"B{k}"].double() @ ours[f"A{k}"].double() - w0).abs().max().item()
        peft_keep = (m.base_layer.weight.double() + 2.0 * B.double() @ A.double() - w0).abs().max().item()
        worst = max(worst, ours_keep / w0.abs().max().item(), peft_keep / w0.abs().max().item())
    report("lora_ga_peft", worst <= 1e-4, f"max relative difference {worst:.2e} in A, B (signs aligned); "
           "W' + s B A = W on both sides", 1e-4)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lorascope", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--data", default=None)
    ap.add_argument("--driver", default=None, help="default: tests/lorascope_lora_optim_driver next to --lorascope")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    driver = args.driver or os.path.join(os.path.dirname(os.path.abspath(args.lorascope)), "tests",
                                         "lorascope_lora_optim_driver")
    os.makedirs(args.work, exist_ok=True)
    if not os.access(driver, os.X_OK):
        report("lora_optim_driver", False, f"{driver} missing: build the target lorascope_lora_optim_driver", "-")
        return 1
    for check in (check_optimizers, check_olora, check_lora_ga):
        try:
            check(driver, args.work)
        except Exception as e:  # one broken check must not hide the others
            traceback.print_exc()
            report(check.__name__, False, f"{type(e).__name__}: {e}"[:300], "-")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
