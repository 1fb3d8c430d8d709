/* selfsup pretrain: train a model from scratch (or resume) on token shards. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "selfsup/io.h"
#include "selfsup/train.h"

static const char usage[] =
    "usage: selfsup pretrain --objective clm|mlm|rtd --data SHARDS --out RUN\n"
    "         [--preset tiny|small|base | --layers L --d-model D --heads H [--d-ff F]]\n"
    "         --seq T --batch B [--grad-accum K] (--steps N | --tokens N | --flops F | --time SECONDS)\n"
    "         [--lr LR --lr-min LR --warmup N --weight-decay W --clip C --dropout P]\n"
    "         [--seed S --threads N --eval-every N --eval-tokens N --save-every N --log-every N]\n"
    "         [--max-seq N --kind decoder|encoder] [--resume | --overwrite]\n"
    "         [--mask-prob P --mask-replace P --mask-random P --whole-word]   (mlm, rtd)\n"
    "         [--gen-size F --disc-weight W]                                  (rtd)\n"
    "\n"
    "Pretrains a transformer on shards made by 'selfsup data prepare'. Random\n"
    "windows of the train split (seeded); validation on the val split. RUN/ gets\n"
    "config.json, model.safetensors, tokenizer.json, optimizer.safetensors,\n"
    "trainer_state.json and metrics.jsonl; checkpoints are written atomically.\n"
    "--resume continues a run exactly (same seed and threads: bit-identical).\n"
    "Ctrl-C saves a checkpoint and stops with exit status 130 (--resume\n"
    "continues); a second Ctrl-C quits at once without saving.\n"
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
    "defaults: --preset small, --seq 128, --batch 16, --lr 1e-3 (cosine to lr/10),\n"
    "--warmup 5% of steps (max 1000), --weight-decay 0.1, --clip 1.0, --seed 1337,\n"
    "--eval-every 200, --eval-tokens 262144, --save-every 1000, --log-every 10,\n"
    "--threads = physical cores, --kind decoder for clm and encoder for mlm/rtd,\n"
    "--mask-prob 0.15, --mask-replace 0.8, --mask-random 0.1, --gen-size 0.25,\n"
    "--disc-weight 50.\n"
    "--flops sets the steps from the objective's training FLOPs per token (the\n"
    "PaLM count that MFU uses), for comparisons at equal compute.\n"
    "Short forms: -o RUN (--out), -t N (--threads).\n";

static void parse_model(cli_args *a, ss_train_opts *o) {
    ss_error err = {0};
    const char *preset = cli_opt(a, "--preset");
    long long L = cli_opt_int(a, "--layers", 0), D = cli_opt_int(a, "--d-model", 0);
    long long H = cli_opt_int(a, "--heads", 0), F = cli_opt_int(a, "--d-ff", 0);
    if (preset && (L || D || H))
        cli_die(a->command, "give either --preset or --layers/--d-model/--heads, not both");
    if (L || D || H) {
        if (!L || !D || !H) cli_die(a->command, "--layers, --d-model and --heads go together");
        o->model.n_layer = (int)L;
        o->model.d_model = (int)D;
        o->model.n_head = (int)H;
        o->model.d_ff = F ? (int)F : (int)(4 * D);
        o->model.max_seq = 512;
    } else if (ss_config_preset(&o->model, preset ? preset : "small", &err)) {
        cli_die(a->command, "%s", err.msg);
    } else if (F) {
        o->model.d_ff = (int)F;
    }
    long long maxT = cli_opt_int(a, "--max-seq", 0);
    if (maxT) o->model.max_seq = (int)maxT;
    else if (o->model.max_seq < o->seq) o->model.max_seq = o->seq;
    o->model.dropout = (float)cli_opt_double(a, "--dropout", 0.0);
    const char *kind = cli_opt(a, "--kind");
    if (kind && strcmp(kind, "decoder") && strcmp(kind, "encoder"))
        cli_die(a->command, "--kind must be decoder or encoder");
    o->model.kind = kind ? (strcmp(kind, "encoder") == 0 ? SS_ENCODER : SS_DECODER)
                         : (o->objective == SS_OBJ_CLM ? SS_DECODER : SS_ENCODER);
}

static void parse(cli_args *a, ss_train_opts *o) {
    ss_error err = {0};
    ss_train_opts_defaults(o);
    const char *obj = cli_opt(a, "--objective");
    if (obj && ss_objective_parse(obj, &o->objective, &err)) cli_die(a->command, "%s", err.msg);
    o->data_dir = cli_require(a, "--data");
    o->out_dir = cli_require(a, "--out");
    o->seq = (int)cli_opt_int(a, "--seq", o->seq);
    o->batch = (int)cli_opt_int(a, "--batch", o->batch);
    o->grad_accum = (int)cli_opt_int(a, "--grad-accum", o->grad_accum);
    o->steps = cli_opt_int(a, "--steps", 0);
    o->tokens = cli_opt_int(a, "--tokens", 0);
    o->time_limit = cli_opt_double(a, "--time", 0);
    o->flops = cli_opt_double(a, "--flops", 0);
    o->lr = cli_opt_double(a, "--lr", o->lr);
    o->lr_min = cli_opt_double(a, "--lr-min", o->lr_min);
    o->warmup = cli_opt_int(a, "--warmup", o->warmup);
    o->weight_decay = cli_opt_double(a, "--weight-decay", o->weight_decay);
    o->clip = cli_opt_double(a, "--clip", o->clip);
    o->seed = (uint64_t)cli_opt_int(a, "--seed", (long long)o->seed);
    o->threads = (int)cli_opt_int(a, "--threads", 0);
    o->eval_every = cli_opt_int(a, "--eval-every", o->eval_every);
    o->eval_tokens = cli_opt_int(a, "--eval-tokens", o->eval_tokens);
    o->save_every = cli_opt_int(a, "--save-every", o->save_every);
    o->log_every = cli_opt_int(a, "--log-every", o->log_every);
    o->resume = cli_flag(a, "--resume");
    o->mask_prob = (float)cli_opt_double(a, "--mask-prob", o->mask_prob);
    o->mask_replace = (float)cli_opt_double(a, "--mask-replace", o->mask_replace);
    o->mask_random = (float)cli_opt_double(a, "--mask-random", o->mask_random);
    o->whole_word = cli_flag(a, "--whole-word");
    o->gen_size = cli_opt_double(a, "--gen-size", o->gen_size);
    o->disc_weight = cli_opt_double(a, "--disc-weight", o->disc_weight);
    parse_model(a, o);
    int n_len = (o->steps > 0) + (o->tokens > 0) + (o->flops > 0) + (o->time_limit > 0);
    if (!o->resume && n_len != 1) cli_die(a->command, "give exactly one of --steps, --tokens, --flops, --time");
    if (o->seq < 1 || o->batch < 1 || o->grad_accum < 1 || o->log_every < 1)
        cli_die(a->command, "--seq, --batch, --grad-accum and --log-every must be >= 1");
    if (!(o->lr > 0) || o->clip < 0 || o->weight_decay < 0)
        cli_die(a->command, "--lr must be > 0; --clip and --weight-decay >= 0");
}

int cmd_pretrain(int argc, char **argv) {
    cli_args a;
    ss_train_opts o;
    cli_args_init(&a, argc, argv, "pretrain", usage);
    parse(&a, &o);
    int overwrite = cli_flag(&a, "--overwrite");
    if (cli_args_done(&a)) return 2;
    if (a.n_positional) cli_die(a.command, "unexpected argument '%s'", a.positional[0]);
    char state[4096];
    snprintf(state, sizeof state, "%s/trainer_state.json", o.out_dir);
    if (!o.resume && !overwrite && ss_file_exists(state))
        cli_die(a.command, "%s already holds a training run; use --resume to continue it or --overwrite "
                "to start again", o.out_dir);
    o.threads = cli_setup_threads(o.threads);
    o.stop = cli_catch_interrupt();
    cli_progress_state ps = {0};
    ss_error err = {0};
    ss_status st = ss_pretrain(&o, cli_progress, &ps, &err);
    cli_args_free(&a);
    if (ps.line_open) putchar('\n');
    if (st) return cli_report("pretrain", &err);
    if (*o.stop) {
        fprintf(stderr, "interrupted: checkpoint saved in %s (--resume continues it)\n", o.out_dir);
        return CLI_EXIT_INTERRUPTED;
    }
    printf("done: %s\n", o.out_dir);
    return 0;
}
