/* cmd_manifest.c — sdc manifest merge: joins the shard manifests of an
 * `sdc augment` output folder into manifest.jsonl in plan order, after
 * checking against plan.json that no item is missing or doubled. */
#include "cli.h"
#include "preflight.h"

#include "../augment/augment.h"

#include "../core/atomic_file.h"
#include "../image/image.h"

#include <cJSON.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>

static const cli_spec spec = {
    "manifest", "merge --out DIR\n"
    "       sdc manifest preview DATASET DIR [DIR...] -o GRID.png [--classes a,b]",
    "merge combines DIR/manifest.shard-K-of-N.jsonl into DIR/manifest.jsonl (plan\n"
    "order) and checks them against DIR/plan.json: exit 1 naming missing or doubled\n"
    "items. preview draws one contact sheet over several sdc augment output folders\n"
    "(one per method, say): per class the real images of DATASET, each beside its\n"
    "augmentations from every folder, then the txt2img and retrieved ones; every tile\n"
    "labelled with its method, strength or prompt, and seed.", NULL};

typedef struct { char *line; int count; } slot;
typedef struct { const char *name; int index; } entry;

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static int merge(const char *out) {
    sdc_err err = {0};
    char path[4096];
    uint8_t *buf = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/plan.json", out);
    if (sdc_read_file_capped(path, (size_t)1 << 30, &buf, &len, &err)) return cli_error("manifest", &err);
    cJSON *plan = cJSON_Parse((char *)buf);
    free(buf);
    const cJSON *outs = plan ? cJSON_GetObjectItemCaseSensitive(plan, "outputs") : NULL;
    if (!cJSON_IsArray(outs)) {
        cJSON_Delete(plan);
        fprintf(stderr, "sdc manifest: %s: not an sdc augment plan\n", path);
        return EXIT_RUNTIME;
    }
    int n = cJSON_GetArraySize(outs), rc = EXIT_OK, failed = 0;
    slot *slots = calloc((size_t)n + 1, sizeof *slots);
    const char **names = calloc((size_t)n + 1, sizeof *names);
    int i = 0;
    /* Sorted once, then each line is a binary search: plans may be 10^6 items. */
    entry *byname = calloc((size_t)n + 1, sizeof *byname);
    for (const cJSON *o = outs->child; o; o = o->next, i++) {
        names[i] = cJSON_IsString(o) ? o->valuestring : "";
        byname[i] = (entry){names[i], i};
    }
    qsort(byname, (size_t)n, sizeof *byname, cmp_entry);
    snprintf(path, sizeof path, "%s/manifest.shard-*-of-*.jsonl", out);
    glob_t g;
    int gr = glob(path, 0, NULL, &g); /* sorted: deterministic messages */
    if (gr != 0) {
        fprintf(stderr, "sdc manifest: %s: no shard manifests\n", out);
        rc = EXIT_RUNTIME;
    }
    for (size_t f = 0; rc == EXIT_OK && gr == 0 && f < g.gl_pathc; f++) {
        if (sdc_read_file_capped(g.gl_pathv[f], (size_t)1 << 30, &buf, &len, &err)) { rc = cli_error("manifest", &err); break; }
        int line_no = 0;
        for (char *line = (char *)buf, *nl; line < (char *)buf + len; line = nl + 1) {
            line_no++;
            nl = strchr(line, '\n');
            if (!nl) { /* a torn tail: that shard has to be resumed first */
                fprintf(stderr, "sdc manifest: %s: line %d is incomplete (resume that shard)\n", g.gl_pathv[f], line_no);
                rc = EXIT_RUNTIME;
                break;
            }
            *nl = '\0';
            cJSON *j = cJSON_Parse(line);
            const cJSON *o = j ? cJSON_GetObjectItemCaseSensitive(j, "output") : NULL;
            const cJSON *st = j ? cJSON_GetObjectItemCaseSensitive(j, "status") : NULL;
            entry key = {cJSON_IsString(o) ? o->valuestring : "", 0};
            const entry *hit = cJSON_IsString(o) ? bsearch(&key, byname, (size_t)n, sizeof *byname, cmp_entry) : NULL;
            int k = hit ? hit->index : -1;
            if (k < 0) {
                fprintf(stderr, "sdc manifest: %s: line %d is %s\n", g.gl_pathv[f], line_no,
                        cJSON_IsString(o) ? "not an item of plan.json" : "corrupt");
                rc = EXIT_RUNTIME;
            } else {
                /* "rejected" (--filter clip: every attempt rejected) is done, not failed. */
                if (cJSON_IsString(st) && strcmp(st->valuestring, "ok") && strcmp(st->valuestring, "rejected")) failed++;
                if (slots[k].count++ == 0) slots[k].line = strdup(line);
            }
            cJSON_Delete(j);
        }
        free(buf);
    }
    if (gr == 0) globfree(&g);
    int missing = 0, doubled = 0;
    for (i = 0; rc == EXIT_OK && i < n; i++) {
        if (slots[i].count == 0 && missing++ < 20) fprintf(stderr, "sdc manifest: missing item %d: %s\n", i, names[i]);
        if (slots[i].count > 1 && doubled++ < 20)
            fprintf(stderr, "sdc manifest: item %d listed %d times: %s\n", i, slots[i].count, names[i]);
    }
    if (rc == EXIT_OK && (missing || doubled)) {
        fprintf(stderr, "sdc manifest: %d items missing, %d doubled; manifest.jsonl not written\n", missing, doubled);
        rc = EXIT_RUNTIME;
    }
    if (rc == EXIT_OK) {
        size_t total = 0;
        for (i = 0; i < n; i++) total += strlen(slots[i].line) + 1;
        char *all = malloc(total + 1), *p = all;
        for (i = 0; all && i < n; i++) p += sprintf(p, "%s\n", slots[i].line);
        snprintf(path, sizeof path, "%s/manifest.jsonl", out);
        if (!all) rc = cli_usage_error("manifest", "out of memory");
        else if (sdc_write_file_atomic(path, all, total, &err)) rc = cli_error("manifest", &err);
        free(all);
        if (rc == EXIT_OK) printf("%s: %d items\n", path, n);
        if (rc == EXIT_OK && failed) {
            fprintf(stderr, "sdc manifest: %d items failed\n", failed);
            rc = EXIT_RUNTIME;
        }
    }
    for (i = 0; i < n; i++) free(slots[i].line);
    free(slots);
    free(names);
    free(byname);
    cJSON_Delete(plan);
    return rc;
}

