/* selfsup finetune: a classification head on a pretrained model (or on a
 * fresh one, the baseline), trained on labelled text. */
#include <math.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "selfsup/finetune.h"
#include "selfsup/selftrain.h"

static const char usage_head[] =
    "usage: selfsup finetune --init RUN|none --train FILE --dev FILE [--test FILE] --out DIR\n"
    "         [--text-column NAME --label-column label --skip-bad-rows --format tsv|csv|jsonl]\n"
    "         [--epochs N --lr LR --batch B --grad-accum K --max-seq T --warmup-ratio R --weight-decay W\n"
    "          --clip C --dropout P --seed S --threads N]\n"
    "         [--eval-every N --patience N --select accuracy|macro_f1|mcc --train-size N]\n"
    "         [--pooling cls|last|mean|wmean --pooler|--no-pooler --freeze-encoder --unfreeze-every N\n"
    "          --class-weights balanced|w0,w1,...] [--save-every N] [--resume]\n"
    "         [--template TEXT [--template TEXT...] --verbalizer 'LABEL=WORD;...']\n"
    "         with --init none: --tokenizer FILE [--kind encoder|decoder]\n"
    "                           [--preset tiny|small|base | --layers L --d-model D --heads H [--d-ff F]]\n"
    "                           [--no-bias]\n"
    "\n"
    "Fine-tunes a sequence classifier. --init RUN starts from a pretrained run\n"
    "(mlm, rtd: its discriminator, or clm), --init none from random weights of\n"
    "the same kind of model (the baseline to compare with). Files are TSV, CSV\n"
    "(header row naming the columns) or JSONL, by extension, optionally .zst;\n"
    "labels may be any strings (class ids follow their sorted order, saved in\n"
    "DIR/labels.json). The text is the column (JSONL: key) named by --text-column,\n"
    "else the one named 'text' or 'sentence' (Hugging Face datasets use 'text',\n"
    "GLUE 'sentence'; a file with both must choose). A malformed row stops the run naming FILE:LINE, unless\n"
    "--skip-bad-rows (they are counted). The whole model is trained unless\n"
    "--freeze-encoder; --unfreeze-every N trains the head alone for N steps,\n"
    "then one block more every N steps, the embeddings last (ULMFiT's gradual\n"
    "unfreezing). Dev is evaluated every epoch (or every N steps) and the\n"
    "best weights are kept in DIR; --patience N stops after N evaluations\n"
    "without improvement. Accuracy, macro-F1, MCC and the confusion matrix of\n"
    "the best weights go to DIR/eval.json (dev, and test when given).\n"
    "\n"
    "An encoder reads '[CLS] text [SEP]' and pools [CLS] through a pooler\n"
    "(dense + tanh); a decoder reads 'text <|endoftext|>' and pools the last\n"
    "position. Texts longer than --max-seq keep their start.\n"
    "\n"
    "Self-training (--unlabeled FILE): round 0 fine-tunes a teacher on the labelled\n"
    "rows; each of --rounds rounds labels the unlabelled texts with the previous\n"
    "round's model, keeps those predicted with probability >= --threshold, the same\n"
    "number per class (the most confident; at most --max-pseudo in all), and\n"
    "fine-tunes a student from the same start (--init, dropout on) on the labelled\n"
    "rows (--gold-repeat times) plus those. --teachers K fine-tunes K teachers\n"
    "(seeds S, S+1000, ...) on the same labelled rows and labels round 1 with\n"
    "their mean probability. Rounds go to DIR/round-K/ (teachers after the\n"
    "first to DIR/teacher-T/), the table to DIR/selftrain.json, and the round\n"
    "with the best dev score is copied into DIR (one model: round 0 is the\n"
    "first teacher). Running the same command again continues an interrupted\n"
    "run (finished rounds are kept).\n"
    "\n"
    "Prompt-based fine-tuning (LM-BFF, PET): with --template and --verbalizer\n"
    "the pretrained LM head is the classifier instead of a new head: the class\n"
    "logits are its logits of each label's word at the [MASK] (an mlm run:\n"
    "'{text} It was [MASK].') or after the template (a clm run: '{text} It was'),\n"
    "trained with cross-entropy over the classes; words of one token, one or\n"
    "more per label ('0=terrible;1=great' or '0=terrible,bad;1=great,good',\n"
    "the labels of the training file; a label of several words scores the\n"
    "log-sum-exp of their logits). DIR keeps the prompt (prompt.json):\n"
    "'selfsup classify --model DIR' uses it. --template given several times\n"
    "(the only option that repeats) trains through all of them: an epoch reads\n"
    "every row through each template (rows x templates sequences), dev and\n"
    "classify score with the softmax of the mean of the templates' class\n"
    "log-probabilities; the templates must give the words the same tokens.\n"
    "\n"
    "Ctrl-C stops after the current step with the best weights so far in DIR\n"
    "(evaluated and written as at the end), saves a checkpoint in\n"
    "DIR/checkpoint/ and exits with status 130; a second Ctrl-C quits at once.\n"
    "--resume --out DIR continues exactly (same seed and threads: bit-identical\n"
    "to a run never stopped) with the saved options: an option given with\n"
    "another value is an error naming it (--threads, --log-every, --save-every\n"
    "and --max-bad-steps may change). A finished run removes its checkpoint.\n"
    "\n"
    "options (defaults in parentheses):\n";

