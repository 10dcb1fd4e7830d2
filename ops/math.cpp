#include "math.hpp"

#include "kernels.hpp"

namespace seqgrad {
namespace {
using namespace detail;
using std::size_t;

template <class C>
using scalar_of = std::remove_cvref_t<decltype(std::declval<C>().out()[0])>;

// ---- along an axis: i[0] = axis, i[1] = keepdims; x viewed as [outer, n, inner] ---------------

// The shape of a reduction that has no value over an empty axis (max, min, argmax, argmin); a
// rank-0 input is its own reduction (resolve_reduce_axis).
shape reduce_axis_shape(const op_def& op, std::span<const shape> in, const attrs& at) {
    const size_t axis = resolve_reduce_axis(op, in, at.i[0]);
    if (in[0].rank() != 0 && in[0][axis] == 0)
        fail_shape(op, in, "expected a non-empty axis " + std::to_string(at.i[0]));
    return keep_or_drop(in[0], axis, at.i[1] != 0);
}

// logsumexp over an empty axis is log(0) = -inf, as in PyTorch (the gradient, of shape x, is empty).
shape logsumexp_shape(const op_def& op, std::span<const shape> in, const attrs& at) {
    return keep_or_drop(in[0], resolve_reduce_axis(op, in, at.i[0]), at.i[1] != 0);
}

shape cumsum_shape(const op_def& op, std::span<const shape> in, const attrs& at) {
    resolve_reduce_axis(op, in, at.i[0]);
    return in[0];
}

axis_view view_of(const shape& s, std::int64_t axis) {
    return view_along(s, static_cast<size_t>(axis < 0 ? axis + static_cast<std::int64_t>(s.rank()) : axis));
}

// Index along the axis of the first extreme entry of row (o, i): the largest when Max, else the
// smallest. Ties go to the first, as PyTorch's max(dim) backward does; a NaN is the extreme (the
// first one), as in PyTorch, so the answer does not depend on where in the row it sits.
template <bool Max, class T>
size_t extreme_at(const T* x, const axis_view& v, size_t o, size_t i) {
    const T* p = x + o * v.n * v.inner + i;
    size_t best = 0;
    for (size_t j = 1; j < v.n; ++j) {
        const T a = p[j * v.inner], b = p[best * v.inner];
        if (b != b) break;
        if (a != a || (Max ? a > b : a < b)) best = j;
    }
    return best;
}

template <bool Max>
struct extreme_forward {
    template <class C>
    void operator()(const C& c) const {
        auto x = c.in(0);
        const auto& y = c.out();
        const auto v = view_of(x.shape, c.at.i[0]);
        for (size_t o = 0; o < v.outer; ++o)
            for (size_t i = 0; i < v.inner; ++i)
                y[o * v.inner + i] = x[(o * v.n + extreme_at<Max>(x.data, v, o, i)) * v.inner + i];
    }
};

template <bool Max>
struct extreme_backward {
    template <class C>
    void operator()(const C& c) const {
        auto t = c.target(0);
        if (!t.data) return;
        auto x = c.in(0);
        auto g = c.grad_out();
        const auto v = view_of(x.shape, c.at.i[0]);
        std::fill(t.begin(), t.end(), 0);
        for (size_t o = 0; o < v.outer; ++o)
            for (size_t i = 0; i < v.inner; ++i)
                t[(o * v.n + extreme_at<Max>(x.data, v, o, i)) * v.inner + i] += g[o * v.inner + i];
    }
};

template <bool Max>
struct arg_forward {
    template <class C>
    void operator()(const C& c) const {
        auto x = c.in(0);
        const auto& y = c.out();
        const auto v = view_of(x.shape, c.at.i[0]);
        for (size_t o = 0; o < v.outer; ++o)
            for (size_t i = 0; i < v.inner; ++i)
                y[o * v.inner + i] = static_cast<scalar_of<C>>(extreme_at<Max>(x.data, v, o, i));
    }
};

// ---- where: three inputs broadcast to the output -----------------------------------------------

shape where_shape(const op_def& op, std::span<const shape> in, const attrs& at) { return broadcast_shape(op, in, at); }

template <class F>
void for_each_broadcast3(const shape& out, const shape& a, const shape& b, const shape& c, F&& f) {
    const bcast_plan pc = plan_broadcast(c, out);
    const auto& d = pc.dims;
    // The first two through the two-input walk, the third by its own strides over the same order.
    for_each_broadcast(out, a, b, [&](size_t oo, size_t ia, size_t ib) {
        size_t r = oo, ic = 0;
        for (int k = 3; k >= 0; --k) {
            ic += (r % d[k]) * pc.stride[k];
            r /= d[k];
        }
        f(oo, ia, ib, ic);
    });
}

std::string clamp_attrs(const attrs& a) { return "lo=" + number(a.f[0]) + ", hi=" + number(a.f[1]); }
std::string keep_attrs(const attrs& a) { return "axis=" + std::to_string(a.i[0]) + (a.i[1] ? ", keepdims" : ""); }

constexpr double inv_sqrt2 = 0.70710678118654752440;
constexpr double inv_sqrt2pi = 0.39894228040143267794;

struct math_ops {
    // maximum/minimum: the gradient goes to the larger (smaller) input, half to each on a tie. A NaN
    // in either input gives NaN and the gradient goes to both (PyTorch's torch.maximum).
    const op_def& maximum = builtin(
        op_builder("maximum")
            .arity(2)
            .shape(broadcast_shape)
            .broadcasting()
            .reduces_broadcast()
            .saves(saves::inputs)
            .forward([](auto& c) { map_binary(c, [](auto a, auto b) { return a > b || a != a ? a : b; }); })
            .backward([](auto& c) {
                const auto& gy = c.grad_out();
                auto a = c.in(0), b = c.in(1);
                using T = scalar_of<decltype(c)>;
                const auto share = [](T x, T y) { return x < y ? T(0) : x == y ? T(0.5) : T(1); };
                emit_binary(c, 0, [&](size_t o, size_t ia, size_t ib) { return gy[o] * share(a[ia], b[ib]); });
                emit_binary(c, 1, [&](size_t o, size_t ia, size_t ib) { return gy[o] * share(b[ib], a[ia]); });
            })
            .sample({{2, 3}, {2, 3}})
            .sample({{4, 3}, {3}}));

