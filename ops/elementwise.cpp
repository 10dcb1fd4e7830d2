#include "elementwise.hpp"

#include "kernels.hpp"

namespace seqgrad {
namespace {
using namespace detail;
using std::size_t;

// Constants print as the shortest decimal that reads back (detail::number), not six decimals.
std::string scalar_attr(const attrs& a) { return "c=" + number(a.f[0]); }

// An input of a sum whose gradient is the sum's gradient unchanged (no broadcast to undo): the
// engine may hand it that gradient instead of a copy (op_def::gradient_block). Input j has the
// output's shape when the other input broadcasts into it.
size_t whole_gradient(std::span<const shape> in, size_t j) {
    const shape& s = in[j];
    const shape& o = in[1 - j];
    if (o.rank() > s.rank()) return op_def::no_view;
    for (size_t d = 1; d <= o.rank(); ++d)
        if (o[o.rank() - d] != 1 && o[o.rank() - d] != s[s.rank() - d]) return op_def::no_view;
    return 0;
}

struct elementwise_ops {
    // Binary, broadcasting. Each backward writes g(o, ia, ib) = d(out[o])/d(input) * gy[o].
    const op_def& add = builtin(
        op_builder("add")
            .arity(2)
            .shape(broadcast_shape)
            .broadcasting()
            .reduces_broadcast()
            .saves(saves::nothing)
            .gradient_block([](std::span<const shape> in, const attrs&, size_t j) { return whole_gradient(in, j); })
            .forward([](auto& c) { map_binary(c, [](auto a, auto b) { return a + b; }); })
            .backward([](auto& c) {
                const auto& gy = c.grad_out();
                emit_binary(c, 0, [&](size_t o, size_t, size_t) { return gy[o]; });
                emit_binary(c, 1, [&](size_t o, size_t, size_t) { return gy[o]; });
            })
            .sample({{2, 3}, {2, 3}})
            .sample({{4, 3}, {3}})
            .sample({{2, 1, 3}, {4, 1}}));

    const op_def& sub = builtin(op_builder("sub")
                                    .arity(2)
                                    .shape(broadcast_shape)
                                    .broadcasting()
                                    .reduces_broadcast()
                                    .saves(saves::nothing)
                                    .gradient_block([](std::span<const shape> in, const attrs&, size_t j) {
                                        return j == 0 ? whole_gradient(in, 0) : op_def::no_view;
                                    })
                                    .forward([](auto& c) { map_binary(c, [](auto a, auto b) { return a - b; }); })
                                    .backward([](auto& c) {
                                        const auto& gy = c.grad_out();
                                        emit_binary(c, 0, [&](size_t o, size_t, size_t) { return gy[o]; });
                                        emit_binary(c, 1, [&](size_t o, size_t, size_t) { return -gy[o]; });
                                    })
                                    .sample({{2, 3}, {2, 3}})
                                    .sample({{1, 3}, {4, 3}}));

    const op_def& mul = builtin(op_builder("mul")
                                    .arity(2)
                                    .shape(broadcast_shape)
                                    .broadcasting()
                                    .reduces_broadcast()
                                    .saves(saves::inputs)
                                    .forward([](auto& c) { map_binary(c, [](auto a, auto b) { return a * b; }); })
                                    .backward([](auto& c) {
                                        const auto& gy = c.grad_out();
                                        auto a = c.in(0), b = c.in(1);
                                        emit_binary(c, 0, [&](size_t o, size_t, size_t ib) { return gy[o] * b[ib]; });
                                        emit_binary(c, 1, [&](size_t o, size_t ia, size_t) { return gy[o] * a[ia]; });
                                    })
                                    .sample({{2, 3}, {2, 3}})
                                    .sample({{4, 3}, {1, 3}})
                                    .sample({{3}, {2, 3}}));

    const op_def& div = builtin(
        op_builder("div")
            .arity(2)
            .shape(broadcast_shape)
            .broadcasting()
            .reduces_broadcast()
            .saves(saves::inputs)
            .forward([](auto& c) { map_binary(c, [](auto a, auto b) { return a / b; }); })
            .backward([](auto& c) {
                const auto& gy = c.grad_out();
                auto a = c.in(0), b = c.in(1);
                emit_binary(c, 0, [&](size_t o, size_t, size_t ib) { return gy[o] / b[ib]; });
                // (a / b) / b: b * b overflows or underflows where the gradient does not (PyTorch's order).
                emit_binary(c, 1, [&](size_t o, size_t ia, size_t ib) { return -gy[o] * (a[ia] / b[ib]) / b[ib]; });
            })
            .sample({{2, 3}, {2, 3}}, {}, {}, {domain::any, domain::positive})
            .sample({{4, 3}, {3}}, {}, {}, {domain::any, domain::positive}));

    // Unary.
    const op_def& neg = builtin(op_builder("neg")
                                    .shape(same_shape)
                                    .saves(saves::nothing)
                                    .forward([](auto& c) { map_unary(c, [](auto x) { return -x; }); })
                                    .backward([](auto& c) {
                                        const auto& gy = c.grad_out();
                                        c.emit(0, [&](size_t i) { return -gy[i]; });
                                    })
                                    .sample({{2, 3}}));

    const op_def& add_scalar = builtin(
        op_builder("add_scalar")
            .shape(same_shape)
            .saves(saves::nothing)
            .print_attrs(scalar_attr)
            .gradient_block([](std::span<const shape>, const attrs&, size_t) { return size_t(0); })
            .forward([](auto& c) {
                using T = std::remove_cvref_t<decltype(c.out()[0])>;
                const T k = static_cast<T>(c.at.f[0]);
                map_unary(c, [k](auto x) { return x + k; });
            })
            .backward([](auto& c) {
                const auto& gy = c.grad_out();
                c.emit(0, [&](size_t i) { return gy[i]; });
            })
            .sample({{2, 3}}, attrs{.f = {0.5, 0}}));

