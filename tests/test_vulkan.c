/* test_vulkan.c — the Vulkan backend on whatever device is present (in CI:
 * Mesa's lavapipe, on the CPU), with VK_LAYER_KHRONOS_validation on: any
 * validation error fails the test that caused it.
 *   ops     every forward row of the op table (tests/op_cases.c), and slice's, against the
 *           double reference, F32 activations at the rows' reduced shapes
 *           (san_shape, where a row has one: lavapipe runs ~1 GFLOP/s), and
 *           F16/BF16 activations on the rows without one (the edge rows and
 *           the small SD shapes); each run prints max-abs and rel-L2;
 *   checks  a bad embedding id, host tensors refused, memory returned,
 *           hostile device pointers, device listing;
 *   models  (test_vulkan_models.c) the tiny model against the CPU backend.
 * Without a device, or in a build without Vulkan, the suite runs one test
 * that prints "vulkan: SKIPPED — <reason>": never a silent pass. The device
 * is probed in a forked child, as Check forks every test. */
#include "suites.h"
#include "test_vulkan.h"

#include "op_cases.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

vk_probe_result vk_probed;

/* Creates (and destroys) a Vulkan backend in a child process. */
static vk_probe_result probe(void) {
    vk_probe_result r = {SDC_ERR_UNSUPPORTED, ""};
    int fd[2];
    if (pipe(fd) != 0) {
        snprintf(r.msg, sizeof r.msg, "probe: pipe failed");
        return r;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        vk_probe_result c = {SDC_OK, ""};
        sdc_err err = {0};
        sdc_backend *be = sdc_vulkan_backend_create(-1, &err);
        sdc_vulkan_info info;
        if (!be) {
            c.code = err.code;
            snprintf(c.msg, sizeof c.msg, "%s", err.msg);
        } else if (sdc_vulkan_info_get(be, &info, &err) == SDC_OK) {
            snprintf(c.msg, sizeof c.msg, "%.100s (%s, Vulkan %u.%u, %.60s), validation %s",
                     info.dev.name, info.dev.type, info.dev.api_major, info.dev.api_minor,
                     info.dev.driver, info.validation ? "on" : "OFF");
        }
        sdc_backend_destroy(be);
        ssize_t w = write(fd[1], &c, sizeof c);
        _exit(w == (ssize_t)sizeof c ? 0 : 1);
    }
    close(fd[1]);
    if (pid < 0) {
        close(fd[0]);
        snprintf(r.msg, sizeof r.msg, "probe: fork failed");
        return r;
    }
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = read(fd[0], (char *)&r + got, sizeof r - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got != sizeof r) {
        r.code = SDC_ERR_DEVICE;
        snprintf(r.msg, sizeof r.msg, "probe: the child died (status %d) creating the backend",
                 status);
    }
    return r;
}

START_TEST(no_device_skips_visibly) {
    printf("vulkan: SKIPPED — %s\n", vk_probed.msg);
    fflush(stdout);
    /* Only "no device / no Vulkan build" may skip; a broken driver fails. */
    ck_assert_msg(vk_probed.code == SDC_ERR_UNSUPPORTED, "vulkan backend creation failed: %s: %s",
                  sdc_status_name(vk_probed.code), vk_probed.msg);
    ck_assert(vk_probed.msg[0] != '\0');
}
END_TEST

sdc_backend *vk_test_backend(void) {
    sdc_err err = {0};
    sdc_backend *be = sdc_vulkan_backend_create(-1, &err);
    ck_assert_msg(be, "vulkan backend: %s", err.msg);
    return be;
}

int vk_validation_errors(sdc_backend *be, char *first, size_t cap) {
    sdc_vulkan_info info;
    sdc_err err = {0};
    ck_assert_int_eq(sdc_vulkan_info_get(be, &info, &err), SDC_OK);
    if (first && cap) snprintf(first, cap, "%s", info.first_validation_error);
    return info.validation_errors;
}

void vk_assert_no_validation_errors(sdc_backend *be, const char *what) {
    char first[512];
    int n = vk_validation_errors(be, first, sizeof first);
    ck_assert_msg(n == 0, "%s: %d validation errors; the first: %s", what, n, first);
}

/* ---------------------------------------------------------------- ops */

