#!/usr/bin/env python3
"""make_fixtures.py — regenerates sdc's reference fixtures from diffusers,
transformers and torch (pinned in tests/requirements.txt).

    python3 -m venv build/venv && build/venv/bin/pip install -r tests/requirements.txt
    build/venv/bin/python tests/make_fixtures.py [component ...]

Components: all (default), clip_text, unet, vae; "all" also writes the
single-file original (LDM) layout, whose key names are checked against
diffusers' own LDM converter. Output goes to
tests/fixtures/. Tiny random-weight models keep the exact SD 1.x structure;
their weights are rounded to F16 so that the committed F16 checkpoints hold
them exactly, while every reference output is computed in F32. The C tests
write F32 and BF16 copies themselves to cover those load paths.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")
TINY = os.path.join(FIX, "tiny")

# The tiny CLIP text tower: real vocabulary (49408) and 77 positions, reduced width.
CLIP_TINY = dict(vocab_size=49408, hidden_size=8, intermediate_size=32, num_hidden_layers=2,
                 num_attention_heads=2, max_position_embeddings=77, hidden_act="quick_gelu",
                 layer_norm_eps=1e-5, bos_token_id=49406, eos_token_id=49407, pad_token_id=1,
                 projection_dim=8)


def f16_exact_(module):
    """Round every parameter to F16 precision (kept in F32) and give it a sane
    scale: random init, never zeros."""
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias") or "norm" in name:
                v = 0.1 * torch.randn(p.shape, generator=g) + (1.0 if name.endswith("weight") else 0.0)
            else:
                fan_in = p.shape[1] * (p[0, 0].numel() if p.dim() > 2 else 1) if p.dim() > 1 else 1
                v = torch.randn(p.shape, generator=g) / max(fan_in, 1) ** 0.5
                if "embedding" in name:
                    v = 0.5 * torch.randn(p.shape, generator=g)
            p.copy_(v.half().float())


def save(tensors, path, meta=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta or {})
    print(f"wrote {os.path.relpath(path, HERE)} ({os.path.getsize(path)} bytes)")


def sample_ids():
    """Token ids of two real prompts, padded with EOS to 77 as SD does."""
    a = [49406, 320, 1125, 539, 320, 2368, 49407]               # "a photo of a cat"
    b = [49406] + [(i * 7919) % 49406 for i in range(1, 76)] + [49407]  # a full 77-token row
    a = a + [49407] * (77 - len(a))
    return torch.tensor([a, b], dtype=torch.int64)


def make_clip_text():
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(0)
    model = CLIPTextModel(CLIPTextConfig(**CLIP_TINY)).eval()
    f16_exact_(model)
    sd = {k: v for k, v in model.state_dict().items()}
    d = os.path.join(TINY, "diffusers", "text_encoder")
    os.makedirs(d, exist_ok=True)
    model.config.to_json_file(os.path.join(d, "config.json"))
    save({k: v.half() for k, v in sd.items()}, os.path.join(d, "model.safetensors"))
    ids = sample_ids()
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
        last = out.last_hidden_state
        # diffusers' clip_skip=1: hidden_states[-2], then the final layer norm.
        skip1 = model.text_model.final_layer_norm(out.hidden_states[-2])
    save({"input_ids": ids, "last_hidden_state": last, "last_hidden_state_skip1": skip1},
         os.path.join(FIX, "clip_text_io.safetensors"),
         {"generator": "tests/make_fixtures.py", "config": json.dumps(CLIP_TINY)})
    return {"cond_stage_model.transformer." + k: v for k, v in sd.items()}


# The tiny UNet: all four levels, cross-attention on the first three, 8 heads,
# 32 groups, 2 res blocks per level (so the LDM block numbering is SD's own).
# One width everywhere keeps the fixture small; the up path's shortcut convs
# still run (its resnets see concatenated skips).
UNET_TINY = dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 32, 32, 32),
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                 layers_per_block=2, attention_head_dim=8, cross_attention_dim=8,
                 norm_num_groups=32, norm_eps=1e-5, flip_sin_to_cos=True, freq_shift=0)

# The tiny VAE: four levels; 32 -> 64 -> 32 widths put shortcut convs in both
# the encoder and the decoder. One res block per level (two in the decoder):
# the LDM names of VAE blocks do not depend on the count.
VAE_TINY = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64, 32, 32),
                down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=1, norm_num_groups=32,
                sample_size=64, scaling_factor=0.18215)


def unet_to_original(sd, cfg):
    """diffusers UNet keys -> LDM keys (model.diffusion_model.* without the prefix)."""
    L, n = cfg["layers_per_block"], len(cfg["block_out_channels"])
    attn = [t.startswith("CrossAttn") for t in cfg["down_block_types"]]
    res_map = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
               ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection")]
    prefixes = [("conv_in", "input_blocks.0.0"), ("time_embedding.linear_1", "time_embed.0"),
                ("time_embedding.linear_2", "time_embed.2"), ("conv_norm_out", "out.0"),
                ("conv_out", "out.2"), ("mid_block.resnets.0", "middle_block.0"),
                ("mid_block.attentions.0", "middle_block.1"), ("mid_block.resnets.1", "middle_block.2")]
    for i in range(n):
        for j in range(L):
            prefixes.append((f"down_blocks.{i}.resnets.{j}", f"input_blocks.{1 + i * (L + 1) + j}.0"))
            prefixes.append((f"down_blocks.{i}.attentions.{j}", f"input_blocks.{1 + i * (L + 1) + j}.1"))
        prefixes.append((f"down_blocks.{i}.downsamplers.0.conv", f"input_blocks.{(i + 1) * (L + 1)}.0.op"))
        lvl = n - 1 - i
        for j in range(L + 1):
            prefixes.append((f"up_blocks.{i}.resnets.{j}", f"output_blocks.{i * (L + 1) + j}.0"))
            prefixes.append((f"up_blocks.{i}.attentions.{j}", f"output_blocks.{i * (L + 1) + j}.1"))
        prefixes.append((f"up_blocks.{i}.upsamplers.0.conv",
                         f"output_blocks.{i * (L + 1) + L}.{2 if attn[lvl] else 1}.conv"))
    out = {}
    for k, v in sd.items():
        for d, o in prefixes:
            if k.startswith(d + "."):
                rest = k[len(d) + 1:]
                if ".resnets." in d or d.endswith("resnets.0") or d.endswith("resnets.1"):
                    for a, b in res_map:
                        if rest.startswith(a + "."):
                            rest = b + rest[len(a):]
                out[o + "." + rest] = v
                break
        else:
            raise KeyError(k)
    return out


def vae_to_original(sd, cfg):
    """diffusers AutoencoderKL keys -> LDM keys (first_stage_model.* without the prefix)."""
    n, L = len(cfg["block_out_channels"]), cfg["layers_per_block"]
    pre = [("encoder.conv_norm_out", "encoder.norm_out"), ("decoder.conv_norm_out", "decoder.norm_out")]
    for part in ("encoder", "decoder"):
        pre += [(f"{part}.mid_block.resnets.0", f"{part}.mid.block_1"),
                (f"{part}.mid_block.resnets.1", f"{part}.mid.block_2"),
                (f"{part}.mid_block.attentions.0", f"{part}.mid.attn_1")]
    for i in range(n):
        for j in range(L):
            pre.append((f"encoder.down_blocks.{i}.resnets.{j}", f"encoder.down.{i}.block.{j}"))
        pre.append((f"encoder.down_blocks.{i}.downsamplers.0", f"encoder.down.{i}.downsample"))
        for j in range(L + 1):
            pre.append((f"decoder.up_blocks.{i}.resnets.{j}", f"decoder.up.{n - 1 - i}.block.{j}"))
        pre.append((f"decoder.up_blocks.{i}.upsamplers.0", f"decoder.up.{n - 1 - i}.upsample"))
    attn = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
    out = {}
    for k, v in sd.items():
        o = k
        for d, r in pre:
            if k.startswith(d + "."):
                o = r + k[len(d):]
                break
        o = o.replace("conv_shortcut", "nin_shortcut")
        if ".attn_1." in o:
            head, rest = o.split(".attn_1.")
            for a, b in attn.items():
                if rest.startswith(a + "."):
                    rest = b + rest[len(a):]
            o = head + ".attn_1." + rest
            if v.dim() == 2:  # LDM stores the attention projections as 1x1 convs
                v = v[:, :, None, None]
        out[o] = v
    return out


def block_dumps(unet):
    """Forward hooks naming every block's output, as `sdc eval unet --dump` does."""
    dumps, hooks = {}, []
    def hook(name):
        def f(_m, _inp, out):
            dumps[name] = (out[0] if isinstance(out, tuple) else out).detach().clone()
        return f
    for i, b in enumerate(unet.down_blocks):
        hooks.append(b.register_forward_hook(hook(f"down_blocks.{i}")))
    hooks.append(unet.mid_block.register_forward_hook(hook("mid_block")))
    for i, b in enumerate(unet.up_blocks):
        hooks.append(b.register_forward_hook(hook(f"up_blocks.{i}")))
    return dumps, hooks


