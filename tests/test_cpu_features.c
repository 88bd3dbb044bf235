/* test_cpu_features.c — the OpenBLAS core choice (src/cpu/cpu_features.c)
 * from feature flags alone, so nothing depends on this machine's CPU; and the
 * sdc command's re-exec (src/cli/blas_select.c): a user's OPENBLAS_CORETYPE
 * is left alone, and a stale pick (pretended through a test hook) is
 * replaced once. */
#include "suites.h"

#include "../src/cpu/cpu_features.h"
#include "../src/cpu/cpu_isa.h"
#include "cli_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sdc_cpu_features cpu(const char *vendor, const char *flags) {
    sdc_cpu_features f;
    memset(&f, 0, sizeof f);
    snprintf(f.vendor, sizeof f.vendor, "%s", vendor);
    f.sse3 = true;
    f.avx = strstr(flags, "avx") != NULL;
    f.fma = f.f16c = f.avx2 = strstr(flags, "avx2") != NULL;
    f.avx512f = f.avx512dq = f.avx512bw = f.avx512vl = f.avx512cd = strstr(flags, "avx512") != NULL;
    f.avx512bf16 = strstr(flags, "bf16") != NULL;
    return f;
}

static const struct {
    const char *vendor, *flags, *openblas_picked, *want_upgrade, *suited;
} cases[] = {
    /* The case of the issue: a Xeon OpenBLAS 0.3.21 does not know. */
    {"GenuineIntel", "avx avx2 avx512", "Prescott", "SkylakeX", "SkylakeX"},
    {"GenuineIntel", "avx avx2 avx512 bf16", "Prescott", "SkylakeX", "SkylakeX"},
    {"GenuineIntel", "avx avx2 avx512", "Haswell", "SkylakeX", "SkylakeX"},
    /* Already as good or better: left alone. */
    {"GenuineIntel", "avx avx2 avx512", "SkylakeX", NULL, "SkylakeX"},
    {"AuthenticAMD", "avx avx2 avx512 bf16", "Cooperlake", NULL, "SkylakeX"},
    {"GenuineIntel", "avx avx2 avx512", "SapphireRapids", NULL, "SkylakeX"},
    {"GenuineIntel", "avx avx2 avx512", "skylakex", NULL, "SkylakeX"}, /* any case */
    /* AVX2 machines: Haswell on Intel, Zen on AMD. */
    {"GenuineIntel", "avx avx2", "Prescott", "Haswell", "Haswell"},
    {"AuthenticAMD", "avx avx2", "Prescott", "Zen", "Zen"},
    {"AuthenticAMD", "avx avx2", "Zen", NULL, "Zen"},
    {"AuthenticAMD", "avx avx2", "Haswell", NULL, "Zen"},       /* same rank: no churn */
    {"AuthenticAMD", "avx avx2", "Bulldozer", "Zen", "Zen"},
    {"GenuineIntel", "avx", "Nehalem", "Sandybridge", "Sandybridge"},
    /* Nothing better to offer. */
    {"GenuineIntel", "", "Prescott", NULL, NULL},
    /* A core name this table does not know (a newer OpenBLAS): trusted. */
    {"GenuineIntel", "avx avx2 avx512", "GraniteRapids", NULL, "SkylakeX"},
    /* No name at all: upgrade. */
    {"GenuineIntel", "avx avx2", "", "Haswell", "Haswell"},
};

START_TEST(core_choice_from_flags) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sdc_cpu_features f = cpu(cases[i].vendor, cases[i].flags);
        const char *up = sdc_blas_core_upgrade(&f, cases[i].openblas_picked);
        const char *suits = sdc_blas_core_for(&f);
        ck_assert_msg((up == NULL) == (cases[i].want_upgrade == NULL) &&
                          (!up || !strcmp(up, cases[i].want_upgrade)),
                      "case %zu (%s, '%s', picked %s): upgrade %s, want %s", i, cases[i].vendor,
                      cases[i].flags, cases[i].openblas_picked, up ? up : "none",
                      cases[i].want_upgrade ? cases[i].want_upgrade : "none");
        ck_assert_msg((suits == NULL) == (cases[i].suited == NULL) &&
                          (!suits || !strcmp(suits, cases[i].suited)),
                      "case %zu: suited %s, want %s", i, suits ? suits : "none",
                      cases[i].suited ? cases[i].suited : "none");
    }
    ck_assert_int_eq(sdc_blas_core_rank("prescott"), 1);
    ck_assert_int_eq(sdc_blas_core_rank("COOPERLAKE"), 5);
    ck_assert_int_eq(sdc_blas_core_rank(NULL), 0);
}
END_TEST

/* Whatever this CPU is, the detected flags are consistent with each other. */
START_TEST(detected_flags_are_consistent) {
    sdc_cpu_features f;
    sdc_cpu_features_detect(&f);
    ck_assert(f.vendor[0] != '\0');
    ck_assert(!f.avx2 || f.avx);
    ck_assert(!f.avx512bw || f.avx512f);
    ck_assert(!f.avx512f || f.avx2);
    char s[256];
    sdc_cpu_features_string(&f, s, sizeof s);
    ck_assert(!f.avx2 || strstr(s, "avx2"));
}
END_TEST

static void clean_env(void) {
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("SDC_BLAS_REEXEC");
    unsetenv("SDC_TEST_BLAS_CORENAME");
}

