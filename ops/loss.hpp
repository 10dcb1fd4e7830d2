#pragma once
// Losses.
#include <span>

#include "../core/tape.hpp"

namespace seqgrad {

enum class reduction { none, sum, mean };

/// Softmax cross-entropy from logits [N, C] and integer targets (N of them, each in [0, C), or
/// negative to ignore that row: loss 0, no gradient). Per-row losses with reduction::none; the
/// mean divides by the number of rows not ignored (0 when every row is: PyTorch returns NaN).
/// Computed stably (log-sum-exp).
expr cross_entropy(const expr& logits, std::span<const int> targets, reduction r = reduction::sum);
/// Mean of squared differences (reduction::sum for the sum, none for the squares).
expr mse_loss(const expr& prediction, const expr& target, reduction r = reduction::mean);

}  // namespace seqgrad
