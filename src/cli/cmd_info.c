/* cmd_info.c — sdc info FILE|DIR [--json] [--tensors]: what a safetensors
 * file or a diffusers folder holds (tensors, parameters and bytes per dtype,
 * layout, components, __metadata__; with --tensors every name, dtype and
 * shape), or an image's format and size (a PNG's color type and A1111
 * "parameters" text too). The input kind is picked by sniffing (kind_of). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../image/image.h"

static const char *const CMD = "info";

typedef struct counts {
    uint64_t tensors, params, bytes;
} counts;

/* One safetensors file of the input, and what it adds up to. */
typedef struct info_file {
    char path[4096];
    const char *shown;        /* the name printed: relative inside a folder */
    int component;            /* sdc_component, or -1 for a single file */
    sdc_safetensors *st;
    counts total, by[SDC_DTYPE_COUNT];
} info_file;

typedef struct info {
    const char *path;
    bool folder;              /* a diffusers folder, else one file */
    sdc_layout_info layout;
    info_file files[SDC_COMPONENT_COUNT];
    int n_files;
    counts total, by[SDC_DTYPE_COUNT];
} info;

static const cli_spec spec = {
    "info", "FILE|DIR|IMAGE [--json] [--tensors]   or   sdc info --cpu|--devices [--json]",
    "Describes a .safetensors file or a diffusers checkpoint folder: tensor count,\n"
    "parameters and bytes per dtype, the checkpoint layout and its components, and\n"
    "the __metadata__ keys (--tensors: every tensor's name, dtype and shape); or an\n"
    "image: its format and size, and for a PNG its color type and A1111 \"parameters\"\n"
    "text (parsed into fields with --json). Every file is fully validated first (PNG:\n"
    "every chunk CRC). With --cpu: the processor's features, the OpenBLAS core in use\n"
    "and who chose it, and sdc's own kernel path. With --devices: the CPU, CUDA and\n"
    "Vulkan devices this build can use, each with the --backend value that picks it.",
    "exit codes: 0 ok, 1 unreadable or malformed input, 2 usage error"};

static bool list_tensors;

/* ---------------------------------------------------------------- gathering */

static void add_counts(counts *to, const counts *c) {
    to->tensors += c->tensors;
    to->params += c->params;
    to->bytes += c->bytes;
}

static void tally(info_file *f) {
    size_t n = sdc_safetensors_count(f->st);
    for (size_t i = 0; i < n; i++) {
        const sdc_st_entry *e = sdc_safetensors_entry(f->st, i);
        counts c = {1, sdc_st_entry_numel(e), e->end - e->begin};
        add_counts(&f->by[e->dtype], &c);
        add_counts(&f->total, &c);
    }
}

static int open_file(info *in, const char *path, const char *shown, int component) {
    info_file *f = &in->files[in->n_files];
    snprintf(f->path, sizeof f->path, "%s", path);
    f->shown = shown;
    f->component = component;
    sdc_err err = {0};
    if (!(f->st = sdc_safetensors_open(f->path, &err))) return cli_error(CMD, &err);
    in->n_files++;
    tally(f);
    add_counts(&in->total, &f->total);
    for (int t = 0; t < SDC_DTYPE_COUNT; t++) add_counts(&in->by[t], &f->by[t]);
    return EXIT_OK;
}

static int gather_file(info *in) {
    int rc = open_file(in, in->path, in->path, -1);
    if (rc) return rc;
    sdc_layout_of_file(in->files[0].st, &in->layout);
    return EXIT_OK;
}

static int gather_folder(info *in) {
    in->folder = true;
    sdc_err err = {0};
    if (sdc_detect_layout(in->path, &in->layout, &err)) return cli_error(CMD, &err);
    if (in->layout.layout != SDC_LAYOUT_DIFFUSERS) {
        fprintf(stderr,
                "sdc info: %s: not a diffusers checkpoint folder (no model_index.json or "
                "unet/diffusion_pytorch_model.safetensors)\n", in->path);
        return EXIT_RUNTIME;
    }
    for (int c = 0; c < SDC_COMPONENT_COUNT; c++) {
        const char *rel = in->layout.file[c];
        if (!rel) continue;
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", in->path, rel) >= sizeof path) {
            fprintf(stderr, "sdc info: %s: path too long\n", in->path);
            return EXIT_RUNTIME;
        }
        int rc = open_file(in, path, rel, c);
        if (rc) return rc;
    }
    return EXIT_OK;
}

/* ---------------------------------------------------------------- text output */

/* Keys come from the file: control bytes must not reach the terminal. */
static void put_clean(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
}

