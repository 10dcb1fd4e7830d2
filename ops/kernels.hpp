#pragma once
// Helpers shared by the op families' kernels (internal).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "../core/blas.hpp"
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
    // Below ln(FLT_MIN) e^x is subnormal, which the 2^n made from exponent bits below cannot be:
    // 0, as flushed (the clamp's e^-87 gave a -inf logit a gradient of 1.6e-38 in cross_entropy).
    const bool under = x < -87.336544f;
    x = std::min(std::max(x, -87.336544f), 88.0f);
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
    return under ? 0.0f : y * std::bit_cast<float>(e);
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
    const auto& y = c.out();
    for (std::size_t i = 0, n = y.size(); i < n; ++i) y[i] = f(x[i]);
}

/// y[o] = f(a[ia], b[ib]) with broadcasting.
template <class C, class F>
void map_binary(const C& c, F&& f) {
    auto a = c.in(0), b = c.in(1);
    const auto& y = c.out();
    if (a.shape == y.shape && b.shape == y.shape)
        for (std::size_t i = 0, n = y.size(); i < n; ++i) y[i] = f(a[i], b[i]);
    else
        for_each_broadcast(y.shape, a.shape, b.shape,
                           [&](std::size_t o, std::size_t ia, std::size_t ib) { y[o] = f(a[ia], b[ib]); });
}

/// t (input j's shape, n entries) = g(o, ia, ib) summed over the output entries o that read entry
/// ia (j = 0) or ib (j = 1): a broadcast input's gradient in the pass that computes it. The inner
/// loop is specialised on the inputs' inner strides (0 or 1) so that it vectorises; a dimension j
/// broadcasts along the innermost axis is summed by lane_sum.
template <class T, class G>
void reduce_binary(const shape& os, const shape& as, const shape& bs, std::size_t j, T* t, std::size_t n, G& g) {
    accumulate(t, n, n ? os.size() / n : 0, [&](auto* acc) {  // in double for long float sums
        using A = std::remove_pointer_t<decltype(acc)>;
        const bcast_plan pa = plan_broadcast(as, os), pb = plan_broadcast(bs, os);
        const auto& d = pa.dims;
        const std::size_t len = d[3];
        auto run = [&](auto SA, auto SB) {
            constexpr std::size_t sa = decltype(SA)::value, sb = decltype(SB)::value;
            std::size_t o = 0;
            for (std::size_t i0 = 0; i0 < d[0]; ++i0)
                for (std::size_t i1 = 0; i1 < d[1]; ++i1)
                    for (std::size_t i2 = 0; i2 < d[2]; ++i2, o += len) {
                        const std::size_t ia = i0 * pa.stride[0] + i1 * pa.stride[1] + i2 * pa.stride[2];
                        const std::size_t ib = i0 * pb.stride[0] + i1 * pb.stride[1] + i2 * pb.stride[2];
                        A* q = acc + (j == 0 ? ia : ib);
                        if ((j == 0 ? sa : sb) == 0) {
                            *q += lane_sum<A>(len,
                                              [&](std::size_t i3) { return A(g(o + i3, ia + i3 * sa, ib + i3 * sb)); });
                        } else {
                            for (std::size_t i3 = 0; i3 < len; ++i3) q[i3] += g(o + i3, ia + i3 * sa, ib + i3 * sb);
                        }
                    }
        };
        using zero = std::integral_constant<std::size_t, 0>;
        using one = std::integral_constant<std::size_t, 1>;
        const std::size_t sa = pa.stride[3], sb = pb.stride[3];
        if (sa && sb) run(one{}, one{});
        else if (sa) run(one{}, zero{});
        else if (sb) run(zero{}, one{});
        else run(zero{}, zero{});
    });
}

