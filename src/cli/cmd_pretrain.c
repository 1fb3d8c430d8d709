/* selfsup pretrain: train a model from scratch (or resume) on token shards. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "selfsup/io.h"
#include "selfsup/path.h"
#include "selfsup/train.h"

static const char usage_head[] =
    "usage: selfsup pretrain --objective clm|mlm|rtd|hybrid --data SHARDS --out RUN\n"
    "         [--preset tiny|small|base | --layers L --d-model D --heads H [--d-ff F]]\n"
    "         --seq T --batch B [--grad-accum K --batch-ramp P] (--steps N | --tokens N | --flops F | --time SECONDS)\n"
    "         [--lr LR --lr-min LR --warmup N --weight-decay W --clip C --dropout P]\n"
    "         [--seed S --threads N --eval-every N --eval-tokens N --save-every N --log-every N]\n"
    "         [--max-seq N --kind decoder|encoder --bias|--no-bias] [--init RUN] [--resume | --overwrite]\n"
    "         [--mask-prob P --mask-replace P --mask-random P --whole-word]   (mlm, rtd, hybrid)\n"
    "         [--gen-size F --disc-weight W --disc-warmup N --disc-start N]   (rtd)\n"
    "         [--gen-temperature T --rtd-generator model|uniform]             (rtd)\n"
    "         [--disc-start-share P --disc-init fresh|generator|auto --gen-embeddings shared|own] (rtd)\n"
    "\n"
    "Pretrains a transformer on shards made by 'selfsup data prepare'. Random\n"
    "windows of the train split (seeded); validation on the val split. RUN/ gets\n"
    "config.json, model.safetensors, tokenizer.json, optimizer.safetensors,\n"
    "trainer_state.json and metrics.jsonl; checkpoints are written atomically.\n"
    "Ctrl-C saves a checkpoint and stops with exit status 130 (--resume\n"
    "continues); a second Ctrl-C quits at once without saving.\n"
    "\n"
    "--resume continues a run exactly (same seed and threads: bit-identical)\n"
    "with its saved options; --data may be left out. An option that defines the\n"
    "run, given with another value, is an error naming it; --threads,\n"
    "--eval-every, --save-every, --log-every and --max-bad-steps may change. A\n"
    "longer --steps/--tokens/--flops (a step run) or --time (a timed run)\n"
    "extends it: the lr schedule keeps its length and the added part runs at\n"
    "--lr-min; a shorter one is an error. The model options do not apply.\n"
    "\n"
    "--init RUN continues pretraining from RUN's weights on new text (domain- or\n"
    "task-adaptive pretraining), with a fresh optimizer, schedule and step. The\n"
    "architecture is RUN's (a model option that differs is an error; --dropout\n"
    "is RUN's unless given), --data must be encoded with RUN's tokenizer. A clm\n"
    "run continues as clm; an encoder (mlm run, rtd run or its discriminator/)\n"
    "as mlm or rtd: the body always comes from RUN, the head when RUN has the\n"
    "objective's head, an rtd run's generator for rtd (same --gen-size); what\n"
    "RUN lacks starts fresh. trainer_state.json records RUN, its step and the\n"
    "sha256 of its model.safetensors.\n"
    "\n"
    "Data parallel: mpirun -np N selfsup-mpi pretrain ... (make mpi). --batch is\n"
    "the global batch, cut into --shards parts (one per rank by default); the\n"
    "ranks draw the same windows one process would, gradients are summed in a\n"
    "fixed order (N ranks = one process with --shards N, bit for bit), rank 0\n"
    "writes RUN. --threads is per rank. kill -USR1 to mpirun saves and stops.\n"
    "\n"
    "Objectives: clm trains a decoder on next-token prediction; mlm an encoder on\n"
    "BERT's masked LM ([CLS] doc [SEP] ... packing, 15% of tokens chosen, of\n"
    "those 80% [MASK], 10% random, 10% kept); rtd ELECTRA's replaced-token\n"
    "detection: a generator gen-size times as wide (sharing the embeddings)\n"
    "fills the masks by sampling, the discriminator (the encoder to fine-tune,\n"
    "also saved alone in RUN/discriminator/) spots the replaced tokens; loss =\n"
    "generator MLM + disc-weight x discriminator BCE. mlm and rtd need the\n"
    "tokenizer's [CLS] [SEP] [PAD] [MASK] (trained tokenizers have them).\n"
    "\n"
    "options (defaults in parentheses):\n";

static const char usage_model[] =
    "  --preset NAME            tiny, small or base (small)\n"
    "  --layers L --d-model D --heads H [--d-ff F]   the architecture instead (d-ff: 4 D)\n"
    "  --max-seq N              the model's positions (the preset's, at least --seq)\n"
    "  --kind decoder|encoder   (decoder for clm, encoder for mlm and rtd)\n"
    "  --dropout P              (0)\n"
    "  --bias / --no-bias       biases in the body's linear layers and LayerNorms, or none\n"
    "                           (default: none for mlm, biases for clm, rtd and hybrid)\n"
    "                           (Cramming's; the heads keep theirs; config.json \"bias\": false)\n"
    "  --overwrite              replace the run in --out\n"
    "--flops sets the steps from the objective's training FLOPs per token (the\n"
    "PaLM count that MFU uses), for comparisons at equal compute.\n"
    "Short forms: -o RUN (--out), -t N (--threads).\n";

static char usage[16384];

static void make_usage(void) {
    ss_train_opts d;
    ss_train_opts_defaults(&d);
    cli_usage_with_table(usage, sizeof usage, usage_head, &ss_train_opt_table, &d, usage_model);
}

static void parse_model(cli_args *a, ss_train_opts *o) {
    ss_error err = {0};
    const char *preset = cli_opt(a, "--preset");
    int L = cli_opt_i32(a, "--layers", 0), D = cli_opt_i32(a, "--d-model", 0);
    int H = cli_opt_i32(a, "--heads", 0), F = cli_opt_i32(a, "--d-ff", 0);
    if (preset && (L || D || H))
        cli_die(a->command, "give either --preset or --layers/--d-model/--heads, not both");
    if (L || D || H) {
        if (!L || !D || !H) cli_die(a->command, "--layers, --d-model and --heads go together");
        o->model.n_layer = (int)L;
        o->model.d_model = (int)D;
        o->model.n_head = (int)H;
        o->model.d_ff = F ? F : (D <= INT_MAX / 4 ? 4 * D : INT_MAX);
        o->model.max_seq = 512;
    } else if (ss_config_preset(&o->model, preset ? preset : "small", &err)) {
        cli_die(a->command, "%s", err.msg);
    } else if (F) {
        o->model.d_ff = (int)F;
    }
    int maxT = cli_opt_i32(a, "--max-seq", 0);
    if (maxT) o->model.max_seq = (int)maxT;
    else if (o->model.max_seq < o->seq) o->model.max_seq = o->seq;
    o->model.dropout = (float)cli_opt_double(a, "--dropout", 0.0);
    int bias = cli_flag(a, "--bias"), no_bias = cli_flag(a, "--no-bias");
    if (bias && no_bias) cli_die(a->command, "--bias and --no-bias exclude each other");
    o->model.no_bias = no_bias ? 1 : bias ? 0 : ss_objective_default_no_bias(o->objective);
    const char *kind = cli_opt(a, "--kind");
    if (kind && strcmp(kind, "decoder") && strcmp(kind, "encoder"))
        cli_die(a->command, "--kind must be decoder or encoder");
    o->model.kind = kind ? (strcmp(kind, "encoder") == 0 ? SS_ENCODER : SS_DECODER)
                         : (o->objective == SS_OBJ_CLM ? SS_DECODER : SS_ENCODER);
}

/* With --init or --resume the model is that run's (RUN; WHAT names it in
 * messages): the model options given must agree with it
 * (cli_model_opts_agree, and here --max-seq and --no-bias). --dropout is a
 * new run's own (the --init run's when not given); a resumed run keeps its
 * checkpoint's, and a --dropout that differs is an error. */
