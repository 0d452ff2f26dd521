#!/usr/bin/env python3
"""LibTorch 2.x: lorascope built a second time against the LibTorch inside the reference
environment's torch wheel (scripts/build_torch2.sh: C++20, build-torch2/), where its 2.x code paths
run (at::scaled_dot_product_attention for attention, the device-type autocast API).

  1. the whole unit suite (ctest) in build-torch2/: every test passes (CUDA-only tests skip);
  2. check_models.py again with build-torch2/lorascope: the fused-attention path against
     transformers, 1e-5 relative, every case;
  3. bf16 autocast on CPU (`hf logits --autocast bfloat16`, the trainer's bf16=true forward, with
     both builds) against transformers' own bf16 autocast (torch.autocast("cpu", bfloat16)):
     measured against the float32 logits of transformers, lorascope's error must be at most
     max(2 x transformers' own bf16 error, 1e-2); with the LibTorch 2.x build (the same LibTorch
     as transformers' torch) also lorascope bf16 vs transformers bf16 <= 0.5 x that own error.
LORASCOPE_INTEROP_SKIP_TORCH2=1 skips 1 and 2 (a SKIP line) and runs 3 with the default build only.
"""
import os
import re
import subprocess
import sys
import time

import interop_common as ic

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, "build-torch2")


def build(rep):
    t = time.time()
    log = os.path.join(BUILD + ".log")
    with open(log, "w") as f:
        # Only what the checks below run: the test binary (it depends on lorascope and the
        # optimizer driver), not the interop driver or benchmarks.
        p = subprocess.run(["bash", os.path.join(ROOT, "scripts", "build_torch2.sh"), "lorascope_tests"], stdout=f, stderr=subprocess.STDOUT,
                           timeout=int(os.environ.get("LORASCOPE_TORCH2_BUILD_TIMEOUT", "3600")))
    secs = time.time() - t
    if p.returncode != 0:
        with open(log) as f:
            tail = f.read()[-3000:]
        print(tail, flush=True)
        rep.check("libtorch2 build", False, f"scripts/build_torch2.sh exited {p.returncode} after {secs:.0f} s "
                  f"(log {log})", "builds")
        return False
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        cache = f.read()
    std = re.search(r"CMAKE_CXX_STANDARD:\w+=(\d+)", cache)
    print(f"libtorch2: build-torch2/ built in {secs:.0f} s (C++{std.group(1) if std else '?'})", flush=True)
    return True


