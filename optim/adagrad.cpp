#include "adagrad.hpp"

namespace seqgrad::optim {

namespace {
const adagrad_options& checked(const adagrad_options& o) {
    detail::optim_require_nonneg("adagrad", "lr_decay", o.lr_decay);
    detail::optim_require_nonneg("adagrad", "weight_decay", o.weight_decay);
    detail::optim_require_nonneg("adagrad", "initial_accumulator_value", o.initial_accumulator_value);
    detail::optim_require_positive("adagrad", "eps", o.eps);
    return o;
}

template <class T>
void adagrad_kernel(T* w, T* g, T* sum, std::size_t n, const adagrad_options& o, double lr, std::size_t t, bool zero) {
    const T clr = T(lr / (1 + double(t - 1) * o.lr_decay)), eps = T(o.eps), wd = T(o.weight_decay);
    const bool decay = o.weight_decay != 0;
    for (std::size_t i = 0; i < n; ++i) {
        T d = g[i];
        if (zero) g[i] = T(0);
        if (decay) d += wd * w[i];
        sum[i] += d * d;
        w[i] -= clr * d / (std::sqrt(sum[i]) + eps);
    }
}
}  // namespace

adagrad::adagrad(parameter_store& ps, const adagrad_options& options)
    : optimizer(ps, "adagrad", checked(options).lr, 1, 0b1), opt_(options) {}

void adagrad::init_state(detail::optim_state& s) {
    if (s.dt == dtype::f32) std::fill(s.f.begin(), s.f.end(), float(opt_.initial_accumulator_value));
    else std::fill(s.d.begin(), s.d.end(), opt_.initial_accumulator_value);
}

void adagrad::run(const parameter& p, detail::optim_state& s, bool zero_grad) {
    detail::optim_visit(p.scalar_type(), [&](auto zero) {
        using T = decltype(zero);
        auto& w = p.value<T>();
        adagrad_kernel<T>(w.data(), p.grad<T>().data(), s.buffer<T>(0), w.size(), opt_, learning_rate(), s.steps,
                          zero_grad);
    });
}

}  // namespace seqgrad::optim
