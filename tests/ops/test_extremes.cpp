// Values and gradients at the ends of float's and double's range, where a formula's intermediate
// overflows, underflows or cancels while the exact answer is finite: each case's expected figure
// is PyTorch 1.13's (or exact where PyTorch's is not finite).
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;
using A = xt::xarray<double>;

namespace {
bool close(double got, double want, double rel) { return std::abs(got - want) <= rel * std::abs(want); }
}  // namespace

BOOST_AUTO_TEST_SUITE(extremes)

// loss = (max - x[t]) + log(sum exp(x - max)): as max + log(sum) - x[t] it rounded log 3 away at
// logits of 1e8 (float) and 1e17 (double), the loss read 0 and the gradient [0, 1, 1].
BOOST_AUTO_TEST_CASE(cross_entropy_of_large_logits) {
    for (const auto& [dt, c] : {std::pair{sg::dtype::f32, 1e8}, std::pair{sg::dtype::f64, 1e17}}) {
        BOOST_TEST_CONTEXT("logits " << c) {
            sg::tape t(dt);
            auto x = t.input(A{{c, c, c}}, true);
            const int target[] = {0};
            auto loss = sg::cross_entropy(x, target);
            BOOST_TEST(close(t.item(loss), std::log(3.0), 1e-6));
            t.backward(loss);
            const A g = t.grad(x);
            BOOST_TEST(close(g(0, 0), -2.0 / 3, 1e-6));
            BOOST_TEST(close(g(0, 1), 1.0 / 3, 1e-6));
            BOOST_TEST(close(g(0, 2), 1.0 / 3, 1e-6));
        }
    }
    // Spread 2 around 10,000 in float: PyTorch 1.40760589, gradient [-0.755271494, 0.665241003,
    // 0.0900305808] (seqgrad read 1.40722656 and [-0.7552, 0.6655, 0.0901]).
    sg::tape t(sg::dtype::f32);
    auto x = t.input(A{{10000, 10001, 9999}}, true);
    const int target[] = {0};
    auto loss = sg::cross_entropy(x, target);
    const double lse = std::log(1 + std::exp(1.0) + std::exp(-1.0));
    BOOST_TEST(close(t.item(loss), lse, 1e-6));
    t.backward(loss);
    const A g = t.grad(x);
    BOOST_TEST(close(g(0, 0), 1 / std::exp(lse) - 1, 1e-5));
    BOOST_TEST(close(g(0, 1), std::exp(1 - lse), 1e-5));
    BOOST_TEST(close(g(0, 2), std::exp(-1 - lse), 1e-5));
}

// An infinite loss (the spread overflows float) still has the finite gradient softmax - onehot:
// [1, -1, 0] as in PyTorch (the first entry read 0).
BOOST_AUTO_TEST_CASE(cross_entropy_gradient_where_the_loss_is_infinite) {
    sg::tape t(sg::dtype::f32);
    auto x = t.input(A{{3.4e38, -3.4e38, 0}}, true);
    const int target[] = {1};
    auto loss = sg::cross_entropy(x, target);
    BOOST_TEST(std::isinf(t.item(loss)));
    t.backward(loss);
    const A g = t.grad(x);
    BOOST_TEST(g(0, 0) == 1.0);
    BOOST_TEST(g(0, 1) == -1.0);
    BOOST_TEST(g(0, 2) == 0.0);
}

// d(a / b)/db = -(a / b) / b: b * b overflowed or underflowed first (-inf and -0 where PyTorch
// gives -1e10, -1e100 and -1e-10).
BOOST_AUTO_TEST_CASE(division_gradient_of_the_divisor) {
    struct one {
        sg::dtype dt;
        double a, b, want;
    };
    for (const one& k : {one{sg::dtype::f32, 1e-30, 1e-20, -1e10}, one{sg::dtype::f32, 1e30, 1e20, -1e-10},
                         one{sg::dtype::f64, 1e-300, 1e-200, -1e100}}) {
        BOOST_TEST_CONTEXT("a " << k.a << ", b " << k.b) {
            sg::tape t(k.dt);
            auto a = t.input(A{k.a});
            auto b = t.input(A{k.b}, true);
            t.backward(sg::sum(a / b));
            BOOST_TEST(close(t.grad(b)(0), k.want, 1e-5));
        }
    }
}

// x Phi(x) as x / 2 (1 + erf): 2 x overflowed (inf where PyTorch gives x).
BOOST_AUTO_TEST_CASE(gelu_of_the_largest_values) {
    for (const auto& [dt, v] : {std::pair{sg::dtype::f32, 3e38}, std::pair{sg::dtype::f64, 1.7e308}}) {
        sg::tape t(dt);
        const double y = t.value(sg::gelu(t.input(A{v})))(0);
        BOOST_TEST(close(y, dt == sg::dtype::f32 ? double(float(v)) : v, 1e-7));
    }
}

