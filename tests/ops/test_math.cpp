// Values of the math, normalisation and convolution ops against hand-computed cases, and the
// gradient conventions at their kinks (the registry-wide test checks gradients elsewhere).
#include <boost/test/unit_test.hpp>

#include <cmath>

#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;
using A = xt::xarray<double>;

namespace {
// Gradient of sum(f(x)) with respect to x, on a double tape.
A grad_of(const A& x0, const std::function<sg::expr(const sg::expr&)>& f) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(x0, true);
    t.backward(sg::sum(f(x)));
    return t.grad(x);
}
}  // namespace

BOOST_AUTO_TEST_SUITE(math_values)

BOOST_AUTO_TEST_CASE(maximum_minimum_and_ties) {
    sg::tape t(sg::dtype::f64);
    auto a = t.input(A{{1, 5, 3}, {-2, 0, 7}});
    auto row = t.input(A{2, 2, 3});
    expect_near(t.value(sg::maximum(a, row)), A{{2, 5, 3}, {2, 2, 7}});
    expect_near(t.value(sg::minimum(a, row)), A{{1, 2, 3}, {-2, 0, 3}});
    // A tie splits the gradient evenly (PyTorch's torch.maximum).
    sg::tape u(sg::dtype::f64);
    auto x = u.input(A{1.0, 2.0, 3.0}, true), y = u.input(A{1.0, 5.0, 0.0}, true);
    u.backward(sg::sum(sg::maximum(x, y)));
    expect_near(u.grad(x), A{0.5, 0, 1});
    expect_near(u.grad(y), A{0.5, 1, 0});
}

BOOST_AUTO_TEST_CASE(max_min_along_an_axis_with_indices) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(A{{1, 9, 3}, {4, -5, 6}});
    expect_near(t.value(sg::max(x, 1)), A{9, 6});
    expect_near(t.value(sg::max(x, 0)), A{4, 9, 6});
    expect_near(t.value(sg::min(x, -1, true)), col({1, -5}));
    expect_near(t.value(sg::argmax(x, 1)), A{1, 2});
    expect_near(t.value(sg::argmin(x, 0)), A{0, 1, 0});
    // The gradient goes to the first maximal entry.
    expect_near(grad_of(A{{2, 7, 7}, {1, 0, 1}}, [](const sg::expr& v) { return sg::max(v, 1); }),
                A{{0, 1, 0}, {1, 0, 0}});
    expect_near(grad_of(A{{2, 7}, {1, 0}}, [](const sg::expr& v) { return sg::min(v, 0); }), A{{0, 0}, {1, 1}});
}

// A NaN gives NaN wherever it sits in the arguments (PyTorch): maximum and minimum in either
// position (the gradient then goes to both inputs), max / min / argmax / argmin along an axis (the
// first NaN is the extreme, and takes the gradient), relu (NaN out, gradient 0).
BOOST_AUTO_TEST_CASE(nan_is_propagated_whatever_its_position) {
    const double nan = std::nan("");
    auto is_nan = [](const A& v) { return v.size() == 1 && std::isnan(v(0)); };
    for (const sg::dtype dt : {sg::dtype::f64, sg::dtype::f32}) {
        sg::tape t(dt);
        const auto x = t.input(A{nan}, true), z = t.input(A{0.0}, true);
        for (const sg::expr& e : {sg::maximum(x, z), sg::maximum(z, x), sg::minimum(x, z), sg::minimum(z, x)})
            BOOST_TEST(is_nan(t.value(e)));
        t.backward(sg::sum(sg::maximum(x, z)) + sg::sum(sg::minimum(z, x)) * 2.0);
        expect_near(t.grad(x), A{3.0});
        expect_near(t.grad(z), A{3.0});
        sg::tape r(dt);
        const auto v = r.input(A{nan, 2.0}, true);
        const auto y = r.value(sg::relu(v));
        BOOST_TEST((std::isnan(y(0)) && y(1) == 2.0));
        r.backward(sg::sum(sg::relu(v * 1.0)));
        expect_near(r.grad(v), A{0.0, 1.0});
    }
    sg::tape t(sg::dtype::f64);
    const auto rows = t.input(A{{1, nan, 3}, {nan, 1, 3}, {3, 1, nan}, {nan, nan, 1}});
    for (const sg::expr& e : {sg::max(rows, 1), sg::min(rows, 1)}) {
        const A m = t.value(e);
        for (std::size_t i = 0; i < 4; ++i) BOOST_TEST(std::isnan(m(i)), i);
    }
    expect_near(t.value(sg::argmax(rows, 1)), A{1, 0, 2, 0});
    expect_near(t.value(sg::argmin(rows, 1)), A{1, 0, 2, 0});
    expect_near(grad_of(A{{1, nan, 3}, {3, 1, nan}}, [](const sg::expr& v) { return sg::max(v, 1); }),
                A{{0, 1, 0}, {0, 0, 1}});
}