static void print_components(const sdc_layout_info *l) {
    int k = 0;
    for (int c = 0; c < SDC_COMPONENT_COUNT; c++)
        if (l->has[c]) printf("%s%s", k++ ? ", " : " (", sdc_component_name(c));
    printf("%s\n", k ? ")" : "");
}

static void print_meta_keys(const sdc_safetensors *st) {
    size_t n = sdc_safetensors_meta_count(st);
    if (!n) printf("(none)");
    for (size_t i = 0; i < n; i++) {
        const char *k;
        sdc_safetensors_meta_at(st, i, &k, NULL);
        if (i) printf(", ");
        put_clean(k);
    }
    printf("\n");
}

static void print_text(const info *in) {
    printf("path:        ");
    put_clean(in->path);
    printf("\nformat:      %s\nlayout:      %s", in->folder ? "diffusers folder" : "safetensors",
           sdc_layout_name(in->layout.layout));
    print_components(&in->layout);
    if (in->folder) {
        printf("files:       %d\n", in->n_files);
        for (int i = 0; i < in->n_files; i++)
            printf("  %-48s %" PRIu64 " tensors, %" PRIu64 " parameters\n", in->files[i].shown,
                   in->files[i].total.tensors, in->files[i].total.params);
    }
    printf("tensors:     %" PRIu64 "\nparameters:  %" PRIu64 "\n", in->total.tensors,
           in->total.params);
    for (int t = 0; t < SDC_DTYPE_COUNT; t++)
        if (in->by[t].tensors)
            printf("  %-5s %" PRIu64 " parameters in %" PRIu64 " tensors, %" PRIu64 " bytes\n",
                   sdc_dtype_name(t), in->by[t].params, in->by[t].tensors, in->by[t].bytes);
    printf("bytes:       %" PRIu64 " (%.2f MiB)\n", in->total.bytes,
           (double)in->total.bytes / (1024.0 * 1024.0));
    if (!in->folder) {
        printf("metadata:    ");
        print_meta_keys(in->files[0].st);
    }
    for (int i = 0; in->folder && i < in->n_files; i++) {
        printf("metadata of %s: ", in->files[i].shown);
        print_meta_keys(in->files[i].st);
    }
    for (int i = 0; list_tensors && i < in->n_files; i++) {
        const sdc_safetensors *st = in->files[i].st;
        if (in->folder) printf("tensors of %s:\n", in->files[i].shown);
        else printf("tensor list:\n");
        for (size_t t = 0; t < sdc_safetensors_count(st); t++) {
            const sdc_st_entry *e = sdc_safetensors_entry(st, t);
            printf("  ");
            put_clean(e->name);
            printf("  %s [", sdc_dtype_name(e->dtype));
            for (int d = 0; d < e->ndim; d++) printf("%s%" PRId64, d ? ", " : "", e->shape[d]);
            printf("]\n");
        }
    }
}

/* ---------------------------------------------------------------- JSON output */

static void json_counts(const counts *c) {
    printf("\"tensors\":%" PRIu64 ",\"parameters\":%" PRIu64 ",\"bytes\":%" PRIu64, c->tensors,
           c->params, c->bytes);
}

static void json_dtypes(const counts *by) {
    printf("\"dtypes\":{");
    for (int t = 0, k = 0; t < SDC_DTYPE_COUNT; t++) {
        if (!by[t].tensors) continue;
        printf("%s\"%s\":{", k++ ? "," : "", sdc_dtype_name(t));
        json_counts(&by[t]);
        printf("}");
    }
    printf("}");
}

static void json_meta(const sdc_safetensors *st) {
    printf("\"metadata\":{");
    for (size_t i = 0; i < sdc_safetensors_meta_count(st); i++) {
        const char *k, *v;
        sdc_safetensors_meta_at(st, i, &k, &v);
        if (i) printf(",");
        cli_json_string(stdout, k);
        printf(":");
        cli_json_string(stdout, v);
    }
    printf("}");
}

