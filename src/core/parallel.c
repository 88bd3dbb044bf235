/* parallel.c — the worker pool behind sdc_parallel_for, and thread-count
 * control (ours and OpenBLAS's). */
#include "parallel.h"
#include "sdc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_THREADS 256

extern void openblas_set_num_threads(int);

static struct {
    pthread_once_t once;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    pthread_t tid[MAX_THREADS];
    int nthreads;      /* total, including the caller */
    int nworkers;      /* started pthreads */
    /* the current job */
    sdc_range_fn fn;
    void *ctx;
    int64_t n, chunk;
    atomic_llong next;
    int pending;       /* workers that have not finished the current job */
    unsigned long gen; /* job generation */
} pool = {.once = PTHREAD_ONCE_INIT,
          .mu = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static _Thread_local bool in_job;

static void run_chunks(void) {
    for (;;) {
        int64_t b = atomic_fetch_add(&pool.next, pool.chunk);
        if (b >= pool.n) break;
        int64_t e = b + pool.chunk < pool.n ? b + pool.chunk : pool.n;
        pool.fn(pool.ctx, b, e);
    }
}

static void *worker(void *arg) {
    (void)arg;
    unsigned long seen = 0;
    in_job = true;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (pool.gen == seen) pthread_cond_wait(&pool.wake, &pool.mu);
        seen = pool.gen;
        pthread_mutex_unlock(&pool.mu);
        run_chunks();
        pthread_mutex_lock(&pool.mu);
        if (--pool.pending == 0) pthread_cond_signal(&pool.done);
    }
    return NULL;
}

static int default_threads(void) {
    const char *env = getenv("SDC_THREADS");
    if (env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 1 && v <= MAX_THREADS) return (int)v;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

static void start_workers(int total) {
    /* Workers are only ever added; a smaller count just leaves some idle. */
    while (pool.nworkers < total - 1) {
        if (pthread_create(&pool.tid[pool.nworkers], NULL, worker, NULL) != 0) break;
        pthread_detach(pool.tid[pool.nworkers]);
        pool.nworkers++;
    }
}

static void init_pool(void) {
    pool.nthreads = default_threads();
    openblas_set_num_threads(pool.nthreads);
}

void sdc_set_threads(int n) {
    pthread_once(&pool.once, init_pool);
    if (n < 1) n = 1;
    if (n > MAX_THREADS) n = MAX_THREADS;
    pthread_mutex_lock(&pool.mu);
    pool.nthreads = n;
    pthread_mutex_unlock(&pool.mu);
    openblas_set_num_threads(n);
}

/* OpenBLAS single-threaded while our pool runs GEMM tiles on every core. */
void sdc_blas_serial_begin(void) {
    pthread_once(&pool.once, init_pool);
    if (pool.nthreads > 1) openblas_set_num_threads(1);
}

void sdc_blas_serial_end(void) {
    if (pool.nthreads > 1) openblas_set_num_threads(pool.nthreads);
}

int sdc_get_threads(void) {
    pthread_once(&pool.once, init_pool);
    return pool.nthreads;
}

void sdc_parallel_for(int64_t n, int64_t grain, sdc_range_fn fn, void *ctx) {
    if (n <= 0) return;
    pthread_once(&pool.once, init_pool);
    if (grain < 1) grain = 1;
    int want = pool.nthreads;
    if (in_job || want <= 1 || n <= grain) {
        fn(ctx, 0, n);
        return;
    }
    int64_t max_parts = (n + grain - 1) / grain;
    if (want > max_parts) want = (int)max_parts;
    pthread_mutex_lock(&pool.mu);
    start_workers(want);
    int helpers = want - 1 < pool.nworkers ? want - 1 : pool.nworkers;
    if (helpers == 0) {
        pthread_mutex_unlock(&pool.mu);
        fn(ctx, 0, n);
        return;
    }
    /* A few chunks per thread balance uneven work without much overhead. */
    int64_t chunk = (n + 4 * want - 1) / (4 * want);
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.chunk = chunk < grain ? grain : chunk;
    atomic_store(&pool.next, 0);
    pool.pending = pool.nworkers; /* every worker wakes; extra ones find no work */
    pool.gen++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);

    in_job = true;
    run_chunks();
    in_job = false;

    pthread_mutex_lock(&pool.mu);
    while (pool.pending > 0) pthread_cond_wait(&pool.done, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
}