/* Half-precision bounds {rel-L2, max-abs}, derived as test_cuda.c's are: the
 * inputs are made in the activation dtype, so the error is the output's own
 * rounding (F16: relative 2^-11, RMS ~3e-4) plus F32 weights meeting F16
 * activations. The shaders compute in F32 from the stored values and round
 * once on store, so these are the CUDA bounds; BF16 gets 8x. "lavapipe:" is
 * the worst rel-L2 / max-abs over the op's rows (F16; BF16), Mesa 22.3.6,
 * 2026-12-04. F32 rows keep the CPU table's bounds (tests/op_cases.c); the
 * worst F32 there: conv2d 1.6e-6 / 1.7e-5, attention 1.1e-6 / 8.4e-5 (the
 * x-scaled row), timestep 7.7e-6 / 5.3e-5, every other op below 6e-7 / 7e-6. */
static const op_tol half_tol[SDC_OP_COUNT] = {
    [SDC_OP_CONV2D] = {2e-3, 1.5e-2}, /* lavapipe: 2.2e-4 / 1.9e-3; 2.0e-3 / 1.6e-2 */
    [SDC_OP_LINEAR] = {2e-3, 1.5e-2}, /* lavapipe: 2.2e-4 / 1.9e-3; 1.7e-3 / 1.6e-2 */
    [SDC_OP_GROUP_NORM] = {1e-3, 4e-3}, /* lavapipe: 2.4e-4 / 1.9e-3; 1.7e-3 / 1.5e-2 */
    [SDC_OP_LAYER_NORM] = {1e-3, 4e-3}, /* lavapipe: 2.2e-4 / 9.8e-4; 2.1e-3 / 7.8e-3 */
    [SDC_OP_ATTENTION] = {2e-3, 4e-3}, /* lavapipe: 2.5e-4 / 7.6e-3 (x-scaled row); 1.9e-3 / 6.0e-2 */
    [SDC_OP_SOFTMAX] = {1e-3, 5e-4}, /* lavapipe: 2.1e-4 / 2.4e-4; 1.7e-3 / 1.9e-3 */
    [SDC_OP_GELU] = {1e-3, 8e-3}, /* lavapipe: 1.7e-4 / 9.8e-4; 1.3e-3 / 7.8e-3 */
    [SDC_OP_QUICK_GELU] = {1e-3, 8e-3}, /* lavapipe: 4.4e-4 / 1.9e-3; 3.0e-3 / 7.7e-3 */
    [SDC_OP_GEGLU] = {1e-3, 3.2e-2}, /* lavapipe: 3.2e-4 / 1.6e-2; 1.7e-3 / 1.2e-1 */
    [SDC_OP_SILU] = {1e-3, 8e-3}, /* lavapipe: 2.1e-4 / 2.7e-3; 1.7e-3 / 1.6e-2 */
    [SDC_OP_ADD] = {1e-3, 1.6e-2}, /* lavapipe: 2.9e-4 / 3.9e-3; 2.3e-3 / 3.1e-2 */
    [SDC_OP_MUL] = {1e-3, 1.6e-2}, /* lavapipe: 2.1e-4 / 3.9e-3; 1.7e-3 / 3.1e-2 */
    [SDC_OP_UPSAMPLE2X] = {0, 0}, /* lavapipe: exact */
    [SDC_OP_CONCAT] = {0, 0}, /* lavapipe: exact */
    [SDC_OP_TIMESTEP_EMBED] = {1e-3, 1e-3}, /* lavapipe: 1.9e-4 / 2.6e-4; 2.0e-3 / 2.0e-3 */
    [SDC_OP_EMBEDDING] = {1e-3, 4e-3}, /* lavapipe: 3.4e-4 / 1.1e-3; 2.4e-3 / 1.6e-2 */
    [SDC_OP_CONVERT] = {0, 0}, /* lavapipe: exact (the row's own dtypes) */
    [SDC_OP_TRANSPOSE] = {0, 0}, /* lavapipe: exact */
    [SDC_OP_SLICE] = {0, 0}, /* lavapipe: exact */
};

/* Row c's bound at activation dtype act (F32: the CPU table's own). Rows
 * with scaled inputs have proportionally larger outputs. */
static op_tol tol_for(const op_case *c, sdc_dtype act) {
    if (act == SDC_F32 || c->op.kind == SDC_OP_CONVERT) return op_case_tol(c);
    op_tol t = half_tol[c->op.kind];
    sdc_op_kind k = c->op.kind;
    bool scales = k == SDC_OP_GELU || k == SDC_OP_QUICK_GELU || k == SDC_OP_SILU ||
                  k == SDC_OP_GEGLU || k == SDC_OP_ADD || k == SDC_OP_MUL || k == SDC_OP_ATTENTION;
    if (scales && fabs(c->xscale) > 1) t.max_abs *= fabs(c->xscale);
    if (act == SDC_BF16) {
        t.rel_l2 *= 8;
        t.max_abs *= 8;
    }
    return t;
}

