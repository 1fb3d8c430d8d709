/* The model options of a command whose model comes from a saved run
 * (pretrain --init / --resume, finetune --resume): each one given must agree
 * with the run's config.json; --kind with `kind`, the kind the new model
 * will have (the run's, or for pretrain --init the objective's). */
#include <string.h>

#include "cli.h"
#include "selfsup/model.h"

int cli_model_opts_agree(cli_args *a, const char *run, const char *what, const ss_model_kind *kind_of,
                         ss_model_config *have) {
    ss_error err = {0};
    if (!run || ss_model_load_config(have, run, &err)) return -1;
    const char *preset = cli_opt(a, "--preset"), *kind = cli_opt(a, "--kind");
    if (preset) {
        ss_model_config p = {0};
        if (ss_config_preset(&p, preset, &err)) cli_die(a->command, "%s", err.msg);
        if (p.n_layer != have->n_layer || p.d_model != have->d_model || p.n_head != have->n_head ||
            p.d_ff != have->d_ff)
            cli_die(a->command, "--preset %s (%d layers, d_model %d, %d heads, d_ff %d) differs from the %s's "
                    "model (%d layers, d_model %d, %d heads, d_ff %d): the model comes from %s (leave --preset out)",
                    preset, p.n_layer, p.d_model, p.n_head, p.d_ff, what, have->n_layer, have->d_model,
                    have->n_head, have->d_ff, run);
    }
    const struct { const char *flag, *field; int have; } f[] = {
        {"--layers", "n_layer", have->n_layer}, {"--d-model", "d_model", have->d_model},
        {"--heads", "n_head", have->n_head},    {"--d-ff", "d_ff", have->d_ff},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        int v = cli_opt_i32(a, f[i].flag, 0);
        if (cli_opt(a, f[i].flag) && v != f[i].have)
            cli_die(a->command, "%s %d differs from the %s's %s %d: the model comes from %s (leave %s out)",
                    f[i].flag, v, what, f[i].field, f[i].have, run, f[i].flag);
    }
    if (kind && kind_of && strcmp(kind, ss_model_kind_name(*kind_of)))
        cli_die(a->command, "--kind %s differs from the kind the objective makes of the %s (%s): leave --kind out",
                kind, what, ss_model_kind_name(*kind_of));
    else if (kind && !kind_of && strcmp(kind, ss_model_kind_name(have->kind)))
        cli_die(a->command, "--kind %s differs from the %s's kind %s: the model comes from %s (leave --kind out)",
                kind, what, ss_model_kind_name(have->kind), run);
    return 0;
}
