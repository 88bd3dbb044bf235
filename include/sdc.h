/* sdc.h — the public API of sdc, Stable Diffusion 1.x in C.
 *
 * Usage:
 *
 *     sdc_err err = {0};
 *     sdc_safetensors *st = sdc_safetensors_open("model.safetensors", &err);
 *     if (!st) { fprintf(stderr, "sdc: %s\n", err.msg); return 1; }
 *     for (size_t i = 0; i < sdc_safetensors_count(st); i++) {
 *         const sdc_st_entry *e = sdc_safetensors_entry(st, i);
 *         printf("%s %s\n", e->name, sdc_dtype_name(e->dtype));
 *     }
 *     sdc_safetensors_close(st);
 *
 * Conventions:
 *   - Every fallible function returns a status (or NULL) and fills an sdc_err
 *     with a message that names the thing and the reason. The library never
 *     prints, exits or aborts on bad input; only the CLI does.
 *   - Public names are sdc_<module>_<verb>; create/free come in pairs.
 *   - Tensors are dense, contiguous, row-major, outermost dimension first
 *     (NCHW for images). Shapes are written [N, C, H, W] in comments.
 */
#ifndef SDC_H
#define SDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SDC_VERSION "0.1.0"

/* ---------------------------------------------------------------- status */

typedef enum sdc_status {
    SDC_OK = 0,
    SDC_ERR_ARG,         /* a caller-supplied argument is invalid */
    SDC_ERR_IO,          /* open/read/write/fsync/rename failed */
    SDC_ERR_FORMAT,      /* a file's content is malformed */
    SDC_ERR_SHAPE,       /* tensor shapes or dtypes do not fit together */
    SDC_ERR_UNSUPPORTED, /* well-formed, but not something sdc handles */
    SDC_ERR_OOM,         /* an allocation failed or a size overflowed */
    SDC_ERR_NUMERIC,     /* NaN or Inf where a finite value was required */
    SDC_ERR_DEVICE,      /* the accelerator or its runtime failed */
} sdc_status;

#define SDC_ERR_MSG_MAX 512

/* An error slot owned by the caller (one per thread or per context). */
typedef struct sdc_err {
    sdc_status code;
    char msg[SDC_ERR_MSG_MAX];
} sdc_err;

