#pragma once
// Helpers shared by the op families' kernels (internal).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>

#include "../core/broadcast.hpp"
#include "../core/builtin_ops.hpp"
#include "../core/op.hpp"
#include "../core/tape.hpp"

namespace seqgrad::detail {

/// Register a built-in op (no duplicate-name race: families register under the registry's lock).
inline const op_def& builtin(op_builder& b) { return op_registry::instance().add(std::move(b).build()); }

// Fast activations for float kernels (double, for gradient checks, uses the C library).
// Double (gradient checks, the fused-vs-composed tests) uses the C library, as the activation ops
// do. Float uses a branch-free exp (Cephes range reduction and polynomial) that GCC vectorises:
// the C library's expf and tanhf are scalar calls and cost as much as the recurrent GEMV at
// H = 128. Relative errors against double over [-30, 30]: exp 0.9e-7, sigmoid 1.5e-7, tanh 3.2e-7
// (1 to 3 float ulps).

inline float vexp(float x) {
    x = std::min(std::max(x, -87.0f), 88.0f);
    constexpr float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    const float n = (x * 1.44269504f + magic) - magic;
    const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float y = p * r * r + r + 1.0f;
    const std::int32_t e = (static_cast<std::int32_t>(n) + 127) << 23;
    return y * std::bit_cast<float>(e);
}

inline double vexp(double x) { return std::exp(x); }
inline float vsigmoid(float x) { return 1.0f / (1.0f + vexp(-x)); }
inline double vsigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

inline float vtanh(float x) {
    // tanh|x| = (1 - e^-2|x|) / (1 + e^-2|x|), and its odd series near 0 where that cancels.
    const float a = std::abs(x), a2 = a * a;
    const float t = vexp(-2.0f * a);
    const float big = (1.0f - t) / (1.0f + t);
    const float small = a * (1.0f + a2 * (-0.333333333f + a2 * (0.133333333f + a2 * -0.0539682540f)));
    return std::copysign(a < 0.0625f ? small : big, x);
}
inline double vtanh(double x) { return std::tanh(x); }

/// y[i] = f(x[i]).
template <class C, class F>
void map_unary(const C& c, F&& f) {
    auto x = c.in(0);
    auto y = c.out();
    for (std::size_t i = 0, n = y.size(); i < n; ++i) y[i] = f(x[i]);
}

/// y[o] = f(a[ia], b[ib]) with broadcasting.
template <class C, class F>
void map_binary(const C& c, F&& f) {
    auto a = c.in(0), b = c.in(1);
    auto y = c.out();
    if (a.shape == y.shape && b.shape == y.shape)
        for (std::size_t i = 0, n = y.size(); i < n; ++i) y[i] = f(a[i], b[i]);
    else
        for_each_broadcast(y.shape, a.shape, b.shape,
                           [&](std::size_t o, std::size_t ia, std::size_t ib) { y[o] = f(a[ia], b[ib]); });
}

/// Emit the contribution to input j of a broadcasting binary op: g(o, ia, ib) at each output
/// entry o (targets of broadcasting ops are output-shaped).
template <class C, class G>
void emit_binary(const C& c, std::size_t j, G&& g) {
    if (!c.needs(j)) return;
    auto a = c.in(0), b = c.in(1);
    const auto& os = c.grad_out().shape;
    if (a.shape == os && b.shape == os) {
        c.emit(j, [&](std::size_t i) { return g(i, i, i); });
        return;
    }
    auto t = c.target(j);
    for_each_broadcast(os, a.shape, b.shape,
                       [&](std::size_t o, std::size_t ia, std::size_t ib) { t[o] = g(o, ia, ib); });
}

inline std::string axis_attr(const attrs& a) { return "axis=" + std::to_string(a.i[0]); }

/// Resolve a possibly negative axis against a rank, or fail naming the op.
inline std::size_t resolve_axis(const op_def& op, std::span<const shape> in, std::int64_t axis, std::size_t rank) {
    const std::int64_t r = static_cast<std::int64_t>(rank);
    if (axis < -r || axis >= r)
        fail_shape(op, in, "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
    return static_cast<std::size_t>(axis < 0 ? axis + r : axis);
}

/// Sizes before, along and after an axis: a row-major tensor viewed as [outer, n, inner].
struct axis_view {
    std::size_t outer = 1, n = 1, inner = 1;
};
inline axis_view view_along(const shape& s, std::size_t axis) {
    axis_view v;
    for (std::size_t k = 0; k < s.rank(); ++k) {
        if (k < axis) v.outer *= s[k];
        else if (k == axis) v.n = s[k];
        else v.inner *= s[k];
    }
    return v;
}

}  // namespace seqgrad::detail
