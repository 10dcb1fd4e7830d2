// Initialisers: orthogonality to 1e-10 in double, identity, Xavier bounds and variances,
// forget-gate bias, reproducibility and shape errors.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <random>
#include <string>

#include <xtensor/xview.hpp>

#include <seqgrad/nn/init.hpp>
#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;
namespace nn = seqgrad::nn;

namespace {

xt::xarray<double> gram(const xt::xarray<double>& w, bool rows) {
    const std::size_t r = w.shape()[0], c = w.shape()[1];
    const std::size_t n = rows ? r : c;
    xt::xarray<double> g = xt::zeros<double>({n, n});
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
            for (std::size_t k = 0; k < (rows ? c : r); ++k) g(i, j) += rows ? w(i, k) * w(j, k) : w(k, i) * w(k, j);
    return g;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(init)

BOOST_AUTO_TEST_CASE(orthogonal_square_wide_and_tall) {
    sg::parameter_store ps(sg::dtype::f64);
    std::mt19937_64 rng(1);
    const sg::parameter sq = ps.add("sq", sg::shape{6, 6}), wide = ps.add("wide", sg::shape{3, 5}),
                        tall = ps.add("tall", sg::shape{7, 3}), big = ps.add("big", sg::shape{64, 64});
    for (const auto& p : {sq, wide, tall, big}) nn::orthogonal(p, rng);
    BOOST_TEST(max_diff(gram(sq.value<double>(), true), xt::eye<double>(6)) < 1e-10);     // W W^T = I
    BOOST_TEST(max_diff(gram(sq.value<double>(), false), xt::eye<double>(6)) < 1e-10);    // W^T W = I
    BOOST_TEST(max_diff(gram(wide.value<double>(), true), xt::eye<double>(3)) < 1e-10);   // rows orthonormal
    BOOST_TEST(max_diff(gram(tall.value<double>(), false), xt::eye<double>(3)) < 1e-10);  // columns orthonormal
    BOOST_TEST(max_diff(gram(big.value<double>(), true), xt::eye<double>(64)) < 1e-10);
    // Random, not a permutation of the identity.
    BOOST_TEST(xt::amax(xt::abs(sq.value<double>()))() < 0.999);
    // gain scales: (g W)(g W)^T = g^2 I.
    nn::orthogonal(sq, rng, 2.0);
    BOOST_TEST(max_diff(gram(sq.value<double>(), true), 4.0 * xt::eye<double>(6)) < 1e-10);
}

BOOST_AUTO_TEST_CASE(orthogonal_is_reproducible_and_checks_shapes) {
    sg::parameter_store ps(sg::dtype::f64);
    const sg::parameter a = ps.add("a", sg::shape{4, 4}), b = ps.add("b", sg::shape{4, 4});
    std::mt19937_64 r1(9), r2(9);
    nn::orthogonal(a, r1);
    nn::orthogonal(b, r2);
    BOOST_TEST(max_diff(a.value<double>(), b.value<double>()) == 0.0);
    const sg::parameter v = ps.add("v", sg::shape{4});
    try {
        nn::orthogonal(v, r1);
        BOOST_FAIL("expected a shape_error");
    } catch (const sg::shape_error& e) {
        const std::string m = e.what();
        BOOST_TEST(m.find("nn::orthogonal: parameter 'v' has shape [4]") != std::string::npos, m);
    }
    BOOST_CHECK_THROW(nn::orthogonal_per_gate(ps.add("odd", sg::shape{6, 4}), 4, r1), sg::shape_error);
}

// A gain or scale that is not finite (or, for xavier_* and kaiming_*, negative) and an empty fan
// are refused under the initialiser's own name, writing nothing; a negative gain or scale is fine
// where the result stays what it says (orthogonal times -2, -I).
BOOST_AUTO_TEST_CASE(gains_and_empty_fans_are_refused_under_the_initialisers_name) {
    sg::parameter_store ps(sg::dtype::f64);
    const sg::parameter w = ps.add("w", sg::shape{3, 3}), z = ps.add("z00", sg::shape{0, 0});
    std::mt19937_64 rng(1);
    nn::constant(w, 0.5);
    const auto refused = [&](auto&& f, const std::string& want) {
        try {
            f();
            BOOST_ERROR("no error: " << want);
        } catch (const sg::error& e) {
            BOOST_TEST(std::string(e.what()).find(want) != std::string::npos, e.what());
        }
        BOOST_TEST(max_diff(w.value<double>(), xt::xarray<double>(xt::zeros<double>({3, 3}) + 0.5)) == 0.0);
    };
    const double nan = std::nan(""), inf = HUGE_VAL;
    refused([&] { nn::orthogonal(w, rng, nan); }, "nn::orthogonal: gain nan for 'w' (expected finite)");
    refused([&] { nn::orthogonal_per_gate(w, 3, rng, inf); },
            "nn::orthogonal_per_gate: gain inf for 'w' (expected finite)");
    refused([&] { nn::identity(w, -inf); }, "nn::identity: scale -inf for 'w' (expected finite)");
    refused([&] { nn::xavier_uniform(w, rng, nan); },
            "nn::xavier_uniform: gain nan for 'w' (expected finite and >= 0)");
    refused([&] { nn::kaiming_normal(w, rng, -1.0); },
            "nn::kaiming_normal: gain -1 for 'w' (expected finite and >= 0)");
    refused([&] { nn::xavier_normal(z, rng); },
            "nn::xavier_normal: parameter 'z00' has shape [0, 0] (fan_in + fan_out 0)");
    nn::orthogonal(w, rng, -2.0);
    BOOST_TEST(max_diff(gram(w.value<double>(), true), 4.0 * xt::eye<double>(3)) < 1e-12);
    nn::identity(w, -1.0);
    BOOST_TEST(max_diff(w.value<double>(), -1.0 * xt::eye<double>(3)) == 0.0);
}

BOOST_AUTO_TEST_CASE(orthogonal_per_gate_blocks) {
    sg::parameter_store ps(sg::dtype::f64);
    std::mt19937_64 rng(2);
    const sg::parameter w_hh = ps.add("w_hh", sg::shape{16, 4});
    nn::orthogonal_per_gate(w_hh, 4, rng);
    const auto& w = w_hh.value<double>();
    for (std::size_t g = 0; g < 4; ++g) {
        xt::xarray<double> block = xt::view(w, xt::range(4 * g, 4 * g + 4), xt::all());
        BOOST_TEST(max_diff(gram(block, true), xt::eye<double>(4)) < 1e-10);
    }
}

BOOST_AUTO_TEST_CASE(identity_for_irnn) {
    sg::parameter_store ps;  // float store: values converted
    const sg::parameter sq = ps.add("sq", sg::shape{3, 3}), wide = ps.add("wide", sg::shape{2, 4});
    nn::identity(sq);
    nn::identity(wide, 0.5);
    BOOST_TEST(max_diff(sq.value_as_double(), xt::eye<double>(3)) == 0.0);
    xt::xarray<double> expected = xt::zeros<double>({2, 4});
    expected(0, 0) = expected(1, 1) = 0.5;
    BOOST_TEST(max_diff(wide.value_as_double(), expected) == 0.0);
    BOOST_CHECK_THROW(nn::identity(ps.add("b", sg::shape{3})), sg::shape_error);
}

BOOST_AUTO_TEST_CASE(xavier_bounds_and_variance) {
    sg::parameter_store ps(sg::dtype::f64);
    std::mt19937_64 rng(3);
    const sg::parameter u = ps.add("u", sg::shape{200, 300}), n = ps.add("n", sg::shape{200, 300});
    nn::xavier_uniform(u, rng);
    nn::xavier_normal(n, rng);
    const double bound = std::sqrt(6.0 / 500.0), var = 2.0 / 500.0;
    BOOST_TEST(xt::amax(xt::abs(u.value<double>()))() <= bound);
    BOOST_TEST(xt::amax(xt::abs(u.value<double>()))() > 0.99 * bound);
    BOOST_TEST(std::abs(xt::variance(u.value<double>())() / var - 1.0) < 0.05);
    BOOST_TEST(std::abs(xt::mean(u.value<double>())()) < 0.005);
    BOOST_TEST(std::abs(xt::variance(n.value<double>())() / var - 1.0) < 0.05);
    BOOST_TEST(std::abs(xt::mean(n.value<double>())()) < 0.005);
    nn::xavier_uniform(u, rng, 2.0);  // gain
    BOOST_TEST(xt::amax(xt::abs(u.value<double>()))() > 1.5 * bound);
    BOOST_CHECK_THROW(nn::xavier_uniform(ps.add("b", sg::shape{3}), rng), sg::shape_error);
}

BOOST_AUTO_TEST_CASE(uniform_normal_constant_and_rnn_default) {
    sg::parameter_store ps(sg::dtype::f64);
    std::mt19937_64 rng(4);
    const sg::parameter p = ps.add("p", sg::shape{50, 40});
    nn::uniform(p, 2.0, 3.0, rng);
    BOOST_TEST(xt::amin(p.value<double>())() >= 2.0);
    BOOST_TEST(xt::amax(p.value<double>())() < 3.0);
    nn::normal(p, 1.0, 0.1, rng);
    BOOST_TEST(std::abs(xt::mean(p.value<double>())() - 1.0) < 0.01);
    BOOST_TEST(std::abs(std::sqrt(xt::variance(p.value<double>())()) - 0.1) < 0.01);
    nn::rnn_default(p, 25, rng);
    BOOST_TEST(xt::amax(xt::abs(p.value<double>()))() <= 0.2);
    BOOST_TEST(xt::amax(xt::abs(p.value<double>()))() > 0.19);
    nn::constant(p, 0.25);
    BOOST_TEST(xt::all(xt::equal(p.value<double>(), 0.25)));
    nn::zeros(p);
    BOOST_TEST(xt::all(xt::equal(p.value<double>(), 0.0)));
    BOOST_CHECK_THROW(nn::uniform(p, 1.0, 0.0, rng), sg::value_error);
    BOOST_CHECK_THROW(nn::normal(p, 0.0, -1.0, rng), sg::value_error);
}

BOOST_AUTO_TEST_CASE(lstm_forget_bias_sets_the_second_quarter) {
    sg::parameter_store ps(sg::dtype::f64);
    const sg::parameter b = ps.add("b_ih", xt::xarray<double>(xt::arange<double>(16.0)));
    nn::lstm_forget_bias(b, 1.0);
    for (std::size_t k = 0; k < 16; ++k)
        BOOST_TEST(b.value<double>()(k) == ((k >= 4 && k < 8) ? 1.0 : static_cast<double>(k)));
    BOOST_CHECK_THROW(nn::lstm_forget_bias(ps.add("bad", sg::shape{15}), 1.0), sg::shape_error);
    BOOST_CHECK_THROW(nn::lstm_forget_bias(ps.add("mat", sg::shape{4, 4}), 1.0), sg::shape_error);
}

BOOST_AUTO_TEST_CASE(fans_follow_the_declared_layout) {
    sg::parameter_store ps(sg::dtype::f64);
    // The same 3 inputs and 5 outputs, stored either way.
    const sg::parameter oi = ps.add("oi", sg::shape{5, 3});
    const sg::parameter io = ps.add("io", sg::shape{3, 5}, sg::weight_layout::in_out);
    BOOST_TEST((oi.layout() == sg::weight_layout::out_in));
    BOOST_TEST((io.layout() == sg::weight_layout::in_out));
    BOOST_TEST(nn::fan_in(oi) == 3u);
    BOOST_TEST(nn::fan_out(oi) == 5u);
    BOOST_TEST(nn::fan_in(io) == 3u);
    BOOST_TEST(nn::fan_out(io) == 5u);
    try {
        (void)nn::fan_in(ps.add("v", sg::shape{4}, sg::weight_layout::in_out));
        BOOST_FAIL("expected a shape_error");
    } catch (const sg::shape_error& e) {
        const std::string m = e.what();
        BOOST_TEST(m.find("nn::fan_in: parameter 'v' has shape [4] (expected a matrix [in, out])") != std::string::npos,
                   m);
    }
}

BOOST_AUTO_TEST_CASE(kaiming_and_xavier_bounds_for_both_layouts) {
    sg::parameter_store ps(sg::dtype::f64);
    std::mt19937_64 rng(12);
    // 16 inputs, 64 outputs: [64, 16] by convention, [16, 64] declared in_out; and a [16, 64] matrix
    // by convention (64 inputs), whose kaiming bound is half as wide.
    const sg::parameter oi = ps.add("oi", sg::shape{64, 16});
    const sg::parameter io = ps.add("io", sg::shape{16, 64}, sg::weight_layout::in_out);
    const sg::parameter wide = ps.add("wide", sg::shape{16, 64});
    const double g = std::sqrt(2.0);
    const double k16 = g * std::sqrt(3.0 / 16.0), k64 = g * std::sqrt(3.0 / 64.0);  // 0.6124, 0.3062
    const double x80 = std::sqrt(6.0 / 80.0);                                       // xavier: 0.2739
    auto max_abs = [](const sg::parameter& p) { return xt::amax(xt::abs(p.value<double>()))(); };
    for (const auto& [p, bound] : {std::pair{oi, k16}, std::pair{io, k16}, std::pair{wide, k64}}) {
        nn::kaiming_uniform(p, rng);
        BOOST_TEST(max_abs(p) <= bound, p.name());
        BOOST_TEST(max_abs(p) > 0.99 * bound, p.name());  // 1024 draws reach the edge
        nn::xavier_uniform(p, rng);                       // symmetric in fan_in and fan_out
        BOOST_TEST(max_abs(p) <= x80, p.name());
        BOOST_TEST(max_abs(p) > 0.99 * x80, p.name());
    }
    // kaiming_normal: standard deviation g / sqrt(fan_in) (1024 draws: within 6%).
    nn::kaiming_normal(io, rng, 1.0);
    BOOST_TEST(std::abs(std::sqrt(xt::variance(io.value<double>())()) - 0.25) < 0.015);
    nn::kaiming_normal(wide, rng, 1.0);
    BOOST_TEST(std::abs(std::sqrt(xt::variance(wide.value<double>())()) - 0.125) < 0.0075);
}

BOOST_AUTO_TEST_CASE(orthogonal_per_gate_on_column_blocks_when_in_out) {
    sg::parameter_store ps(sg::dtype::f64);
    std::mt19937_64 r1(2), r2(2);
    const sg::parameter io = ps.add("u", sg::shape{4, 16}, sg::weight_layout::in_out);
    const sg::parameter oi = ps.add("w_hh", sg::shape{16, 4});
    nn::orthogonal_per_gate(io, 4, r1);
    nn::orthogonal_per_gate(oi, 4, r2);
    const auto& u = io.value<double>();
    for (std::size_t g = 0; g < 4; ++g) {
        xt::xarray<double> block = xt::view(u, xt::all(), xt::range(4 * g, 4 * g + 4));
        BOOST_TEST(max_diff(gram(block, false), xt::eye<double>(4)) < 1e-10);
    }
    // The same draws as the [out, in] twin, transposed.
    BOOST_TEST(max_diff(u, xt::transpose(oi.value<double>())) == 0.0);
    try {
        nn::orthogonal_per_gate(ps.add("odd", sg::shape{4, 6}, sg::weight_layout::in_out), 4, r1);
        BOOST_FAIL("expected a shape_error");
    } catch (const sg::shape_error& e) {
        const std::string m = e.what();
        BOOST_TEST(m.find("cannot be cut into 4 equal column blocks") != std::string::npos, m);
    }
}

// A float parameter cannot hold a finite draw beyond FLT_MAX: it became inf (and the model's values
// nan), e.g. examples/gradient_flow --gain 1e40 through nn::normal(w_hh, 0, gain / sqrt(H)). Now
// value_error naming the parameter, with the value left as it was; infinite arguments are refused.
BOOST_AUTO_TEST_CASE(draws_beyond_the_range_of_float_are_refused) {
    sg::parameter_store ps;  // float
    std::mt19937_64 rng(5);
    const sg::parameter w = ps.add("rnn.w_hh", sg::shape{4, 4});
    nn::constant(w, 0.5);
    auto error_of = [](auto&& f) -> std::string {
        try {
            f();
        } catch (const sg::value_error& e) {
            return e.what();
        }
        return "no value_error";
    };
    const std::string big = error_of([&] { nn::normal(w, 0.0, 1e39, rng); });
    BOOST_TEST(big.starts_with("parameter 'rnn.w_hh': assign of "), big);
    BOOST_TEST(big.find("beyond the range of float") != std::string::npos, big);
    BOOST_TEST(xt::all(xt::equal(w.value_as_double(), 0.5)));  // nothing written
    BOOST_TEST(error_of([&] { nn::uniform(w, -1e39, 1e39, rng); }).find("beyond the range of float") !=
               std::string::npos);
    BOOST_TEST(error_of([&] { nn::constant(w, -4e38); }).find("assign of -4e+38") != std::string::npos);
    BOOST_TEST(error_of([&] { nn::normal(w, 0.0, INFINITY, rng); }) ==
               "nn::normal: mean 0.000000, stddev inf for 'rnn.w_hh' (expected finite, stddev >= 0)");
    BOOST_TEST(error_of([&] { nn::uniform(w, 0.0, INFINITY, rng); }) ==
               "nn::uniform: bounds [0.000000, inf) for 'rnn.w_hh' (expected finite a <= b)");
    // Infinities given on purpose are kept; a double parameter holds 1e39.
    nn::constant(w, -INFINITY);
    BOOST_TEST(xt::all(xt::equal(w.value_as_double(), -INFINITY)));
    sg::parameter_store pd(sg::dtype::f64);
    const sg::parameter d = pd.add("d", sg::shape{2});
    nn::constant(d, 1e39);
    BOOST_TEST(d.value_as_double()(0) == 1e39);
}

BOOST_AUTO_TEST_SUITE_END()
