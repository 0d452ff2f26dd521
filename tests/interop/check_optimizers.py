#!/usr/bin/env python3
"""Optimizers: lorascope's AdamW, Muon and Newton-Schulz against torch.optim and torch's own code.

lorascope's side runs in build/tests/lorascope_interop_driver (tests/interop/interop_driver.cpp),
with every option given explicitly. Both sides step the same parameters on the same problem,
1/2 ||W - Y_k||^2 with a fresh random target Y_k per step (gradient W - Y_k, computed by each side
from its own W, so differences feed back as they would in training). The parameters are a square,
a tall and a wide matrix and two more of one shape (lorascope's Muon stacks same-shape matrices
into one batched Newton-Schulz); AdamW also gets a vector.

Error measure: max |W_lorascope - W_torch| / max |W_torch - W_0| over all steps and parameters,
i.e. relative to how far the optimizer moved the parameters (stricter than relative to W).

Muon. torch.optim.Muon keeps an EMA buffer B_t = mu B_{t-1} + (1 - mu) g_t (B_0 = 0) and
orthogonalizes B_t (or (1 - mu) g_t + mu B_t with Nesterov); lorascope keeps the paper's sum
M_t = mu M_{t-1} + g_t and orthogonalizes M_t (or g_t + mu M_t). By induction B_t = (1 - mu) M_t,
so the two Newton-Schulz inputs differ by the factor (1 - mu), which the Frobenius normalization
removes: the same momentum mu and Nesterov flag on both sides give the same updates. The
normalization's guard differs (torch X / max(||X||, eps), lorascope X / (||X|| + eps)); with
lorascope's ns_eps = 0 both are X / ||X|| for any nonzero X, so the exact checks set that (the
default 1e-7 is measured too: it changes the result by ~eps / ||X|| relative). lr adjustment:
torch's adjust_lr_fn "original" = lorascope's lr_scaling "original" (sqrt(max(1, rows/cols))) and
"match_rms_adamw" = "match_adamw_rms" (0.2 sqrt(max(rows, cols))); decoupled weight decay
(1 - lr wd) with the unadjusted lr on both sides.
torch's Newton-Schulz always works in bfloat16. The exact checks run torch's own
_zeropower_via_newtonschulz and Muon.step with that working dtype swapped for float32 / float64
(the module's `torch.bfloat16` name redirected, nothing else changed); the unmodified bf16 torch is
compared too, within a band that bf16 rounding explains.
"""
import contextlib
import os

import interop_common as ic

STEPS_ADAMW = 50
STEPS_MUON = 20
SHAPES = {"square": (24, 24), "tall": (40, 12), "wide": (12, 40), "pair0": (16, 20), "pair1": (16, 20)}


class _WorkingDtype:
    """Stands in for the `torch` module inside torch.optim._muon: `bfloat16` names another dtype."""

    def __init__(self, torch, dtype):
        self._torch = torch
        self.bfloat16 = dtype

    def __getattr__(self, name):
        return getattr(self._torch, name)


@contextlib.contextmanager
def ns_dtype(torch, dtype):
    import torch.optim._muon as muon_module
    saved = muon_module.torch
    muon_module.torch = _WorkingDtype(torch, dtype) if dtype is not None else saved
    try:
        yield muon_module
    finally:
        muon_module.torch = saved


def problem(torch, dtype, steps, vector, seed):
    g = torch.Generator().manual_seed(seed)
    init, targets = {}, {}
    shapes = dict(SHAPES)
    if vector:
        shapes["vector"] = (32,)
    for name, shape in shapes.items():
        init[name] = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
        targets[name] = torch.randn((steps, *shape), generator=g, dtype=torch.float64).to(dtype)
    return init, targets


def torch_run(torch, opt_factory, init, targets, steps):
    params = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    opt = opt_factory(list(params.values()))
    traj = {k: [] for k in params}
    for k in range(steps):
        for name, p in params.items():
            p.grad = (p.detach() - targets[name][k]).clone()
        opt.step()
        for name, p in params.items():
            traj[name].append(p.detach().clone())
    return {k: torch.stack(v) for k, v in traj.items()}


