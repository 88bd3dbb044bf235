/* cmd_compare.c — sdc compare A B: max-abs and relative-L2 error per tensor
 * name the two safetensors files share; exit 1 when any is over --tol or a
 * name is missing from B. */
#include "cli.h"

#include <math.h>
#include <string.h>

static const cli_spec spec = {
    "compare", "A.safetensors B.safetensors [--tol X] [--pair NAME=NAME_IN_B] [--json]",
    "For every tensor of A, prints max-abs and relative-L2 error of A against B\n"
    "(||A-B|| / ||B||). Exit 1 if any tensor's relative-L2 error exceeds X\n"
    "(default 1e-4), the shapes differ, or a tensor of A is missing from B.", NULL};

int cmd_compare(int argc, char **argv) {
    const char *paths[2] = {NULL, NULL}, *pair = NULL;
    double tol = 1e-4;
    bool json = false;
    cli_opt opts[] = {
        {"tol", 0, CLI_FLOAT, &tol, .lo = 0, .hi = 1e30, .metavar = "X",
         .help = "relative-L2 tolerance (default 1e-4)"},
        {"pair", 0, CLI_STRING, &pair, .metavar = "A_NAME=B_NAME",
         .help = "compare only tensor A_NAME of A with tensor B_NAME of B"},
        CLI_JSON(&json),
        CLI_END};
    cli_positional pos = {paths, 2, 0, "A B"};
    int rc = cli_parse(&spec, opts, argc, argv, &pos);
    if (rc) return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (pos.n_pos != 2) return cli_usage_error("compare", "needs two files");
    char a_name[256] = "";
    const char *b_name = NULL;
    if (pair) {
        const char *eq = strchr(pair, '=');
        if (!eq || eq == pair || !eq[1] || eq - pair >= (long)sizeof a_name)
            return cli_usage_error("compare", "--pair must be A_NAME=B_NAME (got '%s')", pair);
        snprintf(a_name, sizeof a_name, "%.*s", (int)(eq - pair), pair);
        b_name = eq + 1;
    }
    sdc_err err = {0};
    sdc_safetensors *a = sdc_safetensors_open(paths[0], &err), *b = NULL;
    if (!a || !(b = sdc_safetensors_open(paths[1], &err))) {
        sdc_safetensors_close(a);
        return cli_error("compare", &err);
    }
    int bad = 0;
    if (json) printf("{\"tolerance\": %g, \"tensors\": [", tol);
    size_t shown = 0;
    for (size_t i = 0; i < sdc_safetensors_count(a); i++) {
        const sdc_st_entry *ea = sdc_safetensors_entry(a, i);
        if (pair && strcmp(ea->name, a_name)) continue;
        const sdc_st_entry *eb = sdc_safetensors_find(b, pair ? b_name : ea->name);
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
            printf("%s{\"name\": ", shown++ ? ", " : "");
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
    if (pair && !sdc_safetensors_find(a, a_name)) {
        bad++;
        fprintf(stderr, "sdc compare: %s: no tensor '%s'\n", paths[0], a_name);
    }
    if (json) printf("], \"failed\": %d}\n", bad);
    sdc_safetensors_close(a);
    sdc_safetensors_close(b);
    if (bad) fprintf(stderr, "sdc compare: %d tensor(s) over tolerance %g or not comparable\n",
                     bad, tol);
    return bad ? EXIT_RUNTIME : EXIT_OK;
}