/* Runs one row at one activation dtype; prints it; returns whether it passed. */
static bool run_row(sdc_backend *be, const op_case *c, sdc_dtype act, uint64_t seed) {
    sdc_err err = {0};
    op_opts o = {.seed = seed, .act = act, .reduced = true};
    op_inst in;
    memset(&in, 0, sizeof in);
    op_error e = {0};
    sdc_status s = op_inst_build(&in, c, &o, be, &err);
    if (!s) s = op_inst_exec(&in, &err);
    if (!s) s = op_inst_check(&in, &e, &err);
    char shape[96] = "?", first[512];
    op_inst_shape(&in, shape, sizeof shape);
    op_inst_free(&in);
    int verrs = vk_validation_errors(be, first, sizeof first);
    op_tol t = tol_for(c, act);
    bool pass = !s && e.rel_l2 <= t.rel_l2 && e.max_abs <= t.max_abs && !e.nonfinite && !verrs;
    const char *dt = sdc_dtype_name(act);
    if (s)
        printf("vulkan: %-34s %-4s %-20s %s: %s  FAIL\n", c->name, dt, shape, sdc_status_name(s),
               err.msg);
    else
        printf("vulkan: %-34s %-4s %-20s max_abs %.3g (tol %.3g)  rel_l2 %.3g (tol %.3g)%s\n",
               c->name, dt, shape, e.max_abs, t.max_abs, e.rel_l2, t.rel_l2, pass ? "" : "  FAIL");
    if (!s && !pass && !verrs)
        printf("vulkan:   worst at %zu: got %.9g, want %.9g; %zu non-finite mismatches\n", e.worst,
               e.worst_got, e.worst_ref, e.nonfinite);
    if (verrs) printf("vulkan:   %d validation errors; the first: %s\n", verrs, first);
    fflush(stdout);
    return pass;
}

static uint64_t seed;

/* $SDC_VULKAN_OPS_CASE: only rows whose name contains it. */
static bool selected(const char *name) {
    const char *only = getenv("SDC_VULKAN_OPS_CASE");
    return !only || !*only || strstr(name, only);
}

/* Loop index = op kind. F32 on every row (at san_shape where the row has
 * one); F16 and BF16 on the rows without a san_shape (already small). */
START_TEST(op_conformance) {
    sdc_op_kind kind = (sdc_op_kind)_i;
    sdc_backend *be = vk_test_backend();
    if (!sdc_backend_supports(be, kind, SDC_F32)) {
        int rows = 0;
        for (size_t i = 0; i < op_case_count; i++) rows += op_cases[i].op.kind == kind;
        if (rows)
            printf("vulkan: %-34s SKIPPED — not implemented by this backend (%d rows)\n",
                   sdc_op_name(kind), rows);
        fflush(stdout);
        sdc_backend_destroy(be);
        return;
    }
    int failed = 0, ran = 0;
    for (size_t i = 0; i < op_case_count; i++) {
        const op_case *c = &op_cases[i];
        if (c->op.kind != kind || !selected(c->name)) continue;
        static const sdc_dtype acts[] = {SDC_F32, SDC_F16, SDC_BF16};
        for (int a = 0; a < 3; a++) {
            if (a > 0 && (kind == SDC_OP_CONVERT || c->san_shape[0])) break;
            failed += !run_row(be, c, acts[a], seed);
            ran++;
        }
    }
    vk_assert_no_validation_errors(be, sdc_op_name(kind));
    sdc_backend_destroy(be);
    ck_assert_msg(ran > 0 || getenv("SDC_VULKAN_OPS_CASE"), "no rows for %s", sdc_op_name(kind));
    ck_assert_msg(failed == 0, "%s: %d of %d runs failed (seed %llu; lines above)",
                  sdc_op_name(kind), failed, ran, (unsigned long long)seed);
}
END_TEST

/* ---------------------------------------------------------------- checks */

static sdc_tensor dev_tensor(sdc_backend *be, sdc_dtype dt, int ndim, const int64_t *shape,
                             const void *host) {
    sdc_tensor t;
    sdc_err err = {0};
    ck_assert_int_eq(sdc_tensor_init(&t, dt, ndim, shape, NULL, &err), SDC_OK);
    t.data = be->alloc(be, sdc_tensor_nbytes(&t));
    ck_assert_ptr_nonnull(t.data);
    t.device = be->device;
    if (host) ck_assert_int_eq(be->upload(be, t.data, host, sdc_tensor_nbytes(&t), &err), SDC_OK);
    return t;
}

