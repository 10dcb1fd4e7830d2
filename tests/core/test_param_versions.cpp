// Parameters written while a tape holds them: every write bumps the parameter's version, and the
// tape refuses stale reads with a graph_error naming the parameter (before: a use after free or
// forward values from the old weights with backward using the new ones).
#include <boost/test/unit_test.hpp>

#include <unistd.h>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>

#include <seqgrad/nn/init.hpp>
#include <seqgrad/optim/optim.hpp>
#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;

namespace {
// Runs f, which must throw graph_error mentioning `name` and "modified".
template <class F>
void expect_stale(F&& f, const std::string& name) {
    try {
        f();
        BOOST_FAIL("expected graph_error for a stale parameter '" + name + "'");
    } catch (const sg::graph_error& e) {
        const std::string msg = e.what();
        BOOST_TEST_INFO(msg);
        BOOST_TEST(msg.find("'" + name + "'") != std::string::npos);
        BOOST_TEST(msg.find("modified") != std::string::npos);
    }
}
}  // namespace

BOOST_AUTO_TEST_SUITE(param_versions)

BOOST_AUTO_TEST_CASE(assign_keeps_storage_and_bumps_version) {
    sg::parameter_store ps;
    auto w = ps.add("w", xt::xarray<double>{1.0, 2.0, 3.0});
    const float* before = w.value<float>().data();
    const auto v0 = w.version();
    w.assign(xt::xarray<double>{4.0, 5.0, 6.0});
    BOOST_TEST(w.value<float>().data() == before);
    BOOST_TEST(w.version() == v0 + 1);
    BOOST_TEST(w.value<float>()(2) == 6.0f);
}

BOOST_AUTO_TEST_CASE(assign_after_param_is_caught_everywhere) {
    sg::parameter_store ps;
    auto w = ps.add("enc.w", xt::xarray<double>{1.0, 2.0, 3.0});
    sg::tape t;
    auto leaf = t.param(w);
    auto y = sg::sum(sg::tanh(leaf));
    const double y0 = t.item(y);
    w.assign(xt::xarray<double>{0.0, 0.0, 0.0});
    expect_stale([&] { t.param(w); }, "enc.w");
    expect_stale([&] { sg::tanh(leaf); }, "enc.w");
    expect_stale([&] { t.value(leaf); }, "enc.w");
    expect_stale([&] { t.backward(y); }, "enc.w");
    BOOST_TEST(t.item(y) == y0);             // values the forward computed stay readable
    BOOST_TEST(w.grad<float>()(0) == 0.0f);  // the refused backward added nothing
    t.clear();                               // a cleared tape reads the new value
    auto z = sg::sum(sg::tanh(t.param(w)));
    BOOST_TEST(t.item(z) == 0.0);
    t.backward(z);
    BOOST_TEST(w.grad<float>()(0) == 1.0f);
}

BOOST_AUTO_TEST_CASE(initialisers_and_conversion_are_caught) {
    sg::parameter_store ps;
    auto w = ps.add("w", sg::shape{2, 3});
    std::mt19937_64 rng(1);
    {
        sg::tape t;
        auto y = sg::sum(t.param(w));
        sg::nn::xavier_uniform(w, rng);
        expect_stale([&] { t.backward(y); }, "w");
    }
    {
        sg::tape t;
        auto leaf = t.param(w);
        auto y = sg::sum(leaf);
        ps.to(sg::dtype::f64);  // replaces the array the leaf pointed into
        expect_stale([&] { sg::tanh(leaf); }, "w");
        expect_stale([&] { t.backward(y); }, "w");
        expect_stale([&] { t.accumulate_param_grads(); }, "w");
    }
}

