/* selfsup plot RUN: the curves of RUN/metrics.jsonl to a PNG via gnuplot,
 * chosen by the kind of run the file comes from (clm, mlm or rtd
 * pretraining, or fine-tuning): each panel draws only series the file has. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>

#include "cli.h"
#include "selfsup/path.h"

static const char usage[] =
    "usage: selfsup plot RUN [--out FILE.png]\n"
    "\n"
    "Draws the curves of RUN/metrics.jsonl into RUN/loss.png (or FILE.png) with\n"
    "gnuplot (Debian package gnuplot-nox), two panels by the kind of run:\n"
    "  clm:         train and val loss; val bits per byte\n"
    "  mlm:         train and val masked-LM loss; masked-token accuracy\n"
    "  rtd:         generator and discriminator loss (train, val); the\n"
    "               discriminator's accuracy against its base rate (the share\n"
    "               of tokens not replaced), its AUC, the generator's accuracy\n"
    "  fine-tuning: train loss; dev accuracy, macro-F1 and MCC per evaluation\n"
    "               (the epoch ends marked on the top axis)\n";

enum { MAX_SERIES = 12 };

typedef enum { RUN_CLM, RUN_MLM, RUN_RTD, RUN_FINETUNE } run_kind;

/* One curve: the (step, key) pairs of the lines that have key. */
typedef struct {
    const char *key, *title;
    int panel, y2;      /* panel 0 (top) or 1; right-hand axis */
    const char *style;  /* gnuplot "with ..." */
} series_spec;

typedef struct {
    const series_spec *spec;
    char path[128];
    FILE *f;
    int n;
    double lo, hi;      /* range of the values */
} series;

typedef struct {
    const char *y1label[2], *y2label[2], *what;
    series_spec specs[MAX_SERIES];
} layout;

/* A quantity's train curve is a light thin line, its val/dev curve the
 * same hue dark with points. */
#define TRAIN(c) "lines lw 1.5 lc rgb '" c "'"
#define EVAL(c) "linespoints lw 2 pt 7 ps 0.8 lc rgb '" c "'"
#define BLUE "#1f77b4"
#define LBLUE "#9cc3e0"
#define ORANGE "#e6700a"
#define LORANGE "#f8c18f"
#define GREEN "#2ca02c"
#define LGREEN "#a3d8a3"
#define RED "#d62728"
#define PURPLE "#9467bd"
#define BASE "linespoints lw 2 dt 2 pt 6 ps 1 lc rgb '#555555'"
#define SPREAD "linespoints lw 2 dt 3 pt 4 ps 1 lc rgb '#8c564b'" /* the collapse monitor */

static const layout layouts[] = {
    [RUN_CLM] = {{"loss (nats/token)", "bits per byte"}, {NULL, NULL}, "clm pretraining",
                 {{"loss", "train loss", 0, 0, TRAIN(LBLUE)}, {"val_loss", "val loss", 0, 0, EVAL(BLUE)},
                  {"val_bpb", "val bits per byte", 1, 0, EVAL(ORANGE)}}},
    [RUN_MLM] = {{"masked-LM loss (nats/token)", "masked-token accuracy, cosine"}, {NULL, NULL}, "mlm pretraining",
                 {{"loss", "train loss", 0, 0, TRAIN(LBLUE)}, {"val_loss", "val loss", 0, 0, EVAL(BLUE)},
                  {"mlm_acc", "train masked accuracy", 1, 0, TRAIN(LGREEN)},
                  {"val_acc", "val masked accuracy", 1, 0, EVAL(GREEN)},
                  {"val_spread_cos", "mean cosine of the body vectors (val; 1: collapsed)", 1, 0, SPREAD}}},
    [RUN_RTD] = {{"generator MLM loss (nats/token)", "accuracy, AUC, cosine"}, {"discriminator loss (BCE)", NULL},
                 "rtd (ELECTRA) pretraining",
                 {{"gen_loss", "generator loss (train)", 0, 0, TRAIN(LBLUE)},
                  {"val_loss", "generator loss (val)", 0, 0, EVAL(BLUE)},
                  {"disc_loss", "discriminator loss (train, right axis)", 0, 1, TRAIN(LORANGE)},
                  {"val_disc_loss", "discriminator loss (val, right axis)", 0, 1, EVAL(ORANGE)},
                  {"disc_acc", "discriminator accuracy (train)", 1, 0, TRAIN(LGREEN)},
                  {"val_disc_acc", "discriminator accuracy (val)", 1, 0, EVAL(GREEN)},
                  {"val_disc_base", "its base rate: share not replaced (val)", 1, 0, BASE},
                  {"val_auc", "discriminator AUC (val)", 1, 0, EVAL(RED)},
                  {"val_acc", "generator masked accuracy (val)", 1, 0, EVAL(PURPLE)},
                  {"val_spread_cos", "mean cosine of the discriminator vectors (val; 1: collapsed)", 1, 0, SPREAD}}},
    [RUN_FINETUNE] = {{"train loss (cross-entropy)", "dev metric"}, {NULL, NULL}, "fine-tuning",
                      {{"loss", "train loss", 0, 0, TRAIN(LBLUE)},
                       {"train_loss", "train loss (mean since the previous evaluation)", 0, 0, EVAL(BLUE)},
                       {"dev_accuracy", "dev accuracy", 1, 0, EVAL(GREEN)},
                       {"dev_macro_f1", "dev macro-F1", 1, 0, EVAL(ORANGE)},
                       {"dev_mcc", "dev MCC", 1, 0, EVAL(PURPLE)}}},
};