def lorascope_run(a, driver, tag, cmd, init, targets, steps, options):
    from safetensors.torch import load_file, save_file
    init_path = os.path.join(a.work, f"{tag}_init.safetensors")
    tgt_path = os.path.join(a.work, f"{tag}_targets.safetensors")
    out = os.path.join(a.work, f"{tag}_out.safetensors")
    save_file({k: v.contiguous() for k, v in init.items()}, init_path)
    save_file({k: v.contiguous() for k, v in targets.items()}, tgt_path)
    ic.run([driver, "--threads", str(ic.threads()), cmd, "--init", init_path, "--targets", tgt_path,
            "--steps", steps, "--out", out, *options])
    return load_file(out)


def trajectory_err(ours, ref, init):
    worst = 0.0
    for name, r in ref.items():
        moved = (r.double() - init[name].double()).abs().max().clamp_min(1e-300)
        worst = max(worst, float((ours[name].double() - r.double()).abs().max() / moved))
    return worst


def check_adamw(a, rep, torch, driver):
    for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
        lr, betas, eps, wd = 3e-2, (0.9, 0.95), 1e-8, 0.1
        init, targets = problem(torch, dtype, STEPS_ADAMW, vector=True, seed=1)
        ref = torch_run(torch, lambda ps: torch.optim.AdamW(ps, lr=lr, betas=betas, eps=eps, weight_decay=wd),
                        init, targets, STEPS_ADAMW)
        ours = lorascope_run(a, driver, f"adamw_{dtype}", "adamw", init, targets, STEPS_ADAMW,
                             ["--lr", lr, "--beta1", betas[0], "--beta2", betas[1], "--eps", eps,
                              "--weight-decay", wd])
        name = f"adamw {str(dtype).replace('torch.', '')} {STEPS_ADAMW} steps (lr {lr}, betas {betas}, wd {wd})"
        rep.close(name, trajectory_err(ours, ref, init), tol, "max err / displacement")


MUON_CASES = [
    # nesterov, torch adjust_lr_fn, lorascope lr_scaling, momentum, weight decay
    (False, "original", "original", 0.95, 0.0),
    (True, "original", "original", 0.95, 0.1),
    (False, "match_rms_adamw", "match_adamw_rms", 0.9, 0.1),
    (True, "match_rms_adamw", "match_adamw_rms", 0.95, 0.0),
]


def muon_torch(torch, init, targets, nesterov, adjust, mu, wd, lr, ns_working_dtype):
    with ns_dtype(torch, ns_working_dtype):
        return torch_run(torch, lambda ps: torch.optim.Muon(
            ps, lr=lr, weight_decay=wd, momentum=mu, nesterov=nesterov, ns_steps=5, eps=1e-7,
            adjust_lr_fn=adjust), init, targets, STEPS_MUON)


def check_muon(a, rep, torch, driver):
    lr = 0.02
    for nesterov, adjust, scaling, mu, wd in MUON_CASES:
        label = f"nesterov {'on' if nesterov else 'off'}, {adjust}, mu {mu}, wd {wd}"
        for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
            init, targets = problem(torch, dtype, STEPS_MUON, vector=False, seed=2)
            ref = muon_torch(torch, init, targets, nesterov, adjust, mu, wd, lr, dtype)
            opts = ["--lr", lr, "--weight-decay", wd, "--momentum", mu, "--nesterov", str(nesterov).lower(),
                    "--ns-steps", 5, "--lr-scaling", scaling, "--grouped", "true"]
            ours = lorascope_run(a, driver, f"muon_{nesterov}_{adjust}_{dtype}", "muon", init, targets,
                                 STEPS_MUON, opts + ["--ns-eps", 0])
            d = str(dtype).replace("torch.", "")
            rep.close(f"muon {d} {STEPS_MUON} steps ({label}; NS in {d} on both sides)",
                      trajectory_err(ours, ref, init), tol, "max err / displacement")
            if dtype == torch.float32:
                default_eps = lorascope_run(a, driver, f"muon_eps_{nesterov}_{adjust}", "muon", init, targets,
                                            STEPS_MUON, opts + ["--ns-eps", 1e-7])
                print(f"info: muon float32 ({label}) with lorascope's default ns_eps 1e-7: "
                      f"{trajectory_err(default_eps, ref, init):.2e} / displacement", flush=True)
                bf16 = muon_torch(torch, init, targets, nesterov, adjust, mu, wd, lr, None)
                err = trajectory_err(ours, bf16, init)
                own = trajectory_err(bf16, ref, init)  # torch bf16 vs torch float32: bf16's own error
                band = max(2 * own, 5e-3)
                rep.check(f"muon float32 vs unmodified torch.optim.Muon (bf16 Newton-Schulz) ({label})",
                          err <= band, f"max err / displacement {err:.2e}; torch bf16 vs float32 {own:.2e}",
                          f"max(2 x {own:.2e}, 5e-3)")
    # Grouped (stacked same-shape matrices) and per-parameter paths give the same steps.
    init, targets = problem(torch, torch.float32, STEPS_MUON, vector=False, seed=3)
    ref = muon_torch(torch, init, targets, True, "original", 0.95, 0.1, lr, torch.float32)
    ours = lorascope_run(a, driver, "muon_ungrouped", "muon", init, targets, STEPS_MUON,
                         ["--lr", lr, "--weight-decay", 0.1, "--momentum", 0.95, "--nesterov", "true", "--ns-steps", 5,
                          "--lr-scaling", "original", "--grouped", "false", "--ns-eps", 0])
    rep.close(f"muon float32 {STEPS_MUON} steps, per-parameter path (--grouped false)",
              trajectory_err(ours, ref, init), 1e-5, "max err / displacement")


