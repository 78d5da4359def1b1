/* The `onnx` model runner (placeholder until ONNX Runtime support lands). */
#include "executor/workers/runners/runners.h"

#include "common/util.h"

int onnx_runner_embed(const runner_call *call, float **out, size_t *dim, char **err,
                      bool *permanent)
{
    (void)call;
    *out = NULL;
    *dim = 0;
    *permanent = true;
    *err = xstrdup("ONNX Runtime is not installed (libonnxruntime.so not found): see "
                   "docs/runners.md");
    return -1;
}
