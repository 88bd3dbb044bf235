#!/usr/bin/env python3
"""make_grad_fixtures.py — writes tests/fixtures/grad_io.safetensors: torch
autograd's gradients through the tiny SD-structured model (tests/fixtures/tiny,
made by tests/make_fixtures.py) that sdc's reverse mode must reproduce
(tests/test_grad.c). Pinned versions: tests/requirements.txt.

    build/venv/bin/python tests/make_grad_fixtures.py

Everything runs in float32 on the CPU with the committed (F16-exact) weights.
  te.*     the CLIP text encoder alone: ids with placeholder tokens (ids >=
           vocab pick rows of `extra`, as sdc_clip_text_forward does; here the
           token embedding is resized and those rows set, as diffusers'
           textual_inversion.py does), L = sum(last_hidden_state * dy);
           te.grad = dL/d extra, te.out = last_hidden_state.
  unet.*, unet_odd.*
           the UNet alone, L = sum(unet(x, t, ctx).sample * dy);
           dctx = dL/d encoder_hidden_states; the odd latent (9x13) takes the
           2H-1 upsampling and odd stride-2 paths.
  e2e.*    the textual-inversion objective end to end with fixed timesteps
           and noise (DDPMScheduler with SD 1.x's betas): c = text(ids),
           x_t = add_noise(x0, eps, t), loss = mse(unet(x_t, t, c), target)
           with target eps (e2e.eps.*) or get_velocity (e2e.v.*), and
           grad = dloss/d extra; grad64 the same in float64 (the exact
           gradient, up to 1e-15).
The e2e latents are 16x16: at 8x8 the tiny UNet's deepest group norms see
1-4 pixels per group, where float32 itself is ill-conditioned: torch's own
float32 gradient was 2.1e-4 (eps) and 1.3e-4 (v) in rel-L2 away from its
float64 one, while at 16x16 it is within 2.2e-6 / 3.3e-6.
"""
import json
import os

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextModel

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "fixtures", "tiny", "diffusers")
OUT = os.path.join(HERE, "fixtures", "grad_io.safetensors")
N_EXTRA = 2

# SD 1.x's scheduler_config.json, as textual_inversion.py's
# DDPMScheduler.from_pretrained reads it (PNDM-only keys are ignored).
SD_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                    beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
                    steps_offset=1, skip_prk_steps=True, trained_betas=None)


def placeholder_ids(vocab):
    """Two rows, SD-padded to 77: 'a photo of a <p0>' and '<p0> <p1> ... <p1>',
    so one extra row is read at several positions and both rows' gradients add."""
    a = [49406, 320, 1125, 539, 320, vocab, 49407]
    b = [49406, vocab, vocab + 1, 267, 320, 2368, vocab + 1, 49407]
    a += [49407] * (77 - len(a))
    b += [49407] * (77 - len(b))
    return torch.tensor([a, b], dtype=torch.int64)


def text_encoder_with(extra):
    """The tiny text encoder with N_EXTRA new token rows set to `extra`; only
    the embedding table takes gradients."""
    te = CLIPTextModel.from_pretrained(os.path.join(TINY, "text_encoder"),
                                       torch_dtype=torch.float32).eval()
    vocab = te.config.vocab_size
    te.resize_token_embeddings(vocab + N_EXTRA, mean_resizing=False)
    emb = te.get_input_embeddings().weight
    with torch.no_grad():
        emb[vocab:] = extra
    for p in te.parameters():
        p.requires_grad_(False)
    emb.requires_grad_(True)
    return te, emb, vocab


def tiny_vocab():
    with open(os.path.join(TINY, "text_encoder", "config.json")) as f:
        return json.load(f)["vocab_size"]


def load_unet():
    unet = UNet2DConditionModel.from_pretrained(os.path.join(TINY, "unet"),
                                                torch_dtype=torch.float32).eval()
    for p in unet.parameters():
        p.requires_grad_(False)
    return unet