// x^0 is constant: its gradient is 0, also at x = 0 (not 0 * inf), as PyTorch's.
BOOST_AUTO_TEST_CASE(pow_zero_has_a_zero_gradient) {
    expect_near(grad_of(A{0.0, 2.0, -1.5}, [](const sg::expr& v) { return sg::pow(v, 0.0); }), A{0, 0, 0});
    expect_near(grad_of(A{0.0, 2.0}, [](const sg::expr& v) { return sg::pow(v, 1.0); }), A{1, 1});
    expect_near(grad_of(A{3.0}, [](const sg::expr& v) { return sg::pow(v, 2.0); }), A{6});
}

BOOST_AUTO_TEST_CASE(abs_clamp_where) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(A{-2.0, -0.5, 0.0, 0.5, 2.0});
    expect_near(t.value(sg::abs(x)), A{2, 0.5, 0, 0.5, 2});
    expect_near(t.value(sg::clamp(x, -1, 0.5)), A{-1, -0.5, 0, 0.5, 0.5});
    // abs'(0) = 0; clamp passes the gradient at its bounds (both PyTorch's conventions).
    expect_near(grad_of(A{-2.0, 0.0, 3.0}, [](const sg::expr& v) { return sg::abs(v); }), A{-1, 0, 1});
    expect_near(grad_of(A{-2.0, -1.0, 0.0, 0.5, 2.0}, [](const sg::expr& v) { return sg::clamp(v, -1, 0.5); }),
                A{0, 1, 1, 1, 0});
    BOOST_CHECK_THROW(sg::clamp(x, 1, -1), sg::value_error);

    auto mask = t.input(col({1, 0}));  // [2, 1], broadcast over columns
    auto a = t.input(A{{1, 2, 3}, {4, 5, 6}});
    auto b = t.input(A{-1, -2, -3});
    expect_near(t.value(sg::where(mask, a, b)), A{{1, 2, 3}, {-1, -2, -3}});
    sg::tape u(sg::dtype::f64);
    auto m = u.input(A{1.0, 0.0, 1.0}), p = u.input(A{1.0, 2.0, 3.0}, true), q = u.input(A{4.0}, true);
    u.backward(sg::sum(sg::where(m, p, q)));
    expect_near(u.grad(p), A{1, 0, 1});
    expect_near(u.grad(q), A{1});
}

BOOST_AUTO_TEST_CASE(logsumexp_is_stable_and_exact) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(A{{1, 2, 3}, {1000, 1000, 1000}});
    const double l = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
    expect_near(t.value(sg::logsumexp(x, 1)), A{l, 1000 + std::log(3.0)});
    expect_near(t.value(sg::logsumexp(x, 0, true)), A{{1000, 1000, 1000}});
    // Its gradient is the softmax of the axis.
    const A g = grad_of(A{{1, 2, 3}}, [](const sg::expr& v) { return sg::logsumexp(v, 1); });
    expect_near(g, A{{std::exp(1 - l), std::exp(2 - l), std::exp(3 - l)}});
}

BOOST_AUTO_TEST_CASE(cumsum_along_axes) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(A{{1, 2, 3}, {4, 5, 6}});
    expect_near(t.value(sg::cumsum(x, 1)), A{{1, 3, 6}, {4, 9, 15}});
    expect_near(t.value(sg::cumsum(x, 0)), A{{1, 2, 3}, {5, 7, 9}});
    expect_near(grad_of(A{{1, 2, 3}}, [](const sg::expr& v) { return sg::cumsum(v, -1); }), A{{3, 2, 1}});
}