/* Sets *err (if non-NULL) and returns code, so `return sdc_err_set(...)`. */
sdc_status sdc_err_set(sdc_err *err, sdc_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends "prefix: " to an existing message (adds context on the way up). */
sdc_status sdc_err_wrap(sdc_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *sdc_status_name(sdc_status s);

/* ---------------------------------------------------------------- dtypes */

typedef enum sdc_dtype {
    SDC_F32 = 0,
    SDC_F16,
    SDC_BF16,
    SDC_F64,
    SDC_I64,
    SDC_I32,
    SDC_I16,
    SDC_I8,
    SDC_U8,
    SDC_BOOL,
    SDC_DTYPE_COUNT
} sdc_dtype;

size_t sdc_dtype_size(sdc_dtype t);
/* safetensors spelling: "F32", "F16", "BF16", "I64", ... */
const char *sdc_dtype_name(sdc_dtype t);
/* Returns false if name is not a dtype sdc knows. */
bool sdc_dtype_from_name(const char *name, sdc_dtype *out);

/* Scalar conversions, IEEE round-to-nearest-even, NaN/Inf preserved. */
float sdc_f16_to_f32(uint16_t h);
uint16_t sdc_f32_to_f16(float f);
float sdc_bf16_to_f32(uint16_t b);
uint16_t sdc_f32_to_bf16(float f);
/* Bulk conversion between F32/F16/BF16 (n elements; src may be unaligned). */
sdc_status sdc_convert(void *dst, sdc_dtype dst_t, const void *src, sdc_dtype src_t,
                       size_t n, sdc_err *err);

/* ---------------------------------------------------------------- tensors */

#define SDC_MAX_DIMS 4

typedef enum sdc_device { SDC_DEVICE_CPU = 0, SDC_DEVICE_CUDA, SDC_DEVICE_VULKAN } sdc_device;

/* A dense, contiguous tensor. shape[0] is the outermost dimension. The
 * tensor does not own its data unless `owned` is set (then sdc_tensor_free
 * releases it). */
typedef struct sdc_tensor {
    sdc_dtype dtype;
    int ndim;                       /* 0..SDC_MAX_DIMS; 0 is a scalar */
    int64_t shape[SDC_MAX_DIMS];    /* unused trailing entries are 1 */
    void *data;
    sdc_device device;
    bool owned;
    bool file_mapped;               /* data lies in a read-only file mapping */
} sdc_tensor;

int64_t sdc_tensor_numel(const sdc_tensor *t);
size_t sdc_tensor_nbytes(const sdc_tensor *t);
/* For a file-mapped tensor: drops the resident pages wholly inside it (the
 * next read brings them back from the page cache). No-op otherwise. */
void sdc_tensor_release_pages(const sdc_tensor *t);
/* Fills t's metadata (no allocation). Fails on rank > 4 or negative dims. */
sdc_status sdc_tensor_init(sdc_tensor *t, sdc_dtype dtype, int ndim, const int64_t *shape,
                           void *data, sdc_err *err);
/* Host tensor with 64-byte aligned, owned storage (uninitialized). */
sdc_tensor *sdc_tensor_new(sdc_dtype dtype, int ndim, const int64_t *shape, sdc_err *err);
void sdc_tensor_free(sdc_tensor *t);
bool sdc_tensor_same_shape(const sdc_tensor *a, const sdc_tensor *b);
/* "[2, 320, 64, 64]" into buf; returns buf. */
const char *sdc_shape_str(const sdc_tensor *t, char *buf, size_t cap);

/* Error metrics of got against want (same shape, float dtypes): max |got-want|
 * and ||got-want||₂ / ||want||₂, in double. Any NaN/Inf makes both Inf. */
typedef struct sdc_compare_result {
    double max_abs, rel_l2;
    size_t nonfinite;
} sdc_compare_result;
sdc_status sdc_compare(const sdc_tensor *got, const sdc_tensor *want, sdc_compare_result *r,
                       sdc_err *err);

/* ---------------------------------------------------------------- safetensors */

typedef struct sdc_st_entry {
    const char *name;
    sdc_dtype dtype;
    int ndim;                       /* up to SDC_ST_MAX_DIMS */
    int64_t shape[8];
    uint64_t begin, end;            /* byte offsets inside the data area */
    const void *data;               /* mmap'ed; may be unaligned */
} sdc_st_entry;

#define SDC_ST_MAX_DIMS 8
#define SDC_ST_MAX_HEADER 100000000ULL

typedef struct sdc_safetensors sdc_safetensors;

/* mmaps and validates a file (every check of the reference implementation).
 * On failure returns NULL and err names the file and the reason. */
sdc_safetensors *sdc_safetensors_open(const char *path, sdc_err *err);
/* Same checks on a caller-owned buffer (not copied; must outlive the handle). */
sdc_safetensors *sdc_safetensors_open_memory(const void *buf, size_t len, const char *label,
                                             sdc_err *err);
void sdc_safetensors_close(sdc_safetensors *st);
const char *sdc_safetensors_path(const sdc_safetensors *st);
/* True when the tensors' bytes are a read-only mapping of the file (pages
 * can be dropped and re-read), false for a buffer opened from memory. */
bool sdc_safetensors_is_mapped(const sdc_safetensors *st);
size_t sdc_safetensors_count(const sdc_safetensors *st);
const sdc_st_entry *sdc_safetensors_entry(const sdc_safetensors *st, size_t i);
/* Binary search by name; NULL if absent. */
const sdc_st_entry *sdc_safetensors_find(const sdc_safetensors *st, const char *name);
/* __metadata__ value for key, or NULL. */
const char *sdc_safetensors_meta(const sdc_safetensors *st, const char *key);
/* Number of __metadata__ pairs, and pair i (sorted by key; false if i is out
 * of range). key/value may be NULL. */
size_t sdc_safetensors_meta_count(const sdc_safetensors *st);
bool sdc_safetensors_meta_at(const sdc_safetensors *st, size_t i, const char **key,
                             const char **value);
/* Element count of an entry (1 for a scalar; checked for overflow at open). */
uint64_t sdc_st_entry_numel(const sdc_st_entry *e);
/* Converts an entry (F32/F16/BF16, or integer for I32/I64 targets) into dst,
 * which holds numel elements of dst_t. */
sdc_status sdc_safetensors_read(const sdc_safetensors *st, const sdc_st_entry *e, void *dst,
                                sdc_dtype dst_t, sdc_err *err);
/* Reads tensor `name` (rank <= 4) converted to dtype into a new owned host
 * tensor; NULL with err naming the file and tensor when absent or unfit. */
sdc_tensor *sdc_safetensors_load(const sdc_safetensors *st, const char *name, sdc_dtype dtype,
                                 sdc_err *err);

/* Writes tensors atomically (temp file in the same directory, fsync, rename,
 * fsync of the directory). Tensors must be host tensors of rank <= 4. */
typedef struct sdc_st_write_item {
    const char *name;
    const sdc_tensor *tensor;
} sdc_st_write_item;
sdc_status sdc_safetensors_write(const char *path, const sdc_st_write_item *items, size_t n,
                                 const char *const *meta_kv, size_t n_meta, sdc_err *err);

/* ---------------------------------------------------------------- checkpoints */

typedef enum sdc_layout {
    SDC_LAYOUT_UNKNOWN = 0,
    SDC_LAYOUT_ORIGINAL,  /* single file: model.diffusion_model.*, first_stage_model.*, ... */
    SDC_LAYOUT_DIFFUSERS, /* folder: unet/, vae/, text_encoder/ */
} sdc_layout;

const char *sdc_layout_name(sdc_layout l);

/* The parts of SD 1.x a checkpoint carries. */
typedef enum sdc_component {
    SDC_COMPONENT_UNET = 0,
    SDC_COMPONENT_VAE,
    SDC_COMPONENT_TEXT,    /* the CLIP text encoder */
    SDC_COMPONENT_COUNT
} sdc_component;

/* "unet", "vae", "text_encoder" (also the diffusers folder names). */
const char *sdc_component_name(sdc_component c);

typedef struct sdc_layout_info {
    sdc_layout layout;
    /* Which components are present: by key prefix in a single file
     * (model.diffusion_model., first_stage_model.,
     * cond_stage_model.transformer.text_model.), by file in a folder. */
    bool has[SDC_COMPONENT_COUNT];
    /* Folder only: each component's weights file relative to the folder
     * ("unet/diffusion_pytorch_model.safetensors", or the .fp16 variant when
     * only that exists), or NULL. Static strings. */
    const char *file[SDC_COMPONENT_COUNT];
} sdc_layout_info;

/* Detects the layout of a file (opened and fully validated) or a folder
 * (diffusers when it has model_index.json or a UNet weights file). Anything
 * else is SDC_LAYOUT_UNKNOWN, which is not an error; a missing path or a
 * malformed file is. */
sdc_status sdc_detect_layout(const char *path, sdc_layout_info *info, sdc_err *err);
/* The same for an already opened single file (no I/O). */
void sdc_layout_of_file(const sdc_safetensors *st, sdc_layout_info *info);

/* ---------------------------------------------------------------- tokenizer */

/* CLIP's BPE tokenizer, id for id transformers.CLIPTokenizer as installed by
 * `pip install diffusers transformers` (no ftfy). Immutable once loaded, so it
 * may be shared between threads.
 *
 *     sdc_tokenizer *tok = sdc_tokenizer_load_bpe_gz("weights/bpe_simple_vocab_16e6.txt.gz", &err);
 *     int32_t ids[SDC_TOKENS_MAX];
 *     bool cut;
 *     if (sdc_tokenize_77(tok, prompt, strlen(prompt), ids, &cut, &err)) ...
 */
#define SDC_TOKENS_MAX 77 /* SD 1.x context: BOS, 75 tokens, EOS */

typedef struct sdc_tokenizer sdc_tokenizer;

/* From CLIP's gzip'ed merges file (vocabulary built as CLIP does: 49408 ids). */
sdc_tokenizer *sdc_tokenizer_load_bpe_gz(const char *path, sdc_err *err);
/* From a diffusers folder's tokenizer/vocab.json and tokenizer/merges.txt. */
sdc_tokenizer *sdc_tokenizer_load_files(const char *vocab_json, const char *merges_txt,
                                        sdc_err *err);
void sdc_tokenizer_free(sdc_tokenizer *tok);
/* Tokenizes text[0..len) (UTF-8; embedded NULs allowed) without BOS/EOS/padding:
 * ids into out (cap entries); *n is the full count, which may exceed cap (then
 * out holds the first cap). Invalid UTF-8 is SDC_ERR_ARG naming the byte offset. */
sdc_status sdc_tokenize(const sdc_tokenizer *tok, const char *text, size_t len, int32_t *out,
                        size_t cap, size_t *n, sdc_err *err);
/* SD 1.x encoding: BOS, the first 75 tokens, EOS, padded with EOS to 77, as
 * tokenizer(prompt, padding="max_length", max_length=77, truncation=True).
 * *truncated (may be NULL) tells whether tokens were dropped. */
sdc_status sdc_tokenize_77(const sdc_tokenizer *tok, const char *text, size_t len,
                           int32_t ids[SDC_TOKENS_MAX], bool *truncated, sdc_err *err);
/* The id of a vocabulary entry spelled token (byte-level symbols, e.g.
 * "cat</w>"), or -1 if absent. */
int32_t sdc_tokenizer_lookup(const sdc_tokenizer *tok, const char *token);

/* ---------------------------------------------------------------- generation */

/* An SD 1.x checkpoint loaded for generation on the CPU backend.
 *
 *     sdc_model *m = sdc_model_open("v1-5-pruned-emaonly.safetensors",
 *                                   "weights/bpe_simple_vocab_16e6.txt.gz", &err);
 *     sdc_request r = {.prompt = "a photo of a cat", .steps = 25, .cfg = 7.5f,
 *                      .seed = 42, .width = 512, .height = 512, .batch = 1};
 *     uint8_t *rgb;                        // [batch, height, width, 3]
 *     if (sdc_model_generate(m, &r, &rgb, &err)) ...
 *     free(rgb);
 *     sdc_model_close(m);
 */
typedef struct sdc_model sdc_model;

/* checkpoint: one original-layout .safetensors file or a diffusers folder;
 * vocab: CLIP's bpe_simple_vocab_16e6.txt.gz, or NULL for the folder's
 * tokenizer/vocab.json + merges.txt. */
sdc_model *sdc_model_open(const char *checkpoint, const char *vocab, sdc_err *err);
/* The same on a device: SDC_DEVICE_CPU, or SDC_DEVICE_CUDA (GPU 0;
 * SDC_ERR_UNSUPPORTED without a GPU or in a build without CUDA). */
sdc_model *sdc_model_open_on(const char *checkpoint, const char *vocab, sdc_device device,
                             sdc_err *err);
void sdc_model_close(sdc_model *m);

/* Activation precision of a model (weights keep their stored dtype). AUTO:
 * F16 on CUDA, F32 on the CPU (the only precision the CPU backend computes).
 * Accumulation and normalization statistics are F32 at every precision. */
typedef enum sdc_precision {
    SDC_PRECISION_AUTO = 0,
    SDC_PRECISION_F32,
    SDC_PRECISION_F16,
    SDC_PRECISION_BF16,
} sdc_precision;

/* "auto", "f32", "f16", "bf16"; false for anything else. */
bool sdc_precision_from_name(const char *name, sdc_precision *out);
const char *sdc_precision_name(sdc_precision p);

/* Which generator turns a seed into noise: torch's CPU generator (diffusers'
 * usual `generator=torch.Generator().manual_seed(s)`, A1111's "CPU"; a batch
 * draws from one generator), or torch's CUDA generator (A1111's default
 * "GPU" seeds; image i of a batch from its own generator seeded seed + i, as
 * A1111 does), computed on the host on every backend. */
typedef enum sdc_rng_source {
    SDC_RNG_CPU = 0,
    SDC_RNG_CUDA,
} sdc_rng_source;

typedef struct sdc_request {
    const char *prompt;
    const char *negative;    /* NULL: empty */
    const char *sampler;     /* NULL: the folder's scheduler, else "pndm"; "ddim", "euler",
                                "euler_a", "dpmpp_2m_karras", "DPM++ 2M Karras", ... (any
                                name sdc generate --help lists, any case) */
    int steps;               /* 1..1000 */
    float cfg;               /* guidance scale; <= 1 skips the unconditional pass */
    uint64_t seed;           /* torch.manual_seed-compatible */
    int width, height;       /* multiples of 8 in [8, 8192] */
    int batch;               /* images from one generator, one UNet call per step */
    const float *init_image; /* img2img: [3, height, width] in [-1, 1], or NULL */
    float strength;          /* img2img: in [0, 1] */
    sdc_precision precision; /* text encoder and UNet activations (AUTO: F16 on CUDA) */
    sdc_precision vae_precision; /* VAE activations (AUTO: F32; F16 re-decodes an image
                                    that overflows at F32) */
    sdc_rng_source rng;      /* SDC_RNG_CPU (0) or SDC_RNG_CUDA */
} sdc_request;

/* txt2img or img2img as diffusers' pipelines; *rgb receives a malloc'ed
 * [batch, height, width, 3] 8-bit image. NaN/Inf is SDC_ERR_NUMERIC. */
sdc_status sdc_model_generate(sdc_model *m, const sdc_request *r, uint8_t **rgb, sdc_err *err);

/* ---------------------------------------------------------------- threads */

/* Number of worker threads used by the CPU backend (default: online cores,
 * or $SDC_THREADS). Also sets OpenBLAS's thread count. */
void sdc_set_threads(int n);
int sdc_get_threads(void);

#ifdef __cplusplus
}
#endif
#endif /* SDC_H */