def ctest(rep):
    """The whole unit suite in build-torch2/: one line for the run (tests run, failed, skipped with
    names), one FAIL line per failed test. CUDA-only tests skip on a machine without a GPU."""
    t = time.time()
    junit = os.path.join(BUILD, "ctest-junit.xml")
    p = subprocess.run(["ctest", "-j", str(max(1, os.cpu_count() or 1)), "--output-on-failure", "--timeout", "900",
                        "--output-junit", junit], cwd=BUILD, capture_output=True, text=True, timeout=5400)
    secs = time.time() - t
    out = p.stdout + p.stderr
    with open(os.path.join(BUILD, "ctest.log"), "w") as f:
        f.write(out)
    m = re.search(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", out)
    if not m:
        print(out[-3000:], flush=True)
        rep.check("libtorch2 ctest", False, f"no ctest summary (exit {p.returncode}, log build-torch2/ctest.log)",
                  "all tests pass")
        return
    failed, total = int(m.group(2)), int(m.group(3))
    # ctest's closing lists: "\t 12 - Suite.Name (Failed)" under "The following tests FAILED:" and
    # "(Skipped)" / "(Disabled)" under "The following tests did not run:".
    tail = out[out.find("The following tests"):] if "The following tests" in out else ""
    listed = re.findall(r"^\s*\d+ - (\S+) \((\w[\w ]*)\)", tail, re.M)
    failed_names = [n for n, why in listed if why not in ("Skipped", "Disabled")]
    skipped_names = [n for n, why in listed if why in ("Skipped", "Disabled")]
    slowest = sorted(((float(s), n) for n, s in re.findall(r"Test +#\d+: (\S+) \.*.*?([\d.]+) sec", out)),
                     reverse=True)[:3]
    ok = failed == 0 and p.returncode == 0
    skip_text = f" ({', '.join(skipped_names)})" if skipped_names else ""
    rep.check("libtorch2 ctest (the whole unit suite against LibTorch 2.x)", ok,
              f"{total} tests run, {failed} failed, {len(skipped_names)} skipped{skip_text} in {secs:.0f} s; "
              f"slowest {', '.join(f'{n} {s:.0f} s' for s, n in slowest)}", "all pass")
    for name in failed_names:
        rep.line("FAIL", f"libtorch2 ctest {name}", "failed against LibTorch 2.x (output in build-torch2/ctest.log) "
                 "(tolerance passes)")
    if failed and not failed_names:
        print("\n".join(l for l in out.splitlines() if "Failed" in l or "***" in l)[-3000:], flush=True)


def models_again(rep, a):
    t = time.time()
    p = subprocess.run([sys.executable, "check_models.py", "--lorascope", os.path.join(BUILD, "lorascope"), "--work",
                        os.path.join(a.work, "models"), "--data", a.data], cwd=os.path.dirname(os.path.abspath(__file__)),
                       capture_output=True, text=True, timeout=3600)
    lines = [l for l in p.stdout.splitlines() if l.startswith(("PASS ", "FAIL "))]
    for l in lines:
        status, rest = l.split(" ", 1)
        rep.passed += status == "PASS"
        rep.failed += status == "FAIL"
        rep.line(status, "libtorch2 " + rest.split(":", 1)[0], rest.split(":", 1)[1].strip())
    if p.returncode != 0 and not any(l.startswith("FAIL") for l in lines):
        print(p.stdout[-2000:] + p.stderr[-2000:], flush=True)
        rep.check("libtorch2 check_models", False, f"exited {p.returncode}", "runs")
    print(f"libtorch2: check_models with build-torch2/lorascope in {time.time() - t:.0f} s", flush=True)


def autocast_bf16(rep, a, torch, transformers, with_torch2):
    from safetensors.torch import load_file
    cases = [
        ("LlamaForCausalLM", "causal_lm", dict(vocab_size=320, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
                                               num_attention_heads=4, num_key_value_heads=2, initializer_range=0.15,
                                               pad_token_id=0, max_position_embeddings=64)),
        ("RobertaForSequenceClassification", "classification",
         dict(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
              max_position_embeddings=48, initializer_range=0.15, pad_token_id=1, type_vocab_size=1, num_labels=3)),
    ]
    for arch, head, cfg_kwargs in cases:
        cls = getattr(transformers, arch)
        cfg = cls.config_class(**cfg_kwargs)
        cfg.architectures = [arch]
        torch.manual_seed(0)
        model = cls(cfg).float().eval()
        d = ic.save_pretrained(model, os.path.join(a.work, "bf16_" + arch))
        g = torch.Generator().manual_seed(1)
        ids = torch.randint(3, cfg_kwargs["vocab_size"], (3, 16), generator=g)
        mask = torch.ones_like(ids)
        mask[1, 11:] = 0
        ids[mask == 0] = cfg_kwargs["pad_token_id"]
        with torch.no_grad():
            ref32 = model(input_ids=ids, attention_mask=mask).logits
            with torch.autocast("cpu", dtype=torch.bfloat16):
                ref16 = model(input_ids=ids, attention_mask=mask).logits.float()
        sel = (lambda t: t[mask.bool()]) if head == "causal_lm" else (lambda t: t)
        own = ic.rel_err(sel(ref16), sel(ref32))
        band = max(2 * own, 1e-2)
        ids_path = ic.write_json(os.path.join(a.work, f"bf16_{arch}_ids.json"),
                                 {"input_ids": ids.tolist(), "attention_mask": mask.tolist()})
        builds = [("LibTorch 2.x", os.path.join(BUILD, "lorascope"))] if with_torch2 else []
        for label, exe in builds + [("default LibTorch", a.lorascope)]:
            out = os.path.join(a.work, f"bf16_{arch}_{label.split()[0]}.safetensors")
            ic.lorascope(exe, "hf", "logits", "--model", d, "--ids", ids_path, "--out", out, "--head", head,
                         "--autocast", "bfloat16")
            ours = load_file(out)["logits"]
            err = ic.rel_err(sel(ours), sel(ref32))
            direct = ic.rel_err(sel(ours), sel(ref16))
            rep.check(f"bf16 autocast {arch} ({label} build)", err <= band,
                      f"lorascope bf16 vs transformers float32 {err:.2e}; transformers' own bf16 error {own:.2e}; "
                      f"lorascope bf16 vs transformers bf16 {direct:.2e}", f"max(2 x {own:.2e}, 1e-2)")
            if label == "LibTorch 2.x":
                # Same LibTorch as transformers' torch and the same autocast op lists: lorascope's bf16
                # logits must be nearer transformers' bf16 logits than bf16 is to float32 (a forward
                # left in float32 would sit at exactly transformers' own error and fail).
                rep.check(f"bf16 autocast {arch} (LibTorch 2.x build) vs transformers bf16", direct <= 0.5 * own,
                          f"lorascope bf16 vs transformers bf16 {direct:.2e}", f"0.5 x {own:.2e}")


def main():
    a = ic.parse_args(__doc__)
    rep = ic.Report("check_libtorch2")
    with_torch2 = os.environ.get("LORASCOPE_INTEROP_SKIP_TORCH2") != "1"
    if not with_torch2:
        rep.skip("libtorch2 build, ctest and check_models", "LORASCOPE_INTEROP_SKIP_TORCH2=1")
    elif rep.guarded("libtorch2 build", build, rep):
        rep.guarded("libtorch2 ctest", ctest, rep)
        rep.guarded("libtorch2 check_models", models_again, rep, a)
    else:
        with_torch2 = False
    torch = ic.setup_torch()
    import transformers
    transformers.utils.logging.set_verbosity_error()
    rep.guarded("bf16 autocast", autocast_bf16, rep, a, torch, transformers, with_torch2)
    rep.finish()


if __name__ == "__main__":
    main()
