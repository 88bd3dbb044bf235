#!/usr/bin/env python3
"""bench/compare: sdc, stable-diffusion.cpp and diffusers/PyTorch side by side
on the same full-size random SD 1.5 checkpoint, on this machine, in the same run.

Run it through bench/compare/run.sh, which makes the venv with the pinned
peers, builds sdc's benches and writes the random checkpoint, then calls this.

Each engine runs as a worker process that keeps its models loaded and answers
one JSON line per request:
  sdc        build/.../bench_models --serve (bench/models.c)
  sdcpp      this file, --worker sdcpp: the stable-diffusion-cpp-python binding;
             its per-stage times are read off its own log lines
             (get_learned_condition / sampling / decode_first_stage /
             encode_first_stage "completed, taking X s")
  diffusers  this file, --worker diffusers: the modules called directly
             under torch.no_grad(), fp32, torch.set_num_threads(THREADS)
A round asks every engine for the whole suite in turn (A B C, then the sgemm
ceiling); round 0 is the warm-up and is dropped; the table gives medians over
--reps rounds. Peak RSS comes from one fresh 512² txt2img process per engine
(1 image, CFG 7.5, euler, --rss-steps steps), read with wait4(2).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# FLOPs per measured item (../shared/PERFORMANCE.md; 1 MAC = 2 FLOP).
UNET_FWD_GFLOP = {32: 180.0, 64: 803.0}  # batch 1, latent side -> GFLOP
TEXT_GFLOP = 13.6  # CLIP text encoder, 77 tokens
VAE_DEC_GFLOP_512 = 2540.0
VAE_ENC_GFLOP_512 = 1130.0


def unet_gflop(latent):
    if latent in UNET_FWD_GFLOP:
        return 2 * UNET_FWD_GFLOP[latent]
    return 2 * UNET_FWD_GFLOP[64] * (latent / 64) ** 2  # rough: convs scale with area


def items_for(sizes, vae_size):
    """The suite: (key, description, GFLOP)."""
    out = [("text", "text encode, cond+uncond (2x77 tokens)", 2 * TEXT_GFLOP)]
    for s in sizes:
        out.append((f"unet{s}", f"UNet CFG step {s}² (batch 2)", unet_gflop(s // 8)))
    scale = (vae_size / 512) ** 2
    out.append((f"vaedec{vae_size}", f"VAE decode {vae_size}²", VAE_DEC_GFLOP_512 * scale))
    out.append((f"vaeenc{vae_size}", f"VAE encode {vae_size}²", VAE_ENC_GFLOP_512 * scale))
    return out


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Workers (run inside the bench venv)
# --------------------------------------------------------------------------

def answers_to_stdout_only():
    """Keeps the real stdout for the JSON answers; everything else the engine
    prints (Python or C) goes to stderr. Returns the answer stream."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def worker_loop(handle, out):
    """Reads JSON requests from stdin, writes one JSON answer per line to out."""
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("cmd") == "quit":
            break
        try:
            ans = handle(req)
        except Exception as e:  # report, keep serving
            import traceback
            traceback.print_exc()
            ans = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(ans) + "\n")


