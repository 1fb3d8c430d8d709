/* Test parameters for whole-model checks: weights U(-0.5, 0.5), biases
 * U(-0.1, 0.1), LayerNorm weights 1 +- 0.1, from a fixed LCG. Large enough
 * that every tensor gets a sizeable gradient and outputs depend clearly on
 * the input (GPT-2's N(0, 0.02) gives near-uniform probabilities). */
#ifndef SELFSUP_TESTS_FILL_PARAMS_H
#define SELFSUP_TESTS_FILL_PARAMS_H

#include <stdint.h>
#include <string.h>

#include "selfsup/model.h"

static inline float fill_urand(uint64_t *state) { /* uniform in [-1, 1) */
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(*state >> 40) * 0x1p-23f - 1.0f;
}

static inline void fill_params(ss_model *m, uint64_t seed) {
    uint64_t st = seed;
    for (size_t i = 0; i < ss_model_num_tensors(m); i++) {
        const ss_param_info *t = ss_model_tensor(m, i);
        float *w = ss_model_params(m) + t->offset;
        int ln = strstr(t->name, "ln") != NULL, bias = strstr(t->name, ".bias") != NULL;
        for (size_t k = 0; k < t->numel; k++)
            w[k] = ln && !bias ? 1.0f + 0.1f * fill_urand(&st) : bias ? 0.1f * fill_urand(&st) : 0.5f * fill_urand(&st);
    }
}

#endif
