/* The GEMM probe kept across commands: --precision auto decides between
 * bf16 and fp32 (and between oneDNN and OpenBLAS in fp32) from a short
 * timing of the backends (src/nn/gemm.c). Timed afresh by every process, a
 * busy machine could make two runs of one command decide differently, and
 * their numbers differ in the last bits. The first command that chooses a
 * precision on a machine therefore writes its measurements to a small JSON
 * file, and later commands decide from them: every command on the same CPU,
 * libraries and thread count chooses the same backend.
 *
 *   file  $SELFSUP_CACHE_DIR, else $XDG_CACHE_HOME/selfsup, else
 *         $HOME/.cache/selfsup; gemm-probe-<xxh64 of the key>.json
 *   key   what the timing depends on: the CPU (model name, family, model,
 *         stepping, a hash of its flags), oneDNN's version and instruction
 *         set, OpenBLAS's build and kernel, OPENBLAS_CORETYPE, the thread
 *         count, the probe's shape; a file whose key differs is not used
 *   SELFSUP_GEMM_PROBE  cache (the default) | fresh (measure again and
 *         replace the file) | off (measure, neither read nor write)
 *   busy  a probe is kept only if this process had the CPU for at least
 *         0.8 of its wall time x threads (SELFSUP_GEMM_PROBE_MIN_SHARE):
 *         beside another job on every core the timings are noise (bf16
 *         measured at a tenth of its speed once), and a cache would keep
 *         the noise for good; such a probe serves its own process only
 *
 * A missing, unreadable or damaged file is measured again and rewritten
 * (atomically); a directory that cannot be written leaves the process with
 * its own measurement, as before the cache existed. */
#include <cblas.h>
#include <dnnl.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cJSON.h>

#include "cli.h"
#include "selfsup/io.h"
#include "selfsup/path.h"

#define CACHE_MAX_BYTES 65536 /* a cache file is a few hundred bytes: anything larger is not ours */
#define MIN_SHARE 0.8 /* a probe that had less of the cores' time than this is not kept */
#define PROBE_SHAPE "2048x1024x256 v1" /* src/nn/gemm.c's probe; bump when it changes */

/* The "model name", "cpu family", "model", "stepping" and a hash of the
 * "flags" of /proc/cpuinfo's first processor ("unknown" without it). */
static void cpu_identity(char *out, size_t cap) {
    char name[128] = "unknown", family[16] = "?", model[16] = "?", stepping[16] = "?", line[8192];
    unsigned long long flags = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (line[0] == '\n') break; /* the end of the first processor's block */
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *v = colon + 1 + (colon[1] == ' ');
        v[strcspn(v, "\n")] = 0;
        size_t klen = (size_t)(colon - line);
        while (klen && (line[klen - 1] == ' ' || line[klen - 1] == '\t')) klen--;
#define KEY(s) (klen == sizeof s - 1 && !strncmp(line, s, klen))
        if (KEY("model name")) snprintf(name, sizeof name, "%s", v);
        else if (KEY("cpu family")) snprintf(family, sizeof family, "%s", v);
        else if (KEY("model")) snprintf(model, sizeof model, "%s", v);
        else if (KEY("stepping")) snprintf(stepping, sizeof stepping, "%s", v);
        else if (KEY("flags")) flags = ss_xxh64(v, strlen(v), 0);
#undef KEY
    }
    if (f) fclose(f);
    snprintf(out, cap, "%s (family %s, model %s, stepping %s, flags %016llx)", name, family, model, stepping, flags);
}

static void machine_key(char *out, size_t cap) {
    char cpu[256];
    cpu_identity(cpu, sizeof cpu);
    const dnnl_version_t *dv = dnnl_version();
    const char *coretype = getenv("OPENBLAS_CORETYPE");
    snprintf(out, cap, "cpu %s; oneDNN %d.%d.%d ISA %#x; OpenBLAS %s, core %s; OPENBLAS_CORETYPE=%s; threads %d; "
             "probe %s", cpu, dv->major, dv->minor, dv->patch, (unsigned)dnnl_get_effective_cpu_isa(),
             openblas_get_config(), openblas_get_corename(), coretype ? coretype : "(unset)", omp_get_max_threads(),
             PROBE_SHAPE);
}

