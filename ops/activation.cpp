#include "activation.hpp"

#include "kernels.hpp"

namespace seqgrad {
namespace {
using namespace detail;
using std::size_t;

template <class T>
T sigmoid_of(T x) {
    // Two branches keep exp from overflowing for large |x|.
    if (x >= 0) return T(1) / (T(1) + std::exp(-x));
    const T e = std::exp(x);
    return e / (T(1) + e);
}

// Float: the vectorisable kernels of kernels.hpp (1 to 3 ulps; the C library's scalar expf and
// tanhf cost more than a step's GEMV at H = 128). Double, for checks: the C library.
inline float fast_sigmoid(float x) { return vsigmoid(x); }
inline double fast_sigmoid(double x) { return sigmoid_of(x); }

shape last_axis_shape(const op_def& op, std::span<const shape> in, const attrs&) {
    if (in[0].rank() == 0) fail_shape(op, in, "expected rank >= 1 (normalises over the last axis)");
    return in[0];
}

/// Rows of the last axis: y_row = log_softmax(x_row) when log, else softmax(x_row).
template <class C>
void softmax_rows(const C& c, bool log) {
    auto x = c.in(0);
    const auto& y = c.out();
    const size_t n = x.shape.back(), rows = n ? x.size() / n : 0;
    for (size_t r = 0; r < rows; ++r) {
        const auto* xr = x.data + r * n;
        auto* yr = y.data + r * n;
        auto m = xr[0];
        for (size_t j = 1; j < n; ++j) m = std::max(m, xr[j]);
        decltype(m) s = 0;
        for (size_t j = 0; j < n; ++j) s += std::exp(xr[j] - m);
        if (log) {
            const auto ls = std::log(s);
            for (size_t j = 0; j < n; ++j) yr[j] = xr[j] - m - ls;
        } else {
            for (size_t j = 0; j < n; ++j) yr[j] = std::exp(xr[j] - m) / s;
        }
    }
}

/// masked_softmax: x [B, ..., S] with ints = lengths[B]; rows of batch entry b see only their
/// first lengths[b] positions (no max or sum over the others, which get exactly 0).
shape masked_softmax_shape(const op_def& op, std::span<const shape> in, const attrs& at) {
    if (in[0].rank() < 2) fail_shape(op, in, "expected rank >= 2 ([B, ..., S], lengths per B)");
    if (at.ints.size() != in[0][0])
        fail_shape(op, in,
                   std::to_string(at.ints.size()) + " lengths for B = " + std::to_string(in[0][0]) +
                       " (expected one per batch entry)");
    for (std::size_t b = 0; b < at.ints.size(); ++b)
        if (at.ints[b] < 0 || static_cast<std::size_t>(at.ints[b]) > in[0].back())
            fail_shape(op, in,
                       "length " + std::to_string(at.ints[b]) + " of batch entry " + std::to_string(b) +
                           " (expected in [0, S = " + std::to_string(in[0].back()) + "])");
    return in[0];
}

template <class C>
void masked_softmax_rows(const C& c) {
    auto x = c.in(0);
    const auto& y = c.out();
    // No rows when B = 0 (the divisor), nor when S = 0.
    const size_t n = x.shape.back(), rows = n ? x.size() / n : 0, per_batch = rows ? rows / x.shape[0] : 1;
    for (size_t r = 0; r < rows; ++r) {
        const auto* xr = x.data + r * n;
        auto* yr = y.data + r * n;
        const size_t len = static_cast<size_t>(c.at.ints[r / per_batch]);
        for (size_t j = len; j < n; ++j) yr[j] = 0;
        if (len == 0) continue;
        auto m = xr[0];
        for (size_t j = 1; j < len; ++j) m = std::max(m, xr[j]);
        decltype(m) s = 0;
        for (size_t j = 0; j < len; ++j) s += std::exp(xr[j] - m);
        for (size_t j = 0; j < len; ++j) yr[j] = std::exp(xr[j] - m) / s;
    }
}

// d softmax: gx = y * (gy - sum(gy * y)) per row (masked positions have y = 0, so gx = 0 there).
template <class C>
void softmax_grad_rows(C& c) {
    const auto& y = c.out();
    const auto& gy = c.grad_out();
    const size_t n = y.shape.back();
    c.emit(0, [&, dot = decltype(gy[0] + 0)(0), row = size_t(-1)](size_t i) mutable {
        const size_t r = i / n;
        if (r != row) {
            row = r;
            dot = 0;
            for (size_t j = r * n; j < r * n + n; ++j) dot += gy[j] * y[j];
        }
        return y[i] * (gy[i] - dot);
    });
}

struct activation_ops {
    const op_def& tanh = builtin(op_builder("tanh")
                                     .shape(same_shape)
                                     .forward([](auto& c) { map_unary(c, [](auto x) { return vtanh(x); }); })
                                     .derivative_of_output<output_derivative::tanh>()
                                     .sample({{3, 4}}));

