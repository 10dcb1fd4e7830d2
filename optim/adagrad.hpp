#pragma once
// Adagrad: per-entry learning rates from the running sum of squared gradients (Duchi et al., 2011).
#include "optimizer.hpp"

namespace seqgrad::optim {

/// Hyper-parameters of adagrad; write them as adagrad(ps, {.lr = 0.1, .eps = 1e-8}).
struct adagrad_options {
    double lr = 0.01;
    double lr_decay = 0;                   ///< >= 0
    double weight_decay = 0;               ///< L2 penalty added to the gradient, >= 0
    double initial_accumulator_value = 0;  ///< starting value of the sum, >= 0
    double eps = 1e-10;                    ///< added to the denominator, outside the square root; > 0
};

/// torch.optim.Adagrad, per entry, with g the gradient, p the value, s the sum (starting at
/// initial_accumulator_value) and t the number of updates of this parameter, from 1:
///
///     g = g + weight_decay * p
///     s = s + g^2
///     p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)
///
/// Throws value_error, naming "adagrad" and the value, for any negative or non-finite option, or
/// an eps of 0.
class adagrad : public optimizer {
public:
    explicit adagrad(parameter_store& ps, double lr = 0.01) : adagrad(ps, adagrad_options{.lr = lr}) {}
    adagrad(parameter_store& ps, const adagrad_options& options);

    /// The options in force (lr is the current learning rate).
    adagrad_options options() const {
        auto o = opt_;
        o.lr = learning_rate();
        return o;
    }

protected:
    void update(const parameter& p, detail::optim_state& s) override { run(p, s, false); }
    void update_and_zero(const parameter& p, detail::optim_state& s) override { run(p, s, true); }
    void init_state(detail::optim_state& s) override;

private:
    void run(const parameter& p, detail::optim_state& s, bool zero_grad);
    adagrad_options opt_;
};

}  // namespace seqgrad::optim