static void print_json(const info *in) {
    printf("{\"path\":");
    cli_json_string(stdout, in->path);
    printf(",\"format\":\"%s\",\"layout\":\"%s\",\"components\":[",
           in->folder ? "diffusers-folder" : "safetensors",
           sdc_layout_name(in->layout.layout));
    for (int c = 0, k = 0; c < SDC_COMPONENT_COUNT; c++)
        if (in->layout.has[c]) printf("%s\"%s\"", k++ ? "," : "", sdc_component_name(c));
    printf("],");
    json_counts(&in->total);
    printf(",");
    json_dtypes(in->by);
    if (!in->folder) {
        printf(",");
        json_meta(in->files[0].st);
    }
    printf(",\"files\":[");
    for (int i = 0; i < in->n_files; i++) {
        const info_file *f = &in->files[i];
        printf("%s{\"file\":", i ? "," : "");
        cli_json_string(stdout, f->shown);
        printf(",\"component\":");
        if (f->component >= 0) printf("\"%s\",", sdc_component_name(f->component));
        else printf("null,");
        json_counts(&f->total);
        printf(",");
        json_dtypes(f->by);
        printf(",");
        json_meta(f->st);
        if (list_tensors) {
            printf(",\"tensor_list\":[");
            for (size_t t = 0; t < sdc_safetensors_count(f->st); t++) {
                const sdc_st_entry *e = sdc_safetensors_entry(f->st, t);
                printf("%s{\"name\":", t ? "," : "");
                cli_json_string(stdout, e->name);
                printf(",\"dtype\":\"%s\",\"shape\":[", sdc_dtype_name(e->dtype));
                for (int d = 0; d < e->ndim; d++) printf("%s%" PRId64, d ? "," : "", e->shape[d]);
                printf("]}");
            }
            printf("]");
        }
        printf("}");
    }
    printf("]}\n");
}

/* ---------------------------------------------------------------- dispatch */

typedef enum { KIND_SAFETENSORS, KIND_PNG, KIND_OTHER_IMAGE, KIND_FOLDER } input_kind;

/* Images other than PNG, by their magic bytes: the format's name or NULL. */
static const char *image_format(const unsigned char *sig, ssize_t n) {
    if (n >= 3 && sig[0] == 0xFF && sig[1] == 0xD8 && sig[2] == 0xFF) return "JPEG";
    if (n >= 6 && (!memcmp(sig, "GIF87a", 6) || !memcmp(sig, "GIF89a", 6))) return "GIF";
    if (n >= 12 && !memcmp(sig, "RIFF", 4) && !memcmp(sig + 8, "WEBP", 4)) return "WebP";
    if (n >= 2 && sig[0] == 'B' && sig[1] == 'M') return "BMP";
    if (n >= 4 && (!memcmp(sig, "II*\0", 4) || !memcmp(sig, "MM\0*", 4))) return "TIFF";
    return NULL;
}

static char other_format[8];

/* Folders by stat, files by their first bytes: a PNG starts with its
 * 8-byte signature; anything else is read as safetensors. */
static int kind_of(const char *path, input_kind *kind) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "sdc info: %s: %s\n", path, strerror(errno));
        return EXIT_RUNTIME;
    }
    if (S_ISDIR(sb.st_mode)) {
        *kind = KIND_FOLDER;
        return EXIT_OK;
    }
    if (!S_ISREG(sb.st_mode)) {
        fprintf(stderr, "sdc info: %s: not a regular file or folder\n", path);
        return EXIT_RUNTIME;
    }
    unsigned char sig[12] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "sdc info: %s: cannot open: %s\n", path, strerror(errno));
        return EXIT_RUNTIME;
    }
    ssize_t got = read(fd, sig, sizeof sig);
    close(fd);
    const char *fmt = image_format(sig, got);
    if (fmt) snprintf(other_format, sizeof other_format, "%s", fmt);
    *kind = got >= 8 && memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0 ? KIND_PNG
            : fmt ? KIND_OTHER_IMAGE : KIND_SAFETENSORS;
    return EXIT_OK;
}

/* ---------------------------------------------------------------- PNG */

/* Text from a file: newlines kept (indented), other control bytes shown as '?'. */
static void put_text_block(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n') printf("\n             ");
        else putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
    }
}

static void json_key_str(const char *key, const char *v, int *k) {
    if (!v) return;
    printf("%s\"%s\":", (*k)++ ? "," : "", key);
    cli_json_string(stdout, v);
}

/* The shortest %g form that reads back as the same double (0.3, not 0.29999...). */
static void print_double(const char *prefix, const char *key, double v) {
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    printf("%s\"%s\":%s", prefix, key, buf);
}

/* The A1111 fields of the parameters text, as a JSON object. */
static void json_generation(const char *text) {
    sdc_gen_meta m;
    char *storage;
    sdc_err err = {0};
    int k = 0;
    printf(",\"generation\":{");
    if (sdc_a1111_parse(text, &m, &storage, &err) == SDC_OK) {
        json_key_str("prompt", m.prompt, &k);
        json_key_str("negative_prompt", m.negative_prompt, &k);
        if (m.steps) printf("%s\"steps\":%d", k++ ? "," : "", m.steps);
        json_key_str("sampler", m.sampler, &k);
        if (isfinite(m.cfg_scale)) print_double(k++ ? "," : "", "cfg_scale", m.cfg_scale);
        if (m.has_seed) printf("%s\"seed\":%" PRId64, k++ ? "," : "", m.seed);
        if (m.width) printf("%s\"size\":\"%dx%d\"", k++ ? "," : "", m.width, m.height);
        json_key_str("model_hash", m.model_hash, &k);
        json_key_str("model", m.model, &k);
        if (m.img2img) print_double(k++ ? "," : "", "denoising_strength", m.denoising_strength);
        if (m.clip_skip) printf("%s\"clip_skip\":%d", k++ ? "," : "", m.clip_skip);
        json_key_str("rng", m.rng, &k);
    }
    free(storage);
    printf("}");
}