    const op_def& minimum = builtin(
        op_builder("minimum")
            .arity(2)
            .shape(broadcast_shape)
            .broadcasting()
            .reduces_broadcast()
            .saves(saves::inputs)
            .forward([](auto& c) { map_binary(c, [](auto a, auto b) { return a < b || a != a ? a : b; }); })
            .backward([](auto& c) {
                const auto& gy = c.grad_out();
                auto a = c.in(0), b = c.in(1);
                using T = scalar_of<decltype(c)>;
                const auto share = [](T x, T y) { return x > y ? T(0) : x == y ? T(0.5) : T(1); };
                emit_binary(c, 0, [&](size_t o, size_t ia, size_t ib) { return gy[o] * share(a[ia], b[ib]); });
                emit_binary(c, 1, [&](size_t o, size_t ia, size_t ib) { return gy[o] * share(b[ib], a[ia]); });
            })
            .sample({{2, 3}, {2, 3}})
            .sample({{1, 3}, {4, 3}}));

    const op_def& max_axis = builtin(op_builder("max_axis")
                                         .shape(reduce_axis_shape)
                                         .saves(saves::inputs)
                                         .print_attrs(keep_attrs)
                                         .forward(extreme_forward<true>{})
                                         .backward(extreme_backward<true>{})
                                         .sample({{3, 4}}, attrs{.i = {1, 0, 0, 0}})
                                         .sample({{2, 3, 4}}, attrs{.i = {-2, 1, 0, 0}})
                                         .sample(std::vector<shape>{shape{}}, attrs{.i = {-1, 0, 0, 0}}));

    const op_def& min_axis = builtin(op_builder("min_axis")
                                         .shape(reduce_axis_shape)
                                         .saves(saves::inputs)
                                         .print_attrs(keep_attrs)
                                         .forward(extreme_forward<false>{})
                                         .backward(extreme_backward<false>{})
                                         .sample({{3, 4}}, attrs{.i = {0, 0, 0, 0}})
                                         .sample({{2, 3, 4}}, attrs{.i = {2, 1, 0, 0}}));

    const op_def& argmax = builtin(op_builder("argmax")
                                       .shape(reduce_axis_shape)
                                       .constant_output()
                                       .no_gradient()
                                       .saves(saves::nothing)
                                       .print_attrs(keep_attrs)
                                       .forward(arg_forward<true>{})
                                       .sample({{3, 4}}, attrs{.i = {1, 0, 0, 0}}));

    const op_def& argmin = builtin(op_builder("argmin")
                                       .shape(reduce_axis_shape)
                                       .constant_output()
                                       .no_gradient()
                                       .saves(saves::nothing)
                                       .print_attrs(keep_attrs)
                                       .forward(arg_forward<false>{})
                                       .sample({{3, 4}}, attrs{.i = {0, 1, 0, 0}}));

