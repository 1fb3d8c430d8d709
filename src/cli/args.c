#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

void cli_args_init(cli_args *a, int argc, char **argv, const char *command,
                   const char *usage) {
    memset(a, 0, sizeof *a);
    a->argc = argc;
    a->argv = argv;
    a->command = command;
    a->usage = usage;
    a->used = calloc((size_t)argc + 1, 1);
    a->positional = calloc((size_t)argc + 1, sizeof *a->positional);
    if (!a->used || !a->positional) cli_die(command, "out of memory");
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        }
    }
}

/* Short forms of the common options, one table for every command: a
 * command that takes --model also takes -m, and so on. */
static const struct {
    const char *short_name, *long_name;
} aliases[] = {
    {"-m", "--model"}, {"-p", "--prompt"}, {"-n", "--max-new-tokens"}, {"-t", "--threads"}, {"-o", "--out"},
};

static const char *short_form(const char *name) {
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (strcmp(aliases[i].long_name, name) == 0) return aliases[i].short_name;
    return NULL;
}

/* Whether argument s is option NAME: "NAME" or "NAME=...". */
static int is_opt(const char *s, const char *name) {
    size_t n = strlen(name);
    return strncmp(s, name, n) == 0 && (s[n] == '\0' || s[n] == '=');
}

/* Index of the last occurrence of option NAME ("--x", "--x=...", or its
 * short form "-x", "-x=..."), -1 if absent; earlier occurrences (and, for
 * options with a value, their values) are marked used, so a repeated option
 * simply overrides (as in most command-line tools). */
static int find_opt(cli_args *a, const char *name, int takes_value) {
    const char *shrt = short_form(name);
    int found = -1;
    for (int i = 0; i < a->argc; i++) {
        if (strcmp(a->argv[i], "--") == 0) break;
        if (is_opt(a->argv[i], name) || (shrt && is_opt(a->argv[i], shrt))) {
            if (found >= 0) {
                a->used[found] = 1;
                if (takes_value && !strchr(a->argv[found], '=') && found + 1 < a->argc) a->used[found + 1] = 1;
            }
            found = i;
        }
    }
    return found;
}

/* The value of argument i, option NAME ("NAME=V" or "NAME V"), marked used. */
static const char *value_at(cli_args *a, int i) {
    a->used[i] = 1;
    const char *eq = strchr(a->argv[i], '=');
    if (eq) return eq + 1;
    if (i + 1 >= a->argc) cli_die(a->command, "option %s needs a value (see --help)", a->argv[i]);
    a->used[i + 1] = 1;
    return a->argv[i + 1];
}

const char *cli_opt(cli_args *a, const char *name) {
    int i = find_opt(a, name, 1);
    return i < 0 ? NULL : value_at(a, i);
}

int cli_opt_all(cli_args *a, const char *name, const char ***out) {
    const char *shrt = short_form(name);
    int n = 0;
    *out = NULL;
    for (int i = 0; i < a->argc; i++) {
        if (strcmp(a->argv[i], "--") == 0) break;
        if (a->used[i] || !(is_opt(a->argv[i], name) || (shrt && is_opt(a->argv[i], shrt)))) continue;
        if (!*out && !(*out = calloc((size_t)a->argc, sizeof **out))) cli_die(a->command, "out of memory");
        (*out)[n++] = value_at(a, i);
    }
    return n;
}

int cli_flag(cli_args *a, const char *name) {
    int i = find_opt(a, name, 0);
    if (i < 0) return 0;
    if (strchr(a->argv[i], '=')) cli_die(a->command, "option %s takes no value", name);
    a->used[i] = 1;
    return 1;
}

ss_status cli_parse_int(const char *name, const char *v, long long *out, ss_error *err) {
    char *end;
    errno = 0;
    double d = strtod(v, &end); /* accepts 1e6 as well as 1000000 */
    /* the range test comes first: casting a double outside long long's range is undefined */
    if (errno || end == v || *end || !isfinite(d) || fabs(d) >= 9.2e18 || d != (double)(long long)d)
        return ss_fail(err, SS_ERR_ARG, "option %s: '%s' is not an integer", name, v);
    *out = (long long)d;
    return SS_OK;
}