def check_newton_schulz(a, rep, torch, driver):
    from safetensors.torch import load_file, save_file
    shapes = {"square": (32, 32), "tall": (48, 16), "wide": (16, 48), "batched": (3, 24, 40),
              "large_wide": (96, 200), "large_batched": (2, 80, 72)}  # the last two: the ATen path
    coeffs = (3.4445, -4.7750, 2.0315)
    for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
        g = torch.Generator().manual_seed(4)
        x = {k: torch.randn(s, generator=g, dtype=torch.float64).to(dtype) for k, s in shapes.items()}
        path = os.path.join(a.work, f"ns_in_{dtype}.safetensors")
        out = os.path.join(a.work, f"ns_out_{dtype}.safetensors")
        save_file(x, path)
        ic.run([driver, "newton-schulz", "--in", path, "--steps", 5, "--eps", 0, "--out", out])
        ours = load_file(out)
        with ns_dtype(torch, dtype) as m:
            def ref_of(t):
                if t.dim() == 2:
                    return m._zeropower_via_newtonschulz(t, coeffs, 5, 1e-7)
                return torch.stack([m._zeropower_via_newtonschulz(s, coeffs, 5, 1e-7) for s in t])
            ref = {k: ref_of(v) for k, v in x.items()}
        d = str(dtype).replace("torch.", "")
        for k in shapes:
            for suffix, what in (("", "orthogonalize()"), (".aten", "newton_schulz() ATen path")):
                rep.close(f"newton-schulz {d} {k} {tuple(shapes[k])} {what}",
                          ic.rel_err(ours[k + suffix], ref[k]), tol)
        if dtype == torch.float32:  # unmodified torch: bf16 throughout
            for k in ("square", "tall", "wide"):
                bf = m._zeropower_via_newtonschulz(x[k], coeffs, 5, 1e-7).float()
                own = ic.rel_err(bf, ref[k])
                err = ic.rel_err(ours[k], bf)
                band = max(2 * own, 2e-2)
                rep.check(f"newton-schulz float32 {k} vs unmodified torch (bf16)", err <= band,
                          f"max rel err {err:.2e}; torch bf16 vs float32 {own:.2e}", f"max(2 x {own:.2e}, 2e-2)")


def main():
    a = ic.parse_args(__doc__)
    torch = ic.setup_torch()
    driver = ic.driver_path(a.lorascope)
    rep = ic.Report("check_optimizers")
    print(f"torch {torch.__version__}; driver {driver}", flush=True)
    rep.guarded("adamw", check_adamw, a, rep, torch, driver)
    rep.guarded("muon", check_muon, a, rep, torch, driver)
    rep.guarded("newton-schulz", check_newton_schulz, a, rep, torch, driver)
    rep.finish()


if __name__ == "__main__":
    main()