    // sign(x) * gy, with sign(0) = 0.
    const op_def& abs = builtin(
        op_builder("abs")
            .shape(same_shape)
            .saves(saves::inputs)
            .forward([](auto& c) { map_unary(c, [](auto x) { return std::abs(x); }); })
            .backward([](auto& c) {
                auto x = c.in(0);
                const auto& gy = c.grad_out();
                c.emit(0, [&](size_t i) { return x[i] > 0 ? gy[i] : x[i] < 0 ? -gy[i] : 0 * gy[i]; });
            })
            .sample({{3, 4}}, {}, {}, {domain::away_from_zero}));

    // f[0] = lo, f[1] = hi. Samples in [-1, 1] with bounds at +-0.5 exercise both sides.
    const op_def& clamp = builtin(op_builder("clamp")
                                      .shape(same_shape)
                                      .saves(saves::inputs)
                                      .print_attrs(clamp_attrs)
                                      .forward([](auto& c) {
                                          using T = scalar_of<decltype(c)>;
                                          const T lo = static_cast<T>(c.at.f[0]), hi = static_cast<T>(c.at.f[1]);
                                          map_unary(c, [=](T x) { return x < lo ? lo : x > hi ? hi : x; });
                                      })
                                      .backward([](auto& c) {
                                          using T = scalar_of<decltype(c)>;
                                          const T lo = static_cast<T>(c.at.f[0]), hi = static_cast<T>(c.at.f[1]);
                                          auto x = c.in(0);
                                          const auto& gy = c.grad_out();
                                          c.emit(0, [&](size_t i) { return x[i] >= lo && x[i] <= hi ? gy[i] : T(0); });
                                      })
                                      .sample({{4, 5}}, attrs{.f = {-0.5, 0.5}}));

    // Inputs cond, a, b. Away-from-zero samples give cond both signs and keep it off the switch.
    const op_def& where = builtin(
        op_builder("where")
            .arity(3)
            .shape(where_shape)
            .broadcasting()
            .saves(saves::inputs)
            .forward([](auto& c) {
                auto m = c.in(0), a = c.in(1), b = c.in(2);
                const auto& y = c.out();
                for_each_broadcast3(y.shape, a.shape, b.shape, m.shape, [&](size_t o, size_t ia, size_t ib, size_t im) {
                    y[o] = m[im] > 0 ? a[ia] : b[ib];
                });
            })
            .backward([](auto& c) {
                using T = scalar_of<decltype(c)>;
                auto m = c.in(0), a = c.in(1), b = c.in(2);
                const auto& gy = c.grad_out();
                c.emit(0, [](size_t) { return T(0); });
                for (size_t j = 1; j <= 2; ++j) {
                    auto t = c.target(j);
                    if (!t.data) continue;
                    for_each_broadcast3(gy.shape, a.shape, b.shape, m.shape, [&](size_t o, size_t, size_t, size_t im) {
                        t[o] = (m[im] > 0) == (j == 1) ? gy[o] : T(0);
                    });
                }
            })
            .sample({{2, 3}, {2, 3}, {2, 3}}, {}, {}, {domain::away_from_zero})
            .sample({{4, 1}, {4, 3}, {3}}, {}, {}, {domain::away_from_zero}));

    // y = m + log(sum exp(x - m)); dx = gy * exp(x - y).
    const op_def& logsumexp = builtin(op_builder("logsumexp")
                                          .shape(logsumexp_shape)
                                          .saves(saves::both)
                                          .print_attrs(keep_attrs)
                                          .forward([](auto& c) {
                                              auto x = c.in(0);
                                              const auto& y = c.out();
                                              const auto v = view_of(x.shape, c.at.i[0]);
                                              for (size_t o = 0; o < v.outer; ++o)
                                                  for (size_t i = 0; i < v.inner; ++i) {
                                                      const auto* p = x.data + o * v.n * v.inner + i;
                                                      using T = std::remove_cvref_t<decltype(p[0])>;
                                                      if (v.n == 0) {  // log of an empty sum, log(0)
                                                          y[o * v.inner + i] = -std::numeric_limits<T>::infinity();
                                                          continue;
                                                      }
                                                      auto m = p[0];
                                                      for (size_t j = 1; j < v.n; ++j) m = std::max(m, p[j * v.inner]);
                                                      decltype(m) s = 0;
                                                      for (size_t j = 0; j < v.n; ++j)
                                                          s += std::exp(p[j * v.inner] - m);
                                                      y[o * v.inner + i] = std::isinf(m) ? m : m + std::log(s);
                                                  }
                                          })
                                          .backward([](auto& c) {
                                              auto x = c.in(0);
                                              const auto& y = c.out();
                                              auto g = c.grad_out();
                                              const auto v = view_of(x.shape, c.at.i[0]);
                                              c.emit(0, [&](size_t idx) {
                                                  const size_t r = (idx / (v.n * v.inner)) * v.inner + idx % v.inner;
                                                  return g[r] * std::exp(x[idx] - y[r]);
                                              });
                                          })
                                          .sample({{3, 4}}, attrs{.i = {1, 0, 0, 0}})
                                          .sample({{2, 3, 4}}, attrs{.i = {0, 1, 0, 0}})
                                          .sample(std::vector<shape>{shape{}}, attrs{.i = {0, 0, 0, 0}}));

