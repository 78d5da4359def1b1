/* Successive halving (SH) for task-aware queries: the pure computation behind
 * `CHUNK n BUDGET m` and `CHUNK AUTO BUDGET AUTO` (shift-spec §2.4, §5.8) and the SH cost
 * simulator of shift-spec §7.1. No I/O, no database: the executor plans its rounds of proxy
 * jobs with sh_schedule(), picks chunk and budget with sh_auto_bounds(), and decides who goes
 * on (and the final ranking) with sh_select().
 *
 * Chunk convention (one, used by the slicing, by AUTO and by the cost model): SHiFT's
 * implementation [impl], the one the chunk literals of SHiFT's experiment files assume.
 *
 *   L      = max(1, ceil(log_η M))                      (rounds; M = number of models ≥ 2)
 *   S_0    = M,  S_{k+1} = ceil(S_k / η)                (models in round k)
 *   r_k    = floor(B / (S_k · L))                       (pulls of round k, per model)
 *   P_k    = r_0 + … + r_k                              (cumulative pulls)
 *   T_k    = C · (P_0 + … + P_k)                        (training prefix of round k, rows)
 *
 * so round k adds C·P_k new rows to every surviving model's training prefix, and the prefix
 * is capped at the training-set size N (the last round of the AUTO bounds sees all of it).
 * The alternative reading (SHiFT's Alg. 1 and doc/notes/sh.md [intent]: round k adds r_k·C
 * rows, prefix C·P_k) is not used; sh_prefix_intent_rows() gives its prefix only so that a
 * caller or a test can compare the two.
 *
 * C counts rows of the whole training set: with several TRAINED ON datasets of sizes
 * N_1..N_m (N = ΣN_i, the concatenation SHiFT trains on) the prefix T_k is shared out in
 * proportion to the sizes, dataset i taking
 *
 *   n_{i,k} = min(N_i, ceil(T_k · N_i / N))             (exact integer arithmetic)
 *
 * Rounding up (not largest remainders) keeps every dataset's prefix non-decreasing from one
 * round to the next — a round only appends rows, so the previous round's embeddings are a
 * cached prefix — gives every non-empty dataset at least one row from round 0, and gives
 * exactly N_i once T_k ≥ N. The price: Σ_i n_{i,k} may exceed min(T_k, N) by fewer than m
 * rows. With one dataset n_{1,k} = min(N, T_k), SHiFT's slices exactly. (SHiFT itself
 * counts C in rows of the first reader and gives reader i ceil(N_i·C/N_1) rows per pull,
 * while its default budget divides ΣN_i by C; rankql counts C over the whole set
 * everywhere.)
 *
 * A round's pulls are S_k·r_k (the budget: Σ_k S_k·r_k ≤ B). B ≥ B_min = M·L guarantees
 * r_k ≥ 1 in every round and exactly one model after the last; a smaller B would give
 * r_0 = 0 (SHiFT then runs no round at all) and is rejected with the minimum in the message.
 */
#ifndef RANKQL_PLANNER_SH_H
#define RANKQL_PLANNER_SH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SH_ETA_DEFAULT 2
#define SH_ETA_MAX 64
#define SH_MAX_MODELS 10000000       /* 1e7 */
#define SH_MAX_DATASETS 64
#define SH_MAX_ROWS ((int64_t)1 << 31)   /* N = Σ N_i and C (keeps T·N_i exact in 64 bits) */
#define SH_MAX_BUDGET ((int64_t)1 << 40) /* B */
#define SH_MAX_ROUNDS 64

typedef struct sh_round {
    int     k;            /* 0-based round number */
    int64_t models;       /* S_k: models that run this round */
    int64_t keep;         /* ceil(S_k / η): models that go on (1 in the last round) */
    int64_t pulls;        /* r_k: pulls per model this round */
    int64_t cum_pulls;    /* P_k = r_0 + … + r_k */
    int64_t pulls_spent;  /* S_k · r_k */
    int64_t nominal_rows; /* T_k = C · (P_0 + … + P_k), uncapped (saturates at INT64_MAX) */
    int64_t prefix_total; /* Σ_i prefix[i] */
    int64_t new_total;    /* Σ_i new_rows[i]: rows each model embeds for the first time */
    int64_t *prefix;      /* [n_datasets]: n_{i,k}, the training prefix of dataset i */
    int64_t *new_rows;    /* [n_datasets]: n_{i,k} − n_{i,k−1} (n_{i,−1} = 0) */
} sh_round;

