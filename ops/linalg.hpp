#pragma once
// Matrix products through OpenBLAS (GEMV when a side is a single row or column).
#include "../core/tape.hpp"

namespace seqgrad {

/// a [M, K] times b [K, N] -> [M, N]. Transposed operands are named: matmul(x, T(w)) is x w^T with
/// w stored [N, K] (PyTorch-layout weights), no transpose node; parameters are operands too (see
/// ops/operands.hpp). Deprecated: the positional flags trans_a / trans_b (the stored a is [K, M] /
/// b is [N, K]); write T(a) / T(b) instead.
expr matmul(const expr& a, const expr& b, bool trans_a = false, bool trans_b = false);
/// a b^T. Deprecated: write matmul(a, T(b)).
inline expr matmul_nt(const expr& a, const expr& b) { return matmul(a, b, false, true); }
/// Batched matmul: a [B, M, K] times b [B, K, N] -> [B, M, N], one product per batch entry. T()
/// applies to each matrix of the batch (T(b): b is stored [B, N, K]), so scores q k^T of
/// attention are bmm(q, T(k)) with no transpose node. Deprecated: the positional flags.
expr bmm(const expr& a, const expr& b, bool trans_a = false, bool trans_b = false);
/// Transpose of a matrix [M, N] -> [N, M].
expr transpose(const expr& x);

}  // namespace seqgrad
