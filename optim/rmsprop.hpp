#pragma once
// RMSprop: divide the gradient by a running root mean square of recent gradients (Hinton, 2012).
#include "optimizer.hpp"

namespace seqgrad::optim {

/// Hyper-parameters of rmsprop; write them as rmsprop(ps, {.lr = 1e-3, .momentum = 0.9}).
struct rmsprop_options {
    double lr = 0.01;
    double alpha = 0.99;      ///< decay of the mean square, in [0, 1]
    double eps = 1e-8;        ///< added to the denominator, outside the square root; > 0
    double weight_decay = 0;  ///< L2 penalty added to the gradient, >= 0
    double momentum = 0;      ///< >= 0; 0 keeps no momentum buffer
    bool centered = false;    ///< divide by an estimate of the variance instead of the mean square
};

/// torch.optim.RMSprop, per entry, with g the gradient, p the value, and v, a (centered only) and
/// b (momentum only) state starting at zero:
///
///     g = g + weight_decay * p
///     v = alpha * v + (1 - alpha) * g^2
///     a = alpha * a + (1 - alpha) * g;  den = sqrt(v - a^2) + eps    if centered
///                                       den = sqrt(v) + eps          otherwise
///     if momentum > 0:  b = momentum * b + g / den;  p = p - lr * b
///     else:             p = p - lr * g / den
///
/// Throws value_error, naming "rmsprop" and the value, for a negative or non-finite lr,
/// weight_decay or momentum, an eps that is not finite and > 0, or an alpha outside [0, 1].
class rmsprop : public optimizer {
public:
    explicit rmsprop(parameter_store& ps, double lr = 0.01) : rmsprop(ps, rmsprop_options{.lr = lr}) {}
    rmsprop(parameter_store& ps, const rmsprop_options& options);

    /// The options in force (lr is the current learning rate).
    rmsprop_options options() const {
        auto o = opt_;
        o.lr = learning_rate();
        return o;
    }

protected:
    void update(const parameter& p, detail::optim_state& s) override { run(p, s, false); }
    void update_and_zero(const parameter& p, detail::optim_state& s) override { run(p, s, true); }

private:
    void run(const parameter& p, detail::optim_state& s, bool zero_grad);
    rmsprop_options opt_;
};

}  // namespace seqgrad::optim