// A float running sum drifts: the cumsum of 10^5 entries of 0.1f ended at 9998.557 and its
// gradient (the reversed running sum of the output's gradient) likewise. Both accumulate in
// double now, as PyTorch's CPU cumsum does (10000.0).
BOOST_AUTO_TEST_CASE(float_cumsum_does_not_drift) {
    constexpr std::size_t n = 100000;
    sg::tape t(sg::dtype::f32);
    auto x = t.input(A(xt::ones<double>({n}) * 0.1), true);
    const auto y = sg::cumsum(x, 0);
    const A v = t.value(y);
    BOOST_TEST(v(n - 1) == 10000.0, boost::test_tools::tolerance(1e-6));
    BOOST_TEST(v(n / 2 - 1) == 5000.0, boost::test_tools::tolerance(1e-6));
    t.backward(sg::sum(y * t.input(A(xt::ones<double>({n}) * 0.1))));
    const A g = t.grad(x);
    BOOST_TEST(g(0) == 10000.0, boost::test_tools::tolerance(1e-6));
    BOOST_TEST(g(n / 2) == 5000.0, boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(smooth_activations) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(A{-1.0, 0.0, 0.5, 2.0});
    const auto sp = [](double v) { return std::log(1 + std::exp(v)); };
    expect_near(t.value(sg::softplus(x)), A{sp(-1), sp(0), sp(0.5), sp(2)});
    expect_near(t.value(sg::elu(x)), A{std::exp(-1.0) - 1, 0, 0.5, 2});
    expect_near(t.value(sg::elu(x, 0.5)), A{0.5 * (std::exp(-1.0) - 1), 0, 0.5, 2});
    const auto gelu = [](double v) { return v * 0.5 * (1 + std::erf(v / std::sqrt(2.0))); };
    expect_near(t.value(sg::gelu(x)), A{gelu(-1), 0, gelu(0.5), gelu(2)});
    expect_near(t.value(sg::erf(x)), A{std::erf(-1.0), 0, std::erf(0.5), std::erf(2.0)});
    expect_near(t.value(sg::log1p(x + 0.5)), A{std::log(0.5), std::log(1.5), std::log(2.0), std::log(3.5)});
    // Known points: gelu(1) = 0.841344746..., erf(1) = 0.842700792...
    sg::tape u(sg::dtype::f64);
    auto one = u.input(A{1.0});
    expect_near(u.value(sg::gelu(one)), A{0.8413447460685429}, 1e-12);
    expect_near(u.value(sg::erf(one)), A{0.8427007929497149}, 1e-12);
}

BOOST_AUTO_TEST_CASE(softplus_and_log1p_do_not_overflow_on_a_float_tape) {
    sg::tape t;  // float32
    auto x = t.input(xt::xarray<float>{-100.0f, 100.0f, 1e-8f});
    const A sp = t.value(sg::softplus(x));
    BOOST_TEST(sp(0) == 0.0, boost::test_tools::tolerance(1e-30));
    BOOST_TEST(sp(1) == 100.0);
    BOOST_TEST(std::abs(t.value(sg::log1p(x))(2) - 1e-8) < 1e-14);  // log(1 + x) in float would give 0
    const A g = [] {
        sg::tape u;
        auto v = u.input(xt::xarray<float>{-100.0f, 100.0f}, true);
        u.backward(sg::sum(sg::softplus(v)));
        return u.grad(v);
    }();
    BOOST_TEST(std::isfinite(g(0)));
    BOOST_TEST(g(1) == 1.0);
}

BOOST_AUTO_TEST_CASE(layer_norm_values) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(A{{1, 2, 3, 4}, {2, 2, 2, 6}});
    auto g = t.input(A{1, 2, 1, 1});
    auto b = t.input(A{0, 0, 1, 0});
    const A y = t.value(sg::layer_norm(x, g, b, 1e-5));
    // Row 0: mean 2.5, biased variance 1.25.
    const double r0 = 1 / std::sqrt(1.25 + 1e-5), r1 = 1 / std::sqrt(3.0 + 1e-5);
    expect_near(y, A{{-1.5 * r0, -0.5 * r0 * 2, 0.5 * r0 + 1, 1.5 * r0}, {-r1, -r1 * 2, -r1 + 1, 3 * r1}}, 1e-12);
    BOOST_CHECK_THROW(sg::layer_norm(x, t.input(A{1, 1, 1}), b), sg::shape_error);
}