/* The cache directory, or 0 when the environment names none. */
static int cache_dir(char *out, size_t cap) {
    const char *d = getenv("SELFSUP_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    int n = d && *d ? snprintf(out, cap, "%s", d)
            : x && *x ? snprintf(out, cap, "%s/selfsup", x)
            : h && *h ? snprintf(out, cap, "%s/.cache/selfsup", h) : -1;
    return n > 0 && (size_t)n < cap;
}

/* Read the measurements of `path` made under `key` into peak and the time
 * they were made into when. SS_OK, or an error saying why the file is not
 * usable (it is then measured again and replaced). */
static ss_status load(const char *path, const char *key, double peak[SS_GEMM_N_BACKENDS], char *when, size_t wcap,
                      ss_error *err) {
    struct stat sb;
    if (stat(path, &sb) != 0) return ss_fail(err, SS_ERR_IO, "cannot read it: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode) || sb.st_size > CACHE_MAX_BYTES)
        return ss_fail(err, SS_ERR_FORMAT, "not a regular file of at most %d bytes", CACHE_MAX_BYTES);
    ss_buf b = {0};
    ss_status st = ss_read_file(path, &b, err);
    if (st) return st;
    cJSON *j = cJSON_ParseWithLength((const char *)b.data, b.len);
    ss_buf_free(&b);
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "key"), *peaks = cJSON_GetObjectItemCaseSensitive(j, "peaks"),
                *m = cJSON_GetObjectItemCaseSensitive(j, "measured");
    if (!j) st = ss_fail(err, SS_ERR_FORMAT, "not JSON");
    else if (!cJSON_IsString(k) || !cJSON_IsObject(peaks) || !cJSON_IsString(m))
        st = ss_fail(err, SS_ERR_FORMAT, "no \"key\", \"measured\" and \"peaks\"");
    else if (strlen(m->valuestring) != 20 || strspn(m->valuestring, "0123456789-T:Z") != 20)
        st = ss_fail(err, SS_ERR_FORMAT, "\"measured\": expected a UTC time as YYYY-MM-DDTHH:MM:SSZ");
    else if (strcmp(k->valuestring, key))
        st = ss_fail(err, SS_ERR_FORMAT, "made on another machine or setup (its key: %.200s)", k->valuestring);
    for (int be = 0; !st && be < SS_GEMM_N_BACKENDS; be++) {
        const char *name = ss_gemm_backend_name((ss_gemm_backend)be);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(peaks, name);
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 1e7)
            st = ss_fail(err, SS_ERR_FORMAT, "peaks.%s: expected GFLOP/s, a number from 0 to 1e7", name);
        else peak[be] = v->valuedouble;
    }
    if (!st) snprintf(when, wcap, "%s", m->valuestring);
    cJSON_Delete(j);
    return st;
}

/* SELFSUP_GEMM_PROBE_MIN_SHARE: the share of the cores' time a probe must
 * have had to be kept (default MIN_SHARE; 0 keeps every probe; tests set
 * it to choose a branch on any machine). */
static double min_share(const char *command) {
    const char *v = getenv("SELFSUP_GEMM_PROBE_MIN_SHARE");
    if (!v || !*v) return MIN_SHARE;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || end == v || !(x >= 0 && x <= 2))
        cli_die(command, "SELFSUP_GEMM_PROBE_MIN_SHARE=%s: expected a number from 0 to 2 (default %g)", v, MIN_SHARE);
    return x;
}

static ss_status save(const char *dir, const char *path, const char *key, const double peak[SS_GEMM_N_BACKENDS],
                      char *when, size_t wcap, ss_error *err) {
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, wcap, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    cJSON *j = cJSON_CreateObject(), *peaks = cJSON_AddObjectToObject(j, "peaks");
    cJSON_AddStringToObject(j, "key", key);
    cJSON_AddStringToObject(j, "measured", when);
    cJSON_AddStringToObject(j, "unit", "GFLOP/s, best of the probe's products");
    for (int be = 0; be < SS_GEMM_N_BACKENDS; be++)
        cJSON_AddNumberToObject(peaks, ss_gemm_backend_name((ss_gemm_backend)be), peak[be]);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    ss_status st = ss_mkdir_p(dir, err);
    if (!st) st = ss_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return st;
}

void cli_gemm_probe_prepare(const char *command, int verbose) {
    if (ss_dist_rank() != 0) return; /* rank 0's backend is every rank's (the engine sends it) */
    const char *mode = getenv("SELFSUP_GEMM_PROBE");
    int fresh = 0;
    if (mode && *mode && strcmp(mode, "cache")) {
        if (!strcmp(mode, "off")) return; /* ss_gemm_select probes in this process */
        if (strcmp(mode, "fresh"))
            cli_die(command, "SELFSUP_GEMM_PROBE=%s: expected cache (the default), fresh or off", mode);
        fresh = 1;
    }
    double need_share = min_share(command); /* checked even when a kept probe makes it moot */
    char key[1024], dir[SS_PATH_MAX], name[64], path[SS_PATH_MAX], when[32] = "";
    double peak[SS_GEMM_N_BACKENDS] = {0};
    ss_error err = {0};
    machine_key(key, sizeof key);
    snprintf(name, sizeof name, "gemm-probe-%016llx.json", (unsigned long long)ss_xxh64(key, strlen(key), 0));
    if (!cache_dir(dir, sizeof dir) || ss_path_join(path, sizeof path, dir, name, &err)) {
        if (verbose) fprintf(stderr, "GEMM probe: measured now (no cache directory: set SELFSUP_CACHE_DIR or HOME)\n");
        return;
    }
    if (!fresh && ss_file_exists(path)) {
        ss_status st = load(path, key, peak, when, sizeof when, &err);
        if (!st) {
            ss_gemm_set_probe(peak);
            if (verbose)
                fprintf(stderr, "GEMM probe: measured %s, read from %s (SELFSUP_GEMM_PROBE=fresh measures again)\n",
                        when, path);
            return;
        }
        if (verbose) fprintf(stderr, "GEMM probe: %s not used (%s): measuring again\n", path, err.msg);
    }
    double share = ss_gemm_probe(peak);
    ss_error werr = {0};
    if (!fresh && share < need_share) { /* fresh: the user asked for this measurement, busy or not */
        if (verbose)
            fprintf(stderr, "GEMM probe: measured now, not kept: the machine is busy (the probe had %.0f%% of %d "
                    "threads' time; SELFSUP_GEMM_PROBE=fresh keeps it anyway)\n", 100.0 * share, omp_get_max_threads());
    } else if (save(dir, path, key, peak, when, sizeof when, &werr)) {
        if (verbose) fprintf(stderr, "GEMM probe: measured now, not kept (%s)\n", werr.msg);
    } else if (verbose) {
        fprintf(stderr, "GEMM probe: measured now, kept in %s for the next commands\n", path);
    }
}