START_TEST(embedding_bad_id_is_reported) {
    sdc_backend *be = vk_test_backend();
    static const int32_t bad[][3] = {{0, 10, 1}, {2, -1, 3}};
    float table[40];
    for (int j = 0; j < 40; j++) table[j] = (float)j + 1;
    sdc_tensor tab = dev_tensor(be, SDC_F32, 2, (const int64_t[]){10, 4}, table);
    sdc_tensor y = dev_tensor(be, SDC_F32, 2, (const int64_t[]){3, 4}, NULL);
    for (int i = 0; i < 2; i++) {
        sdc_tensor ids = dev_tensor(be, SDC_I32, 1, (const int64_t[]){3}, bad[i]);
        sdc_op op = {.kind = SDC_OP_EMBEDDING, .src = {&ids, &tab}, .dst = &y};
        sdc_err err = {0};
        sdc_status s = sdc_op_run(be, &op, &err);
        printf("vulkan: bad id: %s\n", err.msg);
        ck_assert_int_eq(s, SDC_ERR_ARG);
        ck_assert_msg(strstr(err.msg, i == 0 ? "id 10 at position 1" : "id -1 at position 1"),
                      "message '%s'", err.msg);
        be->free(be, ids.data);
    }
    int32_t good[3] = {9, 0, 4};
    sdc_tensor ids = dev_tensor(be, SDC_I32, 1, (const int64_t[]){3}, good);
    sdc_op op = {.kind = SDC_OP_EMBEDDING, .src = {&ids, &tab}, .dst = &y};
    sdc_err err = {0};
    ck_assert_msg(sdc_op_run(be, &op, &err) == SDC_OK, "%s", err.msg);
    float out[12];
    ck_assert_int_eq(be->download(be, out, y.data, sizeof out, &err), SDC_OK);
    ck_assert(out[0] == 37 && out[4] == 1 && out[11] == 20);
    be->free(be, ids.data);
    be->free(be, tab.data);
    be->free(be, y.data);
    vk_assert_no_validation_errors(be, "embedding checks");
    sdc_backend_destroy(be);
}
END_TEST

/* Memory is returned; host tensors and pointers the backend never handed
 * out are refused with a message, not dereferenced. */
START_TEST(memory_and_hostile_pointers) {
    sdc_backend *be = vk_test_backend();
    sdc_err err = {0};
    sdc_vulkan_info before, mid, after;
    ck_assert_int_eq(sdc_vulkan_info_get(be, &before, &err), SDC_OK);
    float h[1000];
    for (int i = 0; i < 1000; i++) h[i] = (float)i * 0.25f;
    sdc_tensor t = dev_tensor(be, SDC_F32, 1, (const int64_t[]){1000}, h);
    ck_assert_uint_eq((uintptr_t)t.data % 64, 0);
    ck_assert_int_eq(sdc_vulkan_info_get(be, &mid, &err), SDC_OK);
    ck_assert_uint_ge(mid.in_use_bytes, before.in_use_bytes + 4000);
    /* A copy inside the allocation at an offset, and one past its end. */
    float back[10];
    ck_assert_int_eq(be->download(be, back, (char *)t.data + 40, sizeof back, &err), SDC_OK);
    ck_assert(back[0] == 2.5f && back[9] == 4.75f);
    ck_assert_int_eq(be->download(be, back, (char *)t.data + 3990, sizeof back, &err), SDC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "past its allocation"), "%s", err.msg);
    ck_assert_int_eq(be->download(be, back, h, sizeof back, &err), SDC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "not device memory"), "%s", err.msg);
    ck_assert_ptr_null(be->alloc(be, SIZE_MAX)); /* refused, not wrapped to a small buffer */
    be->free(be, h); /* not ours: ignored */
    be->free(be, t.data);
    ck_assert_int_eq(sdc_vulkan_info_get(be, &after, &err), SDC_OK);
    ck_assert_uint_eq(after.in_use_bytes, before.in_use_bytes);
    ck_assert_int_eq(be->synchronize(be, &err), SDC_OK);
    /* Host tensors are refused before any dispatch. */
    float x[4] = {1, 2, 3, 4}, y[4];
    sdc_tensor hx, hy;
    sdc_tensor_init(&hx, SDC_F32, 1, (const int64_t[]){4}, x, NULL);
    sdc_tensor_init(&hy, SDC_F32, 1, (const int64_t[]){4}, y, NULL);
    sdc_op op = {.kind = SDC_OP_SILU, .src = {&hx}, .dst = &hy};
    ck_assert_int_eq(sdc_op_run(be, &op, &err), SDC_ERR_ARG);
    ck_assert(strstr(err.msg, "another device"));
    /* Backward ops are not implemented: refused, not crashed. */
    ck_assert(!sdc_backend_supports(be, SDC_OP_LINEAR_BACKWARD, SDC_F32));
    printf("vulkan: %s; in use %zu -> %zu -> %zu bytes, peak %zu\n", after.dev.name,
           before.in_use_bytes, mid.in_use_bytes, after.in_use_bytes, after.peak_bytes);
    vk_assert_no_validation_errors(be, "memory checks");
    sdc_backend_destroy(be);
}
END_TEST

