// Hand-vectorised kernels the oneDNN backend needs and oneDNN 2.6 does not offer.
#ifndef SAGAN_KERNELS_H
#define SAGAN_KERNELS_H

/// Softmax down each column of a row-major (keys x queries) tile with row stride `stride`, in
/// place: tile[:, j] = softmax over i of tile[i, j]. The attention kernel keeps Pᵀ tiles so that
/// both of its large products are plain (untransposed) matrix products.
void sagan_softmax_columns(float *tile, int keys, int queries, int stride);

/// The softmax backward down each column, in place on `gradient`:
/// gradient[i, j] = p[i, j] * (gradient[i, j] - Σ_k p[k, j] gradient[k, j]).
void sagan_softmax_columns_backward(const float *p, float *gradient, int keys, int queries, int stride);

/// Whether this CPU runs the AVX-512 versions (otherwise plain C with expf).
int sagan_kernels_use_avx512(void);

/// The plain C versions, whatever the CPU (the tests compare both).
void sagan_softmax_columns_portable(float *tile, int keys, int queries, int stride);
void sagan_softmax_columns_backward_portable(const float *p, float *gradient, int keys, int queries, int stride);

#endif