// mse_loss's mean scales the gradient 2 x / 3 of 3.4e38 into float's range: PyTorch 2.2667e38
// (the product 2 x overflowed first: inf).
BOOST_AUTO_TEST_CASE(square_gradient_scaled_back_into_range) {
    sg::tape t(sg::dtype::f32);
    auto x = t.input(A{3.4e38, -3.4e38, 0}, true);
    t.backward(sg::mse_loss(x, t.input(A{0, 0, 0})));
    const A g = t.grad(x);
    BOOST_TEST(close(g(0), 2 * double(float(3.4e38)) / 3, 1e-6));
    BOOST_TEST(close(g(1), -2 * double(float(3.4e38)) / 3, 1e-6));
    BOOST_TEST(g(2) == 0.0);
}

// elu'(x) = alpha e^x for x <= 0, where y + alpha cancelled to 0 (float x = -20: PyTorch
// 2.06115369e-09; double x = -40: 4.24835426e-18).
BOOST_AUTO_TEST_CASE(elu_gradient_far_below_zero) {
    for (const auto& [dt, v] : {std::pair{sg::dtype::f32, -20.0}, std::pair{sg::dtype::f64, -40.0}}) {
        sg::tape t(dt);
        auto x = t.input(A{v}, true);
        t.backward(sg::sum(sg::elu(x, 1.0)));
        BOOST_TEST(close(t.grad(x)(0), std::exp(v), 1e-6));
    }
}

// Double gradients of 1e200 square past double's range: the norm read inf and nothing was
// clipped. Now the norm is sqrt(2) 1e200 and the gradients become (1, 1) / sqrt(2), in the store
// and in the backward plan alike; an inf gradient is still left as it is.
BOOST_AUTO_TEST_CASE(global_norm_of_gradients_beyond_the_square_root_of_double_max) {
    for (const double c : {1e160, 1e200, 1e307}) {
        BOOST_TEST_CONTEXT("gradients " << c) {
            sg::parameter_store ps(sg::dtype::f64);
            auto w = ps.add("w", A{1.0, 1.0});
            sg::tape u(sg::dtype::f64);
            u.backward(sg::sum(u.param(w) * u.input(A{c, c})));
            BOOST_TEST(close(sg::optim::clip_global_norm(ps, 1.0), std::sqrt(2.0) * c, 1e-12));
            BOOST_TEST(close(w.grad<double>()(0), std::sqrt(0.5), 1e-12));
            BOOST_TEST(close(w.grad<double>()(1), std::sqrt(0.5), 1e-12));

            sg::parameter_store qs(sg::dtype::f64);
            auto p = qs.add("p", A{1.0, 1.0});
            sg::tape t(sg::dtype::f64);
            const auto st = t.backward(sg::sum(t.param(p) * t.input(A{c, c})), sg::clip_global_norm(1.0));
            BOOST_TEST(st.clipped);
            BOOST_TEST(close(st.grad_norm, std::sqrt(2.0) * c, 1e-12));
            BOOST_TEST(close(p.grad<double>()(1), std::sqrt(0.5), 1e-12));
        }
    }
    sg::parameter_store ps(sg::dtype::f64);
    auto w = ps.add("w", A{1.0, 1.0});
    sg::tape t(sg::dtype::f64);
    t.backward(sg::sum(t.param(w) * t.input(A{1e200, std::numeric_limits<double>::infinity()})));
    BOOST_TEST(std::isinf(sg::optim::clip_global_norm(ps, 1.0)));
    BOOST_TEST(w.grad<double>()(0) == 1e200);
}

// A float row whose 1 / sqrt(var + eps) is below float's normal range (spread above 8.5e37) was
// flushed to beta; exact: [sqrt(1.5), -sqrt(1.5), 0] (PyTorch's float gives NaN, its double this).
BOOST_AUTO_TEST_CASE(layer_norm_of_float_rows_with_the_largest_spread) {
    sg::tape t(sg::dtype::f32);
    auto x = t.input(A{{3.4e38, -3.4e38, 0}}, true);
    auto y = sg::layer_norm(x, t.input(A{1, 1, 1}), t.input(A{0, 0, 0}), 1e-5);
    expect_near(t.value(y), A{{std::sqrt(1.5), -std::sqrt(1.5), 0}}, 1e-6);
    // d sum(y w) / dx = (1 / sd) (w - mean(w) - xh mean(w xh)); w = (1e10, 0, 0) keeps it above
    // float's subnormals: (1e10 / 6) / sd at x[1].
    t.backward(sg::sum(y * t.input(A{{1e10, 0, 0}})));
    const double sd = double(float(3.4e38)) * std::sqrt(2.0 / 3);
    BOOST_TEST(close(t.grad(x)(0, 1), 1e10 / 6 / sd, 1e-5));
}

BOOST_AUTO_TEST_SUITE_END()
