#pragma once
// Gradient clipping on a parameter_store, between backward and optimizer::step().
//
//     t.backward(loss);
//     double norm = seqgrad::optim::clip_global_norm(ps, 5.0);
//     opt.step();
//
// Both act on trainable parameters only and leave frozen ones alone.
#include "../core/parameter.hpp"

namespace seqgrad::optim {

/// As torch.nn.utils.clip_grad_norm_ (2-norm): computes the global norm of all trainable
/// gradients, in double and in store order (so the result does not depend on threads); if it
/// exceeds max_norm, multiplies every trainable gradient by max_norm / (norm + 1e-6). Returns the
/// norm before clipping. A norm at or below max_norm leaves the gradients bit for bit as they
/// were; a NaN or infinite norm leaves them as they are too and is returned for the caller to act
/// on. max_norm = +inf never clips. Throws value_error if max_norm is NaN or negative.
double clip_global_norm(parameter_store& ps, double max_norm);

/// Clamp every trainable gradient entry to [-c, c] (NaN entries stay NaN), as
/// torch.nn.utils.clip_grad_value_. Throws value_error if c is NaN or negative.
void clip_value(parameter_store& ps, double c);

}  // namespace seqgrad::optim
