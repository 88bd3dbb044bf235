/* fuzz_checkpoint.c — libFuzzer target: checkpoint opening and parameter
 * binding. sdc_checkpoint_open only takes a path (it stats it and mmaps the
 * file; the SD 1.x config inference is static), so each input is written to
 * one per-process file on tmpfs (/dev/shm, or $SDC_FUZZ_TMPDIR) and opened
 * from there: sdc_detect_layout, sdc_checkpoint_open and, when that accepts
 * the file, sdc_clip_text_load / sdc_vae_load / sdc_unet_load onto a CPU
 * backend created once. The inputs are full safetensors files (see
 * fuzz_safetensors for the container itself). */
#include "models/checkpoint.h"
#include "sdc_ops.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char path[256];
static sdc_backend *be;

static void cleanup(void) { unlink(path); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dir = getenv("SDC_FUZZ_TMPDIR");
    if (!dir) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof path, "%s/sdc-fuzz-checkpoint-%d.safetensors", dir, (int)getpid());
    atexit(cleanup);
    sdc_err err = {0};
    be = sdc_cpu_backend_create(&err);
    if (!be) {
        fprintf(stderr, "fuzz_checkpoint: %s\n", err.msg);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    close(fd);
    if (off != size) return 0;

    sdc_err err = {0};
    sdc_layout_info info;
    (void)sdc_detect_layout(path, &info, &err);

    sdc_err e2 = {0};
    sdc_checkpoint *ck = sdc_checkpoint_open(path, &e2);
    if (!ck) return 0;
    {
        sdc_clip_text m;
        sdc_err e3 = {0};
        if (sdc_clip_text_load(&m, ck, be, &e3) == SDC_OK) sdc_clip_text_free(&m);
    }
    {
        sdc_vae m;
        sdc_err e3 = {0};
        if (sdc_vae_load(&m, ck, be, &e3) == SDC_OK) sdc_vae_free(&m);
    }
    {
        sdc_unet m;
        sdc_err e3 = {0};
        if (sdc_unet_load(&m, ck, be, &e3) == SDC_OK) sdc_unet_free(&m);
    }
    sdc_checkpoint_close(ck);
    return 0;
}