/* What the file's keys say about the run. */
static run_kind detect(cJSON *const *lines, size_t n) {
    int mlm = 0;
    for (size_t i = 0; i < n; i++) {
        if (cJSON_HasObjectItem(lines[i], "dev_accuracy")) return RUN_FINETUNE;
        if (cJSON_HasObjectItem(lines[i], "disc_loss") || cJSON_HasObjectItem(lines[i], "val_disc_acc")) return RUN_RTD;
        mlm |= cJSON_HasObjectItem(lines[i], "mlm_acc") || cJSON_HasObjectItem(lines[i], "val_acc");
    }
    return mlm ? RUN_MLM : RUN_CLM;
}

/* Every line of metrics.jsonl (a torn last line from a crash is dropped). */
static cJSON **read_lines(const char *path, size_t *n) {
    FILE *f = fopen(path, "r");
    if (!f) cli_die("plot", "%s: cannot open: %s", path, strerror(errno));
    cJSON **v = NULL;
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    long lineno = 0;
    *n = 0;
    while (getline(&line, &lcap, f) > 0) {
        lineno++;
        cJSON *o = cJSON_Parse(line);
        if (!o || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            if (!feof(f)) cli_die("plot", "%s: line %ld is not a JSON object", path, lineno);
            break;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            if (!(v = realloc(v, cap * sizeof *v))) cli_die("plot", "out of memory");
        }
        v[(*n)++] = o;
    }
    free(line);
    fclose(f);
    return v;
}

/* Write each series' points to its own table; fine-tuning's per-evaluation
 * train_loss only when there are no per-step train lines. */
static void write_tables(cJSON *const *lines, size_t n, series *s, int ns, const char *dir) {
    for (int k = 0; k < ns; k++) {
        snprintf(s[k].path, sizeof s[k].path, "%s/%d.dat", dir, k);
        if (!(s[k].f = fopen(s[k].path, "w"))) cli_die("plot", "cannot write %s", s[k].path);
        s[k].lo = INFINITY;
        s[k].hi = -INFINITY;
    }
    for (size_t i = 0; i < n; i++) {
        const cJSON *step = cJSON_GetObjectItem(lines[i], "step");
        if (!cJSON_IsNumber(step)) continue;
        for (int k = 0; k < ns; k++) {
            const cJSON *y = cJSON_GetObjectItem(lines[i], s[k].spec->key);
            if (!cJSON_IsNumber(y) || !isfinite(y->valuedouble)) continue;
            fprintf(s[k].f, "%.17g %.17g\n", step->valuedouble, y->valuedouble);
            s[k].n++;
            s[k].lo = fmin(s[k].lo, y->valuedouble);
            s[k].hi = fmax(s[k].hi, y->valuedouble);
        }
    }
    for (int k = 0; k < ns; k++) fclose(s[k].f);
}

/* The step range of all points, and the epoch ends (fine-tuning). */
static void steps_and_epochs(cJSON *const *lines, size_t n, double *lo, double *hi, FILE *gp, int epochs) {
    *lo = INFINITY;
    *hi = -INFINITY;
    int first = 1, last_epoch = -1;
    double end = 0;
    for (size_t i = 0; i < n; i++) {
        const cJSON *step = cJSON_GetObjectItem(lines[i], "step");
        if (!cJSON_IsNumber(step)) continue;
        *lo = fmin(*lo, step->valuedouble);
        *hi = fmax(*hi, step->valuedouble);
        const cJSON *ep = cJSON_GetObjectItem(lines[i], "epoch");
        if (!epochs || !cJSON_IsNumber(ep) || !cJSON_HasObjectItem(lines[i], "dev_accuracy")) continue;
        if (last_epoch >= 0 && ep->valueint != last_epoch) { /* the previous epoch's last evaluation */
            fprintf(gp, "%s\"epoch %d\" %.17g", first ? "set x2tics (" : ", ", last_epoch, end);
            first = 0;
        }
        last_epoch = ep->valueint;
        end = step->valuedouble;
    }
    if (last_epoch >= 0) fprintf(gp, "%s\"epoch %d\" %.17g)\n", first ? "set x2tics (" : ", ", last_epoch, end);
}