static void model_from_run(cli_args *a, ss_train_opts *o, const char *run, const char *what) {
    ss_model_config ic;
    /* --init: the objective decides the kind (a run of the other kind changes kind); --resume: the run's */
    ss_model_kind objective_kind = o->objective == SS_OBJ_CLM ? SS_DECODER : SS_ENCODER;
    if (cli_model_opts_agree(a, run, what, o->resume ? NULL : &objective_kind, &ic)) return;
    int max_seq = cli_opt_i32(a, "--max-seq", ic.max_seq);
    if (max_seq != ic.max_seq)
        cli_die(a->command, "--max-seq %d differs from the %s's max_seq %d: the model comes from %s (leave --max-seq "
                "out)", max_seq, what, ic.max_seq, run);
    if (cli_flag(a, "--no-bias") && !ic.no_bias)
        cli_die(a->command, "--no-bias differs from the %s's model, which has biases: the model comes from %s "
                "(leave --no-bias out)", what, run);
    if (cli_flag(a, "--bias") && ic.no_bias)
        cli_die(a->command, "--bias differs from the %s's model, which has none: the model comes from %s "
                "(leave --bias out)", what, run);
    double dropout = cli_opt_double(a, "--dropout", ic.dropout);
    if (o->resume && (float)dropout != ic.dropout)
        cli_die(a->command, "--dropout %g differs from the resumed run's dropout %g: the model comes from %s (leave "
                "--dropout out)", dropout, (double)ic.dropout, run);
    o->model.dropout = (float)dropout;
}

