#include "rmsprop.hpp"

#include <algorithm>

namespace seqgrad::optim {

namespace {
const rmsprop_options& checked(const rmsprop_options& o) {
    detail::optim_require(o.alpha >= 0 && o.alpha <= 1, "rmsprop", "alpha", o.alpha, "in [0, 1]");
    detail::optim_require_positive("rmsprop", "eps", o.eps);
    detail::optim_require_nonneg("rmsprop", "weight_decay", o.weight_decay);
    detail::optim_require_nonneg("rmsprop", "momentum", o.momentum);
    return o;
}

// Buffers: 0 = v, then b if momentum > 0, then a if centered.
std::size_t buffers(const rmsprop_options& o) { return 1 + (o.momentum > 0) + o.centered; }

// The options as template parameters (detail::with_bool): with run-time tests in the loop GCC 12
// vectorised 2 of its 16 paths.
template <bool Zero, bool Decay, bool Centered, bool Momentum, class T>
void rmsprop_loop(T* __restrict w, T* __restrict g, T* __restrict v, T* __restrict b, T* __restrict a, std::size_t n,
                  T lr, T alpha, T k, T eps, T wd, T mu) {
    for (std::size_t i = 0; i < n; ++i) {
        T d = g[i];
        if constexpr (Zero) g[i] = T(0);
        if constexpr (Decay) d += wd * w[i];
        v[i] = alpha * v[i] + k * d * d;
        T den;
        if constexpr (Centered) {
            a[i] = alpha * a[i] + k * d;
            // v - a^2 is >= 0 in exact arithmetic but rounds below 0 under a constant gradient
            // (PyTorch 1.13's update went NaN there after 12-54 steps): held at 0.
            den = std::sqrt(std::max(v[i] - a[i] * a[i], T(0))) + eps;
        } else {
            den = std::sqrt(v[i]) + eps;
        }
        if constexpr (Momentum) {
            b[i] = mu * b[i] + d / den;
            w[i] -= lr * b[i];
        } else {
            w[i] -= lr * d / den;
        }
    }
}

template <class T>
void rmsprop_kernel(T* w, T* g, T* v, T* b, T* a, std::size_t n, const rmsprop_options& o, double lr_d, bool zero) {
    const T lr = T(lr_d), alpha = T(o.alpha), k = T(1 - o.alpha), eps = T(o.eps), wd = T(o.weight_decay),
            mu = T(o.momentum);
    using detail::with_bool;
    with_bool(zero, [&](auto z) {
        with_bool(o.weight_decay != 0, [&](auto dec) {
            with_bool(a != nullptr, [&](auto cen) {
                with_bool(b != nullptr, [&](auto mom) {
                    rmsprop_loop<z(), dec(), cen(), mom()>(w, g, v, b, a, n, lr, alpha, k, eps, wd, mu);
                });
            });
        });
    });
}
}  // namespace

rmsprop::rmsprop(parameter_store& ps, const rmsprop_options& options)
    : optimizer(ps, "rmsprop", checked(options).lr, buffers(options), 0b1), opt_(options) {}

void rmsprop::run(const parameter& p, detail::optim_state& s, bool zero_grad) {
    detail::optim_visit(p.scalar_type(), [&](auto zero) {
        using T = decltype(zero);
        auto& w = p.value<T>();
        T* b = opt_.momentum > 0 ? s.buffer<T>(1) : nullptr;
        T* a = opt_.centered ? s.buffer<T>(opt_.momentum > 0 ? 2 : 1) : nullptr;
        rmsprop_kernel<T>(w.data(), p.grad<T>().data(), s.buffer<T>(0), b, a, w.size(), opt_, learning_rate(),
                          zero_grad);
    });
}

}  // namespace seqgrad::optim
