// Every op's saves declaration checked against what its backward really reads: with
// tape::set_poison_released, every value that no backward reads by the declarations is NaN when
// backward runs, so an op whose backward reads one more value than it declared gets NaN (or other)
// gradients. Each sample's gradients must equal, bit for bit, those of a tape without poison.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;

namespace {
xt::xarray<double> values_in(const sg::shape& s, sg::domain d, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    xt::xarray<double> v = xt::zeros<double>(s.to_vector());
    for (auto& x : v) {
        x = u(rng);
        if (d == sg::domain::positive) x = 0.5 + std::abs(x) * 1.5;
        if (d == sg::domain::away_from_zero) x = (x < 0 ? -0.2 : 0.2) + x * 0.8;
    }
    return v;
}

// Gradients of sum((op(xs) + 0) * w) with respect to the inputs: the add in between saves
// nothing, so the op's output is kept only if the op itself says it reads it.
std::vector<xt::xarray<double>> input_grads(const sg::op_def& op, const sg::op_sample& s,
                                            const std::vector<xt::xarray<double>>& xs, const xt::xarray<double>& w,
                                            bool poison) {
    sg::tape t(sg::dtype::f64);
    t.set_poison_released(poison);
    std::vector<sg::expr> in;
    for (const auto& x : xs) in.push_back(t.input(x, true));
    sg::attrs at = s.at;
    at.ints = s.ints;
    sg::expr y = t.apply(op, in, at);
    sg::expr z = t.apply(sg::find_op("add"), {y, t.constant(0.0)});
    t.backward(sg::sum(z * t.input(w)));
    std::vector<xt::xarray<double>> g;
    for (const auto& e : in) g.push_back(t.grad(e));
    return g;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(saves)

BOOST_AUTO_TEST_CASE(every_op_reads_in_backward_only_what_it_declares) {
    BOOST_REQUIRE(sg::find_op("add").saved == sg::saves::nothing);
    std::mt19937_64 rng(7);
    std::size_t checked = 0;
    for (const sg::op_def* op : sg::op_registry::instance().all()) {
        if (!op->differentiable() || op->constant_output) continue;
        for (const sg::op_sample& s : op->samples) {
            std::vector<xt::xarray<double>> xs;
            for (std::size_t i = 0; i < s.inputs.size(); ++i)
                xs.push_back(values_in(s.inputs[i], i < s.domains.size() ? s.domains[i] : sg::domain::any, rng));
            sg::attrs at = s.at;
            at.ints = s.ints;
            std::vector<sg::shape> shapes(s.inputs.begin(), s.inputs.end());
            const xt::xarray<double> w = values_in(op->infer_shape(*op, shapes, at), sg::domain::any, rng);
            const auto plain = input_grads(*op, s, xs, w, false);
            const auto poisoned = input_grads(*op, s, xs, w, true);
            BOOST_TEST_CONTEXT("op " << op->name << " (declares saves " << static_cast<int>(op->saved) << ")") {
                for (std::size_t i = 0; i < plain.size(); ++i) {
                    BOOST_TEST(std::isfinite(xt::sum(plain[i])()));
                    BOOST_TEST(std::memcmp(plain[i].data(), poisoned[i].data(), plain[i].size() * sizeof(double)) == 0);
                }
            }
        }
        ++checked;
    }
    BOOST_TEST(checked >= 45u);
}

// An op that declares saves::nothing but reads its input in backward: the poison mode catches it.
BOOST_AUTO_TEST_CASE(an_op_that_reads_what_it_did_not_declare_is_caught) {
    static const sg::op_def& lying = sg::register_op(sg::op_builder("test_lying_square")
                                                         .shape(sg::same_shape)
                                                         .saves(sg::saves::nothing)
                                                         .forward([](auto& c) {
                                                             auto x = c.in(0);
                                                             auto y = c.out();
                                                             for (std::size_t i = 0; i < y.size(); ++i)
                                                                 y[i] = x[i] * x[i];
                                                         })
                                                         .backward([](auto& c) {
                                                             auto x = c.in(0);
                                                             auto g = c.grad_out();
                                                             c.emit(0, [&](std::size_t i) { return 2 * x[i] * g[i]; });
                                                         })
                                                         .sample({{3}}));
    for (bool poison : {false, true}) {
        sg::tape t(sg::dtype::f64);
        t.set_poison_released(poison);
        auto x = t.input(xt::xarray<double>{1.0, 2.0, 3.0}, true);
        t.backward(sg::sum(sg::apply(lying, {x})));
        const auto g = t.grad(x);
        if (!poison) BOOST_TEST(g(2) == 6.0);
        else BOOST_TEST(std::isnan(g(2)));
    }
}

BOOST_AUTO_TEST_SUITE_END()