BOOST_AUTO_TEST_CASE(load_after_building_the_graph_is_caught) {
    const auto path = (std::filesystem::temp_directory_path() /
                       ("seqgrad_param_versions_" + std::to_string(::getpid()) + ".npz"))
                          .string();
    sg::parameter_store src;
    src.add("w", xt::xarray<double>{7.0, 8.0});
    sg::save_npz(src, path);
    sg::parameter_store ps;
    auto w = ps.add("w", xt::xarray<double>{1.0, 2.0});
    sg::tape t;
    auto y = sg::sum(t.param(w) * t.param(w));
    sg::load_npz(ps, path);
    std::filesystem::remove(path);
    BOOST_TEST(w.value<float>()(0) == 7.0f);
    expect_stale([&] { t.backward(y); }, "w");
}

BOOST_AUTO_TEST_CASE(optimiser_steps_with_a_new_tape_per_step_train) {
    // Minimise sum((w - 3)^2) with sgd: a tape per step, as every training loop does.
    sg::parameter_store ps;
    auto w = ps.add("w", xt::xarray<double>{0.0, 1.0});
    sg::optim::sgd opt(ps, 0.25);
    sg::tape t;
    double loss = 0;
    for (int step = 0; step < 20; ++step) {
        t.clear();
        auto d = t.param(w) - 3.0;
        auto l = sg::sum(d * d);
        loss = t.item(l);
        t.backward(l);
        opt.step();
    }
    BOOST_TEST(loss < 1e-6);
    // A tape still alive across a step refuses backward: its forward used the old weights.
    sg::tape old;
    auto l = sg::sum(old.param(w) * 2.0);
    old.backward(l);
    opt.step();
    expect_stale([&] { old.backward(l); }, "w");
    BOOST_TEST(old.item(l) == old.item(l));  // the loss value itself is still readable
}

BOOST_AUTO_TEST_CASE(gradcheck_leaves_outer_tapes_stale_not_dangling) {
    sg::parameter_store ps;
    auto w = ps.add("w", xt::xarray<double>{0.5, -0.5});
    sg::tape outer;
    auto leaf = outer.param(w);
    auto r = sg::gradcheck(ps, [&](sg::tape& t) { return sg::sum(sg::tanh(t.param(w))); });
    BOOST_TEST(r.passed);
    expect_stale([&] { outer.value(leaf); }, "w");
}

// to(f32) turned a finite double beyond float's range into inf without a word (assign refuses
// it). It is refused, naming the parameter, the value and its entry, before any parameter of the
// store is converted.
BOOST_AUTO_TEST_CASE(to_f32_refuses_a_value_beyond_float_and_converts_nothing) {
    sg::parameter_store ps(sg::dtype::f64);
    auto a = ps.add("a", xt::xarray<double>{0.25, -1.5});
    auto big = ps.add("layer.big", xt::xarray<double>{1.0, -1e39, 3.0});
    const auto va = a.version(), vb = big.version();
    try {
        ps.to(sg::dtype::f32);
        BOOST_ERROR("to(f32) of -1e39 did not throw");
    } catch (const sg::value_error& e) {
        BOOST_TEST(std::string(e.what()) ==
                   "parameter 'layer.big': to(f32) of -1e+39 (entry 1), beyond the range of float (expected |x| <= "
                   "3.40282e+38)");
    }
    BOOST_TEST((ps.scalar_type() == sg::dtype::f64 && a.scalar_type() == sg::dtype::f64));
    BOOST_TEST((big.scalar_type() == sg::dtype::f64));
    BOOST_TEST((a.value<double>() == xt::xarray<double>{0.25, -1.5}));
    BOOST_TEST((big.value<double>() == xt::xarray<double>{1.0, -1e39, 3.0}));
    BOOST_TEST((a.version() == va && big.version() == vb));
    // Infinities and NaN are kept, as assign keeps them; FLT_MAX itself fits.
    big.assign(xt::xarray<double>{std::numeric_limits<double>::infinity(), 3.4028234663852886e38, -2.0});
    ps.to(sg::dtype::f32);
    BOOST_TEST(std::isinf(big.value<float>()(0)));
    BOOST_TEST(big.value<float>()(1) == std::numeric_limits<float>::max());
}

BOOST_AUTO_TEST_SUITE_END()