static int info_png(const char *path, bool json) {
    sdc_png_header h;
    char *text = NULL;
    sdc_err err = {0};
    if (sdc_png_inspect(path, &h, "parameters", &text, &err)) return cli_error(CMD, &err);
    if (json) {
        printf("{\"path\":");
        cli_json_string(stdout, path);
        printf(",\"format\":\"png\",\"width\":%d,\"height\":%d,\"bit_depth\":%d,"
               "\"color_type\":\"%s\",\"interlaced\":%s,\"parameters\":",
               h.width, h.height, h.bit_depth, sdc_png_color_type_name(h.color_type),
               h.interlace ? "true" : "false");
        if (text) cli_json_string(stdout, text);
        else printf("null");
        if (text) json_generation(text);
        printf("}\n");
    } else {
        printf("path:        ");
        put_clean(path);
        printf("\nformat:      PNG image\nsize:        %dx%d\ncolor type:  %s, %d-bit%s\n"
               "parameters:  ", h.width, h.height, sdc_png_color_type_name(h.color_type),
               h.bit_depth, h.interlace ? ", interlaced" : "");
        if (text) put_text_block(text);
        else printf("(none)");
        printf("\n");
    }
    free(text);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "sdc info: cannot write the output: %s\n", strerror(errno));
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

/* A JPEG's size (decoded with the image loader's checks); other formats are
 * named: sdc reads PNG and JPEG only. Either way it is an image, not a
 * checkpoint. */
static int info_other_image(const char *path, bool json) {
    sdc_image im = {0};
    sdc_err err = {0};
    bool jpeg = !strcmp(other_format, "JPEG");
    if (jpeg && sdc_image_load(path, NULL, &im, &err)) {
        fprintf(stderr, "sdc info: %s\n", err.msg);
        return EXIT_RUNTIME;
    }
    if (json) {
        printf("{\"path\":");
        cli_json_string(stdout, path);
        printf(",\"format\":\"%s\",\"image\":true", other_format);
        if (jpeg) printf(",\"width\":%d,\"height\":%d", im.w, im.h);
        printf(",\"parameters\":null}\n");
    } else {
        printf("path:        ");
        put_clean(path);
        printf("\nformat:      %s image%s\n", other_format, jpeg ? "" : " (sdc reads PNG and JPEG only)");
        if (jpeg) printf("size:        %dx%d\nparameters:  (none: only PNGs carry A1111 parameters)\n", im.w, im.h);
    }
    sdc_image_free(&im);
    return EXIT_OK;
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool json = false, cpu = false, devices = false;
    cli_opt opts[] = {
        CLI_JSON(&json),
        {"tensors", 0, CLI_FLAG, &list_tensors, .help = "list every tensor: name, dtype, shape"},
        {"cpu", 0, CLI_FLAG, &cpu, .help = "describe the CPU and its kernels instead of a file"},
        {"devices", 0, CLI_FLAG, &devices, .help = "list the CPU, CUDA and Vulkan devices"},
        CLI_END};
    cli_positional pos = {&path, 1, 0, "FILE"};
    int rc = cli_parse(&spec, opts, argc, argv, &pos);
    if (rc) return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (cpu && path) return cli_usage_error(CMD, "--cpu takes no FILE or DIR ('%s')", path);
    if (cpu) return cmd_info_cpu(json);
    if (devices && path) return cli_usage_error(CMD, "--devices takes no FILE or DIR ('%s')", path);
    if (devices) return cmd_info_devices(json);
    if (!path) return cli_usage_error(CMD, "missing FILE or DIR");
    input_kind kind;
    if ((rc = kind_of(path, &kind))) return rc;
    if (kind == KIND_PNG) return info_png(path, json);
    if (kind == KIND_OTHER_IMAGE) return info_other_image(path, json);

    info in = {.path = path};
    rc = kind == KIND_FOLDER ? gather_folder(&in) : gather_file(&in);
    if (!rc) {
        if (json) print_json(&in);
        else print_text(&in);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "sdc info: cannot write the output: %s\n", strerror(errno));
            rc = EXIT_RUNTIME;
        }
    }
    for (int i = 0; i < in.n_files; i++) sdc_safetensors_close(in.files[i].st);
    return rc;
}
