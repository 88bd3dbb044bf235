#!/usr/bin/env python3
"""make_train_fixtures.py — ten textual-inversion training steps on the tiny
model, the way diffusers' examples/textual_inversion/textual_inversion.py
takes them, for tests/test_train.c (pinned in tests/requirements.txt).

    build/venv/bin/python tests/make_train_fixtures.py

Writes tests/fixtures/train_io.safetensors. The script makes every draw
itself (template, timestep, noise, latents) and stores them, so the C
trainer can be fed the same batches and must reach the same embedding:

  ids [S*A*B, 77] I32         prompts (transformers' CLIPTokenizer with the
                              placeholder tokens added, as diffusers does)
  latents, noise [S*A*B, 4, 8, 8]
  timesteps [S*A*B] I32
  init [n, D]                 the placeholder rows at the start (the init token's)
  emb [S, n, D]               the placeholder rows after each update
  grad [S, n, D]              their accumulated gradient before each update
  loss [S, A]                 each micro-batch's MSE
  grad64 [n, D]               the first step's gradient computed in float64
                              (same draws): torch's own float32 gradient is
                              up to 3.4e-4 (rel-L2) from it here, so the C
                              gradient is held to this one
  template_ids [27, 77] I32   every template with the placeholder, tokenized
and the same for a v-prediction run under the prefix "v." (3 steps, batch
2, one vector). S steps, A micro-batches per step (gradient accumulation),
B images per micro-batch; the settings are in the file's metadata.

As in diffusers, the optimizer is AdamW over the whole token-embedding matrix,
whose rows other than the placeholders' are put back after every step (AdamW
is element-wise, so those rows do not change the placeholders' update); the
loss is divided by the accumulation count before backward (accelerate).
"""
import os
import sys
import tempfile

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_fixtures import FIX, save, tiny_pipeline  # noqa: E402

# The small object templates of textual inversion, in diffusers' order.
TEMPLATES = [
    "a photo of a {}", "a rendering of a {}", "a cropped photo of the {}", "the photo of a {}",
    "a photo of a clean {}", "a photo of a dirty {}", "a dark photo of the {}", "a photo of my {}",
    "a photo of the cool {}", "a close-up photo of a {}", "a bright photo of the {}",
    "a cropped photo of a {}", "a photo of the {}", "a good photo of the {}", "a photo of one {}",
    "a close-up photo of the {}", "a rendition of the {}", "a photo of the clean {}",
    "a rendition of a {}", "a photo of a nice {}", "a good photo of a {}", "a photo of the nice {}",
    "a photo of the small {}", "a photo of the weird {}", "a photo of the large {}",
    "a photo of a cool {}", "a photo of a small {}",
]
TOKEN = "<sdc-tok>"
INIT = "cat"


def placeholder_rows(pipe, n_vectors):
    """Adds the placeholder tokens, their rows initialised from INIT's."""
    te, tok = pipe.text_encoder, pipe.tokenizer
    placeholders = [TOKEN] + [f"{TOKEN}_{i}" for i in range(1, n_vectors)]
    assert tok.add_tokens(placeholders) == n_vectors
    init_ids = tok.encode(INIT, add_special_tokens=False)
    assert len(init_ids) == 1
    ph_ids = tok.convert_tokens_to_ids(placeholders)
    te.resize_token_embeddings(len(tok), mean_resizing=False)
    W = te.get_input_embeddings().weight
    with torch.no_grad():
        for i in ph_ids:
            W[i] = W[init_ids[0]].clone()
    return W, ph_ids, init_ids


def first_grad_f64(tmp, out, accum, batch, n_vectors, prediction):
    """The first step's accumulated gradient on the placeholder rows, in
    float64, from the draws already in out."""
    import diffusers
    torch.set_default_dtype(torch.float64)  # transformers' causal mask follows it
    try:
        pipe = tiny_pipeline(tmp)
        pipe.text_encoder.to(torch.float64), pipe.unet.to(torch.float64)
        sched = diffusers.DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                        num_train_timesteps=1000, prediction_type=prediction)
        W, ph_ids, _ = placeholder_rows(pipe, n_vectors)
        for a in range(accum):
            r = slice(a * batch, (a + 1) * batch)
            z, eps = out["latents"][r].double(), out["noise"][r].double()
            t = out["timesteps"][r].long()
            noisy = sched.add_noise(z, eps, t)
            pred = pipe.unet(noisy, t, pipe.text_encoder(out["ids"][r].long())[0]).sample
            target = eps if prediction == "epsilon" else sched.get_velocity(z, eps, t)
            (F.mse_loss(pred, target) / accum).backward()
        return W.grad[min(ph_ids):max(ph_ids) + 1].float()
    finally:
        torch.set_default_dtype(torch.float32)


