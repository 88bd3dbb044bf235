/* pipeline.h — txt2img and img2img as diffusers' StableDiffusionPipeline and
 * StableDiffusionImg2ImgPipeline run them: prompt -> conditioning (cond and
 * uncond in one UNet call) -> seeded latents -> sampler loop with CFG -> VAE.
 * Noise comes from a torch-compatible generator (CPU or CUDA) in diffusers'
 * order. On CUDA the text encoder and UNet run F16 activations by default and
 * each step's UNet call is a replayed CUDA graph (unet_call.h). */
#ifndef SDC_PIPELINE_H
#define SDC_PIPELINE_H

#include "../models/checkpoint.h"
#include "embeddings.h"
#include "prompt.h"
#include "rng.h"
#include "sampler.h"

/* Image sizes: every multiple of 8 diffusers accepts, from 8 px (a 1x1
 * latent) up to the image loader's 8192 per side. */
#define SDC_SIZE_MIN 8
#define SDC_SIZE_MAX 8192

typedef struct sdc_pipeline {
    sdc_backend *be;
    sdc_arena *arena;
    sdc_checkpoint *ck;
    sdc_tokenizer *tok;
    sdc_clip_text clip;
    sdc_unet unet;
    sdc_vae vae;
    /* The folder's scheduler/scheduler_config.json, or NULL (a single file,
     * or a folder without one): SD 1.5's then. */
    sdc_sched_file *sched;
    /* Keep only the layer at work resident (mmap'ed weights are re-read from
     * the page cache on every use): lower peak memory, slower steps. */
    bool low_memory;
    /* Record the UNet step as a CUDA graph and replay it (CUDA only; on by
     * default, $SDC_CUDA_GRAPH=0 turns it off). When recording fails the
     * steps run eagerly and graph_note says why. */
    bool cuda_graph;
    char graph_note[SDC_ERR_MSG_MAX];
} sdc_pipeline;

/* Loads the checkpoint's three models onto be and the tokenizer (CLIP's
 * merges file at vocab_path, or the checkpoint's tokenizer/ folder when
 * vocab_path is NULL). */
sdc_pipeline *sdc_pipeline_open(const char *model, const char *vocab_path, sdc_backend *be,
                                sdc_err *err);
/* The same with the text encoder's head count given (clip_heads > 0), for a
 * single file whose width is not a multiple of 64. */
sdc_pipeline *sdc_pipeline_open_opts(const char *model, const char *vocab_path, sdc_backend *be,
                                     int clip_heads, sdc_err *err);
void sdc_pipeline_free(sdc_pipeline *p);
/* An op sequence on p's backend with activations of dtype act: in low-memory
 * mode each weight's pages are dropped after use; on the CPU (and in
 * low-memory mode) the UNet's feed-forward runs over row chunks. */
sdc_exec sdc_pipeline_exec(const sdc_pipeline *p, sdc_dtype act, sdc_err *err);

/* One image of a batch with its own prompt, generator and init image. A row
 * gives the same image whatever batch it runs in, so unrelated items (the
 * augment driver's) can share UNet calls. */
typedef struct sdc_generate_row {
    const char *prompt;                  /* NULL: the options' prompt */
    const sdc_embedding_set *embeddings; /* NULL: the options' embeddings */
    uint64_t seed;                       /* this row's generator */
    const float *init_image;             /* img2img: [3, height, width]; NULL: the options' */
} sdc_generate_row;

typedef struct sdc_generate_opts {
    const char *prompt, *negative;   /* negative NULL = "" */
    sdc_prompt_syntax syntax;
    int clip_skip;                   /* diffusers' convention: layers skipped */
    const sdc_embedding_set *embeddings; /* may be NULL */
    sdc_sampler_opts sampler;        /* kind, steps, eta, karras, spacing; a NULL
                                        sampler.config means the pipeline's sched */
    float cfg;                       /* <= 1: no unconditional pass */
    uint64_t seed;
    int width, height, batch;        /* multiples of 8 in [8, 8192]; batch images per UNet call */
    const float *init_image;         /* img2img: [3, height, width] in [-1, 1], or NULL */
    float strength;                  /* img2img: in [0, 1] */
    const float *init_noise;         /* [batch, 4, h, w] replacing the seeded latents, or NULL */
    /* [batch] rows with their own prompt, generator and init image, or NULL:
     * one generator (seed) for the whole batch. Rows share the negative
     * prompt, strength and schedule; their prompts must encode to the same
     * number of 77-token chunks (always so with the plain syntax). */
    const sdc_generate_row *rows;
    /* Activations of the text encoder and UNet (AUTO: F16 on CUDA, F32 on
     * the CPU) and of the VAE (AUTO: F32; with F16 an image whose decode
     * overflows is decoded again at F32). F32 accumulation and statistics
     * at every precision; the sampler's latents stay F32 on the host. */
    sdc_precision precision, vae_precision;
    /* The generator of every noise draw (initial latents, img2img, the
     * ancestral and eta noise), and for SDC_RNG_CUDA the GPU's resident
     * block count to imitate (rng.h; 0 = no cap). SDC_RNG_CUDA without rows
     * draws a batch as A1111 does: image b from its own generator seeded
     * seed + b (with SDC_RNG_CPU, diffusers' one generator for the batch). */
    sdc_rng_source rng;
    uint32_t rng_grid_cap;
    /* Called after each sampler iteration (i of n). */
    void (*progress)(void *ctx, int i, int n);
    void *progress_ctx;
} sdc_generate_opts;

typedef struct sdc_generate_result {
    int batch, width, height;
    float *latents;  /* [batch, 4, h, w]: the final latents, as diffusers' output_type="latent" */
    uint8_t *rgb;    /* [batch, height, width, 3] */
    bool truncated;  /* the prompt or negative prompt lost tokens */
    int iterations;  /* UNet calls made */
    sdc_dtype act, vae_act; /* the activation dtypes used */
    int vae_upcasts; /* images decoded again at F32 after an F16 overflow */
    int graph_replays; /* UNet calls that replayed a CUDA graph */
} sdc_generate_result;

sdc_status sdc_generate(sdc_pipeline *p, const sdc_generate_opts *o, sdc_generate_result *r,
                        sdc_err *err);

/* The activation dtype of precision on p's backend: AUTO is F16 where the
 * backend computes F16 (CUDA), else F32. A precision the backend cannot
 * compute is SDC_ERR_UNSUPPORTED naming it. */
sdc_status sdc_pipeline_dtype(const sdc_pipeline *p, sdc_precision precision, sdc_dtype *out,
                              sdc_err *err);

/* Wall time of one UNet evaluation with `rows` rows (2 per image with CFG)
 * at width x height and the activations of precision, on fixed non-zero
 * inputs: for cost estimates. */
sdc_status sdc_pipeline_time_unet(sdc_pipeline *p, sdc_precision precision, int rows, int width,
                                  int height, double *seconds, sdc_err *err);
void sdc_generate_result_free(sdc_generate_result *r);

#endif