def make_unet():
    from diffusers import UNet2DConditionModel
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**UNET_TINY).eval()
    f16_exact_(unet)
    sd = unet.state_dict()
    d = os.path.join(TINY, "diffusers", "unet")
    os.makedirs(d, exist_ok=True)
    unet.save_config(d)
    save({k: v.half() for k, v in sd.items()}, os.path.join(d, "diffusion_pytorch_model.safetensors"))
    g = torch.Generator().manual_seed(42)
    sample = torch.randn(2, 4, 16, 24, generator=g)
    timestep = torch.tensor([981, 1], dtype=torch.int64)
    ctx = torch.randn(2, 77, UNET_TINY["cross_attention_dim"], generator=g)
    dumps, hooks = block_dumps(unet)
    with torch.no_grad():
        out = unet(sample, timestep, encoder_hidden_states=ctx).sample
    for h in hooks:
        h.remove()
    io = {"sample": sample, "timestep": timestep, "encoder_hidden_states": ctx, "out": out}
    io.update({"dump." + k: v for k, v in dumps.items()})
    save(io, os.path.join(FIX, "unet_io.safetensors"), {"generator": "tests/make_fixtures.py"})
    orig = unet_to_original(sd, dict(unet.config))
    # Check the LDM names against diffusers' own converter (LDM -> diffusers).
    from diffusers.pipelines.stable_diffusion.convert_from_ckpt import convert_ldm_unet_checkpoint
    back = convert_ldm_unet_checkpoint({"model.diffusion_model." + k: v for k, v in orig.items()},
                                       dict(unet.config))
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd), "UNet LDM mapping"
    return {"model.diffusion_model." + k: v for k, v in orig.items()}


