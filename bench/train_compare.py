#!/usr/bin/env python3
"""bench/train_compare.py — one textual-inversion training step (forward +
backward to the placeholder embedding) in sdc and in PyTorch fp32 on the
CPU, same full-size random SD 1.5 weights, same machine, same run:

    python bench/train_compare.py --model build/bench-models/sd15-random-f16.safetensors \\
        --diffusers-model build/bench-models/sd15-random-f16-diffusers \\
        --sdc-build build [--sizes 256,512] [--reps 1] [--threads 2] [--json F]

Make the two checkpoints (identical weights) with
    sdc make-random --layout original --dtype f16 --seed 0 M.safetensors
    sdc make-random --layout diffusers --dtype f16 --seed 0 M-diffusers
and run this with a Python that has torch + diffusers + transformers (the
pins of tests/requirements.txt). Per size, each engine is a fresh process
(sdc: bench_train, PyTorch: bench/train_peer.py) under /usr/bin/time -v, so
its peak RSS is its own; the engines alternate size by size, so load from
other users of the machine hits both. The step times are medians of --reps
after a warm-up; ratios from the same run are what count.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(cmd):
    """Runs cmd under /usr/bin/time -v: (stdout, peak RSS bytes)."""
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"train_compare: {' '.join(cmd)} failed:\n{p.stdout}\n{p.stderr[-3000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return p.stdout, int(m.group(1)) * 1024 if m else None


def run_sdc(args, size):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        out, rss = timed([os.path.join(args.sdc_build, "bench_train"), "--model", args.model,
                          "--size", str(size), "--reps", str(args.reps), "--json", f.name])
        sys.stderr.write(out)
        run = json.load(open(f.name))["runs"][0]
    run["peak_rss_bytes"] = rss
    return run


def run_torch(args, size):
    out, rss = timed([sys.executable, os.path.join(HERE, "train_peer.py"), "--diffusers-model",
                      args.diffusers_model, "--size", str(size), "--reps", str(args.reps),
                      "--threads", str(args.threads)])
    run = json.loads(out.strip().splitlines()[-1])
    run["peak_rss_bytes"] = rss
    sys.stderr.write(json.dumps(run) + "\n")
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--diffusers-model", required=True)
    ap.add_argument("--sdc-build", default="build")
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    os.environ["SDC_THREADS"] = str(args.threads)
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        sdc = run_sdc(args, size)
        pt = run_torch(args, size)
        rows.append({"size": size, "sdc": sdc, "torch": pt})
    print("| size | sdc step | PyTorch step | PyTorch / sdc | sdc UNet fwd | sdc step / fwd "
          "| PyTorch step / fwd | sdc peak RSS | PyTorch peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        s, t = r["sdc"], r["torch"]
        print(f"| {r['size']}² | {s['step_seconds']:.1f} s | {t['step_seconds']:.1f} s | "
              f"{t['step_seconds'] / s['step_seconds']:.2f}x | {s['unet_forward_seconds']:.1f} s | "
              f"{s['step_over_forward']:.2f} | "
              f"{t['step_seconds'] / t['unet_forward_seconds']:.2f} | "
              f"{s['peak_rss_bytes'] / 1e9:.2f} GB | {t['peak_rss_bytes'] / 1e9:.2f} GB |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "reps": args.reps, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
