/* A model directory (a pretrain run, a classifier): the input is
 * config.json, then the line "--model.safetensors--", then
 * model.safetensors. ss_model_load reads the directory (config and tensors
 * must agree) and ss_model_load_generator looks for an ELECTRA generator.
 * When the model's vocabulary is that of a tokenizer built here at start-up
 * (262 ids: 6 special tokens and 256 bytes, the vocabulary of the seeds),
 * that tokenizer.json and a labels.json of two classes join the directory
 * and the commands' loaders read it too: ss_generator_load (generate),
 * ss_masked_lm_load (fill-mask) and ss_classifier_load (classify). A model
 * that loads has only finite parameters. */
#include "fuzz.h"

#include "selfsup/generate.h"
#include "selfsup/infer.h"
#include "selfsup/model.h"

#define SEP "\n--model.safetensors--\n"

static char *tok_json;
static size_t tok_len, tok_vocab;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    static const char *const specials[] = {"<|endoftext|>", "[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"};
    ss_bpe_train_opts o = {.vocab_size = 262, .special_tokens = specials, .n_special = 6};
    ss_tokenizer *t;
    ss_error err = {0};
    char path[1024];
    fz_subdir("tok");
    fz_path(path, sizeof path, "tok/tokenizer.json");
    ss_buf b = {0};
    if (ss_tokenizer_from_merges(&o, NULL, 0, &t, &err) || ss_tokenizer_save(t, path, &err) ||
        ss_read_file(path, &b, &err)) {
        fprintf(stderr, "fuzz_model_dir: making the tokenizer: %s\n", err.msg);
        abort();
    }
    tok_vocab = ss_tokenizer_vocab_size(t);
    tok_json = b.data;
    tok_len = b.len;
    ss_tokenizer_free(t);
    return 0;
}

static void loaders(const char *dir) {
    char path[1024];
    ss_error err = {0};
    fz_write(path, sizeof path, "model/tokenizer.json", tok_json, tok_len);
    fz_write(path, sizeof path, "model/labels.json", "[\"neg\", \"pos\"]", 14);
    ss_generator *g = NULL;
    ss_status st = ss_generator_load(&g, dir, &err);
    fz_note("generator", st, &err);
    if (st) fz_check_error(st, &err);
    ss_generator_free(g);
    ss_masked_lm *f = NULL;
    st = ss_masked_lm_load(&f, dir, &err);
    fz_note("masked LM", st, &err);
    if (st) fz_check_error(st, &err);
    else ss_masked_lm_free(f);
    ss_classifier c;
    st = ss_classifier_load(&c, dir, &err);
    fz_note("classifier", st, &err);
    if (st) fz_check_error(st, &err);
    else ss_classifier_free(&c);
    fz_remove("model/tokenizer.json");
    fz_remove("model/labels.json");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t cfg_len, st_len;
    const uint8_t *st_data;
    fz_split(data, size, SEP, &cfg_len, &st_data, &st_len);
    char path[1024], dir[1024];
    fz_subdir("model");
    fz_write(path, sizeof path, "model/config.json", data, cfg_len);
    fz_write(path, sizeof path, "model/model.safetensors", st_data, st_len);
    fz_path(dir, sizeof dir, "model");
    ss_model *m = NULL, *gen = NULL;
    ss_error err = {0};
    ss_status st = ss_model_load(&m, dir, &err);
    fz_note("model directory", st, &err);
    if (st) {
        fz_check_error(st, &err);
        FZ_CHECK(m == NULL, "a failed load returned a model");
        return 0;
    }
    FZ_CHECK(ss_model_params_finite(m), "a loaded model holds a non-finite parameter");
    st = ss_model_load_generator(m, dir, &gen, &err);
    if (st) fz_check_error(st, &err);
    else FZ_CHECK(ss_model_params_finite(gen), "a loaded generator holds a non-finite parameter");
    int vocab_fits = (size_t)ss_model_config_of(m)->vocab_size == tok_vocab;
    ss_model_free(gen);
    ss_model_free(m);
    if (vocab_fits) loaders(dir);
    return 0;
}