class SdcppEngine:
    """stable-diffusion.cpp through stable-diffusion-cpp-python."""

    PATTERNS = {
        "text": r"get_learned_condition completed, taking ([0-9.]+)s",
        "sample": r"sampling completed, taking ([0-9.]+)s",
        "decode": r"decode_first_stage completed, taking ([0-9.]+)s",
        "encode": r"encode_first_stage completed, taking ([0-9.]+)s",
    }

    def __init__(self, args, free_params=False):
        import ctypes
        import stable_diffusion_cpp as sdcpp
        from stable_diffusion_cpp import stable_diffusion_cpp as lib

        self.lines = []

        @lib.sd_log_callback
        def cb(level, text, data):
            s = text.decode("utf-8", errors="replace")
            self.lines.append(s)
            sys.stderr.write(s)  # the worker's log file

        self._cb = cb  # keep alive
        lib.sd_set_log_callback(cb, ctypes.c_void_p(0))
        if free_params:  # sd.cpp's own default (its CLI): free each model after use
            orig = lib.new_sd_ctx

            def new_ctx(p):
                p.contents.free_params_immediately = True
                return orig(p)

            lib.new_sd_ctx = new_ctx
            import stable_diffusion_cpp._internals as internals
            internals.sd_cpp.new_sd_ctx = new_ctx
        t0 = time.perf_counter()
        self.sd = sdcpp.StableDiffusion(
            model_path=args.model, n_threads=args.threads, flash_attn=not args.sdcpp_no_flash,
            diffusion_conv_direct=args.sdcpp_conv_direct, vae_conv_direct=args.sdcpp_conv_direct,
            vae_decode_only=False, verbose=True)
        # The binding's own log callback is installed at import; ours must win.
        lib.sd_set_log_callback(cb, ctypes.c_void_p(0))
        self.load_s = time.perf_counter() - t0
        self.info = {
            "package": "stable-diffusion-cpp-python " + sdcpp.__version__,
            "sd_version": lib.sd_version().decode(),
            "sd_commit": lib.sd_commit().decode(),
            "system_info": lib.sd_get_system_info().decode().strip(),
            "runtime": {"n_threads": args.threads, "flash_attn": not args.sdcpp_no_flash,
                        "diffusion_conv_direct": args.sdcpp_conv_direct,
                        "vae_conv_direct": args.sdcpp_conv_direct,
                        "sample_method": "euler", "sample_steps": 1, "cfg_scale": 7.5,
                        "free_params_immediately": free_params},
        }

    def generate(self, size, steps=1, init=False):
        from PIL import Image
        import random
        self.lines = []
        kw = dict(prompt="a photograph of an astronaut riding a horse", negative_prompt="",
                  width=size, height=size, cfg_scale=7.5, sample_method="euler",
                  sample_steps=steps, seed=1)
        if init:
            rnd = random.Random(7)
            kw["init_image"] = Image.frombytes(
                "RGB", (size, size), bytes(rnd.getrandbits(8) for _ in range(size * size * 3)))
            kw["strength"] = 0.75
        t0 = time.perf_counter()
        self.sd.generate_image(**kw)
        wall = time.perf_counter() - t0
        text = "".join(self.lines)
        got = {"wall": wall}
        for k, pat in self.PATTERNS.items():
            m = re.findall(pat, text)
            if m:
                got[k] = float(m[-1])
        return got

    def suite(self, keys):
        """One generate call per size: img2img where an encode is wanted (it
        also gives that size's step and decode), txt2img otherwise. Each is 1
        euler step with CFG: one cond + one uncond UNet pass."""
        res, raw = {}, []
        sizes = {int(k[4:]) for k in keys if k.startswith("unet")}
        dec = {int(k[6:]) for k in keys if k.startswith("vaedec")}
        enc = {int(k[6:]) for k in keys if k.startswith("vaeenc")}
        for s in sorted(sizes | dec | enc):
            g = self.generate(s, init=s in enc)
            raw.append({"img2img" if s in enc else "txt2img": s, **g})
            res.setdefault("text", g.get("text"))
            if s in sizes:
                res[f"unet{s}"] = g.get("sample")
            if s in dec:
                res[f"vaedec{s}"] = g.get("decode")
            if s in enc:
                res[f"vaeenc{s}"] = g.get("encode")
        if "text" in keys and res.get("text") is None:
            res["text"] = self.generate(64).get("text")
        return {"seconds": {k: res.get(k) for k in keys}, "raw": raw}


