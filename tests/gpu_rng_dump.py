#!/usr/bin/env python3
"""gpu_rng_dump.py — torch's CUDA normal generator, written down for sdc's
`--rng cuda` (A1111's default "GPU" seeds) to be checked against without a GPU.

Run on a machine with a CUDA device (bench/gpu_check.sh does):

    python3 tests/gpu_rng_dump.py OUT.safetensors

For each case it seeds a CUDA generator, draws one or more torch.randn
tensors in a row from it (the generator's Philox offset advancing between
them, as in a sampler's ancestral noise), and stores them F32. Small tensors
are stored whole; big ones (whose launch grid depends on the GPU's SM count)
as every 97th element plus the sum, with the SM count in the metadata.
Needs torch with CUDA and safetensors; exits 77 without a device.
"""
import json
import sys

import torch
from safetensors.torch import save_file

# (name, seed, [shapes drawn in a row from one generator])
CASES = [
    ("s0_latent64", 0, [(1, 4, 64, 64)]),
    ("s1234_latent64", 1234, [(1, 4, 64, 64)]),
    ("s42_batch2", 42, [(2, 4, 64, 64)]),
    ("s7_latent_96x128", 7, [(1, 4, 96, 128)]),
    ("s5_odd_3x7", 5, [(3, 7)]),
    ("s5_odd_4x9x13", 5, [(1, 4, 9, 13)]),
    ("s9_one", 9, [(1,)]),
    ("s_big64", 2**40 + 5, [(1, 4, 64, 64)]),
    ("s_max32", 2**32 - 1, [(1, 4, 8, 8)]),
    ("s3_seq", 3, [(1, 4, 64, 64), (1, 4, 64, 64), (5,), (1, 4, 64, 64)]),
    ("s11_seq_small", 11, [(7,), (7,), (1, 4, 8, 8)]),
    ("s13_large", 13, [(8, 4, 128, 128)]),
]
BIG = 1 << 17  # elements above which a tensor is stored strided


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("gpu_rng_dump: SKIPPED — no CUDA device")
        return 77
    props = torch.cuda.get_device_properties(0)
    out, meta = {}, {
        "torch": torch.__version__,
        "device": props.name,
        "sm_count": str(props.multi_processor_count),
        "max_threads_per_sm": str(props.max_threads_per_multi_processor),
        "big_stride": "97",
    }
    for name, seed, shapes in CASES:
        g = torch.Generator(device="cuda").manual_seed(seed)
        for i, shape in enumerate(shapes):
            x = torch.randn(shape, generator=g, device="cuda", dtype=torch.float32).cpu()
            key = f"{name}.{i}"
            if x.numel() > BIG:
                out[key + ".strided"] = x.flatten()[::97].contiguous()
                out[key + ".sum"] = x.double().sum().reshape(1).float()
                meta[key + ".shape"] = json.dumps(list(shape))
            else:
                out[key] = x.contiguous()
        meta[name + ".seed"] = str(seed)
    save_file(out, sys.argv[1], metadata=meta)
    print(f"gpu_rng_dump: {len(out)} tensors from {props.name} ({props.multi_processor_count} SMs), "
          f"torch {torch.__version__} -> {sys.argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
