/* selfsup export: a run directory in another tool's format (GGUF for
 * llama.cpp). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "selfsup/export.h"

static const char usage[] =
    "usage: selfsup export --format gguf RUN OUT.gguf [--dtype f32|f16|bf16|q8_0]\n"
    "\n"
    "Writes a decoder (a clm run) as a GGUF v3 file for llama.cpp and the tools\n"
    "built on it (Ollama, LM Studio, llama-server): architecture gpt2, the\n"
    "tokenizer included (byte-level BPE, special tokens as control tokens).\n"
    "  --format gguf     the only format for now\n"
    "  --dtype T         matrices as f32 (default), f16, bf16 or q8_0 (blocks of 32\n"
    "                    int8 values with an f16 scale; a matrix whose rows are not a\n"
    "                    multiple of 32 values stays f16); LayerNorm and biases f32\n"
    "Encoders (mlm, rtd runs) and classifiers have no llama.cpp gpt2 equivalent\n"
    "and are refused.\n";

int cmd_export(int argc, char **argv) {
    const char *cmd = "export";
    cli_args a;
    cli_args_init(&a, argc, argv, cmd, usage);
    const char *format = cli_require(&a, "--format");
    const char *dtype = cli_opt(&a, "--dtype");
    if (cli_args_done(&a)) return 2;
    if (strcmp(format, "gguf") != 0) cli_die(cmd, "--format must be gguf, not '%s'", format);
    ss_ggml_type type = SS_GGML_F32;
    if (dtype && ss_ggml_type_parse(dtype, &type))
        cli_die(cmd, "--dtype must be f32, f16, bf16 or q8_0, not '%s'", dtype);
    if (a.n_positional != 2) cli_die(cmd, "expected RUN and OUT.gguf (see --help)");
    const char *run = a.positional[0], *out = a.positional[1];
    ss_gguf_export_info info;
    ss_error err = {0};
    int rc = 0;
    if (ss_export_gguf(run, out, type, &info, &err)) {
        rc = cli_report(cmd, &err);
    } else {
        struct stat sb;
        double mb = stat(out, &sb) == 0 ? (double)sb.st_size / 1e6 : 0.0;
        printf("wrote %s: gguf v3, architecture gpt2, %d tensors, %s, %.1f MB\n", out, info.n_tensors,
               ss_ggml_type_name(type), mb);
        if (info.n_fallback_f16)
            fprintf(stderr, "selfsup export: note: %d matrices have rows that are not a multiple of 32 values "
                    "and are stored as f16\n", info.n_fallback_f16);
        if (info.lowercase || info.normalization)
            fprintf(stderr, "selfsup export: warning: the tokenizer %s text before encoding; llama.cpp does "
                    "not, so give it text prepared the same way\n",
                    info.lowercase && info.normalization ? "normalizes and lowercases"
                    : info.lowercase ? "lowercases" : "normalizes (NFC/NFKC)");
    }
    cli_args_free(&a);
    return rc;
}
