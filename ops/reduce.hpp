#pragma once
// Reductions.
#include "../core/tape.hpp"

namespace seqgrad {

/// Sum of all entries -> scalar (shape []).
expr sum(const expr& x);
/// Sum along an axis (negative counts from the end); keepdims leaves a 1 in its place. A rank-0
/// x takes axis 0 or -1 and is its own sum, as in PyTorch; along an empty axis the sum is 0.
expr sum(const expr& x, int axis, bool keepdims = false);
/// Mean of all entries (a composition: sum times 1/n); shape_error when x has no entries.
expr mean(const expr& x);
/// Mean along an axis; shape_error when that axis has length 0.
expr mean(const expr& x, int axis, bool keepdims = false);

}  // namespace seqgrad