/// Emit the contribution to input j of a broadcasting binary op: g(o, ia, ib) at each output
/// entry o. Ops that declared .reduces_broadcast() get input-shaped targets, and a broadcast
/// input's contribution is summed here; other ops' targets are output-shaped (the engine sums).
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
    if (c.op.reduces_broadcast && !((j == 0 ? a.shape : b.shape) == os)) {
        reduce_binary(os, a.shape, b.shape, j, t.data, t.size(), g);
        return;
    }
    for_each_broadcast(os, a.shape, b.shape,
                       [&](std::size_t o, std::size_t ia, std::size_t ib) { t[o] = g(o, ia, ib); });
}

// Logical sizes of a product's op(a) [m, k] and op(b) [k, n] (attrs i[0], i[1]: the transposes).
struct mnk {
    std::size_t m, n, k;
};
inline mnk sizes(const shape& a, const shape& b, const attrs& at) {
    const bool ta = at.i[0] != 0, tb = at.i[1] != 0;
    return {ta ? a[1] : a[0], tb ? b[0] : b[1], ta ? a[0] : a[1]};
}

/// A product's gradients in the stored layouts of its inputs a (input ia) and b (input ib), beta 1
/// when accumulating: dop(a) = G op(b)^T, dop(b) = op(a)^T G. G b^T with b stored [k, n] reads the
/// engine's packed transposed copy of b when it offers one (backward_ctx::b_packed: x W at a
/// step's few rows, on the own small-product kernel).
template <class C, class T>
void product_gradients(const C& c, std::size_t ia, std::size_t ib, const T* a, const T* b, const T* g, mnk s) {
    const bool ta = c.at.i[0] != 0, tb = c.at.i[1] != 0;
    if (c.needs(ia)) {
        const T beta = c.accumulate(ia) ? 1 : 0;
        T* t = c.target(ia).data;
        if (ta) gemm(tb, true, s.k, s.m, s.n, T(1), b, g, beta, t);
        else if (!tb && c.b_packed) gemm_packed(s.m, s.k, s.n, g, c.b_packed, beta, t);
        else gemm(false, !tb, s.m, s.k, s.n, T(1), g, b, beta, t);
    }
    if (c.needs(ib)) {
        const T beta = c.accumulate(ib) ? 1 : 0;
        T* t = c.target(ib).data;
        if (!tb) gemm(!ta, false, s.k, s.n, s.m, T(1), a, g, beta, t);
        else gemm(true, ta, s.n, s.k, s.m, T(1), g, a, beta, t);
    }
}

inline std::string axis_attr(const attrs& a) { return "axis=" + std::to_string(a.i[0]); }

/// Resolve a possibly negative axis against a rank, or fail naming the op.
inline std::size_t resolve_axis(const op_def& op, std::span<const shape> in, std::int64_t axis, std::size_t rank) {
    const std::int64_t r = static_cast<std::int64_t>(rank);
    if (axis < -r || axis >= r)
        fail_shape(op, in, "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
    return static_cast<std::size_t>(axis < 0 ? axis + r : axis);
}

/// The axis of a reduction (sum, mean, max, min, argmax, argmin, logsumexp, cumsum): as
/// resolve_axis, except that a rank-0 input takes axis 0 or -1 (and resolves to 0), as PyTorch's
/// reductions do: a scalar is reduced along one implicit axis of length 1, giving itself.
inline std::size_t resolve_reduce_axis(const op_def& op, std::span<const shape> in, std::int64_t axis) {
    return resolve_axis(op, in, axis, in[0].rank() == 0 ? 1 : in[0].rank());
}

/// A reduction's output shape: x's without the axis, or with it as 1 when keepdims (a rank-0 x
/// stays rank 0).
inline shape keep_or_drop(const shape& x, std::size_t axis, bool keepdims) {
    shape out;
    for (std::size_t k = 0; k < x.rank(); ++k) {
        if (k != axis) out.push_back(x[k]);
        else if (keepdims) out.push_back(1);
    }
    return out;
}

/// Sizes before, along and after an axis: a row-major tensor viewed as [outer, n, inner].
struct axis_view {
    std::size_t outer = 1, n = 1, inner = 1;
};
/// A rank-0 shape is one entry along the (implicit) axis: {1, 1, 1}.
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
