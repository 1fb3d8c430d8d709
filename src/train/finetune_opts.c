/* Fine-tuning options: the table made from selfsup/finetune_opts.def, their
 * checks and their JSON form (stored with the run's checkpoint, so --resume
 * continues with the options of the original run). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "optable.h"
#include "selfsup/finetune.h"

static const char *const ss_table_format_names[] = {"auto", "tsv", "csv", "jsonl", NULL};
static const char *const ss_select_metric_names[] = {"accuracy", "macro_f1", "mcc", NULL};
static const char *const ss_pooling_names[] = {"cls", "last", "mean", "wmean", NULL};
static const char *const ss_attention_names[] = {"causal", "bidirectional", NULL};

static const ss_opt rows[] = {
#define SS_OPT(type, ctype, field, flag, meta, def, range, names, resume, help) \
    {#field, flag, meta, SS_OPT_##type, offsetof(ss_finetune_opts, field), (double)(def), range, names, \
     SS_RESUME_##resume, help},
#include "selfsup/finetune_opts.def"
#undef SS_OPT
};
_Static_assert(sizeof rows / sizeof rows[0] <= 64, "given is a 64-bit mask");
_Static_assert(sizeof(ss_table_format) == sizeof(int) && sizeof(ss_select_metric) == sizeof(int),
               "enum options are read as int");
const ss_opt_table ss_finetune_opt_table = {rows, sizeof rows / sizeof rows[0]};

void ss_finetune_opts_defaults(ss_finetune_opts *o) {
    memset(o, 0, sizeof *o);
    ss_opts_defaults(&ss_finetune_opt_table, o);
    ss_config_preset(&o->scratch, "small", NULL);
    o->scratch.kind = SS_ENCODER;
}

ss_status ss_finetune_opts_check(const ss_finetune_opts *o, ss_error *err) {
    ss_status st = ss_opts_check(&ss_finetune_opt_table, o, err);
    if (st) return st;
    if (!o->out_dir) return ss_fail(err, SS_ERR_ARG, "fine-tuning needs an output directory");
    if (o->resume) return SS_OK; /* the rest comes from the checkpoint, checked again after */
    if (!o->train_path || !o->dev_path)
        return ss_fail(err, SS_ERR_ARG, "fine-tuning needs a train file, a dev file and an output directory");
    if (!o->init && !o->tokenizer)
        return ss_fail(err, SS_ERR_ARG, "a model from scratch (--init none) needs --tokenizer");
    if (o->train_size > 0 && o->per_class > 0)
        return ss_fail(err, SS_ERR_ARG, "--train-size and --per-class are two ways to take a subset: give one");
    if (!o->template.n != !o->verbalizer) return ss_fail(err, SS_ERR_ARG, "--template and --verbalizer go together");
    if (!o->unlabeled) { /* a self-training option alone would be silently ignored */
        static const int st_rows[] = {SS_FINETUNE_OPT_rounds, SS_FINETUNE_OPT_threshold, SS_FINETUNE_OPT_max_pseudo,
                                      SS_FINETUNE_OPT_student_epochs, SS_FINETUNE_OPT_gold_repeat,
                                      SS_FINETUNE_OPT_teachers};
        for (size_t i = 0; i < sizeof st_rows / sizeof st_rows[0]; i++)
            if (o->given & SS_OPT_BIT(st_rows[i]))
                return ss_fail(err, SS_ERR_ARG, "%s is a self-training option: it needs --unlabeled FILE",
                               ss_finetune_opt_table.rows[st_rows[i]].flag);
    }
    if (o->freeze_encoder && o->unfreeze_every > 0)
        return ss_fail(err, SS_ERR_ARG, "--unfreeze-every does not go with --freeze-encoder: the body never trains");
    for (int i = 0; i < o->template.n; i++)
        if (!o->template.v[i]) return ss_fail(err, SS_ERR_ARG, "--template %d of %d is missing", i + 1, o->template.n);
    if (o->template.n) {
        if (!o->init)
            return ss_fail(err, SS_ERR_ARG, "prompt-based fine-tuning (--template) needs --init RUN: a pretrained "
                           "model whose language model head it trains");
        if (o->freeze_encoder)
            return ss_fail(err, SS_ERR_ARG, "--freeze-encoder does not go with --template: the LM head is tied to "
                           "the token embeddings, which are part of the body");
        if (o->pooling >= 0 || o->pooler >= 0)
            return ss_fail(err, SS_ERR_ARG, "--pooling and --pooler are for a classification head: with --template "
                           "the class logits are the LM head's at the word's position");
        if (o->attention == 1)
            return ss_fail(err, SS_ERR_ARG, "--attention bidirectional is for a classification head: with --template "
                           "a decoder's LM head predicts the next token, which bidirectional attention would let it see");
    }
    return SS_OK;
}

char *ss_finetune_opts_to_json(const ss_finetune_opts *o) {
    cJSON *j = cJSON_CreateObject();
    opts_to_json(&ss_finetune_opt_table, o, j);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

ss_status ss_finetune_opts_from_json(ss_finetune_opts *o, const char *json, const char *src, char **keep,
                                     ss_error *err) {
    *keep = NULL;
    cJSON *j = cJSON_Parse(json);
    if (!j) return ss_fail(err, SS_ERR_FORMAT, "%s: fine-tuning options are not valid JSON", src);
    ss_status st = opts_from_json(&ss_finetune_opt_table, o, j, src, keep, err);
    cJSON_Delete(j);
    return st;
}
