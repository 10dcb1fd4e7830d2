#pragma once
// Normalisation.
#include "../core/tape.hpp"

namespace seqgrad {

/// Layer normalisation over the last axis (Ba, Kiros & Hinton 2016): per row,
/// y = gamma * (x - mean) / sqrt(var + eps) + beta, with the biased variance (as PyTorch's
/// nn.LayerNorm). x [..., N], gamma and beta [N]. One node; its backward is fused.
expr layer_norm(const expr& x, const expr& gamma, const expr& beta, double eps = 1e-5);

}  // namespace seqgrad
