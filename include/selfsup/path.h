/* Paths (src/io/path.c): a checked join, and the names of the files a run,
 * model or data directory holds, written once. A path that does not fit its
 * buffer is an error naming it, never a silently truncated file name. */
#ifndef SELFSUP_PATH_H
#define SELFSUP_PATH_H

#include <stddef.h>

#include "selfsup/error.h"

/* The buffer size used for paths throughout (bytes, with the NUL). */
#define SS_PATH_MAX 4096

/* A run directory (pretrain --out) or a fine-tuned model directory (finetune --out). */
#define SS_RUN_CONFIG        "config.json"
#define SS_RUN_MODEL         "model.safetensors"
#define SS_RUN_TOKENIZER     "tokenizer.json"
#define SS_RUN_TOKENIZER_CONFIG "tokenizer_config.json" /* Hugging Face's companion of tokenizer.json */
#define SS_RUN_OPTIMIZER     "optimizer.safetensors"
#define SS_RUN_STATE         "trainer_state.json"
#define SS_RUN_METRICS       "metrics.jsonl"
#define SS_RUN_LOCK          ".lock" /* held by the process writing the run (ss_run_lock) */
#define SS_RUN_PREVIOUS      ".previous"     /* hard links to the checkpoint before the latest */
#define SS_RUN_DISCRIMINATOR "discriminator" /* rtd: the discriminator as a model directory of its own */
#define SS_RUN_CHECKPOINT    "checkpoint"    /* fine-tuning: the state to resume from */
#define SS_RUN_LABELS        "labels.json"
#define SS_RUN_EVAL          "eval.json"
#define SS_RUN_PROMPT        "prompt.json"   /* prompt-based fine-tuning: template and verbalizer */
/* A prepared data directory (data prepare --out): shards, meta.json and the tokenizer. */
#define SS_DATA_META         "meta.json"

/* out = dir "/" name. SS_ERR_ARG naming the path when it needs more than cap
 * bytes (out then holds ""). */
ss_status ss_path_join(char *out, size_t cap, const char *dir, const char *name, ss_error *err);

#endif