    const op_def& mul_scalar = builtin(op_builder("mul_scalar")
                                           .shape(same_shape)
                                           .saves(saves::nothing)
                                           .print_attrs(scalar_attr)
                                           .forward([](auto& c) {
                                               using T = std::remove_cvref_t<decltype(c.out()[0])>;
                                               const T k = static_cast<T>(c.at.f[0]);
                                               map_unary(c, [k](auto x) { return x * k; });
                                           })
                                           .backward([](auto& c) {
                                               using T = std::remove_cvref_t<decltype(c.out()[0])>;
                                               const T k = static_cast<T>(c.at.f[0]);
                                               const auto& gy = c.grad_out();
                                               c.emit(0, [&](size_t i) { return gy[i] * k; });
                                           })
                                           .sample({{2, 3}}, attrs{.f = {-1.5, 0}}));

    const op_def& exp = builtin(op_builder("exp")
                                    .shape(same_shape)
                                    .forward([](auto& c) { map_unary(c, [](auto x) { return std::exp(x); }); })
                                    .derivative_of_output<output_derivative::exp>()
                                    .sample({{2, 3}}));

    const op_def& log = builtin(op_builder("log")
                                    .shape(same_shape)
                                    .saves(saves::inputs)
                                    .forward([](auto& c) { map_unary(c, [](auto x) { return std::log(x); }); })
                                    .backward([](auto& c) {
                                        auto x = c.in(0);
                                        const auto& gy = c.grad_out();
                                        c.emit(0, [&](size_t i) { return gy[i] / x[i]; });
                                    })
                                    .sample({{2, 3}}, {}, {}, {domain::positive}));

    const op_def& square = builtin(op_builder("square")
                                       .shape(same_shape)
                                       .saves(saves::inputs)
                                       .forward([](auto& c) { map_unary(c, [](auto x) { return x * x; }); })
                                       .backward([](auto& c) {
                                           auto x = c.in(0);
                                           const auto& gy = c.grad_out();
                                           // 2 gy first: 2 x overflows where the gradient need not (mse_loss's mean scales gy).
                                           c.emit(0, [&](size_t i) { return x[i] * (2 * gy[i]); });
                                       })
                                       .sample({{2, 3}}));

    const op_def& sqrt = builtin(op_builder("sqrt")
                                     .shape(same_shape)
                                     .saves(saves::output)
                                     .forward([](auto& c) { map_unary(c, [](auto x) { return std::sqrt(x); }); })
                                     .backward([](auto& c) {
                                         const auto& y = c.out();
                                         const auto& gy = c.grad_out();
                                         c.emit(0, [&](size_t i) { return gy[i] / (2 * y[i]); });
                                     })
                                     .sample({{2, 3}}, {}, {}, {domain::positive}));

    const op_def& pow = builtin(
        op_builder("pow")
            .shape(same_shape)
            .saves(saves::inputs)
            .print_attrs([](const attrs& a) { return "p=" + number(a.f[0]); })
            .forward([](auto& c) {
                using T = std::remove_cvref_t<decltype(c.out()[0])>;
                const T p = static_cast<T>(c.at.f[0]);
                map_unary(c, [p](auto x) { return std::pow(x, p); });
            })
            .backward([](auto& c) {
                using T = std::remove_cvref_t<decltype(c.out()[0])>;
                const T p = static_cast<T>(c.at.f[0]);
                auto x = c.in(0);
                const auto& gy = c.grad_out();
                // x^0 is constant: 0, not 0 * inf at x = 0 (PyTorch's pow_backward).
                c.emit(0, [&](size_t i) { return p == T(0) ? T(0) : gy[i] * p * std::pow(x[i], p - 1); });
            })
            .sample({{2, 3}}, attrs{.f = {2.5, 0}}, {}, {domain::positive})
            .sample({{3}}, attrs{.f = {-1, 0}}, {}, {domain::positive}));
};

const elementwise_ops& ops() {
    static const elementwise_ops o;
    return o;
}
}  // namespace

void detail::register_elementwise_ops() { ops(); }

expr add(const expr& a, const expr& b) { return apply(ops().add, {a, b}); }
expr sub(const expr& a, const expr& b) { return apply(ops().sub, {a, b}); }
expr mul(const expr& a, const expr& b) { return apply(ops().mul, {a, b}); }
expr div(const expr& a, const expr& b) { return apply(ops().div, {a, b}); }
expr neg(const expr& x) { return apply(ops().neg, {x}); }
namespace {
// The scalar is used in the tape's type: beyond float's range it became inf on a float tape.
double fitting(const expr& x, double c, const char* op) {
    if (x.valid() && x.owner().scalar_type() == dtype::f32) detail::require_float(op, &c, 1);
    return c;
}
}  // namespace
expr add_scalar(const expr& x, double c) {
    return apply(ops().add_scalar, {x}, attrs{.f = {fitting(x, c, "add_scalar"), 0}});
}
expr mul_scalar(const expr& x, double c) {
    return apply(ops().mul_scalar, {x}, attrs{.f = {fitting(x, c, "mul_scalar"), 0}});
}
expr exp(const expr& x) { return apply(ops().exp, {x}); }
expr log(const expr& x) { return apply(ops().log, {x}); }
expr square(const expr& x) { return apply(ops().square, {x}); }
expr sqrt(const expr& x) { return apply(ops().sqrt, {x}); }
expr pow(const expr& x, double p) { return apply(ops().pow, {x}, attrs{.f = {p, 0}}); }

}  // namespace seqgrad