typedef struct sh_schedule {
    int64_t n_models;     /* M */
    int64_t chunk;        /* C */
    int64_t budget;       /* B */
    int     eta;          /* η */
    int     n_rounds;     /* L */
    size_t  n_datasets;
    int64_t *sizes;       /* [n_datasets] N_i */
    int64_t total_size;   /* N = Σ N_i */
    int64_t pulls_spent;  /* Σ_k S_k · r_k ≤ B */
    int64_t model_rows;   /* Σ_k S_k · new_total_k: training rows embedded over all models */
    sh_round *rounds;     /* [n_rounds] */
} sh_schedule;

/* ceil(log_η M) computed in integers (smallest L with η^L ≥ M), at least 1. 0 when M < 1 or
 * η < 2. */
int sh_num_rounds(int64_t n_models, int eta);

/* The SH schedule for M models over n_datasets training sets of the given sizes, chunk C and
 * budget B, η (0 = SH_ETA_DEFAULT). Returns 0 and fills *out (release with sh_schedule_free),
 * or -1 with a message in err (and *out zeroed). Checks: 2 ≤ M ≤ SH_MAX_MODELS,
 * 1 ≤ n_datasets ≤ SH_MAX_DATASETS, 1 ≤ N_i and N ≤ SH_MAX_ROWS, 1 ≤ C ≤ SH_MAX_ROWS,
 * 2 ≤ η ≤ SH_ETA_MAX, B_min ≤ B ≤ SH_MAX_BUDGET. */
int sh_schedule_make(sh_schedule *out, int64_t n_models, const int64_t *sizes,
                     size_t n_datasets, int64_t chunk, int64_t budget, int eta, char *err,
                     size_t errlen);
void sh_schedule_free(sh_schedule *s);

/* The [intent] convention's training prefix after round k, C · P_k (saturating), for
 * comparison only; the schedule never uses it. */
int64_t sh_prefix_intent_rows(const sh_schedule *s, int k);

/* ---- AUTO (SHiFT's get_bounds) and the default budget ---------------------------------- */

/* What the query gave: a literal (value > 0), AUTO, or nothing. */
typedef enum sh_bound_kind { SH_BOUND_ABSENT = 0, SH_BOUND_AUTO, SH_BOUND_VALUE } sh_bound_kind;

typedef struct sh_bound {
    sh_bound_kind kind;
    int64_t value; /* SH_BOUND_VALUE only */
} sh_bound;

/* SHiFT's get_bounds(N, M, η): B = B_min = M · ceil(log_η M), the smallest budget with
 * r_0 ≥ 1, and C = ceil(N / Σ_k P_k) under that budget, the smallest chunk whose last round
 * sees the whole training set (N = Σ N_i). Returns 0 or -1 with a message. */
int sh_get_bounds(int64_t total_size, int64_t n_models, int eta, int64_t *chunk,
                  int64_t *budget, char *err, size_t errlen);

/* SHiFT's server default when CHUNK is given and BUDGET is not (§5.8 step 1), verbatim with
 * log_η for log2: ceil(ceil(N / C) / log_η M). It is usually below B_min (235 models,
 * N = 50000, C = 112: 57 against 1880), i.e. SHiFT ran no round; sh_auto_bounds() therefore
 * does not use it alone. Returns -1 on invalid input (M < 2, N < 1, C < 1, η < 2). */
int64_t sh_shift_default_budget(int64_t total_size, int64_t chunk, int64_t n_models, int eta);

/* Resolve CHUNK/BUDGET as a query gives them into the chunk and budget to run with:
 *   CHUNK AUTO, BUDGET AUTO or absent  → sh_get_bounds()
 *   CHUNK AUTO, BUDGET m               → B = m; C = ceil(N / Σ_k P_k) under B (the last round
 *                                        sees the whole training set)
 *   CHUNK n,    BUDGET AUTO            → C = n; B = B_min
 *   CHUNK n,    BUDGET absent          → C = n; B = max(sh_shift_default_budget(), B_min)
 *   CHUNK absent                       → error: BUDGET without CHUNK is not SH in SHiFT-QL
 * Every result passes sh_schedule_make()'s checks (B < B_min is an error there). Returns 0
 * or -1 with a message. */
