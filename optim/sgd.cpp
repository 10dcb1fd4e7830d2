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

template <class T>
void sgd_kernel(T* w, T* g, T* b, std::size_t n, const sgd_options& o, double lr_d, bool first, bool zero) {
    const T lr = T(lr_d), wd = T(o.weight_decay), mu = T(o.momentum), keep = T(1 - o.dampening);
    const bool decay = o.weight_decay != 0;
    for (std::size_t i = 0; i < n; ++i) {
        T d = g[i];
        if (zero) g[i] = T(0);
        if (decay) d += wd * w[i];
        if (b) {
            b[i] = first ? d : mu * b[i] + keep * d;
            d = o.nesterov ? d + mu * b[i] : b[i];
        }
        w[i] -= lr * d;
    }
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