/* s as a gnuplot single-quoted string: a quote inside is doubled (a bare
 * one ends the string, as a title once did), so a path may hold one; a line
 * break would end gnuplot's command and is refused earlier. */
static void gp_quoted(FILE *gp, const char *s) {
    fputc('\'', gp);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', gp);
        fputc(*s, gp);
    }
    fputc('\'', gp);
}

/* A y range for an axis whose values are all equal, so gnuplot does not
 * warn of an empty range. */
static void axis_range(FILE *gp, const series *s, int ns, int panel, int y2) {
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < ns; k++)
        if (s[k].n && s[k].spec->panel == panel && s[k].spec->y2 == y2) {
            lo = fmin(lo, s[k].lo);
            hi = fmax(hi, s[k].hi);
        }
    const char *ax = y2 ? "y2" : "y";
    if (isfinite(lo) && hi - lo <= 1e-12 * fmax(1, fabs(lo))) {
        double d = fmax(0.05 * fabs(lo), 0.01);
        fprintf(gp, "set %srange [%.17g:%.17g]\n", ax, lo - d, hi + d);
    } else {
        fprintf(gp, "set %srange [*:*]\n", ax);
    }
}

static void draw_panel(FILE *gp, const layout *L, const series *s, int ns, int panel) {
    int y2 = 0;
    for (int k = 0; k < ns; k++) y2 |= s[k].n && s[k].spec->panel == panel && s[k].spec->y2;
    fprintf(gp, "set ylabel '%s'\n", L->y1label[panel]);
    if (y2) fprintf(gp, "set y2label '%s'\nset y2tics\nset ytics nomirror\n", L->y2label[panel]);
    else fprintf(gp, "unset y2label\nunset y2tics\nset ytics mirror\n");
    axis_range(gp, s, ns, panel, 0);
    if (y2) axis_range(gp, s, ns, panel, 1);
    const char *sep = "plot ";
    for (int k = 0; k < ns; k++) {
        if (!s[k].n || s[k].spec->panel != panel) continue;
        fputs(sep, gp);
        gp_quoted(gp, s[k].path);
        fprintf(gp, " using 1:2 axes x1y%d with %s title ", s[k].spec->y2 ? 2 : 1, s[k].spec->style);
        gp_quoted(gp, s[k].spec->title);
        sep = ", ";
    }
    fprintf(gp, "\n");
}

static void remove_tables(const series *s, int ns, const char *script, const char *dir) {
    for (int k = 0; k < ns; k++) unlink(s[k].path);
    if (script) unlink(script);
    rmdir(dir);
}

/* gnuplot's messages (it prints only warnings and errors) go to stderr. */
static int run_gnuplot(const char *script) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>&1", script);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[1024];
    while (fgets(line, sizeof line, p)) fprintf(stderr, "selfsup: plot: gnuplot: %s", line);
    return pclose(p);
}