    // dx[k] = gy[k] + gy[k + 1] + ... along the axis.
    const op_def& cumsum = builtin(op_builder("cumsum")
                                       .shape(cumsum_shape)
                                       .saves(saves::nothing)
                                       .print_attrs(axis_attr)
                                       .forward([](auto& c) {
                                           auto x = c.in(0);
                                           const auto& y = c.out();
                                           const auto v = view_of(x.shape, c.at.i[0]);
                                           for (size_t o = 0; o < v.outer; ++o)
                                               for (size_t i = 0; i < v.inner; ++i) {
                                                   const size_t base = o * v.n * v.inner + i;
                                                   double s = 0;  // float sums drift in float
                                                   for (size_t j = 0; j < v.n; ++j)
                                                       y[base + j * v.inner] = static_cast<scalar_of<decltype(c)>>(
                                                           s += x[base + j * v.inner]);
                                               }
                                       })
                                       .backward([](auto& c) {
                                           auto t = c.target(0);
                                           if (!t.data) return;
                                           auto g = c.grad_out();
                                           const auto v = view_of(g.shape, c.at.i[0]);
                                           for (size_t o = 0; o < v.outer; ++o)
                                               for (size_t i = 0; i < v.inner; ++i) {
                                                   const size_t base = o * v.n * v.inner + i;
                                                   double s = 0;
                                                   for (size_t j = v.n; j-- > 0;) {
                                                       s += g[base + j * v.inner];
                                                       t[base + j * v.inner] = static_cast<scalar_of<decltype(c)>>(s);
                                                   }
                                               }
                                       })
                                       .sample({{3, 4}}, attrs{.i = {1, 0, 0, 0}})
                                       .sample({{3, 2, 2}}, attrs{.i = {0, 0, 0, 0}}));

    // max(x, 0) + log1p(exp(-|x|)): exp never overflows. d/dx = sigmoid(x).
    const op_def& softplus = builtin(
        op_builder("softplus")
            .shape(same_shape)
            .saves(saves::inputs)
            .forward([](auto& c) {
                map_unary(c, [](auto x) { return std::max(x, decltype(x)(0)) + std::log1p(std::exp(-std::abs(x))); });
            })
            .backward([](auto& c) {
                auto x = c.in(0);
                const auto& gy = c.grad_out();
                c.emit(0, [&](size_t i) {
                    const auto e = std::exp(-std::abs(x[i]));  // sigmoid(x) without overflow
                    return gy[i] * (x[i] >= 0 ? 1 / (1 + e) : e / (1 + e));
                });
            })
            .sample({{3, 4}}));

    // f[0] = alpha. d/dx = 1 for x > 0, alpha e^x otherwise (PyTorch: x <= 0 takes the second).
    const op_def& elu = builtin(
        op_builder("elu")
            .shape(same_shape)
            .saves(saves::inputs)
            .print_attrs([](const attrs& a) { return "alpha=" + number(a.f[0]); })
            .forward([](auto& c) {
                using T = scalar_of<decltype(c)>;
                const T alpha = static_cast<T>(c.at.f[0]);
                map_unary(c, [=](T x) { return x > 0 ? x : alpha * std::expm1(x); });
            })
            .backward([](auto& c) {
                using T = scalar_of<decltype(c)>;
                const T alpha = static_cast<T>(c.at.f[0]);
                auto x = c.in(0);
                const auto& gy = c.grad_out();
                // alpha e^x, not y + alpha: that cancels to 0 where e^x is below y's rounding (x < -17 in float).
                c.emit(0, [&](size_t i) { return x[i] > 0 ? gy[i] : gy[i] * alpha * std::exp(x[i]); });
            })
            .sample({{3, 4}}, attrs{.f = {1.0, 0}}, {}, {domain::away_from_zero})
            .sample({{5}}, attrs{.f = {0.5, 0}}, {}, {domain::away_from_zero}));

