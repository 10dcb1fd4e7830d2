#pragma once
// Adam: adaptive moment estimation (Kingma & Ba, 2015), with bias correction.
#include "optimizer.hpp"

namespace seqgrad::optim {

/// Hyper-parameters of adam; write them as adam(ps, {.lr = 2e-3, .beta2 = 0.98}).
struct adam_options {
    double lr = 1e-3;
    double beta1 = 0.9;       ///< decay of the first moment, in [0, 1)
    double beta2 = 0.999;     ///< decay of the second moment, in [0, 1)
    double eps = 1e-8;        ///< added to the denominator, outside the square root; > 0
    double weight_decay = 0;  ///< L2 penalty added to the gradient (not AdamW's decoupled decay), >= 0
};

/// torch.optim.Adam (amsgrad=False), per entry, with g the gradient, p the value, m and v the
/// moment estimates (zero at first) and t the number of updates of this parameter, from 1:
///
///     g = g + weight_decay * p
///     m = beta1 * m + (1 - beta1) * g
///     v = beta2 * v + (1 - beta2) * g^2
///     p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
///
/// State: m and v per parameter. Throws value_error, naming "adam" and the value, for a negative
/// or non-finite lr or weight_decay, an eps that is not finite and > 0, or a beta outside [0, 1).
class adam : public optimizer {
public:
    explicit adam(parameter_store& ps, double lr = 1e-3) : adam(ps, adam_options{.lr = lr}) {}
    adam(parameter_store& ps, const adam_options& options);

    /// The options in force (lr is the current learning rate).
    adam_options options() const {
        auto o = opt_;
        o.lr = learning_rate();
        return o;
    }

protected:
    void update(const parameter& p, detail::optim_state& s) override { run(p, s, false); }
    void update_and_zero(const parameter& p, detail::optim_state& s) override { run(p, s, true); }

private:
    void run(const parameter& p, detail::optim_state& s, bool zero_grad);
    adam_options opt_;
};

}  // namespace seqgrad::optim
