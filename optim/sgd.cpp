#include "sgd.hpp"

namespace seqgrad::optim {

namespace {
const sgd_options& checked(const sgd_options& o) {
    detail::optim_require_nonneg("sgd", "momentum", o.momentum);
    detail::optim_require(o.dampening >= 0 && o.dampening <= 1, "sgd", "dampening", o.dampening, "in [0, 1]");
    detail::optim_require_nonneg("sgd", "weight_decay", o.weight_decay);
    detail::optim_require(!o.nesterov || o.momentum > 0, "sgd", "momentum with nesterov", o.momentum, "> 0");
    detail::optim_require(!o.nesterov || o.dampening == 0, "sgd", "dampening with nesterov", o.dampening, "0");
    return o;
}

// The options as template parameters (Mom: 0 none, 1 heavy ball, 2 Nesterov): as run-time tests
// inside the loop, GCC 12 left it scalar (a conditional load of the momentum buffer), and the update
// was 7% of bench/lstm_lm char_b1 on 2 threads.
template <bool Zero, bool Decay, bool First, int Mom, class T>
void sgd_loop(T* __restrict w, T* __restrict g, T* __restrict b, std::size_t n, T lr, T wd, T mu, T keep) {
    for (std::size_t i = 0; i < n; ++i) {
        T d = g[i];
        if constexpr (Zero) g[i] = T(0);
        if constexpr (Decay) d += wd * w[i];
        if constexpr (Mom != 0) {
            if constexpr (First) b[i] = d;
            else b[i] = mu * b[i] + keep * d;
            if constexpr (Mom == 2) d = d + mu * b[i];
            else d = b[i];
        }
        w[i] -= lr * d;
    }
}

template <class T>
void sgd_kernel(T* w, T* g, T* b, std::size_t n, const sgd_options& o, double lr_d, bool first, bool zero) {
    const T lr = T(lr_d), wd = T(o.weight_decay), mu = T(o.momentum), keep = T(1 - o.dampening);
    using detail::with_bool;
    with_bool(zero, [&](auto z) {
        with_bool(o.weight_decay != 0, [&](auto dec) {
            with_bool(first, [&](auto fst) {
                if (!b) sgd_loop<z(), dec(), fst(), 0>(w, g, b, n, lr, wd, mu, keep);
                else if (o.nesterov) sgd_loop<z(), dec(), fst(), 2>(w, g, b, n, lr, wd, mu, keep);
                else sgd_loop<z(), dec(), fst(), 1>(w, g, b, n, lr, wd, mu, keep);
            });
        });
    });
}
}  // namespace

sgd::sgd(parameter_store& ps, const sgd_options& options)
    : optimizer(ps, "sgd", options.lr, checked(options).momentum != 0 ? 1 : 0), opt_(options) {}

void sgd::run(const parameter& p, detail::optim_state& s, bool zero_grad) {
    detail::optim_visit(p.scalar_type(), [&](auto zero) {
        using T = decltype(zero);
        auto& w = p.value<T>();
        sgd_kernel<T>(w.data(), p.grad<T>().data(), opt_.momentum != 0 ? s.buffer<T>(0) : nullptr, w.size(), opt_,
                      learning_rate(), s.steps == 1, zero_grad);
    });
}

}  // namespace seqgrad::optim
