#pragma once
// Gradient clipping on a parameter_store, between backward and optimizer::step().
//
//     t.backward(loss);
//     double norm = seqgrad::optim::clip_global_norm(ps, 5.0);
//     opt.step();
//
// Both act on trainable parameters only and leave frozen ones alone. They are the same kernels,
// with the same rules, as the backward plans sg::clip_global_norm / sg::clip_value (see
// core/transforms.hpp): use the plan on a tape's own gradient, these on a gradient summed in the
// store (data_parallel, several tapes, or gradient accumulation over several backwards).
#include "../core/parameter.hpp"

namespace seqgrad::optim {

/// As torch.nn.utils.clip_grad_norm_ (2-norm): computes the global norm of all trainable
/// gradients, in double and in store order (so the result does not depend on threads); if it
/// exceeds max_norm, multiplies every trainable gradient by max_norm / (norm + 1e-6). Returns the
/// norm before clipping. A norm at or below max_norm leaves the gradients bit for bit as they
/// were; a NaN or infinite norm leaves them as they are too and is returned for the caller to act
/// on. max_norm = +inf never clips. Throws value_error unless max_norm > 0.
double clip_global_norm(parameter_store& ps, double max_norm);

/// Clamp every trainable gradient entry to [-c, c] (NaN entries stay NaN), as
/// torch.nn.utils.clip_grad_value_. Throws value_error unless c > 0.
void clip_value(parameter_store& ps, double c);

}  // namespace seqgrad::optim
