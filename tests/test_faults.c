/* test_faults.c — I/O faults and kill -9 against `sdc generate` and `sdc
 * augment`. Faults come from the LD_PRELOAD shim tests/fault_shim.c
 * ($(BUILD)/libsdc_fault.so, beside $SDC_BIN): disk full in the middle of an
 * image or a manifest line (ENOSPC after a short write), EIO on the fsync of
 * an image, its folder or the manifest, a read-only or forbidden output
 * folder (EROFS / EACCES: as root chmod stops nothing), and a missing one.
 * Each must fail naming the file and the reason, leave no partial or temp
 * file and a manifest that agrees with the files (every "ok" line's PNG
 * present and identical to an uninterrupted run's, every PNG listed, no
 * line twice), and a rerun without the fault must finish the job equal to
 * the uninterrupted run byte for byte. The kill test kills the augment
 * driver at 20 random moments (SDC_TEST_SEED=N reproduces a run), resuming
 * each time. */
#include "suites.h"
#include "test_util.h"

#include "../src/image/image.h"

#include <cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MODEL_ARGS "--vocab weights/bpe_simple_vocab_16e6.txt.gz"
#define GEN "generate --model tests/fixtures/tiny/original.safetensors " MODEL_ARGS \
            " --width 64 --height 64 --steps 2 --seed 7 --prompt cat -q"
#define AUG_PROMPT "augment %s/data --model tests/fixtures/tiny/diffusers " MODEL_ARGS \
                   " --method prompt --per-class 2 --size 64 --steps 2 -q"

/* ---------------------------------------------------------------- running */

typedef struct {
    int code;        /* exit status; 128 + signal if killed */
    char err[8192];  /* stderr */
} run_result;

static char shim[1024];

static const char *shim_path(void) {
    if (!shim[0]) {
        const char *bin = test_sdc_bin(), *slash = strrchr(bin, '/');
        snprintf(shim, sizeof shim, "%.*s/libsdc_fault.so", slash ? (int)(slash - bin) : 1,
                 slash ? bin : ".");
        ck_assert_msg(access(shim, R_OK) == 0, "%s missing: make BUILD=<dir of $SDC_BIN> %s", shim, shim);
    }
    return shim;
}

/* Splits the formatted command line at spaces into argv and starts
 * $SDC_BIN with it, the shim preloaded when fault is set. */
static pid_t start(const char *fault, const char *match, const char *err_path, const char *cmd) {
    static char buf[8192];
    char *argv[64];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", cmd);
    argv[argc++] = (char *)test_sdc_bin();
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && argc < 63; t = strtok_r(NULL, " ", &save))
        argv[argc++] = t;
    argv[argc] = NULL;
    const char *lib = fault ? shim_path() : NULL;
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int dn = open("/dev/null", O_RDWR);
        int e = err_path ? open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : dn;
        dup2(dn, 0);
        dup2(dn, 1);
        dup2(e, 2);
        if (fault) {
            char asan[1024];
            const char *old = getenv("ASAN_OPTIONS");
            /* the shim is preloaded ahead of an ASan build's runtime */
            snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", old ? old : "", old ? ":" : "");
            setenv("ASAN_OPTIONS", asan, 1);
            setenv("LD_PRELOAD", lib, 1);
            setenv("SDC_FAULT", fault, 1);
            setenv("SDC_FAULT_MATCH", match, 1);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static const run_result *run(const char *fault, const char *match, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const run_result *run(const char *fault, const char *match, const char *fmt, ...) {
    static run_result r;
    char cmd[8192], err_path[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(err_path, sizeof err_path, "%s/stderr", test_tmpdir());
    pid_t pid = start(fault, match, err_path, cmd);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    ck_assert_msg(r.code != 127, "cannot run %s", test_sdc_bin());
    FILE *f = fopen(err_path, "rb");
    size_t n = f ? fread(r.err, 1, sizeof r.err - 1, f) : 0;
    if (f) fclose(f);
    r.err[n] = '\0';
    return &r;
}

/* ---------------------------------------------------------------- files */

static bool same_file(const char *a, const char *b) {
    size_t la, lb;
    char *da = tu_slurp(a, &la), *db = tu_slurp(b, &lb);
    bool same = da && db && la == lb && !memcmp(da, db, la);
    free(da);
    free(db);
    return same;
}

/* No name under path holds ".tmp." (a temp file left behind). */
static void no_temps(const char *path) {
    DIR *d = opendir(path);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        ck_assert_msg(!strstr(e->d_name, ".tmp."), "temp file %s/%s left behind", path, e->d_name);
        char sub[2048];
        struct stat sb;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode)) no_temps(sub);
    }
    closedir(d);
}