static int preview(const char *png, const char **pos, int n, const char *classes, const char *names) {
    sdc_err err = {0};
    aug_dataset d;
    if (cli_check_writable(png, "-o", &err) || aug_dataset_scan(pos[0], names, classes, &d, &err))
        return cli_error("manifest", &err);
    sdc_status s = aug_preview_dirs(png, pos[0], pos + 1, n - 1, &d, &err);
    aug_dataset_free(&d);
    if (s) return cli_error("manifest", &err);
    printf("%s\n", png);
    return EXIT_OK;
}

int cmd_manifest(int argc, char **argv) {
    const char *out = NULL, *classes = NULL, *names = NULL;
    bool quiet = false;
    cli_opt opts[] = {
        CLI_OUT(&out, CLI_REQUIRED, "merge: the sdc augment output folder DIR; preview: GRID.png"),
        {"classes", 0, CLI_STRING, &classes, .metavar = "a,b", .help = "preview: only these class folders"},
        {"class-names", 0, CLI_STRING, &names, .metavar = "FILE", .help = "preview: display names"},
        CLI_QUIET(&quiet),
        CLI_END};
    const char *pos[34];
    cli_positional pp = {pos, 34, 0, "merge | preview DATASET DIR..."};
    int rc = cli_parse(&spec, opts, argc, argv, &pp);
    if (rc) return rc == CLI_HELP_SHOWN ? EXIT_OK : rc;
    if (pp.n_pos >= 1 && !strcmp(pos[0], "merge") && pp.n_pos == 1) return merge(out);
    if (pp.n_pos >= 3 && !strcmp(pos[0], "preview")) return preview(out, pos + 1, pp.n_pos - 1, classes, names);
    return cli_usage_error("manifest", "expected: merge --out DIR, or preview DATASET DIR [DIR...] -o GRID.png");
}