int cmd_plot(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, "plot", usage);
    const char *out = cli_opt(&a, "--out");
    if (cli_args_done(&a)) return 2;
    if (a.n_positional != 1) cli_die(a.command, "give one run directory (see --help)");
    const char *run = a.positional[0];
    char metrics[SS_PATH_MAX], png[SS_PATH_MAX], dir[] = "/tmp/selfsup-plot-XXXXXX", script[64];
    ss_error err = {0};
    if (ss_path_join(metrics, sizeof metrics, run, SS_RUN_METRICS, &err) ||
        (!out && ss_path_join(png, sizeof png, run, "loss.png", &err)))
        cli_die(a.command, "%s", err.msg);
    if (out && (size_t)snprintf(png, sizeof png, "%s", out) >= sizeof png)
        cli_die(a.command, "--out: path too long (at most %zu bytes): %.200s...", sizeof png - 1, out);
    if (strpbrk(png, "\n\r") || strpbrk(run, "\n\r")) cli_die(a.command, "a path with a line break cannot be passed to gnuplot");
    size_t n;
    cJSON **lines = read_lines(metrics, &n);
    run_kind kind = detect(lines, n);
    const layout *L = &layouts[kind];
    series s[MAX_SERIES] = {0};
    int ns = 0;
    while (ns < MAX_SERIES && L->specs[ns].key) {
        s[ns].spec = &L->specs[ns];
        ns++;
    }
    if (!mkdtemp(dir)) cli_die(a.command, "cannot create a temporary directory");
    write_tables(lines, n, s, ns, dir);
    if (kind == RUN_FINETUNE && s[0].n) s[1].n = 0; /* per-step train loss: drop the per-evaluation means */
    int points[2] = {0, 0}, evals = 0;
    for (int k = 0; k < ns; k++) points[s[k].spec->panel] += s[k].n;
    for (size_t i = 0; i < n; i++)
        evals += cJSON_HasObjectItem(lines[i], "val_loss") || cJSON_HasObjectItem(lines[i], "dev_accuracy");
    if (!points[0] && !points[1]) {
        remove_tables(s, ns, NULL, dir);
        cli_die(a.command, "%s holds nothing to plot yet", metrics);
    }

    /* gnuplot opens its output before it draws: it writes a temporary file
     * beside the PNG, renamed over it only when gnuplot succeeded, so a
     * failed plot leaves an earlier PNG as it was and no empty one */
    char tmp_png[SS_PATH_MAX + 16];
    snprintf(tmp_png, sizeof tmp_png, "%s.tmp.XXXXXX", png); /* fits: png is shorter than SS_PATH_MAX */
    int fd = mkstemp(tmp_png);
    if (fd < 0) {
        remove_tables(s, ns, NULL, dir);
        cli_die(a.command, "cannot write beside %s: %s", png, strerror(errno));
    }
    fchmod(fd, 0644); /* as every file selfsup writes (mkstemp makes it 0600) */
    close(fd);
    snprintf(script, sizeof script, "%s/plot.gp", dir);
    FILE *gp = fopen(script, "w");
    if (!gp) {
        unlink(tmp_png);
        cli_die(a.command, "cannot write %s", script);
    }
    int panels = (points[0] > 0) + (points[1] > 0);
    fprintf(gp, "set terminal pngcairo size 1000,%d noenhanced\nset output ", panels == 2 ? 900 : 520);
    gp_quoted(gp, tmp_png);
    fprintf(gp, "\nset grid\nset key below horizontal Left reverse maxrows 3 width 2\nset lmargin 12\n"
                "set rmargin 12\nset xlabel 'step'\n");
    if (kind == RUN_FINETUNE) fprintf(gp, "set link x2\nset x2tics nomirror\nset xtics nomirror\nset grid x2tics\n");
    double xlo, xhi;
    steps_and_epochs(lines, n, &xlo, &xhi, gp, kind == RUN_FINETUNE);
    if (xhi <= xlo) fprintf(gp, "set xrange [%.17g:%.17g]\n", xlo - 1, xhi + 1);
    else fprintf(gp, "set xrange [%.17g:%.17g]\n", xlo < 0 ? xlo : 0, xhi + 0.02 * (xhi - (xlo < 0 ? xlo : 0)));
    char title[SS_PATH_MAX + 64];
    snprintf(title, sizeof title, "selfsup %s: %s", L->what, run);
    fprintf(gp, "set multiplot layout %d,1 title ", panels);
    gp_quoted(gp, title);
    fputc('\n', gp);
    for (int p = 0; p < 2; p++)
        if (points[p]) draw_panel(gp, L, s, ns, p);
    fprintf(gp, "unset multiplot\n");
    fclose(gp);

    int rc = run_gnuplot(script);
    remove_tables(s, ns, script, dir);
    for (size_t i = 0; i < n; i++) cJSON_Delete(lines[i]);
    free(lines);
    cli_args_free(&a);
    if (rc != 0) unlink(tmp_png);
    if (rc == -1 || (WIFEXITED(rc) && WEXITSTATUS(rc) == 127))
        cli_die("plot", "cannot run gnuplot: install it (apt-get install gnuplot-nox)");
    if (rc != 0) cli_die("plot", "gnuplot could not draw %s (its messages are above)", png);
    if (rename(tmp_png, png) != 0) {
        int e = errno;
        unlink(tmp_png);
        cli_die("plot", "cannot write %s: %s", png, strerror(e));
    }
    printf("wrote %s (%s: %d points, %d evaluations)\n", png, L->what, points[0] + points[1], evals);
    return 0;
}