/* Number of entries of path (0 if it does not exist). */
static int count_entries(const char *path) {
    DIR *d = opendir(path);
    int n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* The folder out against its manifest: every "ok" output exists and equals
 * ref's, no "failed" output exists, no output is listed twice, every PNG of
 * a class folder is listed "ok", no temp file anywhere. torn_ok (between
 * kills) allows a torn last line, temp files and a complete unlisted PNG.
 * Returns the number of "ok" lines. */
static int check_consistent(const char *out, const char *ref, bool torn_ok) {
    char path[1200], rpath[1200];
    snprintf(path, sizeof path, "%s/manifest.jsonl", out);
    size_t len = 0;
    char *buf = tu_slurp(path, &len);
    cJSON *listed = cJSON_CreateObject();
    int ok = 0;
    for (char *line = buf, *nl; buf && line < buf + len; line = nl + 1) {
        nl = memchr(line, '\n', (size_t)(buf + len - line));
        if (!nl) {
            ck_assert_msg(torn_ok, "%s: last line has no newline: %s", path, line);
            break;
        }
        *nl = '\0';
        cJSON *j = cJSON_Parse(line);
        ck_assert_msg(j != NULL, "%s: bad line %s", path, line);
        const char *o = cJSON_GetObjectItem(j, "output")->valuestring;
        const char *st = cJSON_GetObjectItem(j, "status")->valuestring;
        ck_assert_msg(!cJSON_HasObjectItem(listed, o), "%s: %s listed twice", path, o);
        cJSON_AddBoolToObject(listed, o, !strcmp(st, "ok"));
        snprintf(path, sizeof path, "%s/%s", out, o);
        snprintf(rpath, sizeof rpath, "%s/%s", ref, o);
        if (!strcmp(st, "ok")) {
            ok++;
            ck_assert_msg(same_file(path, rpath), "%s: listed ok, but missing or not the uninterrupted run's", path);
        } else {
            ck_assert_msg(access(path, F_OK) != 0, "%s: listed failed, but present", path);
        }
        cJSON_Delete(j);
        snprintf(path, sizeof path, "%s/manifest.jsonl", out);
    }
    free(buf);
    /* every PNG in a class folder is a listed "ok" output */
    DIR *d = opendir(out);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", out, e->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) continue;
        DIR *c = opendir(path);
        for (struct dirent *f; c && (f = readdir(c));) {
            if (f->d_name[0] == '.' || !strstr(f->d_name, ".png") || strstr(f->d_name, ".tmp.")) continue;
            char rel[600];
            snprintf(rel, sizeof rel, "%s/%s", e->d_name, f->d_name);
            const cJSON *v = cJSON_GetObjectItem(listed, rel);
            /* After a kill, the PNG in flight may be in place before its line:
             * complete (the uninterrupted run's bytes), redone on resume. */
            char pa[1200], pr[1200];
            snprintf(pa, sizeof pa, "%s/%s", out, rel);
            snprintf(pr, sizeof pr, "%s/%s", ref, rel);
            ck_assert_msg(cJSON_IsTrue(v) || (torn_ok && same_file(pa, pr)),
                          "%s/%s exists but is not listed ok in the manifest", out, rel);
        }
        if (c) closedir(c);
    }
    if (d) closedir(d);
    cJSON_Delete(listed);
    if (!torn_ok) no_temps(out);
    return ok;
}