class DiffusersEngine:
    """diffusers/PyTorch fp32 on the CPU, modules called directly."""

    def __init__(self, args):
        import torch
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
        import diffusers
        import transformers
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel
        self.torch = torch
        t0 = time.perf_counter()
        f32 = torch.float32
        self.unet = UNet2DConditionModel.from_pretrained(args.diffusers_model, subfolder="unet",
                                                         torch_dtype=f32).eval()
        self.vae = AutoencoderKL.from_pretrained(args.diffusers_model, subfolder="vae",
                                                 torch_dtype=f32).eval()
        self.text = CLIPTextModel.from_pretrained(args.diffusers_model, subfolder="text_encoder",
                                                  torch_dtype=f32).eval()
        self.load_s = time.perf_counter() - t0
        attn = type(next(iter(self.unet.attn_processors.values()))).__name__
        self.info = {
            "torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__, "threads": torch.get_num_threads(),
            "dtype": "float32", "attention_processor": attn,
            "mkldnn": torch.backends.mkldnn.is_available(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        }
        g = torch.Generator().manual_seed(0)
        self.g = g

    def _time(self, fn):
        with self.torch.no_grad():
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0

    def run(self, key):
        torch, g = self.torch, self.g
        if key == "text":
            ids = torch.randint(0, 49406, (2, 77), generator=g)
            return self._time(lambda: self.text(ids)[0])
        if key.startswith("unet"):
            n = int(key[4:]) // 8
            x = torch.randn(2, 4, n, n, generator=g)
            c = torch.randn(2, 77, 768, generator=g)
            t = torch.tensor([500.0, 500.0])
            return self._time(lambda: self.unet(x, t, encoder_hidden_states=c).sample)
        if key.startswith("vaedec"):
            n = int(key[6:]) // 8
            z = torch.randn(1, 4, n, n, generator=g)
            return self._time(lambda: self.vae.decode(z).sample)
        if key.startswith("vaeenc"):
            s = int(key[6:])
            x = torch.rand(1, 3, s, s, generator=g) * 2 - 1
            return self._time(lambda: self.vae.encode(x).latent_dist.mean)
        raise ValueError(key)

    def suite(self, keys):
        return {"seconds": {k: self.run(k) for k in keys}}


def run_worker(args):
    out = answers_to_stdout_only()
    eng = SdcppEngine(args) if args.worker == "sdcpp" else DiffusersEngine(args)
    first = [True]

    def handle(req):
        if req["cmd"] == "info":
            return {"info": eng.info, "load_seconds": eng.load_s}
        if req["cmd"] == "suite":
            ans = eng.suite(req["keys"])
            ans["load_seconds"] = eng.load_s if first[0] else 0.0
            first[0] = False
            return ans
        raise ValueError(req["cmd"])

    worker_loop(handle, out)


# --------------------------------------------------------------------------
# Peak-RSS children: one fresh 512² txt2img each
# --------------------------------------------------------------------------

def rss_child(args):
    size, steps = args.rss_size, args.rss_steps
    t0 = time.perf_counter()
    if args.rss_child == "sdcpp":
        eng = SdcppEngine(args, free_params=not args.sdcpp_keep_params)
        g = eng.generate(size, steps=steps)
        print(json.dumps({"stages": g, "load_seconds": eng.load_s}), file=sys.stderr)
    else:
        import torch
        torch.set_num_threads(args.threads)
        from diffusers import EulerDiscreteScheduler
        eng = DiffusersEngine(args)
        sch = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                     beta_schedule="scaled_linear", num_train_timesteps=1000,
                                     steps_offset=1, timestep_spacing="leading")
        sch.set_timesteps(steps)
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            ids = torch.randint(0, 49406, (2, 77), generator=gen)
            ctx = eng.text(ids)[0]
            lat = torch.randn(1, 4, size // 8, size // 8, generator=gen) * sch.init_noise_sigma
            for t in sch.timesteps:
                inp = sch.scale_model_input(torch.cat([lat, lat]), t)
                eps = eng.unet(inp, t, encoder_hidden_states=ctx).sample
                u, c = eps.chunk(2)
                lat = sch.step(u + 7.5 * (c - u), t, lat).prev_sample
            img = eng.vae.decode(lat / 0.18215).sample
        print(json.dumps({"image_mean": float(img.mean())}), file=sys.stderr)
    print(json.dumps({"wall": time.perf_counter() - t0}), file=sys.stderr)


def measure_rss(cmd, env=None):
    """Runs cmd to completion; returns (peak RSS bytes, wall seconds, rc)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        log(err.decode(errors="replace")[-3000:])
    return ru.ru_maxrss * 1024, wall, p.returncode


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

class Worker:
    def __init__(self, name, cmd, env, logdir):
        self.name = name
        self.errf = open(os.path.join(logdir, f"{name}.log"), "w")
        self.p = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.errf, text=True, bufsize=1)

    def ask(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        ans = self.p.stdout.readline()
        if not ans:
            raise RuntimeError(f"{self.name} worker died (see its log {self.errf.name})")
        return json.loads(ans)

    def close(self):
        try:
            self.p.stdin.write(json.dumps({"cmd": "quit"}) + "\n" if self.name != "sdc" else "quit\n")
            self.p.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.errf.close()


class SdcWorker(Worker):
    def suite(self, keys, profile):
        secs, prof, gflop = {}, {}, {}
        for k in keys:
            if k == "text":
                cmd = "text 1 2"
            elif k.startswith("unet"):
                cmd = f"unet {int(k[4:]) // 8} 2" + (" profile" if profile else "")
            elif k.startswith("vaedec"):
                cmd = f"vae-decode {int(k[6:]) // 8} 1"
            else:
                cmd = f"vae-encode {int(k[6:]) // 8} 1"
            a = self.ask(cmd)
            if "error" in a:
                raise RuntimeError(f"sdc: {cmd}: {a['error']}")
            secs[k] = a["seconds"]
            gflop[k] = a["gflop"]
            if "group_seconds" in a:
                prof[k] = {"groups": a["group_seconds"], "ops": a["op_seconds"],
                           "wall": a["seconds"]}
        return {"seconds": secs, "profile": prof, "gflop_counted": gflop}


class PyWorker(Worker):
    def suite(self, keys, profile):
        a = self.ask(json.dumps({"cmd": "suite", "keys": keys}))
        if "error" in a:
            raise RuntimeError(f"{self.name}: {a['error']}")
        return a


def sgemm_ceiling(bench_ops, env):
    out = subprocess.run([bench_ops, "--sgemm", "--json"], env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)["sgemm_ceiling_gflops"]


# OpenBLAS falls back to these generic cores on a CPU its dynamic-arch table
# does not know (0.3.21 takes the 2-vCPU Emerald Rapids VM here for a Prescott).
GENERIC_CORES = {"prescott", "core2", "nehalem", "katmai", "coppermine", "northwood", "banias",
                 "atom", "penryn", "dunnington", "unknown"}


def openblas_core():
    """(core OpenBLAS picked, core to force or None)."""
    import ctypes
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        core = lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return None, None
    try:
        flags = next(l for l in open("/proc/cpuinfo") if l.startswith("flags")).split()
    except (OSError, StopIteration):
        flags = []
    if core.lower() not in GENERIC_CORES:
        return core, None
    return core, "SkylakeX" if "avx512f" in flags else "Haswell" if "avx2" in flags else None


def torch_sgemm(python, env):
    """GFLOP/s of torch.mm (MKL) at 2048³ on the same threads: a second ceiling."""
    code = ("import time,torch;a=torch.rand(2048,2048);b=torch.rand(2048,2048);a@b;t=[]\n"
            "for i in range(3):\n t0=time.perf_counter();a@b;t.append(time.perf_counter()-t0)\n"
            "print(2*2048**3/sorted(t)[1]/1e9)")
    out = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True)
    try:
        return float(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def fmt_s(x):
    return "—" if x is None else (f"{x * 1e3:.0f} ms" if x < 1 else f"{x:.2f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="original-layout random checkpoint (.safetensors)")
    ap.add_argument("--diffusers-model", help="the same weights as a diffusers folder")
    ap.add_argument("--sdc-build", default="build/bench-cpu", help="folder with sdc, bench_models, bench_ops")
    ap.add_argument("--engines", default="sdc,sdcpp,diffusers")
    ap.add_argument("--sizes", default="256,512", help="image sizes of the UNet CFG step")
    ap.add_argument("--vae-size", type=int, default=512)
    ap.add_argument("--reps", type=int, default=3, help="timed rounds after the warm-up round")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rss-size", type=int, default=512)
    ap.add_argument("--rss-steps", type=int, default=1)
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--quick", action="store_true", help="smoke: 256² only, VAE at 256², 1 rep")
    ap.add_argument("--sdcpp-conv-direct", action="store_true",
                    help="sd.cpp: also turn on its direct conv2d (diffusion and VAE)")
    ap.add_argument("--sdcpp-no-flash", action="store_true",
                    help="stable-diffusion.cpp without flash attention (on by default: faster "
                         "on Zen3; on an AVX-512 Xeon its 512² step was 85 s with it)")
    ap.add_argument("--sdcpp-keep-params", action="store_true",
                    help="RSS run of sd.cpp keeps all weights resident (the binding's default) "
                         "instead of sd.cpp's own free_params_immediately")
    ap.add_argument("--no-rotate", dest="rotate", action="store_false",
                    help="same engine order every round (default: rotate it by one each round)")
    ap.add_argument("--omp-wait-policy", default="passive", choices=["passive", "active", "default"],
                    help="OMP_WAIT_POLICY of the OpenMP engines (stable-diffusion.cpp, torch). "
                         "passive (default): threads sleep at barriers; on a shared, loaded "
                         "machine libgomp's spinning made sd.cpp's 2-thread step ~1.6x slower "
                         "than passive and slower than 1 thread. default: leave it unset")
    ap.add_argument("--openblas-coretype", default="none",
                    help="OPENBLAS_CORETYPE for sdc and the sgemm ceiling: none (default: nothing "
                         "set, sdc as users run it; sdc picks the core itself), auto (force "
                         "SkylakeX/Haswell when OpenBLAS fell back to a generic core), or a name; "
                         "when one is forced, the table also has 'sdc-default' without it")
    ap.add_argument("--no-sdc-default", action="store_true",
                    help="when a core type is forced, skip the extra 'sdc-default' engine "
                         "(sdc with OpenBLAS's own choice)")
    ap.add_argument("--logdir", default="build/bench-compare")
    ap.add_argument("--json", help="write everything to this file")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--render", metavar="JSON", help="only print the table of an earlier --json file")
    ap.add_argument("--worker", choices=["sdcpp", "diffusers"], help=argparse.SUPPRESS)
    ap.add_argument("--rss-child", choices=["sdcpp", "diffusers"], help=argparse.SUPPRESS)
    ap.add_argument("--flags", default=os.environ.get("SDCPP_CMAKE_ARGS", ""), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.render:
        with open(args.render) as f:
            res = json.load(f)
        items = [(i["key"], i["what"], i["gflop"]) for i in res["items"]]
        return print_table(res, items, list(res["engines"]), res["sgemm_ceiling_gflops"]["median"],
                           res["sdc_unet_op_shares"])
    if args.worker:
        return run_worker(args)
    if args.rss_child:
        return rss_child(args)

    if args.quick:
        args.sizes, args.vae_size, args.reps, args.rss_size = "256", 256, 1, 256
    sizes = [int(s) for s in args.sizes.split(",") if s]
    engines = [e for e in args.engines.split(",") if e]
    items = items_for(sizes, args.vae_size)
    keys = [k for k, _, _ in items]
    os.makedirs(args.logdir, exist_ok=True)
    env = dict(os.environ, SDC_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    env.pop("OPENBLAS_CORETYPE", None)
    if args.omp_wait_policy == "default":
        env.pop("OMP_WAIT_POLICY", None)
    else:
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()  # sdc uses no OpenMP
    picked, forced = openblas_core()
    if args.openblas_coretype == "none":
        forced = None
    elif args.openblas_coretype != "auto":
        forced = args.openblas_coretype
    env_sdc = dict(env, OPENBLAS_CORETYPE=forced) if forced else env
    if forced and "sdc" in engines and not args.no_sdc_default and "sdc-default" not in engines:
        engines.insert(engines.index("sdc") + 1, "sdc-default")
    if picked:
        log(f"compare: OpenBLAS picked core '{picked}'"
            + (f"; sdc and the ceiling run with OPENBLAS_CORETYPE={forced}, 'sdc-default' without"
               if forced else ""))
    # The core sdc really runs with (it may re-execute itself to fix a stale pick).
    sdc_cores = {}
    for e, e_env in (("sdc", env_sdc), ("sdc-default", env)):
        try:
            out = subprocess.run([os.path.join(args.sdc_build, "sdc"), "info", "--cpu", "--json"],
                                 env=e_env, capture_output=True, text=True).stdout
            j = json.loads(out)
            sdc_cores[e] = {"core": j.get("openblas_core"), "origin": j.get("openblas_core_origin"),
                            "first_pick": j.get("openblas_first_pick"), "kernels": j.get("sdc_kernels")}
        except (OSError, ValueError):
            pass
    if sdc_cores.get("sdc"):
        log(f"compare: sdc runs OpenBLAS core '{sdc_cores['sdc']['core']}' "
            f"({sdc_cores['sdc']['origin']}), its own kernels {sdc_cores['sdc']['kernels']}")
    bench_models = os.path.join(args.sdc_build, "bench_models")
    bench_ops = os.path.join(args.sdc_build, "bench_ops")
    sdc_bin = os.path.join(args.sdc_build, "sdc")
    me = [sys.executable, os.path.abspath(__file__), "--model", args.model,
          "--diffusers-model", args.diffusers_model or "", "--threads", str(args.threads)]
    if args.sdcpp_conv_direct:
        me.append("--sdcpp-conv-direct")
    if args.sdcpp_no_flash:
        me.append("--sdcpp-no-flash")
    if args.verbose:
        me.append("--verbose")

    def git(*a):
        try:
            return subprocess.run(["git", "-C", ROOT, *a], capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""

    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "commit": git("rev-parse", "--short", "HEAD"),
        "machine": {"cpu": cpu, "nproc": os.cpu_count(),
                    "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "threads": args.threads, "reps": args.reps, "model": args.model,
        "diffusers_model": args.diffusers_model, "items": [
            {"key": k, "what": d, "gflop": g} for k, d, g in items],
        "sdcpp_cmake_args": args.flags, "engines": {}, "loadavg": [],
        "openblas": {"picked_core": picked, "forced_coretype_for_sdc": forced,
                     "sdc_runs": sdc_cores},
        "omp_wait_policy": env.get("OMP_WAIT_POLICY"),
    }
    log(f"compare: engines {engines}, suite {keys}, {args.reps} reps after a warm-up, "
        f"{args.threads} threads; load average {os.getloadavg()}")
    if args.flags:
        log(f"compare: stable-diffusion.cpp built with CMAKE_ARGS='{args.flags}'")

    t_start = time.perf_counter()
    workers = {}
    for e in engines:
        t0 = time.perf_counter()
        if e in ("sdc", "sdc-default"):
            w = SdcWorker(e, [bench_models, "--model", args.model, "--serve"],
                          env_sdc if e == "sdc" else env, args.logdir)
            ver = subprocess.run([sdc_bin, "--version"], capture_output=True, text=True).stdout.strip()
            result["engines"][e] = {"info": {"binary": bench_models, "version": ver,
                                             "threads": args.threads, "weights": "F16, memory-mapped",
                                             "OPENBLAS_CORETYPE": forced if e == "sdc" else None}}
        else:
            w = PyWorker(e, me + ["--worker", e], env, args.logdir)
            a = w.ask(json.dumps({"cmd": "info"}))
            result["engines"][e] = {"info": a["info"], "load_seconds": a["load_seconds"]}
            log(f"compare: {e} loaded in {a['load_seconds']:.1f} s: {json.dumps(a['info'])}")
        workers[e] = w
        result["engines"][e].update(samples={k: [] for k in keys}, warmup={})
        log(f"compare: {e} worker up ({time.perf_counter() - t0:.1f} s)")

    ceilings, ceilings_default, ceilings_mkl, profiles = [], [], [], {}
    try:
        for r in range(args.reps + 1):
            tag = "warm-up" if r == 0 else f"round {r}/{args.reps}"
            result["loadavg"].append(os.getloadavg()[0])
            order = engines[r % len(engines):] + engines[:r % len(engines)] if args.rotate else engines
            for e in order:
                t0 = time.perf_counter()
                ans = workers[e].suite(keys, profile=r > 0)
                dst = result["engines"][e]
                for k in keys:
                    v = ans["seconds"].get(k)
                    if r == 0:
                        dst["warmup"][k] = v
                    elif v is not None:
                        dst["samples"][k].append(v)
                if r > 0 and ans.get("raw"):
                    dst.setdefault("raw", []).append(ans["raw"])
                if r > 0 and ans.get("profile"):
                    for k, p in ans["profile"].items():
                        profiles.setdefault(k, []).append(p)
                if ans.get("gflop_counted"):
                    dst["gflop_counted"] = ans["gflop_counted"]
                log(f"compare: {tag}: {e}: " + ", ".join(
                    f"{k} {fmt_s(ans['seconds'].get(k))}" for k in keys)
                    + f"  ({time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f})")
            if os.path.exists(bench_ops):
                c = sgemm_ceiling(bench_ops, env_sdc)
                ceilings.append(c)
                msg = f"sgemm 2048³ {c:.1f} GFLOP/s"
                if forced:
                    ceilings_default.append(sgemm_ceiling(bench_ops, env))
                    msg += f" ({ceilings_default[-1]:.1f} on OpenBLAS's own '{picked}' core)"
                m = torch_sgemm(sys.executable, env) if "diffusers" in engines else None
                if m:
                    ceilings_mkl.append(m)
                    msg += f"; torch.mm {m:.1f}"
                log(f"compare: {tag}: {msg}")
            result["sgemm_ceiling_gflops"] = {"samples": ceilings, "openblas_own_core_samples":
                                              ceilings_default, "torch_mm_samples": ceilings_mkl}
            with open(os.path.join(args.logdir, "partial.json"), "w") as f:
                json.dump(result, f, indent=1)  # what there is so far, should a later round fail
        result["loadavg"].append(os.getloadavg()[0])
    finally:
        for w in workers.values():
            w.close()

    # Peak RSS: one fresh txt2img per engine, with the workers gone.
    rss = {}
    if not args.no_rss:
        for e in engines:
            if e == "sdc-default":
                continue  # same memory as sdc
            if e == "sdc":
                cmd = [sdc_bin, "generate", "--backend", "cpu", "--model", args.model, "--prompt",
                       "a photograph of an astronaut riding a horse", "--sampler", "euler",
                       "--steps", str(args.rss_steps), "--width", str(args.rss_size), "--height",
                       str(args.rss_size), "--seed", "1", "-q", "-o",
                       os.path.join(args.logdir, "sdc-rss.png")]
            else:
                cmd = me + ["--rss-child", e, "--rss-size", str(args.rss_size),
                            "--rss-steps", str(args.rss_steps)]
                if args.sdcpp_keep_params:
                    cmd.append("--sdcpp-keep-params")
            b, wall, rc = measure_rss(cmd, env_sdc if e == "sdc" else env)
            rss[e] = {"peak_rss_bytes": b if rc == 0 else None, "wall_seconds": wall, "rc": rc}
            log(f"compare: peak RSS {e}: {b / 1e9:.2f} GB, {wall:.1f} s wall (rc {rc})")
    result["rss"] = {"size": args.rss_size, "steps": args.rss_steps, "sampler": "euler",
                     "cfg": 7.5, "engines": rss,
                     "sdcpp_free_params_immediately": not args.sdcpp_keep_params}

    ceiling = statistics.median(ceilings) if ceilings else None
    result["sgemm_ceiling_gflops"].update(
        median=ceiling,
        openblas_own_core_median=statistics.median(ceilings_default) if ceilings_default else None,
        torch_mm_median=statistics.median(ceilings_mkl) if ceilings_mkl else None)
    for e in engines:
        d = result["engines"][e]
        d["median_seconds"] = {k: (statistics.median(v) if v else None) for k, v in d["samples"].items()}
    result["wall_seconds"] = time.perf_counter() - t_start

    # Per-op shares of sdc's UNet step.
    shares = {}
    for k, ps in profiles.items():
        wall = sum(p["wall"] for p in ps)
        groups = {}
        for p in ps:
            for g, s in p["groups"].items():
                groups[g] = groups.get(g, 0) + s
        ops = {}
        for p in ps:
            for o, s in p["ops"].items():
                ops[o] = ops.get(o, 0) + s
        shares[k] = {"groups": {g: s / wall for g, s in groups.items()},
                     "ops": {o: s / wall for o, s in sorted(ops.items(), key=lambda x: -x[1])}}
    result["sdc_unet_op_shares"] = shares

    print_table(result, items, engines, ceiling, shares)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        log(f"compare: wrote {args.json}")


def print_table(result, items, engines, ceiling, shares):
    med = {e: result["engines"][e]["median_seconds"] for e in engines}
    la = result["loadavg"]
    sg = result["sgemm_ceiling_gflops"]
    ob = result.get("openblas", {})
    print(f"\n## CPU peers side by side — {result['date']}, commit {result['commit']}")
    print(f"machine: {result['machine']['cpu']}, {result['machine']['nproc']} vCPU, "
          f"{result['machine']['mem_gib']} GiB; {result['threads']} threads per engine; "
          f"median of {result['reps']} rounds after a warm-up, engines interleaved")
    if ob.get("picked_core"):
        print(f"OpenBLAS picked core '{ob['picked_core']}'" + (
            f"; sdc and the ceiling ran with OPENBLAS_CORETYPE={ob['forced_coretype_for_sdc']}"
            + (", sdc-default with OpenBLAS's own pick" if "sdc-default" in engines else "")
            if ob.get("forced_coretype_for_sdc") else ""))
    for e, c in (ob.get("sdc_runs") or {}).items():
        if e in engines and c:
            print(f"{e} ran OpenBLAS core '{c['core']}' ({c['origin']}"
                  + (f"; OpenBLAS had picked '{c['first_pick']}'" if c.get("first_pick") else "")
                  + f"), sdc kernels {c['kernels']}")
    if "omp_wait_policy" in result:
        print(f"OMP_WAIT_POLICY of sd.cpp and torch: {result['omp_wait_policy'] or 'unset (libgomp default)'}")
    if ceiling:
        print(f"sgemm 2048³ ceiling (OpenBLAS, same run): {ceiling:.0f} GFLOP/s "
              f"(samples {', '.join(f'{c:.0f}' for c in sg['samples'])})")
        if sg.get("openblas_own_core_median"):
            print(f"  on OpenBLAS's own core pick: {sg['openblas_own_core_median']:.0f} GFLOP/s")
        if sg.get("torch_mm_median"):
            print(f"  torch.mm (MKL) 2048³, same threads: {sg['torch_mm_median']:.0f} GFLOP/s")
    print(f"load average (1 min) at each round: {', '.join(f'{x:.1f}' for x in la)}\n")
    print("| work | GFLOP | " + " | ".join(engines) + " |")
    print("|---|---|" + "---|" * len(engines))
    for k, d, g in items:
        print(f"| {d} | {g:.0f} | " + " | ".join(fmt_s(med[e].get(k)) for e in engines) + " |")
    print("\n| work | " + " | ".join(f"{e} vs sdc" for e in engines if e != "sdc") + " | "
          + " | ".join(f"{e} GFLOP/s (of ceiling)" for e in engines) + " |")
    print("|---|" + "---|" * (2 * len(engines) - ("sdc" in engines)))
    for k, d, g in items:
        base = med.get("sdc", {}).get(k)
        cells = []
        for e in engines:
            if e == "sdc":
                continue
            t = med[e].get(k)
            cells.append(f"{t / base:.2f}×" if (t and base) else "—")
        for e in engines:
            t = med[e].get(k)
            if t:
                gf = g / t
                cells.append(f"{gf:.0f}" + (f" ({100 * gf / ceiling:.0f} %)" if ceiling else ""))
            else:
                cells.append("—")
        print(f"| {d} | " + " | ".join(cells) + " |")
    rss = result["rss"]["engines"]
    if rss:
        r0 = result["rss"]
        print(f"\n| peak RSS, {r0['size']}² txt2img (1 image, CFG 7.5, {r0['steps']} euler step) "
              "| peak RSS | vs sdc | wall of the whole process |")
        print("|---|---|---|---|")
        base = rss.get("sdc", {}).get("peak_rss_bytes")
        for e in engines:
            if e not in rss:
                continue
            r = rss[e]
            b = r.get("peak_rss_bytes")
            print(f"| {e} | " + (f"{b / 1e9:.2f} GB" if b else "—") + " | "
                  + (f"{b / base:.2f}×" if (b and base and e != "sdc") else "") + " | "
                  + f"{r.get('wall_seconds', 0):.0f} s |")
    print("\n(vs sdc: the peer's time / sdc's time; above 1 means sdc is faster. GFLOP: "
          "PERFORMANCE.md's counts, the same for every engine.)")
    if shares:
        ks = [k for k in shares]
        print("\nsdc, share of a UNet CFG step's time by op group (profiled rounds):\n")
        print("| op group | " + " | ".join(f"{k[4:]}²" for k in ks) + " |")
        print("|---|" + "---|" * len(ks))
        for g in ["conv", "attention", "linear", "norm", "elementwise", "other"]:
            print(f"| {g} | " + " | ".join(f"{100 * shares[k]['groups'].get(g, 0):.1f} %" for k in ks) + " |")
        print("\nby op kind: " + "; ".join(
            f"{k[4:]}²: " + ", ".join(f"{o} {100 * s:.1f} %" for o, s in shares[k]["ops"].items() if s >= 0.005)
            for k in ks))
    print(f"\ncompare took {result['wall_seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