// A double row whose spread's square overflows (|x - mu| above 1.3e154) is normalised like the
// same row scaled down: y was beta, and the gradient 0. Also rows whose sum overflows (4 x 1e307).
BOOST_AUTO_TEST_CASE(layer_norm_of_rows_beyond_the_square_root_of_double_max) {
    for (const double c : {1e200, 1e300, 1e307}) {
        BOOST_TEST_CONTEXT("scale " << c) {
            sg::tape t(sg::dtype::f64);
            auto x = t.input(A{{1 * c, 2 * c, 3 * c, 4 * c}, {c, c, c, c}}, true);
            auto g = t.input(A{1, 2, 1, 1});
            auto b = t.input(A{0, 0, 1, 0});
            auto y = sg::layer_norm(x, g, b, 1e-5);
            // Row 0: mean 2.5c, variance 1.25c^2 (eps negligible); row 1: equal values give beta.
            const double r = 1 / std::sqrt(1.25);
            expect_near(t.value(y), A{{-1.5 * r, -0.5 * r * 2, 0.5 * r + 1, 1.5 * r}, {0, 0, 1, 0}}, 1e-12);
            // The gradient of sum(y * w) at x is that at x / c (eps / c^2, i.e. none) divided by c.
            auto w = t.input(A{{0.3, -1.0, 2.0, 0.5}, {1, 1, 1, 1}});
            t.backward(sg::sum(y * w));
            sg::tape u(sg::dtype::f64);
            auto xs = u.input(A{{1, 2, 3, 4}, {1, 1, 1, 1}}, true);
            u.backward(sg::sum(sg::layer_norm(xs, u.input(A{1, 2, 1, 1}), u.input(A{0, 0, 1, 0}), 1e-300) *
                               u.input(A{{0.3, -1.0, 2.0, 0.5}, {1, 1, 1, 1}})));
            const A gx = t.grad(x), expected = u.grad(xs);
            // Row 1's variance is 0 at any scale: eps alone sets its gradient, that of the mean
            // removed times g w / sqrt(eps): (I - 1/4) {1, 2, 1, 1} / sqrt(1e-5).
            for (std::size_t j = 0; j < 4; ++j) {
                BOOST_TEST(std::abs(gx(0, j) * c - expected(0, j)) <= 1e-9 * std::abs(expected(0, j)) + 1e-12);
                const double row1 = (j == 1 ? 2 - 1.25 : 1 - 1.25) / std::sqrt(1e-5);
                BOOST_TEST(std::abs(gx(1, j) - row1) <= 1e-9 * std::abs(row1));
            }
            BOOST_TEST(std::abs(expected(0, 0)) > 0.1);
        }
    }
}

BOOST_AUTO_TEST_CASE(causal_convolution_sees_only_the_past) {
    sg::tape t(sg::dtype::f64);
    // T = 4, B = 1, C_in = 1; taps w[0] = 1, w[1] = 10, w[2] = 100 (C_out = 1).
    A xv = xt::zeros<double>({4, 1, 1});
    xv(0, 0, 0) = 1;
    xv(1, 0, 0) = 2;
    xv(2, 0, 0) = 3;
    xv(3, 0, 0) = 4;
    A wv = xt::zeros<double>({3, 1, 1});
    wv(0, 0, 0) = 1;
    wv(1, 0, 0) = 10;
    wv(2, 0, 0) = 100;
    const A y = t.value(sg::conv1d_causal(t.input(xv), t.input(wv)));
    expect_near(A(xt::reshape_view(y, {4})), A{1, 2 + 10, 3 + 20 + 100, 4 + 30 + 200});
    // Two channels in, two out, batch 2: y[t, b] = sum_k x[t - k, b] w[k].
    A x2 = xt::zeros<double>({2, 2, 2});
    x2(0, 0, 0) = 1;
    x2(0, 0, 1) = 2;
    x2(0, 1, 0) = 3;
    x2(0, 1, 1) = 4;
    x2(1, 0, 0) = 5;
    x2(1, 0, 1) = 6;
    x2(1, 1, 0) = 7;
    x2(1, 1, 1) = 8;
    A w2 = xt::zeros<double>({2, 2, 2});
    w2(0, 0, 0) = 1;
    w2(0, 1, 1) = 1;  // tap 0: identity
    w2(1, 0, 1) = 1;
    w2(1, 1, 0) = 1;  // tap 1: swap channels
    const A y2 = t.value(sg::conv1d_causal(t.input(x2), t.input(w2)));
    expect_near(A(xt::reshape_view(y2, {8})), A{1, 2, 3, 4, 5 + 2, 6 + 1, 7 + 4, 8 + 3});
    BOOST_CHECK_THROW(sg::conv1d_causal(t.input(x2), t.input(A(xt::zeros<double>({2, 3, 2})))), sg::shape_error);
}