START_TEST(user_coretype_is_left_alone) {
    clean_env();
    /* Even with a stale pick pretended, the user's choice stands. Prescott
     * runs on every x86-64, so this holds on any machine. */
    setenv("OPENBLAS_CORETYPE", "Prescott", 1);
    setenv("SDC_TEST_BLAS_CORENAME", "Prescott", 1);
    const cli_result *r = cli_run("info --cpu --json");
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_msg(strstr(r->out, "\"openblas_core\": \"Prescott\"") &&
                      strstr(r->out, "\"openblas_core_origin\": \"user\""),
                  "%s", r->out);
    clean_env();
}
END_TEST

/* A stale pick is replaced by what the flags suit, once (the hook stays set
 * in the re-executed process, so a loop would hang here). */
START_TEST(stale_pick_is_replaced_once) {
    clean_env();
    setenv("SDC_TEST_BLAS_CORENAME", "Prescott", 1);
    sdc_cpu_features f;
    sdc_cpu_features_detect(&f);
    const char *want = sdc_blas_core_for(&f);
    const cli_result *r = cli_run("info --cpu --json");
    ck_assert_msg(r->code == 0, "%s", r->err);
    if (want) {
        char core[64];
        snprintf(core, sizeof core, "\"openblas_core\": \"%s\"", want);
        ck_assert_msg(strcasestr(r->out, core) &&
                          strstr(r->out, "\"openblas_core_origin\": \"sdc\"") &&
                          strstr(r->out, "\"openblas_first_pick\": \"Prescott\""),
                      "want %s: %s", want, r->out);
    } else {
        ck_assert_msg(strstr(r->out, "\"openblas_core_origin\": \"openblas\""), "%s", r->out);
    }
    clean_env();
}
END_TEST

/* Nothing pretended: sdc keeps OpenBLAS's pick or improves it, never worse. */
START_TEST(own_pick_never_gets_worse) {
    clean_env();
    const cli_result *r = cli_run("info --cpu --json");
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_msg(!strstr(r->out, "\"openblas_core_origin\": \"user\""), "%s", r->out);
}
END_TEST

/* The kernel path from SDC_CPU_PATH and the flags: auto takes AVX-512 when
 * there, a request the processor cannot meet falls back to AVX2 and says so. */
START_TEST(kernel_path_choice) {
    sdc_cpu_features v3 = cpu("AuthenticAMD", "avx avx2"), v4 = cpu("GenuineIntel", "avx avx2 avx512");
    static const struct {
        const char *request;
        bool has512;
        sdc_cpu_isa want;
        bool fell_back;
    } rows[] = {
        {NULL, true, SDC_CPU_ISA_AVX512, false},     {"", false, SDC_CPU_ISA_AVX2, false},
        {"auto", true, SDC_CPU_ISA_AVX512, false},   {"auto", false, SDC_CPU_ISA_AVX2, false},
        {"avx2", true, SDC_CPU_ISA_AVX2, false},     {"avx2", false, SDC_CPU_ISA_AVX2, false},
        {"avx512", true, SDC_CPU_ISA_AVX512, false}, {"avx512", false, SDC_CPU_ISA_AVX2, true},
        {"AVX-512!", true, SDC_CPU_ISA_AVX512, true}, {"sse", false, SDC_CPU_ISA_AVX2, true},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        sdc_cpu_isa_choice c = sdc_cpu_isa_decide(rows[i].request, rows[i].has512 ? &v4 : &v3);
        ck_assert_msg(c.isa == rows[i].want && c.fell_back == rows[i].fell_back,
                      "request %s, avx512 %d: got %s (fell back %d)",
                      rows[i].request ? rows[i].request : "(unset)", rows[i].has512,
                      sdc_cpu_isa_name(c.isa), c.fell_back);
        ck_assert(c.note[0] != '\0');
    }
    /* AVX-512 F alone (no BW/VL/DQ) is not enough for the kernels. */
    v4.avx512bw = false;
    ck_assert(!sdc_cpu_isa_avx512_ok(&v4));
    ck_assert_int_eq(sdc_cpu_isa_decide("avx512", &v4).isa, SDC_CPU_ISA_AVX2);
}
END_TEST

/* sdc info --cpu --json names the path that runs, and SDC_CPU_PATH=avx2 is obeyed. */
START_TEST(info_reports_kernel_path) {
    const char *was = getenv("SDC_CPU_PATH");
    char saved[64];
    snprintf(saved, sizeof saved, "%s", was ? was : "");
    setenv("SDC_CPU_PATH", "avx2", 1);
    const cli_result *r = cli_run("info --cpu --json");
    if (was) setenv("SDC_CPU_PATH", saved, 1);
    else unsetenv("SDC_CPU_PATH");
    ck_assert_msg(r->code == 0, "sdc info --cpu --json: %s", r->err);
    ck_assert_msg(strstr(r->out, "\"cpu_path\": \"avx2\"") &&
                      strstr(r->out, "\"cpu_path_request\": \"avx2\"") &&
                      strstr(r->out, "\"cpu_path_fell_back\": false"),
                  "%s", r->out);
}
END_TEST

Suite *suite_cpu(void) {
    Suite *s = suite_create("cpu");
    TCase *tc = tcase_create("blas_core");
    tcase_add_test(tc, core_choice_from_flags);
    tcase_add_test(tc, detected_flags_are_consistent);
    tcase_add_test(tc, user_coretype_is_left_alone);
    tcase_add_test(tc, stale_pick_is_replaced_once);
    tcase_add_test(tc, own_pick_never_gets_worse);
    suite_add_tcase(s, tc);
    TCase *kp = tcase_create("kernel_path");
    tcase_add_test(kp, kernel_path_choice);
    tcase_add_test(kp, info_reports_kernel_path);
    suite_add_tcase(s, kp);
    return s;
}
