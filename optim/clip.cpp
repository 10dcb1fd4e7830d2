#include "clip.hpp"

#include <cmath>

#include "optimizer.hpp"

namespace seqgrad::optim {

namespace {
template <class F>
void each_trainable_grad(parameter_store& ps, F&& f) {
    for (std::size_t i = 0; i < ps.size(); ++i) {
        auto& d = ps[i].data();
        if (!d.trainable) continue;
        if (d.dt == dtype::f32) f(d.gf.data(), d.gf.size());
        else f(d.gd.data(), d.gd.size());
    }
}
}  // namespace

double clip_global_norm(parameter_store& ps, double max_norm) {
    detail::optim_require(max_norm >= 0, "clip_global_norm", "max_norm", max_norm, ">= 0");
    const double norm = std::sqrt(ps.grad_squared_norm());
    if (!(norm > max_norm) || !std::isfinite(norm)) return norm;
    const double scale = max_norm / (norm + 1e-6);
    each_trainable_grad(ps, [scale](auto* g, std::size_t n) {
        using T = std::remove_pointer_t<decltype(g)>;
        const T s = T(scale);
        for (std::size_t i = 0; i < n; ++i) g[i] *= s;
    });
    return norm;
}

void clip_value(parameter_store& ps, double c) {
    detail::optim_require(c >= 0, "clip_value", "c", c, ">= 0");
    each_trainable_grad(ps, [c](auto* g, std::size_t n) {
        using T = std::remove_pointer_t<decltype(g)>;
        const T hi = T(c), lo = -hi;
        for (std::size_t i = 0; i < n; ++i) {
            if (g[i] > hi) g[i] = hi;
            else if (g[i] < lo) g[i] = lo;
        }
    });
}

}  // namespace seqgrad::optim
