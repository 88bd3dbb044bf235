#!/usr/bin/env python3
"""make_corpus.py — writes the seed corpora under tests/fuzz/corpus/<target>/
from scratch (stdlib only: struct, zlib, json; no third-party files).

    python3 tests/fuzz/make_corpus.py            # (re)writes every corpus

fuzz_checkpoint's seeds keep the tensor names and ranks of the tiny test
checkpoint (tests/fixtures/tiny/original.safetensors, when present) with every
first dimension set to 0: a valid, data-free file that reaches config
inference and binding."""
import gzip, json, os, struct, sys, zlib

ROOT = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(ROOT, "corpus")
REPO = os.path.dirname(os.path.dirname(ROOT))


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
         "U8": 1, "BOOL": 1}


def st(tensors, meta=None, pad_to=1):
    """tensors: [(name, dtype, shape, bytes)] -> safetensors bytes."""
    hdr, off, blob = {}, 0, b""
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dt, shape, data in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blob += data
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % pad_to)
    return struct.pack("<Q", len(h)) + h + blob


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


# ---------------------------------------------------------------- safetensors
def corpus_safetensors():
    t = "fuzz_safetensors"
    put(t, "empty_obj", st([]))
    put(t, "meta_only", st([], {"format": "pt", "k": "v"}))
    put(t, "one_f32", st([("w", "F32", [2, 2], f32(1, 2, 3, 4))]))
    put(t, "scalar", st([("s", "F32", [], f32(7.5))]))
    put(t, "zero_size", st([("z", "F16", [0, 4], b""), ("a", "BF16", [2], b"\x80\x3f\x00\x40")]))
    put(t, "mixed", st([("a", "F16", [3], struct.pack("<3H", 0x3c00, 0x7c00, 0x7e00)),
                        ("b", "I64", [2], struct.pack("<2q", -1, 1 << 40)),
                        ("c", "I32", [1, 1, 1, 1, 1], struct.pack("<i", 5)),
                        ("d", "U8", [3], b"\x01\x02\x03"), ("e", "BOOL", [1], b"\x01"),
                        ("f", "F64", [1], struct.pack("<d", 0.5)),
                        ("g", "I8", [2], b"\x7f\x80"), ("h", "I16", [1], b"\x01\x00")],
                       {"format": "pt"}))
    put(t, "unaligned", st([("u", "U8", [3], b"abc"), ("x", "F32", [2], f32(1, -1))]))
    put(t, "padded_header", st([("x", "F32", [1], f32(1))], pad_to=8))
    put(t, "rank8", st([("r", "F32", [1] * 8, f32(3))]))
    put(t, "truncated", st([("w", "F32", [4], f32(1, 2, 3, 4))])[:-3])
    put(t, "dup_keys", b'\x2c\x00\x00\x00\x00\x00\x00\x00'
        b'{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}'[:52])
    put(t, "big_offsets", st([])[:8] + b'{"a":{"dtype":"F32","shape":[1073741824,2],'
        b'"data_offsets":[0,8589934592]}}')
    put(t, "tiny", b"\x02\x00\x00\x00\x00\x00\x00\x00{}")


# ---------------------------------------------------------------- checkpoint
def corpus_checkpoint():
    t = "fuzz_checkpoint"
    fix = os.path.join(REPO, "tests", "fixtures", "tiny", "original.safetensors")
    if os.path.exists(fix):
        b = open(fix, "rb").read()
        n = struct.unpack("<Q", b[:8])[0]
        h = json.loads(b[8:8 + n])
        meta = h.pop("__metadata__", None)
        ts = [(k, v["dtype"], [0] + v["shape"][1:] if v["shape"] else [0], b"")
              for k, v in sorted(h.items())]
        put(t, "tiny_sd15_zero", st(ts, meta))
        clip = [x for x in ts if x[0].startswith("cond_stage_model.")]
        put(t, "tiny_clip_only_zero", st(clip, meta))
    pre = ["model.diffusion_model.", "first_stage_model.",
           "cond_stage_model.transformer.text_model."]
    put(t, "prefixes", st([(p + "x", "F32", [0], b"") for p in pre]))
    put(t, "lora", st([("lora_unet_down_blocks_0.lora_down.weight", "F16", [0, 4], b"")]))
    put(t, "empty", st([]))
    put(t, "inpaint", st([("model.diffusion_model.input_blocks.0.0.weight", "F32", [0, 9, 3, 3], b""),
                          ("first_stage_model.x", "F32", [0], b""),
                          ("cond_stage_model.transformer.text_model.x", "F32", [0], b"")]))