ss_status cli_parse_i32(const char *name, const char *v, int *out, ss_error *err) {
    long long x;
    ss_status st = cli_parse_int(name, v, &x, err);
    if (st) return st;
    if (x < INT_MIN || x > INT_MAX) return ss_fail(err, SS_ERR_ARG, "option %s: %lld is out of range", name, x);
    *out = (int)x;
    return SS_OK;
}

int cli_opt_threads(cli_args *a, int def) {
    int n = cli_opt_i32(a, "--threads", def);
    if (n < 0) cli_die(a->command, "--threads %d: must be >= 0 (0: the physical cores)", n);
    return n;
}

ss_status cli_parse_double(const char *name, const char *v, double *out, ss_error *err) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d))
        return ss_fail(err, SS_ERR_ARG, "option %s: '%s' is not a finite number", name, v);
    *out = d;
    return SS_OK;
}

long long cli_opt_int(cli_args *a, const char *name, long long def) {
    const char *v = cli_opt(a, name);
    ss_error err = {0};
    if (v && cli_parse_int(name, v, &def, &err)) cli_die(a->command, "%s", err.msg);
    return def;
}

int cli_opt_i32(cli_args *a, const char *name, int def) {
    const char *v = cli_opt(a, name);
    ss_error err = {0};
    if (v && cli_parse_i32(name, v, &def, &err)) cli_die(a->command, "%s", err.msg);
    return def;
}

double cli_opt_double(cli_args *a, const char *name, double def) {
    const char *v = cli_opt(a, name);
    ss_error err = {0};
    if (v && cli_parse_double(name, v, &def, &err)) cli_die(a->command, "%s", err.msg);
    return def;
}

const char *cli_require(cli_args *a, const char *name) {
    const char *v = cli_opt(a, name);
    if (!v) cli_die(a->command, "missing required option %s (see --help)", name);
    return v;
}

void cli_parse_table(cli_args *a, const ss_opt_table *t, void *opts, uint64_t *given) {
    for (size_t i = 0; i < t->n; i++) {
        const ss_opt *r = &t->rows[i];
        const char *v = "";
        if (!r->flag) continue;
        if (r->type == SS_OPT_STRS) { /* every value, in order; the array lives as long as the arguments */
            const char **all;
            int n = cli_opt_all(a, r->flag, &all);
            if (!n) continue;
            if (a->n_owned == (int)(sizeof a->owned / sizeof a->owned[0])) cli_die(a->command, "too many list options");
            *(ss_strs *)((char *)opts + r->offset) = (ss_strs){all, n};
            a->owned[a->n_owned++] = all;
            *given |= SS_OPT_BIT(i);
            continue;
        }
        if (r->type == SS_OPT_BOOL ? !cli_flag(a, r->flag) : !(v = cli_opt(a, r->flag))) continue;
        ss_error err = {0};
        if (ss_opt_parse(r, opts, v, &err)) cli_die(a->command, "%s", err.msg);
        *given |= SS_OPT_BIT(i);
    }
}

size_t cli_table_usage(char *out, size_t cap, const ss_opt_table *t, const void *defaults) {
    size_t n = 0;
    for (size_t i = 0; i < t->n && n < cap; i++) {
        const ss_opt *r = &t->rows[i];
        if (!r->flag) continue;
        char head[64], def[64] = "";
        snprintf(head, sizeof head, "%s%s%s", r->flag, r->metavar[0] ? " " : "", r->metavar);
        if (r->type != SS_OPT_STR && r->type != SS_OPT_STRS && r->type != SS_OPT_BOOL &&
            r->resume != SS_RESUME_LENGTH) {
            char v[48];
            ss_opt_format(r, defaults, v, sizeof v);
            snprintf(def, sizeof def, " (%s)", v);
        }
        int w = snprintf(out + n, cap - n, "  %-24s %s%s\n", head, r->help, def);
        n += w > 0 ? (size_t)w : 0;
    }
    return n < cap ? n : cap - 1;
}

void cli_usage_with_table(char *out, size_t cap, const char *head, const ss_opt_table *t, const void *defaults,
                          const char *tail) {
    size_t n = (size_t)snprintf(out, cap, "%s", head);
    if (n < cap) n += cli_table_usage(out + n, cap - n, t, defaults);
    if (n < cap) snprintf(out + n, cap - n, "%s", tail);
}

/* "--x" and "-x" are options; "-" (standard input) and negative numbers
 * ("-1", "-.5") are not. Anything else starting with '-' goes after "--". */
