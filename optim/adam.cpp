#include "adam.hpp"

namespace seqgrad::optim {

namespace {
const adam_options& checked(const adam_options& o) {
    detail::optim_require(o.beta1 >= 0 && o.beta1 < 1, "adam", "beta1", o.beta1, "in [0, 1)");
    detail::optim_require(o.beta2 >= 0 && o.beta2 < 1, "adam", "beta2", o.beta2, "in [0, 1)");
    detail::optim_require_positive("adam", "eps", o.eps);
    detail::optim_require_nonneg("adam", "weight_decay", o.weight_decay);
    return o;
}

template <class T>
void adam_kernel(T* w, T* g, T* m, T* v, std::size_t n, const adam_options& o, double lr, std::size_t t, bool zero) {
    const double c1 = 1 - std::pow(o.beta1, double(t)), c2 = 1 - std::pow(o.beta2, double(t));
    const T step = T(lr / c1), c2_sqrt = T(std::sqrt(c2)), eps = T(o.eps), wd = T(o.weight_decay);
    const T b1 = T(o.beta1), b2 = T(o.beta2), k1 = T(1 - o.beta1), k2 = T(1 - o.beta2);
    const bool decay = o.weight_decay != 0;
    for (std::size_t i = 0; i < n; ++i) {
        T d = g[i];
        if (zero) g[i] = T(0);
        if (decay) d += wd * w[i];
        m[i] = b1 * m[i] + k1 * d;
        v[i] = b2 * v[i] + k2 * d * d;
        w[i] -= step * m[i] / (std::sqrt(v[i]) / c2_sqrt + eps);
    }
}
}  // namespace

adam::adam(parameter_store& ps, const adam_options& options)
    : optimizer(ps, "adam", checked(options).lr, 2, 0b10), opt_(options) {}

void adam::run(const parameter& p, detail::optim_state& s, bool zero_grad) {
    detail::optim_visit(p.scalar_type(), [&](auto zero) {
        using T = decltype(zero);
        auto& w = p.value<T>();
        adam_kernel<T>(w.data(), p.grad<T>().data(), s.buffer<T>(0), s.buffer<T>(1), w.size(), opt_, learning_rate(),
                       s.steps, zero_grad);
    });
}

}  // namespace seqgrad::optim