def make_text(g, out):
    extra = torch.randn(N_EXTRA, 8, generator=g) * 0.5
    te, emb, vocab = text_encoder_with(extra)
    ids = placeholder_ids(vocab)
    dy = torch.randn(2, 77, te.config.hidden_size, generator=g)
    hidden = te(input_ids=ids)[0]
    (hidden * dy).sum().backward()
    out.update({"te.ids": ids, "te.extra": extra, "te.dy": dy, "te.out": hidden.detach(),
                "te.grad": emb.grad[vocab:].clone()})


def make_unet(g, out):
    unet = load_unet()
    for name, shape, t in (("unet", (2, 4, 16, 24), [981, 1]), ("unet_odd", (1, 4, 9, 13), [500])):
        x = torch.randn(*shape, generator=g)
        ctx = torch.randn(shape[0], 77, unet.config.cross_attention_dim, generator=g)
        ctx.requires_grad_(True)
        timesteps = torch.tensor(t, dtype=torch.int64)
        y = unet(x, timesteps, encoder_hidden_states=ctx).sample
        dy = torch.randn(y.shape, generator=g)
        (y * dy).sum().backward()
        out.update({f"{name}.x": x, f"{name}.t": timesteps, f"{name}.ctx": ctx.detach(),
                    f"{name}.dy": dy, f"{name}.out": y.detach(), f"{name}.dctx": ctx.grad.clone()})


def e2e_grad(dtype, extra, latents, noise, timesteps, pred_type):
    """(loss, d loss / d extra) of the textual-inversion objective in dtype."""
    torch.set_default_dtype(dtype)  # CLIP's causal mask is made in the default dtype
    try:
        sched = DDPMScheduler.from_config(SD_SCHEDULER)
        unet = load_unet().to(dtype)
        te, emb, vocab = text_encoder_with(extra)
        te = te.to(dtype)
        latents, noise = latents.to(dtype), noise.to(dtype)
        c = te(input_ids=placeholder_ids(vocab))[0]
        noisy = sched.add_noise(latents, noise, timesteps)
        pred = unet(noisy, timesteps, encoder_hidden_states=c).sample
        target = noise if pred_type == "eps" else sched.get_velocity(latents, noise, timesteps)
        loss = F.mse_loss(pred, target, reduction="mean")
        loss.backward()
        return loss.detach(), emb.grad[vocab:].clone()
    finally:
        torch.set_default_dtype(torch.float32)


def make_e2e(g, out):
    extra = torch.randn(N_EXTRA, 8, generator=g) * 0.5
    latents = torch.randn(2, 4, 16, 16, generator=g) * 0.8
    noise = torch.randn(2, 4, 16, 16, generator=g)
    timesteps = torch.tensor([37, 912], dtype=torch.int64)
    out.update({"e2e.extra": extra, "e2e.latents": latents, "e2e.noise": noise,
                "e2e.timesteps": timesteps, "e2e.ids": placeholder_ids(tiny_vocab())})
    for pred_type in ("eps", "v"):
        loss, grad = e2e_grad(torch.float32, extra, latents, noise, timesteps, pred_type)
        _, grad64 = e2e_grad(torch.float64, extra, latents, noise, timesteps, pred_type)
        out[f"e2e.{pred_type}.loss"] = loss.reshape(1)
        out[f"e2e.{pred_type}.grad"] = grad
        out[f"e2e.{pred_type}.grad64"] = grad64.float()


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2026)
    out = {}
    make_text(g, out)
    make_unet(g, out)
    make_e2e(g, out)
    save_file({k: v.contiguous() for k, v in out.items()}, OUT,
              metadata={"generator": "tests/make_grad_fixtures.py", "n_extra": str(N_EXTRA),
                        "torch": torch.__version__})
    print(f"wrote {os.path.relpath(OUT, HERE)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
