#pragma once
// Helpers shared by the op families' kernels (internal).
#include <cmath>
#include <string>

#include "../core/broadcast.hpp"
#include "../core/op.hpp"
#include "../core/tape.hpp"

namespace seqgrad::detail {

/// Register a built-in op (no duplicate-name race: families register under the registry's lock).
inline const op_def& builtin(op_builder& b) { return op_registry::instance().add(std::move(b).build()); }

void register_elementwise_ops();
void register_activation_ops();
void register_linalg_ops();
void register_reduce_ops();
void register_shape_ops();
void register_loss_ops();

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
        for_each_broadcast(y.shape, a.shape, b.shape, [&](std::size_t o, std::size_t ia, std::size_t ib) { y[o] = f(a[ia], b[ib]); });
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
    const bool acc = c.accumulate(j);
    for_each_broadcast(os, a.shape, b.shape, [&](std::size_t o, std::size_t ia, std::size_t ib) {
        const auto v = g(o, ia, ib);
        t[o] = acc ? t[o] + v : v;
    });
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