# ---------------------------------------------------------------- embeddings
def corpus_embeddings():
    t = "fuzz_embeddings"
    # first byte: width selector (0 -> 4, 1 -> 8, 2 -> 768)
    put(t, "a1111_emb_params", b"\x00" + st([("emb_params", "F32", [2, 4], f32(*range(8)))],
                                            {"name": "cat-toy"}))
    put(t, "a1111_stp", b"\x01" + st([("string_to_param.*", "F32", [1, 8], f32(*range(8)))],
                                     {"name": "x"}))
    put(t, "diffusers", b"\x00" + st([("<cat-toy>", "F32", [4], f32(1, 2, 3, 4))]))
    put(t, "diffusers_f16", b"\x00" + st([("<a>", "F16", [1, 4], b"\x00\x3c" * 4),
                                          ("<b>", "BF16", [4], b"\x80\x3f" * 4)]))
    put(t, "sdxl", b"\x00" + st([("clip_l", "F32", [1, 4], f32(1, 2, 3, 4)),
                                 ("clip_g", "F32", [1, 8], f32(*range(8)))]))
    put(t, "sd15_768", b"\x02" + st([("emb_params", "F16", [1, 768], b"\x00\x3c" * 768)]))
    put(t, "wrong_dim", b"\x00" + st([("emb_params", "F32", [1, 3], f32(1, 2, 3))]))


# ---------------------------------------------------------------- images
def png(w, h, color, depth, rows, text=None, itxt=None, ztxt=False, extra=b""):
    def chunk(k, d):
        return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xffffffff)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0))
    if color == 3:
        out += chunk(b"PLTE", b"\x00\x00\x00\xff\x00\x00\x00\xff\x00\x00\x00\xff")
    if text is not None:
        out += chunk(b"tEXt", b"parameters\x00" + text.encode("latin-1"))
    if itxt is not None:
        out += chunk(b"iTXt", b"parameters\x00\x00\x00\x00\x00" + itxt.encode())
    if ztxt:
        out += chunk(b"zTXt", b"parameters\x00\x00" + zlib.compress(b"a cat"))
    out += extra
    out += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return out


A1111 = ("a (red:1.3) cat, [blue] sky\nNegative prompt: blurry, lowres\n"
         "Steps: 25, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 512x512, "
         "Model hash: abcd1234ef, Model: v1-5-pruned-emaonly, Denoising strength: 0.3, "
         "Clip skip: 2")


def jpeg_dc_overflow():
    """64x8 gray baseline JPEG whose 8 blocks each add +32767 to the DC sum,
    with a 16-bit quantizer of 65535: stb 2.27's int product dc * q overflows
    at the second block (defined only because stb_impl.c has -fwrapv)."""
    def seg(m, body):
        return b"\xff" + bytes([m]) + struct.pack(">H", len(body) + 2) + body
    bits = ("0" + "1" * 15 + "0") * 8        # DC code (t=15), 15 one-bits, EOB
    bits += "1" * (-len(bits) % 8)
    scan = b""
    for i in range(0, len(bits), 8):
        v = int(bits[i:i + 8], 2)
        scan += bytes([v]) + (b"\x00" if v == 0xFF else b"")
    return (b"\xff\xd8" + seg(0xDB, b"\x10" + struct.pack(">64H", *[65535] * 64))
            + seg(0xC0, b"\x08" + struct.pack(">HH", 8, 64) + b"\x01\x01\x11\x00")
            + seg(0xC4, b"\x00\x01" + b"\x00" * 15 + b"\x0f")   # DC: one 1-bit code, t=15
            + seg(0xC4, b"\x10\x01" + b"\x00" * 15 + b"\x00")   # AC: one 1-bit code, EOB
            + seg(0xDA, b"\x01\x01\x00\x00\x3f\x00") + scan + b"\xff\xd9")