    const op_def& sigmoid = builtin(op_builder("sigmoid")
                                        .shape(same_shape)
                                        .forward([](auto& c) { map_unary(c, [](auto x) { return fast_sigmoid(x); }); })
                                        .derivative_of_output<output_derivative::sigmoid>()
                                        .sample({{3, 4}}));

    const op_def& relu = builtin(
        op_builder("relu")
            .shape(same_shape)
            // !(x <= 0): a NaN stays NaN (PyTorch), not 0; its gradient is 0 (op.hpp's through).
            .forward([](auto& c) { map_unary(c, [](auto x) { return !(x <= 0) ? x : decltype(x)(0); }); })
            .derivative_of_output<output_derivative::relu>()
            .sample({{3, 4}}, {}, {}, {domain::away_from_zero}));

    const op_def& softmax = builtin(op_builder("softmax")
                                        .shape(last_axis_shape)
                                        .saves(saves::output)
                                        .forward([](auto& c) { softmax_rows(c, false); })
                                        .backward([](auto& c) { softmax_grad_rows(c); })
                                        .sample({{3, 4}})
                                        .sample({{2, 2, 3}}));

    const op_def& masked_softmax = builtin(op_builder("masked_softmax")
                                               .shape(masked_softmax_shape)
                                               .saves(saves::output)
                                               .forward([](auto& c) { masked_softmax_rows(c); })
                                               .backward([](auto& c) { softmax_grad_rows(c); })
                                               .sample({{2, 3, 4}}, {}, {4, 2})
                                               .sample({{3, 5}}, {}, {5, 1, 0}));

    // d log_softmax: gx = gy - softmax * sum(gy) per row.
    const op_def& log_softmax = builtin(
        op_builder("log_softmax")
            .shape(last_axis_shape)
            .saves(saves::output)
            .forward([](auto& c) { softmax_rows(c, true); })
            .backward([](auto& c) {
                const auto& y = c.out();
                const auto& gy = c.grad_out();
                const size_t n = y.shape.back();
                c.emit(0, [&, sum = decltype(gy[0] + 0)(0), row = size_t(-1)](size_t i) mutable {
                    const size_t r = i / n;
                    if (r != row) {
                        row = r;
                        sum = 0;
                        for (size_t j = r * n; j < r * n + n; ++j) sum += gy[j];
                    }
                    return gy[i] - std::exp(y[i]) * sum;
                });
            })
            .sample({{3, 4}})
            .sample({{5}}));
};

const activation_ops& ops() {
    static const activation_ops o;
    return o;
}
}  // namespace

void detail::register_activation_ops() { ops(); }

expr tanh(const expr& x) { return apply(ops().tanh, {x}); }
expr sigmoid(const expr& x) { return apply(ops().sigmoid, {x}); }
expr relu(const expr& x) { return apply(ops().relu, {x}); }
expr softmax(const expr& x) { return apply(ops().softmax, {x}); }
expr log_softmax(const expr& x) { return apply(ops().log_softmax, {x}); }
expr masked_softmax(const expr& x, std::span<const int> lengths) {
    attrs at;
    at.ints = lengths;
    return apply(ops().masked_softmax, {x}, at);
}

}  // namespace seqgrad