static int looks_like_option(const char *s) {
    if (s[0] != '-' || s[1] == '\0') return 0;
    return s[1] == '-' || !(isdigit((unsigned char)s[1]) || s[1] == '.');
}

int cli_args_done(cli_args *a) {
    int after_dashes = 0;
    for (int i = 0; i < a->argc; i++) {
        if (a->used[i]) continue;
        const char *s = a->argv[i];
        if (!after_dashes && strcmp(s, "--") == 0) { after_dashes = 1; continue; }
        if (!after_dashes && looks_like_option(s)) {
            fprintf(stderr, "selfsup %s: unknown option %s (see --help)\n", a->command, s);
            return 1;
        }
        a->positional[a->n_positional++] = a->argv[i];
    }
    return 0;
}

void cli_args_free(cli_args *a) {
    for (int i = 0; i < a->n_owned; i++) free(a->owned[i]);
    a->n_owned = 0;
    free(a->used);
    free(a->positional);
}

/* Under mpirun every rank meets most errors alike (the same options, data
 * and checkpoint): rank 0 reports, and another rank waits 2 s first, so its
 * message shows only when the error was its own (had rank 0 failed too,
 * its abort would have ended the job by then). Returns the prefix naming
 * the rank ("" for rank 0 or one process). */
static const char *rank_prefix(void) {
    static char p[32];
    if (ss_dist_size() < 2 || ss_dist_rank() == 0) return "";
    struct timespec left = {2, 0}; /* the whole 2 s: mpirun's SIGTERM (caught) cuts a plain sleep short */
    while (nanosleep(&left, &left) != 0 && errno == EINTR) {}
    snprintf(p, sizeof p, "(rank %d) ", ss_dist_rank());
    return p;
}

int cli_report(const char *command, const ss_error *err) {
    const char *r = rank_prefix();
    fprintf(stderr, "selfsup %s: %s%s\n", command, r, err->msg[0] ? err->msg : ss_status_name(err->code));
    return 1;
}

void cli_die(const char *command, const char *fmt, ...) {
    va_list ap;
    const char *r = rank_prefix();
    fprintf(stderr, "selfsup %s: %s", command, r);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    ss_dist_abort(2); /* several ranks: ends the job (no rank left waiting); else exit(2) */
}

int cli_default_threads(void) {
    /* Physical cores: count distinct (physical id, core id) pairs. */
    FILE *f = fopen("/proc/cpuinfo", "r");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (!f) return n > 0 ? (int)n : 1;
    char line[256];
    int phys = -1, ncores = 0;
    int seen[1024][2];
    while (fgets(line, sizeof line, f)) {
        int v;
        if (sscanf(line, "physical id : %d", &v) == 1) phys = v;
        else if (sscanf(line, "core id : %d", &v) == 1) {
            int dup = 0;
            for (int i = 0; i < ncores; i++) dup |= seen[i][0] == phys && seen[i][1] == v;
            if (!dup && ncores < 1024) { seen[ncores][0] = phys; seen[ncores][1] = v; ncores++; }
        }
    }
    fclose(f);
    if (ncores <= 0) return n > 0 ? (int)n : 1;
    return ncores;
}

#include <cblas.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

int cli_threads_quiet(int n) {
    if (n <= 0) n = cli_default_threads();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    return n;
}

/* OpenBLAS built with DYNAMIC_ARCH picks its kernels from the CPU model; a
 * model it does not know (a newer CPU, or a virtual CPU's generic name) gets
 * its SSE3 "Prescott" kernels, several times below what an AVX2 CPU does.
 * Say so: the user may choose OPENBLAS_CORETYPE (selfsup never sets it: an
 * OpenBLAS build may compute wrongly on a CPU it was not written for). */
static void warn_generic_blas_kernels(void) {
    const char *core = openblas_get_corename();
    if (!core || (strcasecmp(core, "prescott") != 0 && strcasecmp(core, "core2") != 0 &&
                  strcasecmp(core, "nehalem") != 0))
        return;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2")) return;
    const char *env = getenv("OPENBLAS_CORETYPE");
    fprintf(stderr,
            "warning: OpenBLAS runs its generic %s kernels on this AVX2%s CPU%s: matrix products run "
            "several times below its peak (OPENBLAS_CORETYPE=Haswell%s selects faster kernels where this "
            "OpenBLAS computes correctly on this CPU)\n",
            core, __builtin_cpu_supports("avx512f") ? "/AVX-512" : "",
            env && *env ? " (OPENBLAS_CORETYPE is set)" : " (OpenBLAS does not recognise it)",
            __builtin_cpu_supports("avx512f") ? " or SkylakeX" : "");
}