static const char usage_tail[] =
    "  --pooler / --no-pooler   a pooler (dense + tanh) before the head (on for cls pooling)\n"
    "  --kind encoder|decoder   --init none: the kind of model (encoder)\n"
    "  --preset NAME            --init none: tiny, small or base (small)\n"
    "  --layers L --d-model D --heads H [--d-ff F]   --init none: the architecture instead\n"
    "  --no-bias                --init none: no biases in the body (as pretrain --no-bias)\n"
    "Data parallel: mpirun -np N selfsup-mpi finetune ... (make mpi): --batch is\n"
    "the global batch, cut into --shards parts over the ranks (README).\n"
    "Short forms: -o DIR (--out), -t N (--threads).\n";

static char usage[16384];

static void make_usage(void) {
    ss_finetune_opts d;
    ss_finetune_opts_defaults(&d);
    cli_usage_with_table(usage, sizeof usage, usage_head, &ss_finetune_opt_table, &d, usage_tail);
}

static void parse_scratch(cli_args *a, ss_finetune_opts *o) {
    ss_error err = {0};
    const char *kind = cli_opt(a, "--kind"), *preset = cli_opt(a, "--preset");
    int L = cli_opt_i32(a, "--layers", 0), D = cli_opt_i32(a, "--d-model", 0);
    int H = cli_opt_i32(a, "--heads", 0), F = cli_opt_i32(a, "--d-ff", 0);
    int no_bias = cli_flag(a, "--no-bias");
    o->tokenizer = cli_opt(a, "--tokenizer");
    if (o->init && (kind || preset || L || D || H || F || o->tokenizer || no_bias))
        cli_die(a->command, "--kind, --preset, --layers/--d-model/--heads/--d-ff, --no-bias and --tokenizer are "
                "for --init none; a pretrained model brings its own");
    if (kind && strcmp(kind, "encoder") && strcmp(kind, "decoder"))
        cli_die(a->command, "--kind must be encoder or decoder");
    if (kind) o->scratch.kind = strcmp(kind, "encoder") == 0 ? SS_ENCODER : SS_DECODER;
    if (preset && (L || D || H)) cli_die(a->command, "give either --preset or --layers/--d-model/--heads");
    if (preset && ss_config_preset(&o->scratch, preset, &err)) cli_die(a->command, "%s", err.msg);
    if (L || D || H) {
        if (!L || !D || !H) cli_die(a->command, "--layers, --d-model and --heads go together");
        o->scratch.n_layer = (int)L;
        o->scratch.d_model = (int)D;
        o->scratch.n_head = (int)H;
        o->scratch.d_ff = F ? F : (D <= INT_MAX / 4 ? 4 * D : INT_MAX);
    }
    o->scratch.no_bias = no_bias;
}

static void parse_pooler(cli_args *a, ss_finetune_opts *o) {
    int on = cli_flag(a, "--pooler"), off = cli_flag(a, "--no-pooler");
    if (on && off) cli_die(a->command, "--pooler and --no-pooler exclude each other");
    if (on || off) {
        o->pooler = on;
        o->given |= SS_OPT_BIT(SS_FINETUNE_OPT_pooler);
    }
}

static void parse(cli_args *a, ss_finetune_opts *o) {
    ss_error err = {0};
    ss_finetune_opts_defaults(o);
    cli_parse_table(a, &ss_finetune_opt_table, o, &o->given);
    if (o->init && strcmp(o->init, "none") == 0) o->init = NULL;
    parse_pooler(a, o);
    if (o->resume) {
        ss_model_config have; /* the model comes from the checkpoint: a model option given must agree */
        cli_model_opts_agree(a, o->out_dir, "resumed run", NULL, &have);
    } else {
        if (!(o->given & SS_OPT_BIT(SS_FINETUNE_OPT_init))) cli_die(a->command, "missing required option --init (see --help)");
        parse_scratch(a, o);
    }
    if (ss_finetune_opts_check(o, &err)) cli_die(a->command, "%s", err.msg);
}

static void print_metrics(const char *split, const ss_class_metrics *m) {
    printf("%s: accuracy %.4f  macro-F1 %.4f  MCC %.4f  (n=%lld)\n", split, m->accuracy, m->macro_f1, m->mcc,
           (long long)m->n);
}

