/* selfsup classify: label each input line with a fine-tuned classifier (ss_classify). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cli.h"
#include "selfsup/infer.h"
#include "selfsup/io.h"

static const char usage[] =
    "usage: selfsup classify --model DIR [--json] [--batch B] [--threads N] [--precision fp32|bf16|auto] [--gemm NAME]\n"
    "                        [--template TEXT [--template TEXT...] --verbalizer 'LABEL=WORD[,WORD...];...'\n"
    "                         [--calibrate]]\n"
    "                        [--detokenize none|ptb] [FILE...]\n"
    "\n"
    "Reads one text per line (files, plain or .zst, or standard input; '-' is\n"
    "standard input) and prints, for each line in order, the predicted label,\n"
    "its probability and every class's probability:\n"
    "  LABEL<TAB>P<TAB>label0=p0 label1=p1 ...\n"
    "or with --json one object per line: {\"text\":..,\"label\":..,\"probs\":{..}},\n"
    "probabilities rounded to 4 significant digits (0.9731, 2.48e-05); in the\n"
    "JSON text, each byte of invalid UTF-8 becomes U+FFFD (valid JSON always).\n"
    "DIR is a directory written by 'selfsup finetune'. Lines are classified in\n"
    "batches of B (default 64; 1 when reading from a terminal), read 16 batches\n"
    "at a time and sorted by length within them (less padding; the output keeps\n"
    "the input order).\n"
    "\n"
    "Zero-shot (no labelled row): with --template and --verbalizer, DIR is a\n"
    "pretrained run (clm, mlm, or rtd: its generator) and each label scores by\n"
    "the probability its language model head gives the label's words:\n"
    "  --template TEXT   where the text goes ({text}) and, for an encoder, the\n"
    "                    word ([MASK], once): '{text} It was [MASK].'; a decoder\n"
    "                    predicts the word as the continuation: '{text} It was'\n"
    "  --verbalizer V    the words of each label: '0=terrible,bad;1=great,good'\n"
    "                    (a label scores the summed probability of its words;\n"
    "                    a word of several tokens, the product of theirs)\n"
    "  --calibrate       divide out the label probabilities of content-free\n"
    "                    inputs ('N/A' and '' in the template; Zhao et al. 2021)\n"
    "  --template given several times: every template scores each text, and the\n"
    "                    class probabilities are the softmax of the mean of the\n"
    "                    templates' (calibrated) class log-probabilities\n"
    "A model fine-tuned with --template classifies with its own prompt; these\n"
    "options replace it.\n"
    "  --detokenize none|ptb  normalize each line before tokenizing (ptb: undo\n"
    "                    Penn Treebank tokenization, \"does n't\" -> \"doesn't\");\n"
    "                    default: what the classifier was fine-tuned with\n"
    "                    (finetune --detokenize), none for a pretrained run.\n"
    "Short forms: -m DIR (--model), -t N (--threads).\n"
    "\n" CLI_PRECISION_HELP;

typedef struct {
    ss_classifier c;
    int json, batch;
} classify_ctx;

/* A probability for JSON: 4 significant digits, not the 17 that print a
 * float's double exactly (0.99999999403953552). */
static double json_prob(float p) {
    char b[32];
    snprintf(b, sizeof b, "%.4g", (double)p);
    return strtod(b, NULL);
}

