#pragma once
// Matrix products through OpenBLAS (GEMV when a side is a single row or column).
#include "../core/tape.hpp"

namespace seqgrad {

/// a [M, K] times b [K, N] -> [M, N]. With trans_a / trans_b the stored a is [K, M] / b is [N, K]
/// (x W^T with PyTorch-layout weights needs no transpose node).
expr matmul(const expr& a, const expr& b, bool trans_a = false, bool trans_b = false);
/// a b^T.
inline expr matmul_nt(const expr& a, const expr& b) { return matmul(a, b, false, true); }
/// Batched matmul: a [B, M, K] times b [B, K, N] -> [B, M, N], one product per batch entry. The
/// transpose flags apply to each matrix of the batch (trans_b: b is stored [B, N, K]), so
/// scores q k^T of attention are bmm(q, k, false, true) with no transpose node.
expr bmm(const expr& a, const expr& b, bool trans_a = false, bool trans_b = false);
/// Transpose of a matrix [M, N] -> [N, M].
expr transpose(const expr& x);

}  // namespace seqgrad