/* The sorted lines of a manifest, joined (for an order-free comparison). */
static char *sorted_lines(const char *path) {
    size_t len;
    char *buf = tu_slurp(path, &len);
    ck_assert_msg(buf != NULL, "%s missing", path);
    char *lines[4096];
    int n = 0;
    for (char *line = buf, *nl; n < 4096 && (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        lines[n++] = line;
    }
    for (int i = 1; i < n; i++) /* insertion sort: a few lines */
        for (int k = i; k > 0 && strcmp(lines[k - 1], lines[k]) > 0; k--) {
            char *t = lines[k];
            lines[k] = lines[k - 1];
            lines[k - 1] = t;
        }
    char *joined = calloc(1, len + 2);
    for (int i = 0; i < n; i++) strcat(strcat(joined, lines[i]), "\n");
    free(buf);
    return joined;
}

/* out equals ref: the same PNGs byte for byte, the same plan.json, the same
 * manifest lines (byte for byte when in_order, else as a set: a retried
 * item's line comes after the others), no temp file. */
static void same_job(const char *ref, const char *out, bool in_order) {
    char a[1200], b[1200];
    ck_assert_int_eq(check_consistent(out, ref, false), check_consistent(ref, ref, false));
    snprintf(a, sizeof a, "%s/plan.json", ref);
    snprintf(b, sizeof b, "%s/plan.json", out);
    ck_assert_msg(same_file(a, b), "plan.json differs");
    snprintf(a, sizeof a, "%s/manifest.jsonl", ref);
    snprintf(b, sizeof b, "%s/manifest.jsonl", out);
    if (in_order) {
        ck_assert_msg(same_file(a, b), "%s differs from the uninterrupted run's", b);
    } else {
        char *sa = sorted_lines(a), *sb = sorted_lines(b);
        ck_assert_msg(!strcmp(sa, sb), "%s: lines differ from the uninterrupted run's", b);
        free(sa);
        free(sb);
    }
}

/* dir/data/{a,b}/img{0..n-1}.png */
static void make_dataset(const char *dir, int n) {
    char path[1200];
    snprintf(path, sizeof path, "%s/data", dir);
    mkdir(path, 0755);
    for (int c = 0; c < 2; c++) {
        snprintf(path, sizeof path, "%s/data/%c", dir, 'a' + c);
        mkdir(path, 0755);
        for (int i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/data/%c/img%d.png", dir, 'a' + c, i);
            tu_write_png(path, 64 + 8 * i, 48, c * 10 + i);
        }
    }
}

static void expect_failure(const run_result *r, const char *what, const char *culprit, const char *reason) {
    ck_assert_msg(r->code == 1, "%s: exit %d, want 1: %s", what, r->code, r->err);
    ck_assert_msg(strstr(r->err, culprit), "%s: stderr does not name %s: %s", what, culprit, r->err);
    ck_assert_msg(strstr(r->err, reason), "%s: stderr lacks '%s': %s", what, reason, r->err);
}

/* The "error" fields of the manifest's failed lines, one per line. */
static char *manifest_errors(const char *out) {
    char path[1200];
    size_t len;
    snprintf(path, sizeof path, "%s/manifest.jsonl", out);
    char *buf = tu_slurp(path, &len), *errs = calloc(1, len + 1);
    ck_assert(buf && errs);
    for (char *line = buf, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        cJSON *j = cJSON_Parse(line);
        const cJSON *e = j ? cJSON_GetObjectItem(j, "error") : NULL;
        if (cJSON_IsString(e)) strcat(strcat(errs, e->valuestring), "\n");
        cJSON_Delete(j);
    }
    free(buf);
    return errs;
}

/* ---------------------------------------------------------------- generate */

START_TEST(generate_faults_leave_nothing_and_rerun_heals) {
    const char *dir = test_tmpdir();
    char ref[700], out[700], png[800], refpng[800];
    snprintf(ref, sizeof ref, "%s/ref", dir);
    mkdir(ref, 0755);
    const run_result *r = run(NULL, NULL, GEN " -o %s/x.png", ref);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = run(NULL, NULL, GEN " --batch 2 -o %s/b.png", ref);
    ck_assert_msg(r->code == 0, "%s", r->err);
    static const struct {
        const char *name, *fault, *match, *args, *culprit, *reason;
        int keep; /* files the fault leaves (complete ones) */
    } cases[] = {
        {"ENOSPC mid-image", "enospc:1", "x.png.tmp", "-o @/x.png", "@/x.png", "No space left on device", 0},
        {"EIO on the image's fsync", "eio_fsync:1", "x.png.tmp", "-o @/x.png", "@/x.png",
         "fsync failed: Input/output error", 0},
        {"EIO on the folder's fsync", "eio_fsync:2", "/out", "-o @/x.png", "@/x.png",
         "Input/output error", 0},
        {"read-only folder", "erofs", "/out", "-o @/x.png", "@/x.png", "Read-only file system", 0},
        {"forbidden folder", "eacces", "/out", "-o @/x.png", "@/x.png", "Permission denied", 0},
        {"missing folder", NULL, NULL, "-o @/gone/x.png", "@/gone/x.png", "No such file or directory", 0},
        {"ENOSPC in the latents", "enospc:1", "lat.safetensors.tmp", "--save-latents @/lat.safetensors -o @/x.png",
         "@/lat.safetensors", "No space left on device", 0},
        {"ENOSPC in the 2nd image of a batch", "enospc:1", "b-1.png.tmp", "--batch 2 -o @/b.png", "@/b-1.png",
         "No space left on device", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(out, sizeof out, "%s/case%zu/out", dir, i);
        char mk[800], args[2048], culprit[1024];
        snprintf(mk, sizeof mk, "%s/case%zu", dir, i);
        mkdir(mk, 0755);
        mkdir(out, 0755);
        /* @ is the case's output folder */
        size_t o = 0;
        for (const char *p = cases[i].args; *p && o < sizeof args - 800; p++)
            o += (size_t)(*p == '@' ? snprintf(args + o, sizeof args - o, "%s", out) : (args[o] = *p, 1));
        args[o] = '\0';
        snprintf(culprit, sizeof culprit, "%s%s", out, cases[i].culprit + 1);
        r = run(cases[i].fault, cases[i].match, GEN " %s", args);
        expect_failure(r, cases[i].name, culprit, cases[i].reason);
        if (cases[i].fault) ck_assert_msg(strstr(r->err, "fault_shim:"), "%s: the fault did not fire", cases[i].name);
        no_temps(mk);
        ck_assert_msg(count_entries(out) == cases[i].keep, "%s: %d files left in %s", cases[i].name,
                      count_entries(out), out);
        if (cases[i].keep) { /* what is left is complete */
            snprintf(png, sizeof png, "%s/b-0.png", out);
            snprintf(refpng, sizeof refpng, "%s/b-0.png", ref);
            ck_assert_msg(same_file(png, refpng), "%s: b-0.png differs", cases[i].name);
        }
        /* the rerun without the fault equals the uninterrupted run */
        if (!strcmp(cases[i].name, "missing folder")) continue;
        r = run(NULL, NULL, GEN " %s", args);
        ck_assert_msg(r->code == 0, "%s: rerun: %s", cases[i].name, r->err);
        const char *names[] = {"x.png", "b-0.png", "b-1.png"};
        for (int k = 0; k < 3; k++) {
            snprintf(png, sizeof png, "%s/%s", out, names[k]);
            snprintf(refpng, sizeof refpng, "%s/%s", ref, names[k]);
            if (access(png, F_OK) == 0)
                ck_assert_msg(same_file(png, refpng), "%s: rerun's %s differs", cases[i].name, names[k]);
        }
        no_temps(mk);
    }
}
END_TEST

/* ---------------------------------------------------------------- augment */

START_TEST(augment_faults_keep_the_manifest_consistent_and_rerun_heals) {
    const char *dir = test_tmpdir();
    make_dataset(dir, 1);
    char ref[700], out[700];
    snprintf(ref, sizeof ref, "%s/ref", dir);
    const run_result *r = run(NULL, NULL, AUG_PROMPT " --out %s", dir, ref);
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_int_eq(check_consistent(ref, ref, false), 4);
    static const struct {
        const char *name, *fault, *match, *culprit, *reason;
        int ok;       /* "ok" lines the fault leaves */
        bool stops;   /* the run stops at once (every disk fault does) rather than recording a failed item */
    } cases[] = {
        /* A disk that failed an image fails the next ones too: the run stops
         * at the first such error instead of computing every remaining item. */
        {"ENOSPC mid-image", "enospc:2", ".png.tmp", ".png", "No space left on device", 1, true},
        {"EIO on an image's fsync", "eio_fsync:2", ".png.tmp", ".png", "fsync failed: Input/output error", 1, true},
        /* (its 2nd matching fsync is the first image's folder, after the file's own) */
        {"EIO on a class folder's fsync", "eio_fsync:2", "/out/a", "/out/a/", "Input/output error", 0, true},
        {"ENOSPC in a manifest line", "enospc:2", "manifest.jsonl", "manifest", "write failed", 1, true},
        {"EIO on the manifest's fsync", "eio_fsync:2", "manifest.jsonl", "manifest",
         "fsync failed: Input/output error", 1, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(out, sizeof out, "%s/c%zu", dir, i);
        mkdir(out, 0755);
        snprintf(out, sizeof out, "%s/c%zu/out", dir, i);
        r = run(cases[i].fault, cases[i].match, AUG_PROMPT " --out %s", dir, out);
        ck_assert_msg(strstr(r->err, "fault_shim:"), "%s: the fault did not fire", cases[i].name);
        if (cases[i].stops) {
            expect_failure(r, cases[i].name, cases[i].culprit, cases[i].reason);
        } else { /* the failed items are recorded, with the file and the reason */
            ck_assert_msg(r->code == 1 && strstr(r->err, "items failed"), "%s: %d %s", cases[i].name,
                          r->code, r->err);
            char *errs = manifest_errors(out);
            ck_assert_msg(strstr(errs, cases[i].culprit) && strstr(errs, cases[i].reason),
                          "%s: manifest errors lack '%s' or '%s': %s", cases[i].name, cases[i].culprit,
                          cases[i].reason, errs);
            free(errs);
        }
        int ok = check_consistent(out, ref, false);
        ck_assert_msg(ok == cases[i].ok, "%s: %d ok lines, want %d", cases[i].name, ok, cases[i].ok);
        if (i == 3) {
            /* Then the folder turns read-only: the resume is refused at once,
             * naming the file, and changes nothing. */
            char before[1200];
            snprintf(before, sizeof before, "%s/manifest.jsonl", out);
            char *m0 = sorted_lines(before);
            r = run("erofs", out, AUG_PROMPT " --out %s", dir, out);
            expect_failure(r, "read-only on resume", out, "Read-only file system");
            char *m1 = sorted_lines(before);
            ck_assert_msg(!strcmp(m0, m1), "the read-only resume changed the manifest");
            free(m0);
            free(m1);
            ck_assert_int_eq(check_consistent(out, ref, false), 1);
        }
        r = run(NULL, NULL, AUG_PROMPT " --out %s", dir, out);
        ck_assert_msg(r->code == 0, "%s: rerun: %s", cases[i].name, r->err);
        same_job(ref, out, cases[i].ok <= 1); /* in order when no failed line was recorded */
    }
    /* A read-only, forbidden or missing output folder: refused, nothing made. */
    static const struct { const char *fault, *sub, *reason; } none[] = {
        {"erofs", "ro/aug", "Read-only file system"},
        {"eacces", "acc/aug", "Permission denied"},
        {NULL, "gone/aug", "No such file or directory"},
    };
    for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
        char top[800];
        snprintf(top, sizeof top, "%s/%.*s", dir, (int)(strchr(none[i].sub, '/') - none[i].sub), none[i].sub);
        if (none[i].fault) mkdir(top, 0755);
        snprintf(out, sizeof out, "%s/%s", dir, none[i].sub);
        r = run(none[i].fault, top, AUG_PROMPT " --out %s", dir, out);
        expect_failure(r, none[i].sub, out, none[i].reason);
        ck_assert_msg(count_entries(top) == 0, "%s: something was created in %s", none[i].sub, top);
    }
}
END_TEST

/* ---------------------------------------------------------------- kill -9 */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Complete lines in out/manifest.jsonl (0 if none). */
static int manifest_lines(const char *out) {
    char path[1200];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/manifest.jsonl", out);
    char *m = tu_slurp(path, &len);
    int n = 0;
    for (size_t i = 0; m && i < len; i++) n += m[i] == '\n';
    free(m);
    return n;
}

#define AUG_KILL "augment %s/data --model tests/fixtures/tiny/diffusers " MODEL_ARGS \
                 " --method boomerang --per-image 5 --strength 0.5,0.8 --size 64 --steps 2 -q --out %s"

START_TEST(augment_kill_at_20_random_moments) {
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    const char *env = getenv("SDC_TEST_SEED");
    if (env && *env) seed = (unsigned)strtoul(env, NULL, 10);
    printf("faults: kill test seed %u (SDC_TEST_SEED=%u reproduces it)\n", seed, seed);
    fflush(stdout);
    const char *dir = test_tmpdir();
    make_dataset(dir, 2);
    char ref[700], out[700], cmd[4096];
    snprintf(ref, sizeof ref, "%s/ref", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    /* The uninterrupted run, timed: startup (process, model) and per item
     * (from when its first manifest line appears). */
    char mref[800];
    snprintf(mref, sizeof mref, "%s/manifest.jsonl", ref);
    snprintf(cmd, sizeof cmd, AUG_KILL, dir, ref);
    double t0 = now_s(), t_first = 0;
    pid_t pid = start(NULL, NULL, NULL, cmd);
    int st;
    for (;;) {
        struct stat sb;
        if (!t_first && stat(mref, &sb) == 0 && sb.st_size > 0) t_first = now_s() - t0;
        if (waitpid(pid, &st, WNOHANG) == pid) break;
        usleep(2000);
    }
    double t_full = now_s() - t0;
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reference run: status %d", st);
    ck_assert_int_eq(check_consistent(ref, ref, false), 20);
    double t_item = (t_full - t_first) / 19, t_start = t_first - t_item;
    if (t_start < 0) t_start = 0;
    /* Each kill lands in [0, window): in process start, model loading, the
     * manifest rewrite of a resume, an image being written, an append. The
     * window starts at startup + 2.5 items (about one item done per run, so
     * the 20 kills span the job); it shrinks whenever a run got to finish
     * first and grows whenever a kill left no new line (a busy machine's
     * timings are noisy). */
    snprintf(cmd, sizeof cmd, AUG_KILL, dir, out);
    int completed = 0;
    double window = t_start + 2.5 * t_item;
    for (int k = 0; k < 20; k++) {
        double frac = (double)rand_r(&seed) / RAND_MAX;
        useconds_t us = (useconds_t)(frac * window * 1e6);
        int lines_before = manifest_lines(out);
        pid = start(NULL, NULL, NULL, cmd);
        usleep(us);
        kill(pid, SIGKILL); /* a zombie if it already finished: no effect */
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        if (WIFEXITED(st)) {
            ck_assert_msg(WEXITSTATUS(st) == 0, "kill %d: run exited %d", k, WEXITSTATUS(st));
            completed++;
            window *= 0.8;
        } else if (manifest_lines(out) <= lines_before) {
            window *= 1.3;
        }
        /* Between runs: no line twice, every listed PNG complete. */
        check_consistent(out, ref, true);
    }
    int before = check_consistent(out, ref, true);
    const run_result *r = run(NULL, NULL, AUG_KILL, dir, out);
    ck_assert_msg(r->code == 0, "final resume: %s", r->err);
    same_job(ref, out, true);
    printf("faults: 20 kills (startup %.2f s, %.2f s per item; %d runs finished first, %d of 20 items "
           "done before the last resume); it equals the uninterrupted run\n", t_start, t_item, completed,
           before);
}
END_TEST

Suite *suite_faults(void) {
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("faults");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, generate_faults_leave_nothing_and_rerun_heals);
    tcase_add_test(tc, augment_faults_keep_the_manifest_consistent_and_rerun_heals);
    tcase_add_test(tc, augment_kill_at_20_random_moments);
    suite_add_tcase(s, tc);
    return s;
}