int cli_setup_threads(int n) {
    n = cli_threads_quiet(n);
    if (ss_dist_rank() != 0) return n; /* under mpirun: rank 0 speaks for all */
    int par = openblas_get_parallel();
    const dnnl_version_t *dv = dnnl_version();
    char ranks[64] = "";
    if (ss_dist_size() > 1) snprintf(ranks, sizeof ranks, "%d ranks x ", ss_dist_size());
    fprintf(stderr, "threads: %s%d (OpenMP %d; OpenBLAS %s, %s; oneDNN %d.%d.%d on %s)\n", ranks, n, omp_get_max_threads(),
            openblas_get_config(), par == 2 ? "OpenMP build: one shared thread pool" : par == 1 ? "pthread build: "
            "WARNING, its threads compete with OpenMP's" : "single-threaded build", dv->major, dv->minor, dv->patch,
            dv->cpu_runtime == DNNL_RUNTIME_OMP ? "the same OpenMP pool" : "its own threads");
    return n;
}

ss_gemm_choice cli_setup_precision(const char *command, const char *precision, const char *gemm, int verbose) {
    ss_precision want = SS_PRECISION_AUTO;
    ss_gemm_choice c = {0};
    ss_error err = {0};
    if (precision && ss_precision_parse(precision, &want, &err)) cli_die(command, "--precision: %s", err.msg);
    if (gemm) { /* no probe: the backend is named */
        ss_gemm_backend be;
        if (ss_gemm_backend_parse(gemm, &be, &err) || ss_gemm_use(be, &err)) cli_die(command, "--gemm: %s", err.msg);
        c.backend = c.f32_backend = be;
        c.precision = be == SS_GEMM_DNNL_BF16 || be == SS_GEMM_REF_BF16 ? SS_PRECISION_BF16 : SS_PRECISION_FP32;
        snprintf(c.reason, sizeof c.reason, "named by --gemm");
    } else {
        cli_gemm_probe_prepare(command, verbose);
        if (ss_gemm_select(want, &c, &err)) cli_die(command, "--precision: %s", err.msg);
    }
    if (!verbose) return c;
    fprintf(stderr, "precision: %s matrix products through %s (%s)\n", ss_precision_name(c.precision),
            ss_gemm_backend_name(c.backend), c.reason);
    if (!gemm) {
        fprintf(stderr, "GEMM peaks measured here (2048x1024x256):");
        for (int be = 0; be < SS_GEMM_N_BACKENDS; be++)
            if (c.peak[be] > 0) fprintf(stderr, " %s %.0f", ss_gemm_backend_name((ss_gemm_backend)be), c.peak[be]);
        fprintf(stderr, " GFLOP/s; oneDNN ISA %s\n", c.isa);
    }
    if (c.backend == SS_GEMM_OPENBLAS) warn_generic_blas_kernels();
    return c;
}

/* Ctrl-C: the first sets the flag (the run finishes its step, saves and
 * stops), and SA_RESETHAND restores the default action, so a second one
 * kills at once. write() is async-signal-safe, printf is not. */
static volatile int interrupted;

static volatile int quiet_signal; /* under mpirun, ranks other than 0 */

static void on_sigint(int sig) {
    (void)sig;
    static const char msg[] = "\nselfsup: interrupted: finishing the step and saving (Ctrl-C again quits at once)\n";
    interrupted = 1;
    if (quiet_signal) return;
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
}

/* Under mpirun (several ranks) the signal may come as SIGTERM (mpirun's
 * answer to Ctrl-C, followed by SIGKILL after its odls_base_sigkill_timeout,
 * 1 s by default) or SIGUSR1 (`kill -USR1` to mpirun: forwarded to every
 * rank, nothing killed): all three stop and save; the ranks agree on the
 * step (engine.c). */
volatile int *cli_catch_interrupt(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    if (ss_dist_size() > 1) {
        quiet_signal = ss_dist_rank() != 0;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGUSR1, &sa, NULL);
    }
    return &interrupted;
}