    // d/dx x Phi(x) = Phi(x) + x phi(x).
    const op_def& gelu = builtin(
        op_builder("gelu")
            .shape(same_shape)
            .saves(saves::inputs)
            .forward([](auto& c) {
                // x / 2 first: 2 x overflows for x above half the largest finite value.
                map_unary(c, [](auto x) { return x / 2 * (1 + std::erf(x * decltype(x)(inv_sqrt2))); });
            })
            .backward([](auto& c) {
                using T = scalar_of<decltype(c)>;
                auto x = c.in(0);
                const auto& gy = c.grad_out();
                c.emit(0, [&](size_t i) {
                    const T v = x[i];
                    const T cdf = (1 + std::erf(v * T(inv_sqrt2))) / 2;
                    return gy[i] * (cdf + v * T(inv_sqrt2pi) * std::exp(-v * v / 2));
                });
            })
            .sample({{3, 4}}));

    const op_def& erf = builtin(op_builder("erf")
                                    .shape(same_shape)
                                    .saves(saves::inputs)
                                    .forward([](auto& c) { map_unary(c, [](auto x) { return std::erf(x); }); })
                                    .backward([](auto& c) {
                                        using T = scalar_of<decltype(c)>;
                                        auto x = c.in(0);
                                        const auto& gy = c.grad_out();
                                        c.emit(0, [&](size_t i) {
                                            return gy[i] * T(2 * inv_sqrt2pi * 1.41421356237309504880) *
                                                   std::exp(-x[i] * x[i]);
                                        });
                                    })
                                    .sample({{3, 4}}));

    const op_def& log1p = builtin(op_builder("log1p")
                                      .shape(same_shape)
                                      .saves(saves::inputs)
                                      .forward([](auto& c) { map_unary(c, [](auto x) { return std::log1p(x); }); })
                                      .backward([](auto& c) {
                                          auto x = c.in(0);
                                          const auto& gy = c.grad_out();
                                          c.emit(0, [&](size_t i) { return gy[i] / (1 + x[i]); });
                                      })
                                      .sample({{3, 4}})
                                      .sample({{5}}, {}, {}, {domain::positive}));
};

const math_ops& ops() {
    static const math_ops o;
    return o;
}

attrs axis_keep(int axis, bool keepdims) { return attrs{.i = {axis, keepdims, 0, 0}}; }
}  // namespace

void detail::register_math_ops() { ops(); }

expr maximum(const expr& a, const expr& b) { return apply(ops().maximum, {a, b}); }
expr minimum(const expr& a, const expr& b) { return apply(ops().minimum, {a, b}); }
expr max(const expr& x, int axis, bool keepdims) { return apply(ops().max_axis, {x}, axis_keep(axis, keepdims)); }
expr min(const expr& x, int axis, bool keepdims) { return apply(ops().min_axis, {x}, axis_keep(axis, keepdims)); }
expr argmax(const expr& x, int axis, bool keepdims) { return apply(ops().argmax, {x}, axis_keep(axis, keepdims)); }
expr argmin(const expr& x, int axis, bool keepdims) { return apply(ops().argmin, {x}, axis_keep(axis, keepdims)); }
expr abs(const expr& x) { return apply(ops().abs, {x}); }
expr clamp(const expr& x, double lo, double hi) {
    if (!(lo <= hi))
        throw value_error("clamp: expected lo <= hi, got lo " + detail::number(lo) + ", hi " + detail::number(hi));
    return apply(ops().clamp, {x}, attrs{.f = {lo, hi}});
}
expr where(const expr& cond, const expr& a, const expr& b) { return apply(ops().where, {cond, a, b}); }
expr logsumexp(const expr& x, int axis, bool keepdims) {
    return apply(ops().logsumexp, {x}, axis_keep(axis, keepdims));
}
expr cumsum(const expr& x, int axis) { return apply(ops().cumsum, {x}, axis_keep(axis, false)); }
expr softplus(const expr& x) { return apply(ops().softplus, {x}); }
expr elu(const expr& x, double alpha) { return apply(ops().elu, {x}, attrs{.f = {alpha, 0}}); }
expr gelu(const expr& x) { return apply(ops().gelu, {x}); }
expr erf(const expr& x) { return apply(ops().erf, {x}); }
expr log1p(const expr& x) { return apply(ops().log1p, {x}); }

}  // namespace seqgrad
