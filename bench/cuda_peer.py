#!/usr/bin/env python3
"""cuda_peer.py — the PyTorch peer of bench/cuda.c: diffusers' UNet and VAE
in fp16 with SDPA attention, on the same random weights, timed the same way
(CUDA events, a warm-up, the median of N): one UNet CFG step at 512² (batch
2), a VAE decode at 512², and with --image a whole 50-step image loop (text
encoder, DDIM steps with CFG, VAE decode) at batch 1 and 8.

    build/sdc make-random --layout diffusers sd15-random   # once
    python3 bench/cuda_peer.py --model sd15-random [--reps 10] [--image] [--json F]

--model is a diffusers folder (unet/, vae/, text_encoder/ with config.json):
nothing is downloaded. Needs torch with CUDA and diffusers. Without a CUDA
device it prints why and exits 77, as bench_cuda does.
"""
import argparse
import json
import os
import statistics
import sys


def timed(torch, fn, reps):
    """Median milliseconds of fn() over reps runs after one warm-up."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="diffusers folder")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--image", action="store_true", help="also time whole 50-step images")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", default="1,8", help="image batch sizes for --image")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()

    import torch
    if not torch.cuda.is_available():
        print("cuda_peer: SKIPPED — no CUDA device (torch.cuda.is_available() is False)")
        return 77
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor2_0

    dev, dt = "cuda", torch.float16
    unet = UNet2DConditionModel.from_pretrained(os.path.join(a.model, "unet"), torch_dtype=dt).to(dev)
    vae = AutoencoderKL.from_pretrained(os.path.join(a.model, "vae"), torch_dtype=dt).to(dev)
    unet.set_attn_processor(AttnProcessor2_0())  # torch's scaled_dot_product_attention
    vae.set_attn_processor(AttnProcessor2_0())
    unet.eval()
    vae.eval()
    g = torch.Generator(device=dev).manual_seed(0)
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "runs": []}

    with torch.inference_mode():
        x = torch.randn(2, 4, 64, 64, generator=g, device=dev, dtype=dt)
        t = torch.tensor([500, 500], device=dev)
        ctx = torch.randn(2, 77, 768, generator=g, device=dev, dtype=dt)
        torch.cuda.reset_peak_memory_stats()
        ms = timed(torch, lambda: unet(x, t, encoder_hidden_states=ctx).sample, a.reps)
        peak = torch.cuda.max_memory_allocated()
        print(f"unet CFG step 512^2 (batch 2, fp16, SDPA): {ms:.2f} ms, peak {peak / 1e9:.2f} GB")
        results["runs"].append({"what": "unet_cfg_step_512_b2", "ms": ms, "peak_device_bytes": peak})

        z = torch.randn(1, 4, 64, 64, generator=g, device=dev, dtype=dt)
        torch.cuda.reset_peak_memory_stats()
        ms = timed(torch, lambda: vae.decode(z).sample, a.reps)
        peak = torch.cuda.max_memory_allocated()
        print(f"vae decode 512^2 (fp16, SDPA): {ms:.2f} ms, peak {peak / 1e9:.2f} GB")
        results["runs"].append({"what": "vae_decode_512", "ms": ms, "peak_device_bytes": peak})

        if a.image:
            from transformers import CLIPTextModel
            te = CLIPTextModel.from_pretrained(os.path.join(a.model, "text_encoder"), torch_dtype=dt).to(dev)
            sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                  clip_sample=False, set_alpha_to_one=False, steps_offset=1)
            for b in [int(s) for s in a.batch.split(",")]:
                ids = torch.randint(0, 49407, (2 * b, 77), generator=g, device=dev)

                def image():
                    cond = te(ids)[0]
                    lat = torch.randn(b, 4, 64, 64, generator=g, device=dev, dtype=dt)
                    sched.set_timesteps(a.steps)
                    for step in sched.timesteps:
                        eps = unet(torch.cat([lat, lat]), step, encoder_hidden_states=cond).sample
                        un, co = eps.chunk(2)
                        lat = sched.step(un + 7.5 * (co - un), step, lat).prev_sample
                    return vae.decode(lat / 0.18215).sample

                torch.cuda.reset_peak_memory_stats()
                ms = timed(torch, image, 1 if a.reps > 1 else a.reps)
                peak = torch.cuda.max_memory_allocated()
                print(f"txt2img 512^2, {a.steps} steps, batch {b}: {ms / 1e3:.3f} s, "
                      f"{ms / 1e3 / b:.3f} s/image, peak {peak / 1e9:.2f} GB")
                results["runs"].append({"what": f"txt2img_512_{a.steps}steps_b{b}", "ms": ms,
                                        "peak_device_bytes": peak})
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
