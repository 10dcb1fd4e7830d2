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

#include <string>

#include "engine_diff_compare.hpp"

using namespace engine_diff;

namespace {

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
        collect(r, t, b, env.ps.parameters(), opt);
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

}  // namespace

BOOST_AUTO_TEST_SUITE(engine_diff_random_graphs)

// SEQGRAD_ENGINE_DIFF_SEEDS=N runs N seeds (the default 2,000 take about half a second), from
// SEQGRAD_ENGINE_DIFF_FIRST_SEED if set.
BOOST_AUTO_TEST_CASE(optimised_equals_plain_on_random_graphs) {
    const std::uint64_t default_seeds = 2000;
    const seed_range seeds(default_seeds);
    const std::size_t threads = sg::num_threads();
    sg::tape::optimization_counts total;
    std::size_t compared = 0;
    for (std::uint64_t seed = seeds.first; seed <= seeds.last(); ++seed) {
        const Cfg c = make_cfg(seed);
        sg::set_num_threads(static_cast<std::size_t>(c.threads));
        const result a = run(c, seed, false), b = run(c, seed, true);
        const std::size_t n = compare(a, b, c.f32, "seed " + std::to_string(seed));
        if (a.err.empty() && b.err.empty()) add(total, b.counts);
        compared += n;
    }
    sg::set_num_threads(threads);
    if (seeds.count < default_seeds) return;
    // The optimisations were taken, not only the plain paths compared.
    BOOST_TEST(compared > seeds.count * 20);
    BOOST_TEST(total.activations_folded > 0u);
    BOOST_TEST(total.table_products > 0u);
    BOOST_TEST(total.steps_chained > 0u);
    BOOST_TEST(total.products_batched > 0u);
}

BOOST_AUTO_TEST_SUITE_END()
