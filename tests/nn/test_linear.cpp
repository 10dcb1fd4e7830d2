// Linear layers and embeddings: hand-computed values, shapes, errors and gradient checks.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <seqgrad/nn/linear.hpp>
#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;
namespace nn = seqgrad::nn;

BOOST_AUTO_TEST_SUITE(linear)

BOOST_AUTO_TEST_CASE(linear_by_hand) {
    sg::parameter_store ps(sg::dtype::f64);
    nn::linear lin(sg::parameter_scope(ps, "out"), 2, 3);
    BOOST_TEST(lin.weight.name() == "out.weight");
    BOOST_TEST(lin.bias.name() == "out.bias");
    BOOST_TEST((lin.weight.shape() == sg::shape{3, 2}));
    lin.weight.assign(arr({3, 2}, {1.0, 2.0, 0.0, -1.0, 0.5, 0.5}));
    lin.bias.assign(arr({3}, {0.1, 0.2, 0.3}));
    // x W^T + b:  [1, 1]  -> [1 + 2, -1, 0.5 + 0.5] + b = [3.1, -0.8, 1.3]
    //             [2, -1] -> [2 - 2,  1, 1.0 - 0.5] + b = [0.1,  1.2, 0.8]
    sg::tape t(sg::dtype::f64);
    const sg::expr y = lin(t.input(arr({2, 2}, {1.0, 1.0, 2.0, -1.0})));
    BOOST_TEST(all_close(t.value(y), arr({2, 3}, {3.1, -0.8, 1.3, 0.1, 1.2, 0.8}), 1e-15));
    // Any leading dimensions: [T, B, in] -> [T, B, out] row by row, and [in] -> [out].
    const sg::expr y3 = lin(t.input(arr({2, 1, 2}, {1.0, 1.0, 2.0, -1.0})));
    BOOST_TEST((y3.shape() == sg::shape{2, 1, 3}));
    xt::xarray<double> v3 = t.value(y3);
    v3.reshape({2, 3});
    BOOST_TEST(all_close(v3, t.value(y), 0.0));
    const sg::expr y1 = lin(t.input(arr({2}, {2.0, -1.0})));
    BOOST_TEST(all_close(t.value(y1), arr({3}, {0.1, 1.2, 0.8}), 1e-15));
}

BOOST_AUTO_TEST_CASE(linear_without_bias_and_default_init) {
    sg::parameter_store ps(sg::dtype::f64);
    nn::linear lin(sg::parameter_scope(ps, "proj"), 16, 5, false);
    BOOST_TEST(!lin.has_bias());
    BOOST_TEST(ps.size() == 1u);
    const double k = 1.0 / std::sqrt(16.0);
    BOOST_TEST(xt::amax(xt::abs(lin.weight.value<double>()))() <= k);
    BOOST_TEST(xt::amax(xt::abs(lin.weight.value<double>()))() > 0.5 * k);
    lin.weight.assign(xt::ones<double>({5, 16}));
    sg::tape t(sg::dtype::f64);
    const xt::xarray<double> eights = xt::ones<double>({1, 5}) * 8.0;  // 16 * 0.5
    BOOST_TEST(all_close(t.value(lin(t.constant(0.5, {1, 16}))), eights, 0.0));
}

BOOST_AUTO_TEST_CASE(linear_shape_error_names_layer_and_shapes) {
    sg::parameter_store ps;
    nn::linear lin(sg::parameter_scope(ps, "dec").sub("out"), 4, 3);
    sg::tape t;
    try {
        lin(t.constant(0.0, {2, 5}));
        BOOST_FAIL("expected a shape_error");
    } catch (const sg::shape_error& e) {
        const std::string m = e.what();
        BOOST_TEST(m.find("linear 'dec.out'") != std::string::npos, m);
        BOOST_TEST(m.find("[2, 5]") != std::string::npos, m);
        BOOST_TEST(m.find("[..., 4]") != std::string::npos, m);
    }
    BOOST_CHECK_THROW(lin(t.constant(1.0)), sg::shape_error);
    BOOST_CHECK_THROW(nn::linear(sg::parameter_scope(ps, "zero"), 0, 3), sg::value_error);
}

BOOST_AUTO_TEST_CASE(embedding_lookup_and_errors) {
    sg::parameter_store ps(sg::dtype::f64);
    nn::embedding emb(sg::parameter_scope(ps, "emb"), 4, 2);
    BOOST_TEST(emb.weight.name() == "emb.weight");
    BOOST_TEST((emb.weight.shape() == sg::shape{4, 2}));
    emb.weight.assign(arr({4, 2}, {0, 1, 10, 11, 20, 21, 30, 31}));
    sg::tape t(sg::dtype::f64);
    const std::vector<int> ids{3, 0, 3};
    const sg::expr e = emb(t, ids);
    BOOST_TEST(all_close(t.value(e), arr({3, 2}, {30, 31, 0, 1, 30, 31}), 0.0));
    // Repeated ids add up: d/dtable sum(e * w) puts w's rows into rows 3 (twice) and 0.
    t.backward(sg::sum(e * t.input(arr({3, 2}, {1, 2, 3, 4, 5, 6}))));
    BOOST_TEST(all_close(emb.weight.grad<double>(), arr({4, 2}, {3, 4, 0, 0, 0, 0, 6, 8}), 0.0));
    const std::vector<int> bad{1, 4}, negative{-1};
    try {
        emb(t, bad);
        BOOST_FAIL("expected a value_error");
    } catch (const sg::value_error& ex) {
        const std::string m = ex.what();
        BOOST_TEST(m.find("embedding 'emb.weight' [4, 2]: id 4 at position 1") != std::string::npos, m);
    }
    BOOST_CHECK_THROW(emb(t, negative), sg::value_error);
}

BOOST_AUTO_TEST_CASE(embedding_default_init_is_standard_normal) {
    sg::parameter_store ps(sg::dtype::f64);
    nn::embedding emb(sg::parameter_scope(ps, "emb"), 100, 50);
    const auto& v = emb.weight.value<double>();
    const double mean = xt::mean(v)(), var = xt::variance(v)();
    BOOST_TEST(std::abs(mean) < 0.05);
    BOOST_TEST(std::abs(var - 1.0) < 0.1);
}

BOOST_AUTO_TEST_CASE(gradcheck_linear_and_embedding) {
    std::mt19937_64 rng(5);
    sg::parameter_store model(sg::dtype::f64), data(sg::dtype::f64);
    nn::embedding emb(sg::parameter_scope(model, "emb"), 5, 3, rng);
    nn::linear lin(sg::parameter_scope(model, "lin"), 3, 4, true, rng);
    nn::linear lin2(sg::parameter_scope(model, "lin2"), 4, 2, false, rng);
    const sg::parameter x = data.add("x", random_array({2, 3, 3}, rng));
    const xt::xarray<double> w = random_array({2, 3, 2}, rng), w2 = random_array({4, 2}, rng);
    const std::vector<int> ids{4, 1, 4, 0};
    sg::parameter_store* stores[] = {&model, &data};
    const auto report = sg::gradcheck(stores, [&](sg::tape& t) {
        const sg::expr seq = lin2(sg::tanh(lin(t.param(x))));  // rank 3 through both layers
        const sg::expr looked_up = lin2(lin(emb(t, ids)));
        return sg::sum(seq * t.input(w)) + sg::sum(sg::square(looked_up) * t.input(w2));
    });
    BOOST_TEST(report.passed, "" << report);
    BOOST_TEST(report.checked == 15u + 16u + 8u + 18u);
}

BOOST_AUTO_TEST_SUITE_END()
