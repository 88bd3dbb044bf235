#!/usr/bin/env python3
"""make_fixtures.py — regenerates sdc's reference fixtures from diffusers,
transformers and torch (pinned in tests/requirements.txt).

    python3 -m venv build/venv && build/venv/bin/pip install -r tests/requirements.txt
    build/venv/bin/python tests/make_fixtures.py [component ...]

Components: all (default), clip_text, unet, vae, pipelines, clip (the CLIPModel of
retrieval, tests/fixtures/fx_clip.py); "all" also writes the
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
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta or {"format": "pt"})
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
    # A latent that is not a multiple of 8 (a 72x104 image): diffusers
    # upsamples to the odd skip sizes.
    odd = torch.randn(2, 4, 9, 13, generator=g)
    with torch.no_grad():
        out_odd = unet(odd, timestep, encoder_hidden_states=ctx).sample
    io = {"sample": sample, "timestep": timestep, "encoder_hidden_states": ctx, "out": out,
          "sample_odd": odd, "out_odd": out_odd}
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


# Samplers of the pipeline fixtures: sdc name -> (diffusers class, the config
# overrides the name implies). Each runs as `Class.from_config(pipe.scheduler.config,
# **overrides)`, the way diffusers users switch schedulers.
SAMPLERS = {
    "ddim": ("DDIMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {"use_karras_sigmas": False}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": False, "algorithm_type": "dpmsolver++"}),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True, "algorithm_type": "dpmsolver++"}),
    "dpmpp_2m_sde": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": False, "algorithm_type": "sde-dpmsolver++"}),
    "lms": ("LMSDiscreteScheduler", {"use_karras_sigmas": False}),
    "heun": ("HeunDiscreteScheduler", {"use_karras_sigmas": False}),
}

# SD 1.5's scheduler/scheduler_config.json as runwayml published it (PNDM),
# committed as the tiny diffusers folder's scheduler config.
SD15_SCHEDULER = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
                  "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
                  "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
                  "trained_betas": None, "clip_sample": False}


def other_scheduler_config():
    """A scheduler config that is not SD 1.5's, as a recent diffusers saves it:
    an SD 2.x-v style DDIM (v prediction, and the timestep_spacing "leading"
    every re-saved config carries, which Euler, LMS and DPM++ then follow)."""
    import diffusers
    sch = diffusers.DDIMScheduler.from_config(dict(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        set_alpha_to_one=False, steps_offset=1, prediction_type="v_prediction",
        timestep_spacing="leading"))
    return json.loads(sch.to_json_string())


def scheduler_for(pipe, name):
    """The named sampler as from_config(pipe.scheduler.config), or the pipeline's own
    scheduler when the name is its class (as sdc runs the folder's own class)."""
    import diffusers
    cls, kw = SAMPLERS[name]
    if type(pipe.scheduler).__name__ == cls:
        return getattr(diffusers, cls).from_config(pipe.scheduler.config, **kw) if kw else pipe.scheduler
    return getattr(diffusers, cls).from_config(pipe.scheduler.config, **kw)


def tiny_pipeline(tmp, scheduler_config=None):
    """The tiny model as a diffusers StableDiffusionPipeline with a scheduler
    config (SD 1.5's by default) given to its __init__ as from_pretrained
    would; its tokenizer files are derived from CLIP's merges file into a
    temporary folder (never committed)."""
    import diffusers
    from transformers import CLIPTokenizer
    sys.path.insert(0, FIX)
    from fx_tokenizer import write_vocab_files
    write_vocab_files(tmp)
    tok = CLIPTokenizer(os.path.join(tmp, "vocab.json"), os.path.join(tmp, "merges.txt"),
                        pad_token="<|endoftext|>", model_max_length=77)
    d = os.path.join(TINY, "diffusers")
    pipe = diffusers.StableDiffusionPipeline(
        vae=diffusers.AutoencoderKL.from_pretrained(os.path.join(d, "vae"), torch_dtype=torch.float32),
        text_encoder=__import__("transformers").CLIPTextModel.from_pretrained(
            os.path.join(d, "text_encoder"), torch_dtype=torch.float32),
        tokenizer=tok,
        unet=diffusers.UNet2DConditionModel.from_pretrained(os.path.join(d, "unet"), torch_dtype=torch.float32),
        scheduler=getattr(diffusers, (scheduler_config or SD15_SCHEDULER)["_class_name"]).from_config(
            scheduler_config or SD15_SCHEDULER), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def to_uint8(images):
    """diffusers' postprocess: (x / 2 + 0.5).clamp(0, 1), then round(x * 255), NHWC."""
    x = (images / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)
    return (x * 255).round().to(torch.uint8)


def make_pipelines():
    import tempfile
    import diffusers
    out = {}
    d = os.path.join(TINY, "diffusers", "scheduler")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "scheduler_config.json"), "w") as f:
        json.dump(SD15_SCHEDULER, f, indent=2)
    other = other_scheduler_config()
    with tempfile.TemporaryDirectory() as tmp:
        pipe = tiny_pipeline(tmp)
        img2img = diffusers.StableDiffusionImg2ImgPipeline(**pipe.components)
        img2img.set_progress_bar_config(disable=True)
        sf = pipe.vae.config.scaling_factor
        # An init image with structure (never a constant): [1, 3, 64, 64] in [-1, 1].
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
        init = torch.stack([xx, yy, (xx * yy) * 0.9]).unsqueeze(0)
        out["init_image"] = init
        g = torch.Generator().manual_seed(99)
        injected = torch.randn(2, 4, 8, 8, generator=g)
        out["injected_latents"] = injected

        def txt2img(p, sched, tag, h=64, w=64, **kw):
            p.scheduler = sched
            with torch.no_grad():
                lat = p("a photo of a cat", negative_prompt="", num_inference_steps=6, guidance_scale=7.5,
                        num_images_per_prompt=2, height=h, width=w, output_type="latent", **kw).images
                img = p.vae.decode(lat / sf).sample
            out[f"{tag}.latents"] = lat
            out[f"{tag}.image"] = to_uint8(img)

        for name in SAMPLERS:
            sched = scheduler_for(pipe, name)
            txt2img(pipe, sched, f"{name}.seed", generator=torch.Generator().manual_seed(1234))
            txt2img(pipe, scheduler_for(pipe, name), f"{name}.latents",
                    generator=torch.Generator().manual_seed(5), latents=injected.clone())
            img2img.scheduler = scheduler_for(pipe, name)
            with torch.no_grad():
                lat = img2img("a photo of a cat", image=init, strength=0.75, num_inference_steps=8,
                              guidance_scale=7.5, num_images_per_prompt=2,
                              generator=torch.Generator().manual_seed(77), output_type="latent").images
                img = pipe.vae.decode(lat / sf).sample
            out[f"{name}.img2img.latents"] = lat
            out[f"{name}.img2img.image"] = to_uint8(img)
        # A generator per image (seed, seed + 1), as sdc generate --batch writes
        # A1111's per-image seeds; and sizes down to diffusers' smallest, 8 px.
        txt2img(pipe, scheduler_for(pipe, "euler_a"), "rows.euler_a",
                generator=[torch.Generator().manual_seed(1234 + i) for i in range(2)])
        txt2img(pipe, scheduler_for(pipe, "ddim"), "size48x64.ddim", h=64, w=48,
                generator=torch.Generator().manual_seed(4864))
        txt2img(pipe, scheduler_for(pipe, "euler"), "size8x8.euler", h=8, w=8,
                generator=torch.Generator().manual_seed(88))
        # The same model with a scheduler config that is not SD 1.5's.
        vpipe = tiny_pipeline(tmp, other)
        txt2img(vpipe, vpipe.scheduler, "other.default.seed", generator=torch.Generator().manual_seed(1234))
        for name in SAMPLERS:
            txt2img(vpipe, scheduler_for(vpipe, name), f"other.{name}.seed",
                    generator=torch.Generator().manual_seed(1234))
    save(out, os.path.join(FIX, "pipeline_io.safetensors"),
         {"generator": "tests/make_fixtures.py", "diffusers": diffusers.__version__,
          "prompt": "a photo of a cat", "negative": "",
          "cfg": "7.5", "txt2img": "6 steps, 64x64, batch 2, seed 1234 (latents run: seed 5)",
          "img2img": "8 steps, strength 0.75, batch 2, seed 77",
          "rows": "euler_a, generators seeded 1234 and 1235", "sizes": "48x64 ddim seed 4864, 8x8 euler seed 88",
          "other_scheduler_config": json.dumps(other),
          "other": "the model with other_scheduler_config: 'default' is its own DDIM, the rest from_config"})


def make_clip():
    """The CLIP retrieval fixtures: tests/fixtures/fx_clip.py."""
    sys.path.insert(0, FIX)
    import fx_clip
    fx_clip.main()


def main(argv):
    todo = argv or ["all"]
    if todo == ["all"]:
        write_original([make_clip_text(), make_unet(), make_vae()])
        make_pipelines()
        with open(os.path.join(TINY, "diffusers", "model_index.json"), "w") as f:
            import diffusers
            json.dump({"_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusers.__version__,
                       "scheduler": ["diffusers", "PNDMScheduler"],
                       "text_encoder": ["transformers", "CLIPTextModel"],
                       "unet": ["diffusers", "UNet2DConditionModel"],
                       "vae": ["diffusers", "AutoencoderKL"]}, f, indent=2)
        make_clip()
        return
    for c in todo:
        if c == "clip_text":
            make_clip_text()
        elif c == "unet":
            make_unet()
        elif c == "vae":
            make_vae()
        elif c == "pipelines":
            make_pipelines()
        elif c == "clip":
            make_clip()
        else:
            sys.exit(f"make_fixtures.py: unknown component '{c}'")


if __name__ == "__main__":
    main(sys.argv[1:])
