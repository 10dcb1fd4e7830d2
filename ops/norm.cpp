#include "norm.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels.hpp"

namespace seqgrad {
namespace {
using namespace detail;
using std::size_t;

shape layer_norm_shape(const op_def& op, std::span<const shape> in, const attrs&) {
    if (in[0].rank() == 0 || in[0].back() == 0)
        fail_shape(op, in, "expected x of rank >= 1 with a non-empty last axis");
    const shape row{in[0].back()};
    if (in[1] != row || in[2] != row)
        fail_shape(op, in, "expected gamma and beta of shape " + row.str() + " (the last axis of x)");
    return in[0];
}

// Mean and 1 / sqrt(var + eps) of one row, accumulated in double and returned in the kernel's
// precision: float sums of a long row lose the statistics (N = 4096, mean 10, sd 1: y off by 8e-5
// where PyTorch's float layer_norm is within 4e-6). A double row whose spread or sum overflows
// (|x - mu| above 1.3e154: its square is inf, and y came out as beta), or a float row whose
// 1 / sqrt(var + eps) is below float's normal range (a spread above 8.5e37: flushed to 0, y was
// beta), is summed again over x / m, m = max |x|, which takes every term into [-1, 1]; the
// statistics are then those of x / m (scale m, else 1).
template <class T>
struct row_stats {
    T mu, rs;
    double scale = 1;
    T xh(T x) const { return scale == 1 ? (x - mu) * rs : (static_cast<T>(x / scale) - mu) * rs; }
};

template <class T>
row_stats<T> stats_of(const T* x, size_t n, double eps) {
    auto moments = [&](double m) {
        double mu = 0;
        for (size_t j = 0; j < n; ++j) mu += x[j] / m;
        mu /= static_cast<double>(n);
        double var = 0;
        for (size_t j = 0; j < n; ++j) var += (x[j] / m - mu) * (x[j] / m - mu);
        return std::pair{mu, var / static_cast<double>(n)};
    };
    const auto [mu, var] = moments(1);
    double m = 0;
    if (!std::isfinite(mu) || !std::isfinite(var) || 1 / std::sqrt(var + eps) < std::numeric_limits<T>::min())
        for (size_t j = 0; j < n; ++j) m = std::max(m, std::abs(double(x[j])));
    if (m == 0 || !std::isfinite(m))  // no overflow, or inf or NaN in x
        return {static_cast<T>(mu), static_cast<T>(1 / std::sqrt(var + eps))};
    const auto [ms, vs] = moments(m);
    // Equal values (their sum overflowed): x - mu is 0, and eps alone sets r.
    if (vs == 0) return {x[0], static_cast<T>(1 / std::sqrt(eps))};
    return {static_cast<T>(ms), static_cast<T>(1 / std::sqrt(vs + eps / m / m)), m};
}

struct norm_ops {
    // Inputs x, gamma, beta; f[0] = eps. With xh = (x - mu) * r and gh = gy * gamma, per row
    //   dx = r * (gh - mean(gh) - xh * mean(gh * xh)),  dgamma = sum_rows gy * xh,  dbeta = sum_rows gy.
    const op_def& layer_norm = builtin(op_builder("layer_norm")
                                           .arity(3)
                                           .shape(layer_norm_shape)
                                           .saves(saves::inputs)
                                           .print_attrs([](const attrs& a) { return "eps=" + number(a.f[0]); })
                                           .forward([](auto& c) {
                                               auto x = c.in(0), g = c.in(1), b = c.in(2);
                                               const auto& y = c.out();
                                               const size_t n = x.shape.back(), rows = x.size() / n;
                                               for (size_t r = 0; r < rows; ++r) {
                                                   const auto* xr = x.data + r * n;
                                                   auto* yr = y.data + r * n;
                                                   const auto st = stats_of(xr, n, c.at.f[0]);
                                                   for (size_t j = 0; j < n; ++j) yr[j] = g[j] * st.xh(xr[j]) + b[j];
                                               }
                                           })
                                           .backward([](auto& c) {
                                               using T = std::remove_cvref_t<decltype(c.out()[0])>;
                                               auto x = c.in(0), g = c.in(1);
                                               const auto& gy = c.grad_out();
                                               const size_t n = x.shape.back(), rows = x.size() / n;
                                               auto tx = c.target(0), tg = c.target(1), tb = c.target(2);
                                               if (tg.data) std::fill(tg.begin(), tg.end(), T(0));
                                               if (tb.data) std::fill(tb.begin(), tb.end(), T(0));
                                               for (size_t r = 0; r < rows; ++r) {
                                                   const T* xr = x.data + r * n;
                                                   const T* gr = gy.data + r * n;
                                                   const auto st = stats_of(xr, n, c.at.f[0]);
                                                   double s1 = 0, s2 = 0;  // in double, as stats_of
                                                   for (size_t j = 0; j < n; ++j) {
                                                       const T gh = gr[j] * g[j], xh = st.xh(xr[j]);
                                                       s1 += gh;
                                                       s2 += gh * xh;
                                                       if (tg.data) tg[j] += gr[j] * xh;
                                                       if (tb.data) tb[j] += gr[j];
                                                   }
                                                   const T m1 = static_cast<T>(s1 / static_cast<double>(n));
                                                   const T m2 = static_cast<T>(s2 / static_cast<double>(n));
                                                   if (!tx.data) continue;
                                                   T* out = tx.data + r * n;
                                                   for (size_t j = 0; j < n; ++j) {
                                                       // d/dx of x / scale: 1 / scale.
                                                       const T v = st.rs * (gr[j] * g[j] - m1 - st.xh(xr[j]) * m2);
                                                       out[j] = st.scale == 1 ? v : static_cast<T>(v / st.scale);
                                                   }
                                               }
                                           })
                                           .sample({{3, 5}, {5}, {5}}, attrs{.f = {1e-5, 0}})
                                           .sample({{2, 2, 4}, {4}, {4}}, attrs{.f = {1e-3, 0}}));
};

const norm_ops& ops() {
    static const norm_ops o;
    return o;
}
}  // namespace

void detail::register_norm_ops() { ops(); }

expr layer_norm(const expr& x, const expr& gamma, const expr& beta, double eps) {
    if (!(eps > 0)) throw value_error("layer_norm: expected eps > 0, got " + detail::number(eps));
    return apply(ops().layer_norm, {x, gamma, beta}, attrs{.f = {eps, 0}});
}

}  // namespace seqgrad
