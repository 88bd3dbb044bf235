/* cmd_compare.c — sdc compare A B: max-abs and relative-L2 error per tensor
 * name the two safetensors files share; exit 1 when any is over --tol or a
 * name is missing from B. */
#include "cli.h"

#include <math.h>
#include <string.h>

static const char *usage =
    "usage: sdc compare A.safetensors B.safetensors [--tol X] [--json]\n\n"
    "For every tensor of A, prints max-abs and relative-L2 error of A against B\n"
    "(||A-B|| / ||B||). Exit 1 if any tensor's relative-L2 error exceeds X\n"
    "(default 1e-4), the shapes differ, or a tensor of A is missing from B.\n";

int cmd_compare(int argc, char **argv) {
    const char *paths[2] = {NULL, NULL};
    double tol = 1e-4;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--tol") == 0) {
            if (i + 1 >= argc) return cli_usage_error("compare", "--tol needs a value");
            if (!cli_parse_float("compare", "--tol", argv[++i], 0, 1e30, &tol)) return EXIT_USAGE;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("compare", "unknown option '%s'", argv[i]);
        } else if (!paths[0] || !paths[1]) {
            paths[paths[0] ? 1 : 0] = argv[i];
        } else {
            return cli_usage_error("compare", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!paths[1]) return cli_usage_error("compare", "needs two files");
    sdc_err err = {0};
    sdc_safetensors *a = sdc_safetensors_open(paths[0], &err), *b = NULL;
    if (!a || !(b = sdc_safetensors_open(paths[1], &err))) {
        sdc_safetensors_close(a);
        return cli_error("compare", &err);
    }
    int bad = 0;
    if (json) printf("{\"tolerance\": %g, \"tensors\": [", tol);
    for (size_t i = 0; i < sdc_safetensors_count(a); i++) {
        const sdc_st_entry *ea = sdc_safetensors_entry(a, i);
        const sdc_st_entry *eb = sdc_safetensors_find(b, ea->name);
        sdc_compare_result r = {INFINITY, INFINITY, 0};
        const char *problem = NULL;
        sdc_tensor *ta = NULL, *tb = NULL;
        if (!eb) {
            problem = "missing from B";
        } else if (!(ta = sdc_safetensors_load(a, ea->name, SDC_F32, &err)) ||
                   !(tb = sdc_safetensors_load(b, eb->name, SDC_F32, &err)) ||
                   sdc_compare(ta, tb, &r, &err)) {
            problem = err.msg;
        }
        bool over = problem || !(r.rel_l2 <= tol);
        bad += over;
        if (json) {
            printf("%s{\"name\": ", i ? ", " : "");
            cli_json_string(stdout, ea->name);
            if (problem) {
                printf(", \"error\": ");
                cli_json_string(stdout, problem);
            } else {
                printf(", \"max_abs\": %.6g, \"rel_l2\": %.6g", r.max_abs, r.rel_l2);
            }
            printf(", \"ok\": %s}", over ? "false" : "true");
        } else if (problem) {
            printf("%-48s %s\n", ea->name, problem);
        } else {
            printf("%-48s max-abs %-11.4g rel-L2 %-11.4g %s\n", ea->name, r.max_abs, r.rel_l2,
                   over ? "OVER" : "ok");
        }
        sdc_tensor_free(ta);
        sdc_tensor_free(tb);
    }
    if (json) printf("], \"failed\": %d}\n", bad);
    sdc_safetensors_close(a);
    sdc_safetensors_close(b);
    if (bad) fprintf(stderr, "sdc compare: %d tensor(s) over tolerance %g or not comparable\n",
                     bad, tol);
    return bad ? EXIT_RUNTIME : EXIT_OK;
}
