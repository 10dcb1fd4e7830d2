#pragma once
// Elementwise and along-an-axis math a prototype reaches for: max/min, abs, clamp, where,
// logsumexp, cumsum, softplus, elu, gelu, erf, log1p.
//
// At points where a function has no derivative the gradient follows PyTorch: abs'(0) = 0;
// clamp passes the gradient where lo <= x <= hi (bounds included); maximum/minimum split it
// evenly between tied inputs; max/min along an axis send it to the first maximal entry.
//
// As in PyTorch, the reductions along an axis (max, min, argmax, argmin, logsumexp, cumsum, and
// sum and mean of ops/reduce.hpp) take axis 0 or -1 on a rank-0 input, which is then its own
// result (one implicit axis of length 1). Along an empty axis logsumexp is -inf (log 0); max,
// min, argmax and argmin have no value there and throw shape_error.
#include "../core/tape.hpp"

namespace seqgrad {

/// Elementwise max(a, b) and min(a, b), broadcasting by NumPy rules.
expr maximum(const expr& a, const expr& b);
expr minimum(const expr& a, const expr& b);
/// Max (min) along an axis (negative counts from the end); keepdims leaves a 1 in its place.
expr max(const expr& x, int axis, bool keepdims = false);
expr min(const expr& x, int axis, bool keepdims = false);
/// Index of the first maximal (minimal) entry along an axis, as values of the tape's type (exact
/// up to 2^24 on a float tape); shaped like max(x, axis, keepdims). No gradient.
expr argmax(const expr& x, int axis, bool keepdims = false);
expr argmin(const expr& x, int axis, bool keepdims = false);
expr abs(const expr& x);
/// min(max(x, lo), hi); lo <= hi.
expr clamp(const expr& x, double lo, double hi);
/// a where cond > 0, else b (a mask of zeros and ones selects a at its ones); all three
/// broadcast. No gradient reaches cond.
expr where(const expr& cond, const expr& a, const expr& b);
/// log(sum(exp(x))) along an axis, computed from the maximum (no overflow); -inf along an empty axis.
expr logsumexp(const expr& x, int axis, bool keepdims = false);
/// Running sum along an axis: y[k] = x[0] + ... + x[k].
expr cumsum(const expr& x, int axis);
/// log(1 + exp(x)), without overflow for large x (softplus(100) = 100 on a float tape).
expr softplus(const expr& x);
/// x for x > 0, alpha (exp(x) - 1) otherwise (Clevert et al. 2016).
expr elu(const expr& x, double alpha = 1.0);
/// x Phi(x) with the exact normal CDF Phi(x) = (1 + erf(x / sqrt 2)) / 2 (Hendrycks & Gimpel).
expr gelu(const expr& x);
expr erf(const expr& x);
/// log(1 + x), accurate for small x; x > -1.
expr log1p(const expr& x);

}  // namespace seqgrad
