#!/usr/bin/env python3
"""bench/train_peer.py — the PyTorch side of bench/train_compare.py: one
textual-inversion training step (forward + backward to the new token's
embedding row) as diffusers' textual_inversion.py takes it, on the CPU in
float32, and one plain UNet forward at the same size, batch 1.

    python bench/train_peer.py --diffusers-model DIR --size 512 [--reps 1] [--threads 2]

The step: the text encoder with one added token row (only the embedding
table takes gradients, every other parameter is frozen), c = text(ids),
x_t = DDPMScheduler.add_noise(x0, eps, t), pred = unet(x_t, t, c),
loss = mse(pred, eps), loss.backward(). Autograd keeps every activation (no
checkpointing: textual_inversion.py does not enable it). The inputs are
pseudo-random of the same shapes as bench/train.c's; t = 500. Prints one JSON
line: the medians of --reps after a warm-up.
"""
import argparse
import json
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--diffusers-model", required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import statistics

    import diffusers
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    f32 = torch.float32
    t0 = time.perf_counter()
    unet = UNet2DConditionModel.from_pretrained(args.diffusers_model, subfolder="unet",
                                                torch_dtype=f32).eval()
    text = CLIPTextModel.from_pretrained(args.diffusers_model, subfolder="text_encoder",
                                         torch_dtype=f32).eval()
    load_s = time.perf_counter() - t0
    vocab = text.config.vocab_size
    text.resize_token_embeddings(vocab + 1, mean_resizing=False)
    for p in list(unet.parameters()) + list(text.parameters()):
        p.requires_grad_(False)
    emb = text.get_input_embeddings().weight
    emb.requires_grad_(True)
    sched = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                          beta_schedule="scaled_linear")

    g = torch.Generator().manual_seed(0)
    n = args.size // 8
    ids = torch.tensor([[49406, 320, 1125, 539, 320, vocab, 49407] + [49407] * 70])
    latents = torch.randn(1, 4, n, n, generator=g)
    noise = torch.randn(1, 4, n, n, generator=g)
    t = torch.tensor([500])
    with torch.no_grad():
        emb[vocab] = 0.02 * torch.randn(emb.shape[1], generator=g)

    def step():
        emb.grad = None
        c = text(input_ids=ids)[0]
        noisy = sched.add_noise(latents, noise, t)
        pred = unet(noisy, t, encoder_hidden_states=c).sample
        loss = F.mse_loss(pred.float(), noise.float(), reduction="mean")
        loss.backward()
        return loss.item()

    def forward():
        with torch.no_grad():
            c = text(input_ids=ids)[0]
            t0 = time.perf_counter()
            unet(latents, t, encoder_hidden_states=c).sample
            return time.perf_counter() - t0

    fwd, steps, loss = [], [], 0.0
    for r in range(-1, args.reps):  # r = -1 is the warm-up
        f = forward()
        t0 = time.perf_counter()
        loss = step()
        s = time.perf_counter() - t0
        if r >= 0:
            fwd.append(f)
            steps.append(s)
    attn = type(next(iter(unet.attn_processors.values()))).__name__
    print(json.dumps({
        "size": args.size, "batch": 1, "unet_forward_seconds": statistics.median(fwd),
        "step_seconds": statistics.median(steps), "loss": loss, "load_seconds": load_s,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "diffusers": diffusers.__version__, "attention_processor": attn,
        "cpu_capability": torch.backends.cpu.get_cpu_capability()}))


if __name__ == "__main__":
    main()
