#pragma once
// One seeded graph's results on the plain and on the optimised tape, and their comparison, for
// test_engine_diff.cpp and test_engine_diff_families.cpp: the loss, every input's and parameter's
// gradient and tape::grad of every recorded node must agree (double 1e-10, float 1e-4, relative to
// the largest gradient), and an error must be the same on both. tape::grad may refuse, on the
// optimised tape only, a lookup whose products' gradients went to the table (it says so); such
// nodes are skipped.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine_diff_graphs.hpp"

namespace engine_diff {

struct result {
    double loss = 0;
    std::vector<A> grads;  // inputs, nodes, parameters; an empty one: refused (see above)
    std::vector<std::string> names;
    std::string err;
    sg::tape::optimization_counts counts;
};

// The gradients after backward on t: b's inputs, b's recorded nodes, then params.
inline void collect(result& r, const sg::tape& t, const Builder& b, const std::vector<sg::parameter>& params,
                    bool opt) {
    r.counts = t.optimizations();
    for (const sg::expr& e : b.inputs) {
        r.grads.push_back(t.grad(e));
        r.names.push_back(t.describe(e.id()));  // "input n3"
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
    for (const sg::parameter& p : params) {
        r.grads.push_back(p.grad_as_double());
        r.names.push_back("parameter " + p.name());
    }
}

// Largest difference, a NaN on both sides counting as equal (a random graph may take sqrt or log
// of a negative value), on one side only as infinitely different.
inline double max_diff_nan(const A& a, const A& b) {
    double d = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double x = a.data()[i], y = b.data()[i];
        if (std::isnan(x) && std::isnan(y)) continue;
        d = std::max(d, std::isnan(x) || std::isnan(y) ? INFINITY : std::abs(x - y));
    }
    return d;
}

// Checks plain run a against optimised run b; every message starts with what (the seed, and
// what reproduces the graph). Returns the number of gradients compared.
inline std::size_t compare(const result& a, const result& b, bool f32, const std::string& what) {
    BOOST_TEST(a.err == b.err, what << ": plain tape threw '" << a.err << "', optimised '" << b.err << "'");
    if (!a.err.empty() || !b.err.empty()) return 0;
    const double tol = f32 ? 1e-4 : 1e-10;
    double scale = 1;
    for (const A& g : a.grads)
        for (const double v : g)
            if (std::isfinite(v)) scale = std::max(scale, std::abs(v));
    BOOST_TEST(max_diff_nan(A{a.loss}, A{b.loss}) <= tol * std::max(1.0, std::abs(a.loss)),
               what << ": loss " << a.loss << " plain, " << b.loss << " optimised");
    BOOST_TEST(a.grads.size() == b.grads.size(), what << ": " << a.grads.size() << " gradients vs " << b.grads.size());
    if (a.grads.size() != b.grads.size()) return 0;
    std::size_t compared = 0;
    for (std::size_t i = 0; i < a.grads.size(); ++i) {
        if (a.grads[i].size() == 0 || b.grads[i].size() == 0) continue;
        BOOST_TEST(a.grads[i].shape() == b.grads[i].shape(), what << ": " << a.names[i] << " shapes differ");
        if (a.grads[i].shape() != b.grads[i].shape()) continue;
        const double d = max_diff_nan(a.grads[i], b.grads[i]);
        BOOST_TEST(d <= tol * scale, what << ": gradient of " << a.names[i] << " differs by " << d);
        ++compared;
    }
    return compared;
}

inline void add(sg::tape::optimization_counts& total, const sg::tape::optimization_counts& c) {
    total.activations_folded += c.activations_folded;
    total.table_products += c.table_products;
    total.steps_chained += c.steps_chained;
    total.products_batched += c.products_batched;
}

// The seeds to run, first to last: SEQGRAD_ENGINE_DIFF_SEEDS=N runs N instead of default_count,
// from SEQGRAD_ENGINE_DIFF_FIRST_SEED (1 unless set; with SEEDS=1, one failing seed alone).
struct seed_range {
    std::uint64_t first = 1, count = 0;
    std::uint64_t last() const { return first + count - 1; }
    explicit seed_range(std::uint64_t default_count) : count(default_count) {
        if (const char* n = std::getenv("SEQGRAD_ENGINE_DIFF_SEEDS")) count = std::strtoull(n, nullptr, 10);
        if (const char* f = std::getenv("SEQGRAD_ENGINE_DIFF_FIRST_SEED")) first = std::strtoull(f, nullptr, 10);
    }
};

}  // namespace engine_diff
