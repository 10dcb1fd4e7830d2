// The graph optimisations against the plain graph on random graphs (engine_diff_graphs.hpp): for
// each seed the same graph on a tape with the optimisations off and on, the same backward plan;
// the loss, every input's and parameter's gradient and tape::grad of every recorded node must
// agree (double 1e-10, float 1e-4, relative to the largest gradient), and an error must be the
// same on both. tape::grad may refuse, on the optimised tape only, a lookup whose products'
// gradients went to the table (it says so); such nodes are skipped. 13,000 seeds ran clean when
// this was written (after fixing what the generator found: activations folded twice into one
// input or into a broadcasting reader, refolds under overlapping windows, state gradients of the
// fused layer, partial lookup gradients); the default run takes 2,000.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine_diff_graphs.hpp"

using namespace engine_diff;

namespace {

struct result {
    double loss = 0;
    std::vector<A> grads;  // inputs, nodes, parameters; an empty one: refused (see above)
    std::vector<std::string> names;
    std::string err;
    sg::tape::optimization_counts counts;
};

result run(const Cfg& c, std::uint64_t seed, bool opt) {
    result r;
    Env env(c, seed);
    sg::tape t(c.f32 ? sg::dtype::f32 : sg::dtype::f64);
    t.set_optimize(opt);
    try {
        if (c.plan == 6) t.set_plan(sg::checkpoint_bptt(c.seg));
        Builder b(t, env, c, seed);
        const sg::expr loss = b.build();
        r.loss = t.item(loss);
        t.backward(loss, plan_of(c));
        r.counts = t.optimizations();
        for (std::size_t i = 0; i < b.inputs.size(); ++i) {
            r.grads.push_back(t.grad(b.inputs[i]));
            r.names.push_back("input " + t.describe(b.inputs[i].id()));
        }
        for (const sg::expr& e : b.all) {
            try {
                r.grads.push_back(t.has_grad(e) ? t.grad(e) : A(xt::zeros<double>(e.shape().to_vector())));
            } catch (const sg::graph_error&) {
                if (!opt) throw;
                r.grads.push_back(A(xt::zeros<double>({std::size_t(0)})));
            }
            r.names.push_back("node " + t.describe(e.id()));
        }
        for (const sg::parameter& p : env.ps.parameters()) {
            r.grads.push_back(p.grad_as_double());
            r.names.push_back("parameter " + p.name());
        }
    } catch (const std::exception& ex) {
        r.err = ex.what();
    }
    return r;
}

Cfg make_cfg(std::uint64_t seed) {
    Rng r(seed + 999);
    Cfg c;
    c.B = 1 + r.I(3);
    const std::size_t hs[] = {2, 3, 4, 4, 6, 8};
    c.H = hs[r.I(6)];
    const std::size_t is[] = {2, 3, 8, 8, 9};  // 8 and 9: inputs wide enough for batched products
    c.I = is[r.I(5)];
    c.T = 1 + r.I(7);
    c.V = 2 + r.I(4);
    c.mode = r.I(5);
    c.cellkind = r.I(4);
    c.f32 = r.P(0.25);
    c.threads = r.P(0.5) ? 1 : 2;
    c.plan = r.P(0.4) ? 0 : r.I(9);
    c.k1 = 1 + r.I(3);
    c.k2 = c.k1 + r.I(3);
    c.seg = 1 + r.I(3);
    c.cellseed = r.g();
    return c;
}

// Largest difference, a NaN on both sides counting as equal (a random graph may take sqrt or log
// of a negative value), on one side only as infinitely different.
double max_diff_nan(const A& a, const A& b) {
    double d = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double x = a.data()[i], y = b.data()[i];
        if (std::isnan(x) && std::isnan(y)) continue;
        d = std::max(d, std::isnan(x) || std::isnan(y) ? INFINITY : std::abs(x - y));
    }
    return d;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(engine_diff_random_graphs)

// SEQGRAD_ENGINE_DIFF_SEEDS=N runs N seeds (the default 2,000 take about a second).
BOOST_AUTO_TEST_CASE(optimised_equals_plain_on_random_graphs) {
    const char* env = std::getenv("SEQGRAD_ENGINE_DIFF_SEEDS");
    const std::uint64_t seeds = env ? std::strtoull(env, nullptr, 10) : 2000;
    const std::size_t threads = sg::num_threads();
    sg::tape::optimization_counts total;
    std::size_t compared = 0;
    for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
        const Cfg c = make_cfg(seed);
        sg::set_num_threads(static_cast<std::size_t>(c.threads));
        const result a = run(c, seed, false), b = run(c, seed, true);
        BOOST_TEST(a.err == b.err, "seed " << seed);
        if (!a.err.empty() || !b.err.empty()) continue;
        total.activations_folded += b.counts.activations_folded;
        total.table_products += b.counts.table_products;
        total.steps_chained += b.counts.steps_chained;
        total.products_batched += b.counts.products_batched;
        const double tol = c.f32 ? 1e-4 : 1e-10;
        double scale = 1;
        for (const A& g : a.grads)
            for (const double v : g)
                if (std::isfinite(v)) scale = std::max(scale, std::abs(v));
        BOOST_TEST(max_diff_nan(A{a.loss}, A{b.loss}) <= tol * std::max(1.0, std::abs(a.loss)), "seed " << seed);
        BOOST_TEST_REQUIRE(a.grads.size() == b.grads.size(), "seed " << seed);
        for (std::size_t i = 0; i < a.grads.size(); ++i) {
            if (a.grads[i].size() == 0 || b.grads[i].size() == 0) continue;
            BOOST_TEST_REQUIRE(a.grads[i].shape() == b.grads[i].shape(), "seed " << seed << ": " << a.names[i]);
            const double d = max_diff_nan(a.grads[i], b.grads[i]);
            BOOST_TEST(d <= tol * scale, "seed " << seed << ": " << a.names[i] << " differs by " << d);
            ++compared;
        }
    }
    sg::set_num_threads(threads);
    // The optimisations were taken, not only the plain paths compared.
    BOOST_TEST(compared > seeds * 20);
    BOOST_TEST(total.activations_folded > 0u);
    BOOST_TEST(total.table_products > 0u);
    BOOST_TEST(total.steps_chained > 0u);
    BOOST_TEST(total.products_batched > 0u);
}

BOOST_AUTO_TEST_SUITE_END()
