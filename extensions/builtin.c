/* The builtin strategies, written against the plugin ABI (extensions/rankql_extension.h) and
 * compiled in. random(seed): a uniformly random order of the candidates, the same for the
 * same seed and candidates (SHiFT's random extension, made deterministic); err = -1 for
 * every model, as in SHiFT. */
#include <stdint.h>
#include <stdio.h>

#include "extensions/extensions.h"

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int random_rank(const rqx_request *req, rqx_ranked *out, char *err, size_t errlen)
{
    if (req->nparams != 1 || req->params[0].type != RQX_INT) {
        snprintf(err, errlen, "random: expected the parameter seed");
        return -1;
    }
    uint64_t state = (uint64_t)req->params[0].i;
    /* Models come ordered by id: the same candidates give the same order for a seed. */
    for (size_t i = 0; i < req->nmodels; i++)
        out[i] = (rqx_ranked){req->models[i].id, -1.0};
    for (size_t i = req->nmodels; i > 1; i--) {
        size_t j = (size_t)(splitmix64(&state) % i);
        rqx_ranked t = out[i - 1];
        out[i - 1] = out[j];
        out[j] = t;
    }
    return (int)req->nmodels;
}

static const rqx_param random_params[] = {
    {.name = "seed", .type = RQX_INT, .doc = "the shuffle's seed: the same seed, the same order",
     .flags = RQX_HAS_MIN | RQX_HAS_MAX, .int_default = 0, .int_min = 0,
     .int_max = INT64_MAX},
};

const rankql_extension ext_builtin_random = {
    .abi_version = RANKQL_EXTENSION_ABI_VERSION,
    .name = "random",
    .version = "1",
    .description = "a random order of the candidates, deterministic for a seed (err = -1)",
    .params = random_params,
    .nparams = 1,
    .rank = random_rank,
};