int sh_auto_bounds(int64_t total_size, int64_t n_models, int eta, sh_bound chunk,
                   sh_bound budget, int64_t *chunk_out, int64_t *budget_out, char *err,
                   size_t errlen);

/* ---- selection and ranking ------------------------------------------------------------- */

/* One model's outcome. */
typedef struct sh_ranked {
    size_t model;    /* index into the caller's model list (0..M−1) */
    int last_round;  /* the last round it ran in (−1 when no round is done) */
    int survived;    /* rounds survived: eliminations passed (last_round, +1 if kept after it) */
    bool alive;      /* kept after the last round given (runs the next round, or won) */
    double err;      /* its err in last_round (NaN if it had none) */
    int64_t train_rows; /* Σ_i prefix of last_round: the training slice its err is on */
} sh_ranked;

/* Apply the eliminations of rounds 0..rounds_done−1 of schedule s. errs is row-major
 * [round][model], rounds_done × M; only the errs of the models that ran a round are read
 * (the others may hold anything). In each round the models that ran are ordered by err
 * ascending, NaN after every number (a model without a result is eliminated first), then by model
 * index ascending (the caller's order: ties go to the earlier model, deterministically),
 * and the first ceil(S_k/η) are kept.
 *
 * ranked (M entries) receives the final ranking: rounds survived descending, then err
 * ascending within the last round each model reached (NaN last), then model index. This
 * is not SHiFT's ranking (which mixed eliminated models into one err order). alive_out
 * (optional, M entries) flags the models that run round rounds_done (or won).
 * 0 ≤ rounds_done ≤ s->n_rounds; with 0 every model is alive and unranked by err (order of
 * index). Returns 0 or -1 with a message. */
int sh_select(const sh_schedule *s, int rounds_done, const double *errs, sh_ranked *ranked,
              bool *alive_out, char *err, size_t errlen);

/* ---- cost simulator (shift-spec §7.1, client/simulator/cost_sh.py) -------------------- */

#define SH_COST_T_LOAD_DATA_MS 700.0 /* per job: loading the data */
#define SH_COST_T_NN_MS 0.1          /* NN proxy, per test sample */
#define SH_COST_T_LINEAR_MS 5.0      /* linear proxy, per test sample */
#define SH_COST_T_O_MS 800.0         /* per-job overhead */

typedef enum sh_cost_proxy { SH_COST_NN = 0, SH_COST_LINEAR } sh_cost_proxy;

typedef struct sh_cost_model {
    double load_ms;      /* loading the model */
    double infer_ms;     /* inference per sample */
} sh_cost_model;

typedef struct sh_cost {
    double no_sh_ms;     /* every model on the whole train set, one proxy job each */
    double sh_ms;        /* SH with the pool-average model in every round */
    double sh_best_ms;   /* SH where the survivors of every round are the cheapest models */
    double sh_worst_ms;  /* … the most expensive ones */
    double sh_test_ms;   /* the part of the SH costs spent on the test set (all models) */
} sh_cost;

/* Simulated cost in milliseconds of ranking n_models (costs[i] each) on n_test test rows,
 * with `devices` devices working in parallel:
 *   no SH:  Σ_i (T_O + T_load_data + 2·load_i + inf_i·(N + n_test) + T_proxy·n_test) / devices
 *   SH:     Σ_i (inf_i·n_test + T_load_data + load_i) / devices
 *         + Σ_k Σ_{i∈S_k} (T_load_data + load_i + inf_i·new_k + T_proxy·n_test + T_O)
 *                   / min(devices, S_k)
 * with new_k = s->rounds[k].new_total (= C·P_k until the prefix reaches N), S_k's models the
 * pool average (sh_ms), or the S_k models with the smallest (sh_best_ms) or largest
 * (sh_worst_ms) round cost. s must be a schedule for n_models models. Returns 0 or -1 with a
 * message. */
int sh_cost_simulate(const sh_schedule *s, const sh_cost_model *costs, size_t n_models,
                     int64_t n_test, sh_cost_proxy proxy, int devices, sh_cost *out,
                     char *err, size_t errlen);

#endif
