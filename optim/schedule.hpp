#pragma once
// Learning-rate schedules: small callables lr(step), and apply_schedule() to drive an optimiser.
//
//     seqgrad::optim::adam opt(ps, 1e-3);
//     seqgrad::optim::step_decay sched(1e-3, 1000, 0.5);  // halve every 1000 steps
//     for (auto& batch : batches) {
//         ... backward ...
//         seqgrad::optim::apply_schedule(opt, sched);      // lr = sched(opt.steps())
//         opt.step();
//     }
//
// Any callable taking a std::size_t step and returning a number is a schedule. The built-in ones
// keep no position of their own: apply_schedule reads opt.steps(), which optimizer::load_state
// restores, so a resumed run goes on with the rates of the run it was saved from.
#include <concepts>
#include <cstddef>

#include "optimizer.hpp"

namespace seqgrad::optim {

/// lr(step) = lr0 * gamma^floor(step / step_size), as torch.optim.lr_scheduler.StepLR.
class step_decay {
public:
    /// Throws value_error unless lr0 is finite and >= 0, step_size > 0 and gamma finite and > 0.
    step_decay(double lr0, std::size_t step_size, double gamma);
    double operator()(std::size_t step) const;

private:
    double lr0_;
    std::size_t step_size_;
    double gamma_;
};

/// lr(step) = lr0 * gamma^step, as torch.optim.lr_scheduler.ExponentialLR.
class exponential_decay {
public:
    /// Throws value_error unless lr0 is finite and >= 0 and gamma finite and > 0.
    exponential_decay(double lr0, double gamma);
    double operator()(std::size_t step) const;

private:
    double lr0_;
    double gamma_;
};

/// A callable from a step number to a learning rate.
template <class S>
concept lr_schedule = requires(const S& s, std::size_t step) {
    { s(step) } -> std::convertible_to<double>;
};

/// Set opt's learning rate to schedule(step) and return it; throws value_error (from
/// optimizer::set_learning_rate) if the schedule gives a negative or non-finite rate.
template <lr_schedule S>
double apply_schedule(optimizer& opt, const S& schedule, std::size_t step) {
    const double lr = static_cast<double>(schedule(step));
    opt.set_learning_rate(lr);
    return lr;
}
/// Set opt's learning rate to schedule(opt.steps()): call it before each opt.step(), so that the
/// first step uses schedule(0).
template <lr_schedule S>
double apply_schedule(optimizer& opt, const S& schedule) {
    return apply_schedule(opt, schedule, opt.steps());
}

}  // namespace seqgrad::optim