static void progress(void *ctx, const ss_finetune_progress *p) {
    (void)ctx;
    if (p->message) {
        printf("%s\n", p->message);
    } else if (p->is_eval) {
        printf("epoch %d step %lld/%lld: train loss %.4f | dev accuracy %.4f macro-F1 %.4f MCC %.4f%s\n", p->epoch,
               (long long)p->step, (long long)p->total_steps, p->loss, p->dev->accuracy, p->dev->macro_f1,
               p->dev->mcc, p->improved ? "  (best, saved)" : "");
    } else {
        char eta[32];
        cli_fmt_duration(eta, sizeof eta, p->elapsed / (double)p->step * (double)(p->total_steps - p->step));
        printf("step %lld/%lld  epoch %d  loss %.4f  lr %.2e  %.0f texts/s  ETA %s\n", (long long)p->step,
               (long long)p->total_steps, p->epoch, p->loss, p->lr, p->seqs_per_s, eta);
    }
    fflush(stdout);
}

static void print_confusion(const ss_class_metrics *m) {
    printf("confusion (rows: true, columns: predicted):\n");
    for (int i = 0; i < m->k; i++) {
        for (int j = 0; j < m->k; j++) printf(" %7lld", (long long)m->confusion[i * m->k + j]);
        printf("\n");
    }
}

static int self_train(cli_args *a, ss_finetune_opts *o) {
    ss_selftrain_result r;
    ss_error err = {0};
    int speaker = ss_dist_rank() == 0; /* under mpirun rank 0 reports for all */
    ss_status st = ss_selftrain(o, &r, speaker ? progress : NULL, NULL, &err);
    cli_args_free(a);
    if (st) return cli_report("finetune", &err);
    if (!speaker) {
        ss_selftrain_result_free(&r);
        return *o->stop ? CLI_EXIT_INTERRUPTED : 0;
    }
    if (*o->stop) {
        fprintf(stderr, "interrupted: run the same command again to continue (finished rounds are kept in %s)\n",
                o->out_dir);
        ss_selftrain_result_free(&r);
        return CLI_EXIT_INTERRUPTED;
    }
    printf("self-training (%zu unlabelled texts, threshold %g):\n", r.unlabeled, o->threshold);
    printf("  round  pseudo-labels  pseudo accuracy  dev accuracy\n");
    for (int k = 0; k < r.n; k++) {
        const ss_selftrain_round *rd = &r.rounds[k];
        char acc[32] = "-";
        if (rd->gold) snprintf(acc, sizeof acc, "%.4f (n=%zu)", (double)rd->correct / (double)rd->gold, rd->gold);
        printf("  %5d  %13zu  %15s  %12.4f%s\n", k, rd->pseudo, acc, rd->dev_accuracy, k == r.best ? "  (kept)" : "");
    }
    if (r.teachers > 1) {
        printf("  teachers' dev accuracy:");
        for (int t = 0; t < r.teachers; t++) printf(" %.4f", r.teacher_dev_accuracy[t]);
        if (r.n > 1 && r.rounds[1].ensemble_dev_accuracy >= 0)
            printf("; their ensemble (round 1's labels): %.4f", r.rounds[1].ensemble_dev_accuracy);
        printf("\n");
    }
    const ss_selftrain_round *b = &r.rounds[r.best];
    printf("dev: accuracy %.4f  macro-F1 %.4f  MCC %.4f  (round %d)\n", b->dev_accuracy, b->dev_macro_f1, b->dev_mcc,
           r.best);
    printf("done: %s (round %d's classifier; rounds in %s/round-K/, selftrain.json)\n", o->out_dir, r.best, o->out_dir);
    ss_selftrain_result_free(&r);
    return 0;
}

int cmd_finetune(int argc, char **argv) {
    cli_args a;
    ss_finetune_opts o;
    make_usage();
    cli_args_init(&a, argc, argv, "finetune", usage);
    parse(&a, &o);
    if (cli_args_done(&a)) return 2;
    if (a.n_positional) cli_die(a.command, "unexpected argument '%s'", a.positional[0]);
    o.threads = cli_setup_threads(o.threads);
    cli_gemm_probe_prepare(a.command, 1);
    o.stop = cli_catch_interrupt();
    if (o.unlabeled) return self_train(&a, &o);
    ss_finetune_result r;
    ss_error err = {0};
    int speaker = ss_dist_rank() == 0; /* under mpirun rank 0 reports for all */
    ss_status st = ss_finetune(&o, &r, speaker ? progress : NULL, NULL, &err);
    cli_args_free(&a);
    if (st) return cli_report("finetune", &err);
    if (!speaker) {
        ss_finetune_result_free(&r);
        return *o.stop ? CLI_EXIT_INTERRUPTED : 0;
    }
    printf("best: epoch %d, step %lld of %lld\n", r.best_epoch, (long long)r.best_step, (long long)r.steps);
    print_metrics("dev", &r.dev);
    print_confusion(&r.dev);
    if (r.test.n) print_metrics("test", &r.test);
    printf("done: %s (eval.json, model, labels.json)\n", o.out_dir);
    ss_finetune_result_free(&r);
    if (*o.stop) {
        fprintf(stderr, "interrupted: the best weights so far are in %s (--resume continues the run)\n", o.out_dir);
        return CLI_EXIT_INTERRUPTED;
    }
    return 0;
}
