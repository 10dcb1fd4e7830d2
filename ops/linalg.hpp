#pragma once
// Matrix products through OpenBLAS (GEMV when a side is a single row or column).
#include "../core/tape.hpp"

namespace seqgrad {

/// a [M, K] times b [K, N] -> [M, N]. With trans_a / trans_b the stored a is [K, M] / b is [N, K]
/// (x W^T with PyTorch-layout weights needs no transpose node).
expr matmul(const expr& a, const expr& b, bool trans_a = false, bool trans_b = false);
/// a b^T.
inline expr matmul_nt(const expr& a, const expr& b) { return matmul(a, b, false, true); }
/// Transpose of a matrix [M, N] -> [N, M].
expr transpose(const expr& x);

}  // namespace seqgrad
