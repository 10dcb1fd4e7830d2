#pragma once
// Activations and normalisers.
#include "../core/tape.hpp"

namespace seqgrad {

expr tanh(const expr& x);
expr sigmoid(const expr& x);
expr relu(const expr& x);
/// Softmax over the last axis.
expr softmax(const expr& x);
/// log(softmax(x)) over the last axis, computed stably.
expr log_softmax(const expr& x);
/// Softmax over the last axis of x [B, ..., S] where, for batch entry b, only the first
/// lengths[b] positions take part (the max and the sum exclude the others, which get exactly 0;
/// a length of 0 gives a row of zeros). One length per B, each in [0, S]; shape_error otherwise.
expr masked_softmax(const expr& x, std::span<const int> lengths);

}  // namespace seqgrad
