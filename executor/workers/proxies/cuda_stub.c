/* proxy_cuda.h in a build without CUDA (no HAVE_CUDA): the API exists and reports that
 * there is no GPU, so callers need no #ifdef. With CUDA=1 the functions come from
 * executor/workers/kernels/proxy_kernels.cu instead. */
#include "executor/workers/proxies/proxy_cuda.h"

#ifndef HAVE_CUDA

#include "executor/workers/proxies/internal.h"

#define NO_CUDA "no GPU: rankql was built without CUDA (make CUDA=1)"

int proxy_cuda_available(void)
{
    return 0;
}

const char *proxy_cuda_describe(void)
{
    return NO_CUDA;
}

int proxy_nn_cuda(const proxy_data *train, const proxy_data *test, const proxy_nn_opts *opts,
                  proxy_nn_result *out, char *err, size_t errsize)
{
    (void)train, (void)test, (void)opts, (void)out;
    return proxy_fail(err, errsize, PROXY_ENOGPU, NO_CUDA);
}

int proxy_linear_cuda(const proxy_data *train, const proxy_data *test,
                      const proxy_linear_opts *opts, proxy_linear_result *out, char *err,
                      size_t errsize)
{
    (void)train, (void)test, (void)opts, (void)out;
    return proxy_fail(err, errsize, PROXY_ENOGPU, NO_CUDA);
}

#endif
