/* head_cuda.h in a build without CUDA (no HAVE_CUDA): the API exists and reports that there
 * is no GPU, so callers need no #ifdef. With CUDA=1 the functions come from
 * executor/workers/kernels/head_kernels.cu instead (as proxies/cuda_stub.c). */
#include "executor/workers/finetune/head_cuda.h"

#ifndef HAVE_CUDA

#include "common/util.h"

#define NO_CUDA "no GPU: rankql was built without CUDA (make CUDA=1)"

int head_cuda_available(void)
{
    return 0;
}

const char *head_cuda_describe(void)
{
    return NO_CUDA;
}

int head_train_cuda(head_net *net, head_state *st, const head_knobs *k, const float *x,
                    const int32_t *y, size_t n, head_epoch_fn on_epoch, void *arg, char **err)
{
    (void)net, (void)st, (void)k, (void)x, (void)y, (void)n, (void)on_epoch, (void)arg;
    *err = xstrdup(NO_CUDA);
    return HEAD_CUDA_ENOGPU;
}

#endif
