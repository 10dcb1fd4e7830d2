// tape::set_param_grad_hook: called once per parameter leaf, with its final gradient, before the
// sweep reaches earlier nodes (dist::reducer sends gradients from it while backward still runs).
#include <boost/test/unit_test.hpp>

#include <map>
#include <random>
#include <string>
#include <vector>

#include <seqgrad/nn/linear.hpp>
#include <seqgrad/nn/lstm_layer.hpp>
#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
namespace nn = seqgrad::nn;

namespace {

struct net {
    sg::parameter_store ps{sg::dtype::f64};
    nn::embedding emb;
    nn::lstm_cell cell;
    nn::linear out;
    net() : net(std::mt19937_64(3)) {}
    explicit net(std::mt19937_64&& rng)
        : emb(sg::parameter_scope(ps, "emb"), 9, 4, rng),
          cell(sg::parameter_scope(ps, "lstm"), 4, 5, rng),
          out(sg::parameter_scope(ps, "out"), 5, 9, true, rng) {}

    // T = 6 steps of B = 2, time-major.
    sg::expr loss(sg::tape& t) const {
        const std::vector<int> ids = {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3};
        const std::vector<int> targets = {2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4};
        const nn::detail::lstm_sequence seq = nn::detail::lstm_layer(cell)(emb(t, ids), 2);
        const sg::expr logits = sg::matmul_add(out.bias, seq.hidden_all(), sg::T(out.weight));
        return sg::cross_entropy(logits, targets, sg::reduction::mean);
    }
};

struct record {
    std::vector<std::string> order;
    std::map<std::string, xt::xarray<double>> grads;
};

void hook_into(sg::tape& t, record& r) {
    t.set_param_grad_hook([&r](const sg::parameter& p, const void* g) {
        const double* d = static_cast<const double*>(g);
        r.order.push_back(p.name());
        xt::xarray<double> a = p.grad_as_double();  // the parameter's shape
        std::copy(d, d + p.size(), a.begin());
        r.grads[p.name()] = a;
    });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(param_hook)

BOOST_AUTO_TEST_CASE(final_gradients_once_each_latest_use_first) {
    const sg::backward_plan plans[] = {sg::backward_plan{}, sg::truncate_bptt(2, 2), sg::truncate_bptt(2, 4)};
    for (std::size_t k = 0; k < 3; ++k) {
        const sg::backward_plan& plan = plans[k];
        net n;
        sg::tape t(sg::dtype::f64);
        record r;
        hook_into(t, r);
        t.backward(n.loss(t), plan);
        BOOST_TEST(r.order.size() == n.ps.size());  // every parameter once
        for (const sg::parameter& p : n.ps.parameters()) {
            BOOST_TEST_CONTEXT(p.name() << ", plan " << k) {
                BOOST_REQUIRE(r.grads.count(p.name()) == 1u);
                // What the hook saw is what backward ended with, and what the store received.
                BOOST_TEST(r.grads[p.name()] == t.param_grad(p));
                BOOST_TEST(r.grads[p.name()] == p.grad_as_double());
                BOOST_TEST(double(xt::amax(xt::abs(r.grads[p.name()]))()) > 0);
            }
        }
        // The output layer's leaves were created last, so their gradients are final first; the
        // embedding's, created first, last.
        BOOST_TEST(r.order.back() == "emb.weight");
        BOOST_TEST((r.order[0].rfind("out.", 0) == 0 && r.order[1].rfind("out.", 0) == 0));
    }
}

BOOST_AUTO_TEST_CASE(before_clipping_and_without_accumulation) {
    net n;
    sg::tape t(sg::dtype::f64);
    record r;
    hook_into(t, r);
    t.set_accumulate_into_parameters(false);
    t.backward(n.loss(t), sg::clip_global_norm(1e-3));
    // The hook sees the unclipped gradient; the tape keeps the clipped one; the store gets nothing.
    double sq = 0, hook_sq = 0;
    for (const sg::parameter& p : n.ps.parameters()) {
        sq += double(xt::sum(xt::square(t.param_grad(p)))());
        hook_sq += double(xt::sum(xt::square(r.grads[p.name()]))());
        BOOST_TEST(double(xt::amax(xt::abs(p.grad_as_double()))()) == 0.0);
    }
    BOOST_TEST(std::sqrt(sq) == 1e-3, boost::test_tools::tolerance(1e-4));  // clip / (norm + 1e-6)
    BOOST_TEST(std::sqrt(hook_sq) > 1e-2);
}

BOOST_AUTO_TEST_SUITE_END()
