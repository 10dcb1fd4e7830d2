// Every registered op, checked from its own samples: central differences in double against the
// tape's gradients. Adding an op to the registry adds it here; an op without samples fails.
#include <boost/test/unit_test.hpp>

#include <random>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;

namespace {
xt::xarray<double> sample_values(const sg::shape& s, sg::domain d, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    xt::xarray<double> v = xt::zeros<double>(s.to_vector());
    for (auto& x : v) {
        x = u(rng);
        if (d == sg::domain::positive) x = 0.5 + std::abs(x) * 1.5;
        if (d == sg::domain::away_from_zero) x = (x < 0 ? -0.2 : 0.2) + x * 0.8;
    }
    return v;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(registry)

BOOST_AUTO_TEST_CASE(every_op_passes_gradcheck_on_its_samples) {
    std::mt19937_64 rng(42);
    std::size_t checked_ops = 0;
    for (const sg::op_def* op : sg::op_registry::instance().all()) {
        BOOST_TEST_CONTEXT("op " << op->name) {
            BOOST_TEST(!op->samples.empty(), "op '" << op->name << "' has no samples: add .sample(...) to its registration");
            for (std::size_t si = 0; si < op->samples.size(); ++si) {
                const sg::op_sample& s = op->samples[si];
                BOOST_TEST_CONTEXT("sample " << si) {
                    sg::parameter_store inputs(sg::dtype::f64);
                    std::vector<sg::parameter> ps;
                    for (std::size_t i = 0; i < s.inputs.size(); ++i) {
                        const auto d = i < s.domains.size() ? s.domains[i] : sg::domain::any;
                        ps.push_back(inputs.add("x" + std::to_string(i), sample_values(s.inputs[i], d, rng)));
                    }
                    sg::attrs at = s.at;
                    at.ints = s.ints;
                    xt::xarray<double> weights;
                    auto loss = [&](sg::tape& t) {
                        std::vector<sg::expr> xs;
                        for (auto& p : ps) xs.push_back(t.param(p));
                        sg::expr y = t.apply(*op, xs, at);
                        if (weights.size() != y.shape().size()) weights = sample_values(y.shape(), sg::domain::any, rng);
                        // Random weights make every output entry matter (sum(softmax) alone is constant).
                        return sg::sum(y * t.input(weights));
                    };
                    if (op->constant_output) {
                        sg::tape t(sg::dtype::f64);
                        auto y = loss(t);
                        t.backward(y);
                        for (auto& p : ps) BOOST_TEST(xt::all(xt::equal(p.grad<double>(), 0.0)));
                        continue;
                    }
                    if (!op->differentiable()) {
                        sg::tape t(sg::dtype::f64);
                        BOOST_CHECK_THROW(t.backward(loss(t)), sg::graph_error);
                        continue;
                    }
                    auto report = sg::gradcheck(inputs, loss);
                    BOOST_TEST(report.passed, "" << report);
                    BOOST_TEST(report.checked > 0u);
                }
            }
            ++checked_ops;
        }
    }
    BOOST_TEST(checked_ops >= 33u);  // the built-in families register 33 ops
}

BOOST_AUTO_TEST_SUITE_END()
