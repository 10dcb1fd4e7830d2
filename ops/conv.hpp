#pragma once
// Convolution over time.
#include "../core/tape.hpp"

namespace seqgrad {

/// Causal 1-D convolution over time: x [T, B, C_in] (time-major), w [K, C_in, C_out] ->
/// y [T, B, C_out] with y[t] = sum_{k < K} x[t - k] w[k] (x before t = 0 is zero), so step t
/// sees only steps t - K + 1 .. t. One GEMM per tap forward and two backward. The convolutions
/// of a quasi-recurrent network (Bradbury et al. 2017); add a bias with add().
expr conv1d_causal(const expr& x, const expr& w);

}  // namespace seqgrad
