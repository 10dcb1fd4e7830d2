#pragma once
// Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay.
#include "optimizer.hpp"

namespace seqgrad::optim {

/// Hyper-parameters of sgd; write them as sgd(ps, {.lr = 0.1, .momentum = 0.9, .nesterov = true}).
struct sgd_options {
    double lr = 0.01;
    double momentum = 0;      ///< mu, >= 0; 0 keeps no state
    double dampening = 0;     ///< in [0, 1]
    double weight_decay = 0;  ///< L2 penalty added to the gradient, >= 0
    bool nesterov = false;    ///< needs momentum > 0 and dampening == 0 (as in PyTorch)
};

/// torch.optim.SGD, per entry, with g the gradient, p the value and b the momentum buffer:
///
///     g = g + weight_decay * p
///     if momentum != 0:
///         b = g                                  on the parameter's first update
///         b = momentum * b + (1 - dampening) * g  afterwards
///         g = nesterov ? g + momentum * b : b
///     p = p - lr * g
///
/// Throws value_error, naming "sgd" and the value, for a negative or non-finite lr, momentum or
/// weight_decay, a dampening outside [0, 1], or nesterov without momentum or with dampening.
class sgd : public optimizer {
public:
    sgd(parameter_store& ps, double lr) : sgd(ps, sgd_options{.lr = lr}) {}
    sgd(parameter_store& ps, const sgd_options& options);

    /// The options in force (lr is the current learning rate).
    sgd_options options() const {
        auto o = opt_;
        o.lr = learning_rate();
        return o;
    }

protected:
    void update(const parameter& p, detail::optim_state& s) override { run(p, s, false); }
    void update_and_zero(const parameter& p, detail::optim_state& s) override { run(p, s, true); }

private:
    void run(const parameter& p, detail::optim_state& s, bool zero_grad);
    sgd_options opt_;
};

}  // namespace seqgrad::optim
