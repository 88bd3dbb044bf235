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

typedef enum sdc_device { SDC_DEVICE_CPU = 0, SDC_DEVICE_CUDA } sdc_device;

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
} sdc_tensor;

int64_t sdc_tensor_numel(const sdc_tensor *t);
size_t sdc_tensor_nbytes(const sdc_tensor *t);
/* Fills t's metadata (no allocation). Fails on rank > 4 or negative dims. */
sdc_status sdc_tensor_init(sdc_tensor *t, sdc_dtype dtype, int ndim, const int64_t *shape,
                           void *data, sdc_err *err);
/* Host tensor with 64-byte aligned, owned storage (uninitialized). */
sdc_tensor *sdc_tensor_new(sdc_dtype dtype, int ndim, const int64_t *shape, sdc_err *err);
void sdc_tensor_free(sdc_tensor *t);
bool sdc_tensor_same_shape(const sdc_tensor *a, const sdc_tensor *b);
/* "[2, 320, 64, 64]" into buf; returns buf. */
const char *sdc_shape_str(const sdc_tensor *t, char *buf, size_t cap);

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
size_t sdc_safetensors_count(const sdc_safetensors *st);
const sdc_st_entry *sdc_safetensors_entry(const sdc_safetensors *st, size_t i);
/* Binary search by name; NULL if absent. */
const sdc_st_entry *sdc_safetensors_find(const sdc_safetensors *st, const char *name);
/* __metadata__ value for key, or NULL. */
const char *sdc_safetensors_meta(const sdc_safetensors *st, const char *key);
/* Converts an entry (F32/F16/BF16, or integer for I32/I64 targets) into dst,
 * which holds numel elements of dst_t. */
sdc_status sdc_safetensors_read(const sdc_safetensors *st, const sdc_st_entry *e, void *dst,
                                sdc_dtype dst_t, sdc_err *err);

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

/* ---------------------------------------------------------------- threads */

/* Number of worker threads used by the CPU backend (default: online cores,
 * or $SDC_THREADS). Also sets OpenBLAS's thread count. */
void sdc_set_threads(int n);
int sdc_get_threads(void);

#ifdef __cplusplus
}
#endif
#endif /* SDC_H */
