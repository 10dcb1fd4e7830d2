#pragma once
// Numerical gradient checks, a public API: central differences in double precision over every
// trainable entry of one or more parameter stores (put inputs and initial states in a store of
// their own to check them too).
//
//   sg::parameter_store ps;  ...build a model in ps...
//   auto report = sg::gradcheck(ps, [&](sg::tape& t) { return model.loss(t, batch); });
//   std::cout << report;     // per-tensor errors, the largest errors (or failures), pass/fail
//   if (!report) ...
#include <functional>
#include <iosfwd>
#include <span>
#include <string>
#include <vector>

#include "tape.hpp"

namespace seqgrad {

struct gradcheck_options {
    double eps = 1e-6;   ///< central-difference step at |x| <= 1; eps * |x| above (divided by the step taken)
    double atol = 1e-5;  ///< entry passes when |analytic - numeric| <= atol + rtol * |numeric|
    double rtol = 1e-3;
    /// Check at most this many entries per tensor, sampled without replacement (0 = all).
    std::size_t max_entries_per_tensor = 0;
    std::uint64_t seed = 1;  ///< for the sampling
    std::size_t worst = 5;   ///< entries kept in the report's `worst`
};

struct gradcheck_entry {
    std::string tensor;
    std::vector<std::size_t> index;
    double analytic = 0, numeric = 0, abs_err = 0, rel_err = 0;
    bool passed = true;
};

struct gradcheck_tensor {
    std::string name;
    seqgrad::shape shape;
    std::size_t checked = 0, failed = 0;
    double max_abs_err = 0, max_rel_err = 0;
};

struct gradcheck_report {
    bool passed = true;
    /// Two backward passes over fresh tapes gave bitwise identical gradients.
    bool deterministic = true;
    std::size_t checked = 0, failed = 0;
    double max_abs_err = 0, max_rel_err = 0;
    /// ||analytic - numeric|| / ||analytic + numeric|| over all checked entries (0 if both are 0).
    double global_rel_err = 0;
    /// Every checked gradient, analytic and numeric, is within atol of 0 (so each entry passed by
    /// atol alone) and global_rel_err exceeds rtol: nothing was shown, and passed is false. Scale
    /// the loss up or lower atol.
    bool inconclusive = false;
    double loss = 0;
    std::vector<gradcheck_tensor> tensors;
    /// When some entries failed: the failed ones, largest excess over the tolerance first. When all
    /// passed: the entries with the largest absolute error, largest first (none with error 0).
    std::vector<gradcheck_entry> worst;
    explicit operator bool() const { return passed; }
};

std::ostream& operator<<(std::ostream& os, const gradcheck_report& r);

/// The function builds a scalar loss on the tape it is given (a double tape). It is called
/// 2 + 2 * (checked entries) times; it must be deterministic and must not keep exprs across calls.
/// The stores are switched to double for the check and restored exactly (values and gradients).
/// Throws value_error when the stores have no trainable entry to check (a pass would mean nothing).
gradcheck_report gradcheck(std::span<parameter_store* const> stores, const std::function<expr(tape&)>& loss,
                           const gradcheck_options& opts = {});
gradcheck_report gradcheck(parameter_store& store, const std::function<expr(tape&)>& loss,
                           const gradcheck_options& opts = {});

/// Result of checking one registered op on all of its samples.
struct op_check {
    std::string op;
    bool passed = true;
    std::size_t samples = 0;
    double max_abs_err = 0, max_rel_err = 0;
    /// Per sample, for differentiable ops; empty entries for ops checked another way.
    std::vector<gradcheck_report> reports;
    /// How the op was checked ("gradcheck", "no gradient: backward throws", "constant output",
    /// or why it failed, e.g. "no samples").
    std::string how;
};

/// Gradient-check a registered op from its samples: inputs drawn in each sample's domain, loss =
/// sum(op(inputs) * random weights), in double; then the float kernels' gradient against the
/// double ones' (within 1e-4 of 1 + its largest entry). The inputs reach the op through values
/// the tape may release, poisoned when released: a backward reading a value its saves()
/// declaration leaves out sees NaN and fails. Ops without a gradient must throw graph_error when
/// asked for one; constant-output ops must pass no gradient. An op with no samples fails.
op_check gradcheck_op(const op_def& op, const gradcheck_options& opts = {}, std::uint64_t seed = 42);

}  // namespace seqgrad
