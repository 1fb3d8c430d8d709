/* Self-training on unlabelled text (Noisy Student, Xie et al. 2020), around
 * fine-tuning (selfsup/finetune.h).
 *
 *   round 0   a teacher: ss_finetune on the labelled rows, as without it;
 *             with --teachers K, K-1 more (seeds S+1000, S+2000, ... on the
 *             same labelled rows, in OUT/teacher-2/ ...), whose mean class
 *             probability (an ensemble, PET's distillation) labels round 1
 *   round k   label the unlabelled texts with round k-1's model; keep the
 *             confident predictions (probability >= threshold), balanced:
 *             per class the most confident ones, as many as the class with
 *             the fewest has (at most max_pseudo in all); fine-tune a
 *             student from the same initial weights (the pretrained run or
 *             the same random init, dropout on: the "noise") on the
 *             labelled rows plus those pseudo-labelled ones (for
 *             student_epochs epochs, dev every epoch, when it is set:
 *             with many pseudo-labels the teacher's epochs would be long)
 *
 * The labelled rows are the same in every round (--train, and its
 * --train-size subset). The unlabelled file is one text per line (.txt,
 * optionally .zst; empty lines skipped) or a TSV/CSV/JSONL table read like
 * --train (text column; a label column there is never trained on: it only
 * scores the pseudo-labels, to measure their accuracy on a pool whose gold
 * labels are hidden from training).
 *
 * Layout of OUT: round-K/ (each a classifier directory; from round 1 on
 * with train.jsonl, the student's rows), teacher-T/ and labelled.jsonl (the
 * labelled subset they train on) with --teachers, selftrain.json (per
 * round: pseudo-labels, their accuracy where gold is known, dev metrics;
 * each teacher's dev accuracy and their ensemble's) and, in OUT
 * itself, a copy of the classifier of the round with the best dev score
 * (--select; selection on dev, as for epochs; round 0 is the first
 * teacher: the kept classifier is always one model, never the ensemble).
 * A round (or teacher) whose eval.json exists is not redone, and an
 * interrupted one resumes from its checkpoint: running the same command
 * again continues. */
#ifndef SELFSUP_SELFTRAIN_H
#define SELFSUP_SELFTRAIN_H

#include <stddef.h>

#include "selfsup/finetune.h"

typedef struct {
    int round;
    size_t pseudo;          /* pseudo-labelled rows trained on (round 0: 0) */
    size_t per_class;       /* of them per class */
    size_t candidates;      /* unlabelled texts at or above the threshold, before balancing */
    size_t gold, correct;   /* pseudo-labels whose text has a gold label, and how many of them match */
    double ensemble_dev_accuracy; /* round 1 with --teachers K > 1: the K teachers' ensemble on dev; else -1 */
    double dev_accuracy, dev_macro_f1, dev_mcc, dev_score; /* dev_score: by --select */
    double lr, layer_decay; /* what it trained with (its eval.json): --lr 0 and --layer-decay 0 resolved */
} ss_selftrain_round;

typedef struct {
    int n;                  /* rounds run (round 0 included); fewer than rounds + 1 when a
                               round found no confident pseudo-label of some class */
    ss_selftrain_round *rounds;
    int best;               /* the round copied into OUT */
    size_t unlabeled;       /* texts in the unlabelled file */
    int teachers;           /* --teachers: the first is round 0 */
    int stopped_at;         /* the round that found no confident pseudo-label of some class
                               (rounds stopped before it), or 0: every round asked for ran */
    double *teacher_dev_accuracy; /* [teachers]: each teacher's dev accuracy (its eval.json) */
} ss_selftrain_result;

/* o->unlabeled, o->rounds, o->threshold and o->max_pseudo drive the rounds;
 * every other option is each round's fine-tuning (o->out_dir is OUT).
 * Round notes ("round 1: 812 pseudo-labels ...") go to fn as messages, and
 * each round's fine-tuning progress too. */
ss_status ss_selftrain(const ss_finetune_opts *o, ss_selftrain_result *r, ss_finetune_progress_fn fn, void *ctx,
                       ss_error *err);
void ss_selftrain_result_free(ss_selftrain_result *r);

#endif
