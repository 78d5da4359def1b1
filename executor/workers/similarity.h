/* Dataset similarity (SELECT vec … WHERE probe = …, docs/language.md "Dataset similarity"):
 * the embedding of a whole dataset by a probe model and the distance between two of them.
 * The similarity job (similarity_job.c) computes the embedding from the probe's feature file
 * and stores it in dataset_similarity; the executor (executor/similarity.c) computes the
 * distance matrix from the stored embeddings at query time.
 *
 * Method "gaussian_diag": the probe's features of a dataset as a Gaussian with diagonal
 * covariance. For n rows x_1..x_n of dimension d,
 *
 *   μ_j  = (1/n) Σ_i x_ij               σ²_j = (1/n) Σ_i (x_ij − μ_j)²   (population variance)
 *   vec  = [μ_1 … μ_d, σ²_1 … σ²_d]     (2d reals)
 *
 * and the distance of two datasets is the 2-Wasserstein (Fréchet) distance between their
 * Gaussians, which for diagonal covariances is
 *
 *   W2(a, b) = sqrt( Σ_j (μa_j − μb_j)² + Σ_j (σa_j − σb_j)² )     (σ = sqrt(σ²))
 *
 * a metric: symmetric, 0 on the diagonal, the triangle inequality holds. */
#ifndef RANKQL_EXECUTOR_WORKERS_SIMILARITY_H
#define RANKQL_EXECUTOR_WORKERS_SIMILARITY_H

#include <stddef.h>
#include <stdint.h>

#define SIMILARITY_METHOD "gaussian_diag"
#define SIMILARITY_DISTANCE "wasserstein2"

/* vec (2·dim floats) of rows × dim features x; sums in double. 0, or -1 when rows == 0 or
 * a value is not finite. */
int similarity_embed(const float *x, uint64_t rows, uint32_t dim, float *vec);

/* W2 between two vecs of length 2·dim (means, then variances). A negative variance (never
 * produced, but stored vectors are data) counts as 0. */
double similarity_w2(const float *a, const float *b, size_t dim);

#endif