def make_vae():
    from diffusers import AutoencoderKL
    torch.manual_seed(0)
    vae = AutoencoderKL(**VAE_TINY).eval()
    f16_exact_(vae)
    sd = vae.state_dict()
    d = os.path.join(TINY, "diffusers", "vae")
    os.makedirs(d, exist_ok=True)
    vae.save_config(d)
    save({k: v.half() for k, v in sd.items()}, os.path.join(d, "diffusion_pytorch_model.safetensors"))
    g = torch.Generator().manual_seed(7)
    image = torch.rand(2, 3, 64, 48, generator=g) * 2 - 1
    latents = torch.randn(2, 4, 8, 6, generator=g)
    with torch.no_grad():
        dist = vae.encode(image).latent_dist
        decoded = vae.decode(latents).sample
    save({"sample": image, "mean": dist.mean, "logvar": dist.logvar, "latents": latents,
          "decoded": decoded}, os.path.join(FIX, "vae_io.safetensors"),
         {"generator": "tests/make_fixtures.py"})
    orig = vae_to_original(sd, dict(vae.config))
    from diffusers.pipelines.stable_diffusion.convert_from_ckpt import convert_ldm_vae_checkpoint
    back = convert_ldm_vae_checkpoint({"first_stage_model." + k: v for k, v in orig.items()},
                                      dict(vae.config))
    assert set(back) == set(sd), sorted(set(back) ^ set(sd))[:5]
    for k in sd:
        assert torch.equal(back[k].reshape(sd[k].shape), sd[k]), k
    return {"first_stage_model." + k: v for k, v in orig.items()}


def write_original(parts):
    """The single-file LDM checkpoint (F16), as v1-5-pruned-emaonly is laid out."""
    full = {}
    for p in parts:
        full.update({k: v.half() for k, v in p.items()})
    # Head counts are not in any tensor's shape: the loader reads them here
    # (a real SD 1.x file needs none: 8 UNet heads, CLIP width / 64).
    save(full, os.path.join(TINY, "original.safetensors"),
         {"format": "pt", "sdc.clip.heads": str(CLIP_TINY["num_attention_heads"]),
          "sdc.unet.heads": str(UNET_TINY["attention_head_dim"])})


def main(argv):
    todo = argv or ["all"]
    if todo == ["all"]:
        write_original([make_clip_text(), make_unet(), make_vae()])
        with open(os.path.join(TINY, "diffusers", "model_index.json"), "w") as f:
            json.dump({"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.31.0",
                       "text_encoder": ["transformers", "CLIPTextModel"],
                       "unet": ["diffusers", "UNet2DConditionModel"],
                       "vae": ["diffusers", "AutoencoderKL"]}, f, indent=2)
        return
    for c in todo:
        if c == "clip_text":
            make_clip_text()
        elif c == "unet":
            make_unet()
        elif c == "vae":
            make_vae()
        else:
            sys.exit(f"make_fixtures.py: unknown component '{c}'")


if __name__ == "__main__":
    main(sys.argv[1:])