static void print_one(const classify_ctx *x, const char *text, const float *p) {
    int K = x->c.labels.n, best = 0;
    for (int k = 1; k < K; k++)
        if (p[k] > p[best]) best = k;
    if (!x->json) {
        printf("%s\t%.4f\t", x->c.labels.names[best], p[best]);
        for (int k = 0; k < K; k++) printf("%s%s=%.4f", k ? " " : "", x->c.labels.names[k], p[k]);
        printf("\n");
        return;
    }
    /* JSON strings must be UTF-8: invalid bytes (in the input text, or in
     * class names from a hand-edited labels.json) become U+FFFD */
    cJSON *o = cJSON_CreateObject(), *probs = cJSON_CreateObject();
    char *t = ss_utf8_sanitize(text, strlen(text)), *name = NULL;
    cJSON_AddStringToObject(o, "text", t ? t : "");
    name = ss_utf8_sanitize(x->c.labels.names[best], strlen(x->c.labels.names[best]));
    cJSON_AddStringToObject(o, "label", name ? name : "");
    for (int k = 0; k < K; k++) {
        free(name);
        name = ss_utf8_sanitize(x->c.labels.names[k], strlen(x->c.labels.names[k]));
        cJSON_AddNumberToObject(probs, name ? name : "", json_prob(p[k]));
    }
    cJSON_AddItemToObject(o, "probs", probs);
    char *s = cJSON_PrintUnformatted(o);
    printf("%s\n", s ? s : "{}");
    free(s);
    free(t);
    free(name);
    cJSON_Delete(o);
}

/* Classifies one batch of lines and prints them in input order. */
static ss_status flush_batch(void *ctx, char *const *texts, size_t n, ss_error *err) {
    classify_ctx *x = ctx;
    int K = x->c.labels.n;
    float *probs = malloc(n * (size_t)K * sizeof(float));
    ss_status st = probs ? ss_classify(&x->c, texts, n, x->batch, probs, err)
                         : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && !st; i++) print_one(x, texts[i], probs + i * K);
    fflush(stdout);
    free(probs);
    return st;
}

int cmd_classify(int argc, char **argv) {
    cli_args a;
    classify_ctx x = {0};
    cli_args_init(&a, argc, argv, "classify", usage);
    const char *dir = cli_require(&a, "--model");
    x.json = cli_flag(&a, "--json");
    x.batch = cli_opt_i32(&a, "--batch", 64);
    int threads = cli_opt_threads(&a, 0);
    const char *precision = cli_opt(&a, "--precision");
    const char *gemm = cli_opt(&a, "--gemm");
    const char *verbalizer = cli_opt(&a, "--verbalizer"), **templates;
    int calibrate = cli_flag(&a, "--calibrate");
    int n_templates = cli_opt_all(&a, "--template", &templates);
    const char *detok = cli_opt(&a, "--detokenize");
    if (cli_args_done(&a)) return 2;
    if (x.batch < 1) cli_die(a.command, "--batch must be >= 1");
    if (!n_templates != !verbalizer) cli_die(a.command, "--template and --verbalizer go together");
    ss_prompt_spec *specs = calloc((size_t)n_templates + 1, sizeof *specs);
    if (!specs) cli_die(a.command, "out of memory");
    for (int i = 0; i < n_templates; i++) specs[i] = (ss_prompt_spec){templates[i], verbalizer, calibrate};
    ss_text_norm norm = SS_TEXT_NORM_NONE;
    ss_error nerr = {0};
    if (detok && ss_text_norm_parse(detok, &norm, &nerr)) cli_die(a.command, "--detokenize: %s", nerr.msg);
    cli_threads_quiet(threads);
    cli_setup_precision(a.command, precision, gemm, 0);
    ss_error err = {0};
    ss_status st = n_templates ? ss_classifier_load_prompt(&x.c, dir, specs, n_templates, &err)
                               : ss_classifier_load(&x.c, dir, &err);
    if (!st && calibrate && !x.c.n_prompts)
        st = ss_fail(&err, SS_ERR_ARG, "--calibrate is for prompt-based classification: %s has a classification "
                     "head", dir);
    for (int i = 0; !st && calibrate && i < x.c.n_prompts; i++) ss_prompt_set_calibrate(x.c.prompts[i], 1);
    if (!st && detok) x.c.text_norm = norm;
    for (int i = 0; i < (a.n_positional ? a.n_positional : 1) && !st; i++)
        st = cli_text_batches(a.n_positional ? a.positional[i] : "-", 0, (size_t)x.batch * CLI_SORT_BATCHES, flush_batch,
                              &x, &err);
    ss_classifier_free(&x.c);
    free(specs);
    free(templates);
    cli_args_free(&a);
    return st ? cli_report("classify", &err) : 0;
}