static void parse(cli_args *a, ss_train_opts *o) {
    ss_error err = {0};
    ss_train_opts_defaults(o);
    cli_parse_table(a, &ss_train_opt_table, o, &o->given);
    if (o->resume) model_from_run(a, o, o->out_dir, "resumed run");
    else if (o->init) model_from_run(a, o, o->init, "--init run");
    else parse_model(a, o);
    if (ss_train_opts_check(o, &err)) cli_die(a->command, "%s", err.msg);
}

int cmd_pretrain(int argc, char **argv) {
    cli_args a;
    ss_train_opts o;
    make_usage();
    cli_args_init(&a, argc, argv, "pretrain", usage);
    parse(&a, &o);
    int overwrite = cli_flag(&a, "--overwrite");
    if (cli_args_done(&a)) return 2;
    if (a.n_positional) cli_die(a.command, "unexpected argument '%s'", a.positional[0]);
    char state[SS_PATH_MAX];
    ss_error err = {0};
    if (ss_path_join(state, sizeof state, o.out_dir, SS_RUN_STATE, &err)) cli_die(a.command, "%s", err.msg);
    if (!o.resume && !overwrite && ss_file_exists(state))
        cli_die(a.command, "%s already holds a training run; use --resume to continue it or --overwrite "
                "to start again", o.out_dir);
    o.threads = cli_setup_threads(o.threads);
    cli_gemm_probe_prepare(a.command, 1);
    o.stop = cli_catch_interrupt();
    cli_progress_state ps = {0};
    int speaker = ss_dist_rank() == 0; /* under mpirun rank 0 reports for all */
    ss_status st = ss_pretrain(&o, speaker ? cli_progress : NULL, &ps, &err);
    cli_args_free(&a);
    if (ps.line_open) putchar('\n');
    if (st) return cli_report("pretrain", &err);
    if (!speaker) return *o.stop ? CLI_EXIT_INTERRUPTED : 0;
    if (*o.stop) {
        fprintf(stderr, "interrupted: checkpoint saved in %s (--resume continues it)\n", o.out_dir);
        return CLI_EXIT_INTERRUPTED;
    }
    printf("done: %s\n", o.out_dir);
    return 0;
}