START_TEST(devices_are_listed) {
    sdc_vulkan_device_info d[SDC_VULKAN_MAX_DEVICES];
    int n = 0;
    sdc_err err = {0};
    ck_assert_msg(sdc_vulkan_list_devices(d, SDC_VULKAN_MAX_DEVICES, &n, &err) == SDC_OK, "%s",
                  err.msg);
    ck_assert_int_ge(n, 1);
    for (int i = 0; i < n; i++)
        printf("vulkan: device %d: %s (%s) %s\n", i, d[i].name, d[i].type,
               d[i].usable ? "usable" : d[i].why);
    /* An index past the devices is an argument error, not a crash. */
    sdc_backend *be = sdc_vulkan_backend_create(n + 3, &err);
    ck_assert_ptr_null(be);
    ck_assert_int_eq(err.code, SDC_ERR_ARG);
    printf("vulkan: device %d: %s\n", n + 3, err.msg);
    /* $SDC_VULKAN_DEVICE picks the device when the index is -1; junk is refused. */
    setenv("SDC_VULKAN_DEVICE", "1x", 1);
    ck_assert_ptr_null(sdc_vulkan_backend_create(-1, &err));
    ck_assert_int_eq(err.code, SDC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "SDC_VULKAN_DEVICE"), "%s", err.msg);
    char last[16];
    snprintf(last, sizeof last, "%d", n - 1);
    setenv("SDC_VULKAN_DEVICE", last, 1);
    be = sdc_vulkan_backend_create(-1, &err);
    ck_assert_msg(be, "%s", err.msg);
    sdc_vulkan_info info;
    ck_assert_int_eq(sdc_vulkan_info_get(be, &info, &err), SDC_OK);
    ck_assert_int_eq(info.device, n - 1);
    sdc_backend_destroy(be);
    unsetenv("SDC_VULKAN_DEVICE");
}
END_TEST

/* ---------------------------------------------------------------- suite */

Suite *suite_vulkan(void) {
    Suite *s = suite_create("vulkan");
    const char *only = getenv("CK_RUN_SUITE");
    if (only && strcmp(only, "vulkan")) return s; /* another suite is selected: no probe */
    /* Under ASan, LeakSanitizer reports allocations made by lavapipe's
     * JIT-compiled shader code at exit (frames in no module, so no
     * suppression can name them), failing every test that ran a shader. The
     * suite runs there only with leak checking off, and says so otherwise. */
    const char *asan = getenv("ASAN_OPTIONS");
    if (OP_SANITIZED && !(asan && strstr(asan, "detect_leaks=0"))) {
        vk_probed.code = SDC_ERR_UNSUPPORTED;
        snprintf(vk_probed.msg, sizeof vk_probed.msg,
                 "under ASan, lavapipe's JIT-compiled shaders leak into LeakSanitizer's report; "
                 "run it with ASAN_OPTIONS=detect_leaks=0 CK_RUN_SUITE=vulkan");
        TCase *tc = tcase_create("skip");
        tcase_add_test(tc, no_device_skips_visibly);
        suite_add_tcase(s, tc);
        return s;
    }
    /* Validation on, unless the caller set it (to compare timings without). */
    setenv("SDC_VULKAN_VALIDATE", "1", 0);
    vk_probed = probe();
    if (vk_probed.code != SDC_OK) {
        TCase *tc = tcase_create("skip");
        tcase_add_test(tc, no_device_skips_visibly);
        suite_add_tcase(s, tc);
        return s;
    }
    seed = op_seed();
    printf("vulkan: %s; seed %llu (rerun with SDC_TEST_SEED=%llu)\n", vk_probed.msg,
           (unsigned long long)seed, (unsigned long long)seed);
    TCase *ops = tcase_create("ops");
    tcase_set_timeout(ops, 900);
    tcase_add_loop_test(ops, op_conformance, 0, SDC_OP_COUNT);
    suite_add_tcase(s, ops);
    TCase *checks = tcase_create("checks");
    tcase_add_test(checks, embedding_bad_id_is_reported);
    tcase_add_test(checks, memory_and_hostile_pointers);
    tcase_add_test(checks, devices_are_listed);
    suite_add_tcase(s, checks);
    vk_add_model_tests(s);
    return s;
}
