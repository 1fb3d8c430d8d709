/* Training progress: a live line on a terminal (step/total, loss, tokens/s,
 * ETA), plain log lines otherwise. Evaluation progress: a live line on
 * stderr when it is a terminal, else a line every ~10 s. */
#include <stdio.h>
#include <unistd.h>

#include "cli.h"

void cli_fmt_duration(char *out, size_t cap, double s) {
    if (s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(out, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(out, cap, "%lds", t);
}

void cli_progress(void *ctx, const ss_train_progress *p) {
    cli_progress_state *s = ctx;
    /* under mpirun a rank's stdout is a pty of mpirun's even when mpirun's
     * own output goes to a file: plain lines there */
    int tty = isatty(fileno(stdout)) && ss_dist_size() == 1;
    if (p->message) {
        printf("%s%s\n", s->line_open ? "\n" : "", p->message);
        s->line_open = 0;
    } else if (p->is_eval) {
        printf("%sstep %lld | val loss %.4f", s->line_open ? "\n" : "", (long long)p->step, p->val_loss);
        if (p->objective == SS_OBJ_CLM) printf(" | val bpb %.4f\n", p->val_bpb);
        else if (p->objective == SS_OBJ_MLM || p->objective == SS_OBJ_HYBRID)
            printf(" | val masked acc %.4f | spread: cos %.3f, PR %.1f\n", p->val_acc, p->val_spread_cos,
                   p->val_spread_pr);
        else printf(" (generator) | val gen acc %.4f | val disc acc %.4f (not replaced: %.4f) | val AUC %.4f"
                    " | spread: cos %.3f, PR %.1f\n", p->val_acc, p->val_disc_acc, p->val_disc_base, p->val_auc,
                    p->val_spread_cos, p->val_spread_pr);
        s->line_open = 0;
    } else {
        char eta[32], total[32] = "";
        cli_fmt_duration(eta, sizeof eta, p->eta);
        if (p->total_steps > 0) snprintf(total, sizeof total, "/%lld", (long long)p->total_steps);
        char extra[160] = "";
        if (p->objective == SS_OBJ_MLM || p->objective == SS_OBJ_HYBRID)
            snprintf(extra, sizeof extra, " | acc %.3f", p->mlm_acc);
        if (p->objective == SS_OBJ_RTD && p->disc_weight > 0)
            snprintf(extra, sizeof extra, " | gen %.3f acc %.3f | disc %.4f acc %.3f P %.2f R %.2f", p->gen_loss,
                     p->mlm_acc, p->disc_loss, p->disc_acc, p->disc_precision, p->disc_recall);
        else if (p->objective == SS_OBJ_RTD)
            snprintf(extra, sizeof extra, " | gen %.3f acc %.3f | disc off", p->gen_loss, p->mlm_acc);
        printf("%sstep %lld%s | loss %.4f%s | lr %.2e | grad norm %.3f | %.0f tok/s | MFU %.1f%% | ETA %s%s",
               tty ? "\r" : "", (long long)p->step, total, p->loss, extra, p->lr, p->grad_norm, p->tokens_per_s,
               100 * p->mfu, eta, tty ? "\033[K" : "\n");
        s->line_open = tty;
    }
    fflush(stdout);
}

/* Evaluation: on a terminal a live line (redrawn at most 5 times a second),
 * otherwise a plain line every CLI_EVAL_EVERY seconds, so a quick
 * evaluation prints nothing. All on stderr: stdout holds the results. */
#define CLI_EVAL_EVERY 10.0

void cli_eval_progress(void *ctx, const ss_eval_progress *p) {
    cli_eval_state *s = ctx;
    int tty = isatty(fileno(stderr)), last = p->fraction >= 1;
    if (p->elapsed - s->last_print < (tty ? 0.2 : CLI_EVAL_EVERY) && !(tty && last && s->line_open)) return;
    s->last_print = p->elapsed;
    char el[32], eta[32];
    cli_fmt_duration(el, sizeof el, p->elapsed);
    cli_fmt_duration(eta, sizeof eta, p->fraction > 0 ? p->elapsed * (1 - p->fraction) / p->fraction : 0);
    fprintf(stderr, "%s%s: %3.0f%% | batch %lld/%s%lld | %lld tokens | %s elapsed | ETA %s%s", tty ? "\r" : "",
            s->what ? s->what : "eval", 100 * p->fraction, (long long)p->batches, s->estimated ? "~" : "",
            (long long)p->total_batches, (long long)p->tokens, el, eta, tty ? "\033[K" : "\n");
    s->line_open = tty;
    fflush(stderr);
}

void cli_eval_progress_end(cli_eval_state *s) {
    if (s->line_open) fprintf(stderr, "\n");
    s->line_open = 0;
}
