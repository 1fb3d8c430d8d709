/* selfsup plot RUN: loss curves from RUN/metrics.jsonl to a PNG via gnuplot. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "cli.h"
#include "selfsup/io.h"

static const char usage[] =
    "usage: selfsup plot RUN [--out FILE.png]\n"
    "\n"
    "Draws the training loss and the validation loss (and bits per byte) of a run\n"
    "from RUN/metrics.jsonl into RUN/loss.png (or FILE.png) with gnuplot\n"
    "(Debian package gnuplot-nox).\n";

/* Split metrics.jsonl into two whitespace tables gnuplot can read. */
static int write_tables(const char *metrics, FILE *train, FILE *val, int *n_train, int *n_val) {
    FILE *f = fopen(metrics, "r");
    if (!f) cli_die("plot", "%s: cannot open: %s", metrics, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        cJSON *o = cJSON_Parse(line);
        if (!o) {
            if (!feof(f)) cli_die("plot", "%s: line %ld is not valid JSON", metrics, lineno);
            break; /* a torn last line from a crash */
        }
        const cJSON *s = cJSON_GetObjectItem(o, "step"), *l = cJSON_GetObjectItem(o, "loss");
        const cJSON *vl = cJSON_GetObjectItem(o, "val_loss"), *vb = cJSON_GetObjectItem(o, "val_bpb");
        if (cJSON_IsNumber(s) && cJSON_IsNumber(l)) {
            fprintf(train, "%g %g\n", s->valuedouble, l->valuedouble);
            (*n_train)++;
        }
        if (cJSON_IsNumber(s) && cJSON_IsNumber(vl)) {
            fprintf(val, "%g %g %g\n", s->valuedouble, vl->valuedouble, cJSON_IsNumber(vb) ? vb->valuedouble : 0);
            (*n_val)++;
        }
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    return 0;
}

int cmd_plot(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, "plot", usage);
    const char *out = cli_opt(&a, "--out");
    if (cli_args_done(&a)) return 2;
    if (a.n_positional != 1) cli_die(a.command, "give one run directory (see --help)");
    const char *run = a.positional[0];
    char metrics[4096], png[4096], tdir[] = "/tmp/selfsup-plot-XXXXXX", tpath[64], vpath[64];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", run);
    snprintf(png, sizeof png, "%s", out ? out : "");
    if (!out) snprintf(png, sizeof png, "%s/loss.png", run);
    if (!mkdtemp(tdir)) cli_die(a.command, "cannot create a temporary directory");
    snprintf(tpath, sizeof tpath, "%s/train.dat", tdir);
    snprintf(vpath, sizeof vpath, "%s/val.dat", tdir);
    FILE *tf = fopen(tpath, "w"), *vf = fopen(vpath, "w");
    if (!tf || !vf) cli_die(a.command, "cannot write in %s", tdir);
    int nt = 0, nv = 0;
    write_tables(metrics, tf, vf, &nt, &nv);
    fclose(tf);
    fclose(vf);
    if (nt == 0) cli_die(a.command, "%s holds no training steps to plot", metrics);
    FILE *gp = popen("gnuplot 2>&1", "w");
    if (!gp) cli_die(a.command, "cannot run gnuplot (install it: apt-get install gnuplot-nox)");
    fprintf(gp, "set terminal pngcairo size 1000,600 noenhanced\nset output '%s'\n"
                "set title 'selfsup: %s'\nset xlabel 'step'\nset ylabel 'loss (nats/token)'\n"
                "set y2label 'val bits per byte'\nset y2tics\nset ytics nomirror\nset grid\nset key top right\n",
            png, run);
    if (nv > 0)
        fprintf(gp, "plot '%s' using 1:2 with lines title 'train loss', '%s' using 1:2 with linespoints "
                    "title 'val loss', '%s' using 1:3 axes x1y2 with linespoints title 'val bits/byte'\n",
                tpath, vpath, vpath);
    else
        fprintf(gp, "plot '%s' using 1:2 with lines title 'train loss'\n", tpath);
    int rc = pclose(gp);
    unlink(tpath);
    unlink(vpath);
    rmdir(tdir);
    cli_args_free(&a);
    if (rc != 0) cli_die("plot", "gnuplot failed (exit %d); is gnuplot installed? (apt-get install gnuplot-nox)", rc);
    printf("wrote %s (%d train points, %d evaluations)\n", png, nt, nv);
    return 0;
}