def corpus_image():
    t = "fuzz_image"
    put(t, "rgb_2x2", png(2, 2, 2, 8, b"\x00" + b"\xff\x00\x00" * 2 + b"\x00" + b"\x00\xff\x00" * 2,
                          text=A1111))
    put(t, "gray_1x1", png(1, 1, 0, 8, b"\x00\x80"))
    put(t, "rgba_3x1", png(3, 1, 6, 8, b"\x01" + b"\x10\x20\x30\x40" * 3, itxt="a caf\u00e9 \u732b"))
    put(t, "pal_4x1", png(4, 1, 3, 2, b"\x00\x1b"))
    put(t, "rgb16_1x1", png(1, 1, 2, 16, b"\x00" + b"\x12\x34" * 3, ztxt=True))
    put(t, "gray_alpha_9x3", png(9, 3, 4, 8, (b"\x02" + b"\x55\xaa" * 9) * 3))
    put(t, "extra_chunk", png(1, 1, 2, 8, b"\x00abc", extra=b"\x00\x00\x00\x01tIMEx\x00\x00\x00\x00"))
    # A minimal baseline JPEG (8x8 gray), hand-assembled: SOI, DQT, SOF0, DHT, SOS, EOI.
    dqt = b"\xff\xdb\x00\x43\x00" + b"\x01" * 64
    sof = b"\xff\xc0\x00\x0b\x08\x00\x08\x00\x08\x01\x01\x11\x00"
    dht_dc = b"\xff\xc4\x00\x14\x00" + b"\x01" + b"\x00" * 15 + b"\x00"
    dht_ac = b"\xff\xc4\x00\x14\x10" + b"\x01" + b"\x00" * 15 + b"\x00"
    sos = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
    put(t, "jpeg_gray_8x8", b"\xff\xd8" + dqt + sof + dht_dc + dht_ac + sos + b"\x00\x00" + b"\xff\xd9")
    put(t, "jpeg_dc_overflow", jpeg_dc_overflow())
    put(t, "gif_header", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")
    put(t, "empty", b"")


# ---------------------------------------------------------------- text targets
PROMPTS = [
    "a photo of a cat", "", "   \t\r\n", "a (red:1.3) cat, [blue:0.5] sky, ((very)) [[soft]]",
    "a \\(literal\\) paren and \\[bracket\\]", "(unclosed [mix:1.1 BREAK next chunk",
    "one BREAK two BREAK", "x" * 300, "caf\u00e9 \u732b \U0001F431 e\u0301",
    "line1\r\nline2", "(a:1e308) (b:-0) (c:nan) (d:inf)", "((((((((deep))))))))",
    "a, b, c, " * 40, "<cat-toy> in the style of <s1>",
]
BAD = [b"\xc0\xaf overlong", b"\xed\xa0\x80 surrogate", b"cut \xe2\x82", b"\xff stray",
       b"nul\x00inside"]


def corpus_text():
    for t in ("fuzz_prompt", "fuzz_tokenizer"):
        for i, p in enumerate(PROMPTS):
            put(t, "p%02d" % i, p)
        for i, p in enumerate(BAD):
            put(t, "bad%d" % i, p)
    t = "fuzz_png_text"
    put(t, "full", A1111)
    put(t, "prompt_only", "just a prompt")
    put(t, "quoted", 'a\nSteps: 20, Sampler: "DPM++ 2M, Karras", Size: 64x64, Seed: -1, '
        'CFG scale: "7,5", Model: "a:b"')
    put(t, "neg_multiline", "p1\np2\nNegative prompt: n1\nn2\nSteps: x, Seed: 99999999999999999999, "
        "Size: 0x-8, CFG scale: nan")
    put(t, "empty", "")
    put(t, "kv_only", "Steps: 1, Sampler: DDIM, CFG scale: 1")


def corpus_inflate():
    t = "fuzz_inflate"
    put(t, "hello", gzip.compress(b"hello hello hello world\n", mtime=0))
    # gzip.compress(b"") (an empty member) is not a seed: it trips UBSan in
    # sdc_gunzip (tests/fuzz/crashes/fuzz_inflate-empty-member-null-offset).
    put(t, "two_members", gzip.compress(b"abc", mtime=0) + gzip.compress(b"def" * 50, mtime=0))
    put(t, "stored", gzip.compress(os.urandom(0) + bytes(range(256)), compresslevel=0, mtime=0))
    put(t, "dynamic", gzip.compress(b"#version: 0.2\n" + b"".join(
        b"%c %c</w>\n" % (97 + i % 26, 97 + (i * 7) % 26) for i in range(400)), mtime=0))
    g = bytearray(gzip.compress(b"crc mismatch", mtime=0))
    g[-5] ^= 1
    put(t, "bad_crc", bytes(g))
    # header flags FEXTRA | FNAME | FCOMMENT | FHCRC
    body = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = body.compress(b"flags") + body.flush()
    hdr = b"\x1f\x8b\x08\x1e\x00\x00\x00\x00\x00\xff" + b"\x02\x00xy" + b"name\x00" + b"cmt\x00"
    hdr += struct.pack("<H", zlib.crc32(hdr) & 0xffff)
    put(t, "flags", hdr + raw + struct.pack("<II", zlib.crc32(b"flags"), 5))


def manifest_line(index, output, status="ok", error=None, **extra):
    """One manifest line as `sdc augment` writes it (cJSON's unformatted print)."""
    d = {"index": index, "output": output, "class": output.split("/")[0], "class_name": "cat",
         "method": "boomerang", "source": output.split("/")[0] + "/img0.png",
         "prompt": "a photo of a cat", "negative_prompt": "", "seed": 3735928559,
         "strength": 0.3, "steps": 2, "sampler": "pndm", "cfg": 7.5, "width": 64, "height": 64,
         "model": "diffusers", "model_sha256": None, "sdc_version": "0.1.0", "status": status,
         "error": error}
    d.update(extra)
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False) + "\n"