def run(tmp, prefix, steps, accum, batch, n_vectors, lr, prediction, seed):
    import diffusers
    pipe = tiny_pipeline(tmp)
    tok, te, unet = pipe.tokenizer, pipe.text_encoder, pipe.unet
    sched = diffusers.DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                    num_train_timesteps=1000, prediction_type=prediction)
    W, ph_ids, init_ids = placeholder_rows(pipe, n_vectors)
    unet.requires_grad_(False)
    pipe.vae.requires_grad_(False)
    te.text_model.encoder.requires_grad_(False)
    te.text_model.final_layer_norm.requires_grad_(False)
    te.text_model.embeddings.position_embedding.requires_grad_(False)
    te.train()
    opt = torch.optim.AdamW(te.get_input_embeddings().parameters(), lr=lr, betas=(0.9, 0.999),
                            weight_decay=1e-2, eps=1e-8)
    orig = W.data.clone()
    lo, hi = min(ph_ids), max(ph_ids) + 1
    ph_text = " ".join(tok.convert_ids_to_tokens(ph_ids))

    def ids_of(k):
        return tok(TEMPLATES[k].format(ph_text), padding="max_length", truncation=True, max_length=77,
                   return_tensors="pt").input_ids[0]

    g = torch.Generator().manual_seed(seed)
    out = {"init": W.data[lo:hi].clone(), "template_ids": torch.stack([ids_of(k) for k in range(27)])}
    ids, lat, noise, ts, embs, grads, losses = [], [], [], [], [], [], []
    for _ in range(steps):
        step_losses = []
        for _ in range(accum):
            k = torch.randint(0, 27, (batch,), generator=g)
            x = torch.stack([ids_of(int(j)) for j in k])
            # Structured latents of the size posterior samples have (never zeros).
            z = 0.8 * torch.randn(batch, 4, 8, 8, generator=g) + 0.3
            eps = torch.randn(batch, 4, 8, 8, generator=g)
            t = torch.randint(0, 1000, (batch,), generator=g)
            noisy = sched.add_noise(z, eps, t)
            hs = te(x)[0]
            pred = unet(noisy, t, hs).sample
            target = eps if prediction == "epsilon" else sched.get_velocity(z, eps, t)
            loss = F.mse_loss(pred.float(), target.float(), reduction="mean")
            (loss / accum).backward()
            ids.append(x), lat.append(z), noise.append(eps), ts.append(t)
            step_losses.append(loss.detach())
        grads.append(W.grad[lo:hi].clone())
        opt.step()
        opt.zero_grad()
        keep = torch.ones(W.shape[0], dtype=torch.bool)
        keep[lo:hi] = False
        with torch.no_grad():
            W[keep] = orig[keep]
        embs.append(W.data[lo:hi].clone())
        losses.append(torch.stack(step_losses))
    out.update(ids=torch.cat(ids).to(torch.int32), latents=torch.cat(lat), noise=torch.cat(noise),
               timesteps=torch.cat(ts).to(torch.int32), emb=torch.stack(embs), grad=torch.stack(grads),
               loss=torch.stack(losses))
    out["template_ids"] = out["template_ids"].to(torch.int32)
    out["grad64"] = first_grad_f64(tmp, out, accum, batch, n_vectors, prediction)
    meta = {prefix + "steps": str(steps), prefix + "accum": str(accum), prefix + "batch": str(batch),
            prefix + "num_vectors": str(n_vectors), prefix + "lr": repr(lr),
            prefix + "prediction": prediction, prefix + "init_id": str(init_ids[0])}
    return {prefix + k: v for k, v in out.items()}, meta


def main():
    torch.manual_seed(0)
    tensors, meta = {}, {"generator": "tests/make_train_fixtures.py", "token": TOKEN, "init": INIT}
    with tempfile.TemporaryDirectory() as tmp:
        for args in [("", 10, 2, 2, 2, 5e-3, "epsilon", 11), ("v.", 3, 1, 2, 1, 5e-3, "v_prediction", 12)]:
            t, m = run(tmp, *args)
            tensors.update(t)
            meta.update(m)
    save(tensors, os.path.join(FIX, "train_io.safetensors"), meta)


if __name__ == "__main__":
    main()
