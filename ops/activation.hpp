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

}  // namespace seqgrad