def corpus_manifest():
    # fuzz_manifest's output folder holds a/x.png and b/y.png (non-empty),
    # a/empty.png (empty) and a/dir.png (a folder).
    t = "fuzz_manifest"
    x, y = manifest_line(0, "a/x.png"), manifest_line(1, "b/y.png")
    put(t, "two_ok", x + y)
    put(t, "empty", "")
    put(t, "torn_tail", x + y[:40])
    put(t, "failed_line", x + manifest_line(1, "b/y.png", "failed", "b/img0.png: not a PNG") + y)
    put(t, "missing_files", manifest_line(0, "a/gone.png") + manifest_line(1, "a/empty.png") +
        manifest_line(2, "a/dir.png") + y)
    put(t, "duplicate", x + y + x)
    put(t, "corrupt_middle", x + "#" + y[1:] + y)
    put(t, "crlf", x.replace("\n", "\r\n") + y.replace("\n", "\r\n"))
    put(t, "trailing_junk", x[:-1] + " junk\n" + y)
    put(t, "nul_inside", x[:-1] + "\0" + "\n" + y)
    put(t, "wrong_types", '{"output":7,"status":"ok"}\n{"output":"a/x.png","status":null}\n' + y)
    put(t, "minimal", '{"output":"a/x.png","status":"ok"}\n{"status":"ok","output":"b/y.png"}\n')
    put(t, "escapes", manifest_line(0, "a/\u00e9\"q\\.png") + '{"output":"a\\/x.png","status":"ok"}\n')
    put(t, "traversal", manifest_line(0, "../out/a/x.png") + manifest_line(1, "/etc/passwd") + y)
    put(t, "no_newline_only", x[:-1])


def main():
    corpus_safetensors()
    corpus_checkpoint()
    corpus_embeddings()
    corpus_image()
    corpus_text()
    corpus_inflate()
    corpus_manifest()
    return 0


if __name__ == "__main__":
    sys.exit(main())
