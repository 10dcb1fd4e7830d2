#include "schedule.hpp"

#include <cmath>

namespace seqgrad::optim {

step_decay::step_decay(double lr0, std::size_t step_size, double gamma)
    : lr0_(lr0), step_size_(step_size), gamma_(gamma) {
    detail::optim_require_lr("step_decay", lr0);
    detail::optim_require(step_size > 0, "step_decay", "step_size", double(step_size), "> 0");
    detail::optim_require(gamma > 0 && std::isfinite(gamma), "step_decay", "gamma", gamma, "finite and > 0");
}

double step_decay::operator()(std::size_t step) const { return lr0_ * std::pow(gamma_, double(step / step_size_)); }

exponential_decay::exponential_decay(double lr0, double gamma) : lr0_(lr0), gamma_(gamma) {
    detail::optim_require_lr("exponential_decay", lr0);
    detail::optim_require(gamma > 0 && std::isfinite(gamma), "exponential_decay", "gamma", gamma, "finite and > 0");
}

double exponential_decay::operator()(std::size_t step) const { return lr0_ * std::pow(gamma_, double(step)); }

}  // namespace seqgrad::optim