// PyTorch reduces a 0-d tensor along dim 0 or -1 (to itself, gradient 1) and rejects dim 1; these
// threw "axis 0 out of range for rank 0". logsumexp over an empty axis is -inf (log 0) in
// PyTorch, with an empty gradient; it threw "expected a non-empty axis".
BOOST_AUTO_TEST_CASE(reductions_of_a_scalar_and_logsumexp_of_an_empty_axis) {
    using F = std::function<sg::expr(const sg::expr&, int)>;
    const std::vector<std::pair<const char*, F>> reductions = {
        {"sum", [](const sg::expr& x, int a) { return sg::sum(x, a); }},
        {"sum keepdims", [](const sg::expr& x, int a) { return sg::sum(x, a, true); }},
        {"mean", [](const sg::expr& x, int a) { return sg::mean(x, a); }},
        {"max", [](const sg::expr& x, int a) { return sg::max(x, a); }},
        {"min", [](const sg::expr& x, int a) { return sg::min(x, a, true); }},
        {"logsumexp", [](const sg::expr& x, int a) { return sg::logsumexp(x, a); }},
        {"cumsum", [](const sg::expr& x, int a) { return sg::cumsum(x, a); }},
    };
    for (const auto& r : reductions) {
        const F f = r.second;
        for (int axis : {0, -1}) {
            BOOST_TEST_CONTEXT(r.first << " axis " << axis) {
                sg::tape t(sg::dtype::f64);
                auto x = t.input(A(3.0), true);
                auto y = f(x, axis);
                BOOST_TEST(y.shape().rank() == 0u);
                BOOST_TEST(t.item(y) == 3.0);
                t.backward(sg::sum(y));
                BOOST_TEST(t.grad(x)() == 1.0);
            }
        }
        sg::tape t(sg::dtype::f64);
        auto x = t.input(A(3.0));
        BOOST_CHECK_THROW(f(x, 1), sg::shape_error);
    }
    sg::tape t(sg::dtype::f64);
    auto s = t.input(A(-2.5));
    BOOST_TEST(t.item(sg::argmax(s, 0)) == 0.0);
    BOOST_TEST(t.item(sg::argmin(s, -1)) == 0.0);

    for (auto dt : {sg::dtype::f32, sg::dtype::f64}) {
        sg::tape u(dt);
        auto e = u.input(A(xt::zeros<double>({2, 0})), true);
        auto l = sg::logsumexp(e, 1);
        BOOST_TEST(l.shape().str() == "[2]");
        const A v = u.value(l);
        BOOST_TEST((std::isinf(v(0)) && v(0) < 0 && std::isinf(v(1)) && v(1) < 0));
        BOOST_TEST(sg::logsumexp(e, 1, true).shape().str() == "[2, 1]");
        u.backward(sg::sum(sg::exp(l)));  // exp(-inf) = 0: a finite loss
        BOOST_TEST(u.grad(e).size() == 0u);
        BOOST_CHECK_THROW(sg::max(e, 1), sg::shape_error);  // no value, as torch.max refuses
    }
}

BOOST_AUTO_TEST_SUITE_END()
