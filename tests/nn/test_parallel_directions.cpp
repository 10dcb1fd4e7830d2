// The two directions of a bidirectional layer are independent groups: backward sweeps them as
// separate passes (concurrently with 2 threads) and sums their shared gradients in group order.
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <random>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
using A = xt::xarray<double>;

namespace {
struct fixture {
    sg::parameter_store ps{sg::dtype::f64};
    nn::lstm_cell fwd{sg::parameter_scope(ps, "fwd"), 3, 4};
    nn::gru_cell bwd{sg::parameter_scope(ps, "bwd"), 3, 5};
    std::vector<A> xs, rs;
    fixture() {
        std::mt19937_64 rng(11);
        std::normal_distribution<double> d(0.0, 1.0);
        for (int t = 0; t < 9; ++t) {
            A x = xt::zeros<double>({2, 3}), r = xt::zeros<double>({2, 9});
            for (auto& v : x) v = d(rng);
            for (auto& v : r) v = d(rng);
            xs.push_back(x);
            rs.push_back(r);
        }
    }
    // loss = sum_t sum(concat(h_fwd_t, h_bwd_t) * r_t)
    sg::expr loss(sg::tape& t, const std::vector<sg::expr>& outs) {
        sg::expr l = t.constant(0.0);
        for (std::size_t k = 0; k < outs.size(); ++k) l = l + sg::sum(outs[k] * t.input(rs[k]));
        return l;
    }
    std::vector<A> grads() {
        std::vector<A> g;
        for (auto& p : ps.parameters()) g.push_back(p.grad<double>());
        return g;
    }
};
}  // namespace

BOOST_AUTO_TEST_SUITE(parallel_directions)

BOOST_AUTO_TEST_CASE(bidirectional_backward_runs_the_directions_as_parallel_passes) {
    fixture f;
    auto grouped = [&](std::size_t threads, sg::backward_stats& st) {
        sg::set_num_threads(threads);
        f.ps.zero_grad();
        sg::tape t(sg::dtype::f64);
        std::vector<sg::expr> xs;
        for (auto& x : f.xs) xs.push_back(t.input(x));
        nn::bidirectional<nn::lstm_cell, nn::gru_cell> layer{f.fwd, f.bwd};
        auto r = layer(t, std::span<const sg::expr>(xs));
        st = t.backward(f.loss(t, r.outputs));
        return f.grads();
    };
    // The same two directions without groups: one plain sweep.
    f.ps.zero_grad();
    {
        sg::tape t(sg::dtype::f64);
        std::vector<sg::expr> xs, rev;
        for (auto& x : f.xs) xs.push_back(t.input(x));
        rev.assign(xs.rbegin(), xs.rend());
        auto hf = nn::unroll(t, f.fwd, std::span<const sg::expr>(xs));
        auto hb = nn::unroll(t, f.bwd, std::span<const sg::expr>(rev));
        std::vector<sg::expr> outs;
        for (std::size_t k = 0; k < xs.size(); ++k) outs.push_back(sg::concat({hf[k].h, hb[xs.size() - 1 - k]}, -1));
        auto st = t.backward(f.loss(t, outs));
        BOOST_TEST(st.windows == 1u);
    }
    const auto plain = f.grads();
    sg::backward_stats s1, s2;
    const auto one = grouped(1, s1);
    const auto two = grouped(2, s2);
    BOOST_TEST(s1.windows == 2u);
    BOOST_TEST(!s1.parallel);
    BOOST_TEST(s2.parallel);
    for (std::size_t i = 0; i < plain.size(); ++i) {
        BOOST_TEST(double(xt::amax(xt::abs(one[i] - plain[i]))()) < 1e-12);
        BOOST_TEST(std::memcmp(one[i].data(), two[i].data(), one[i].size() * sizeof(double)) == 0);
    }
}

BOOST_AUTO_TEST_CASE(groups_that_touch_fall_back_to_one_sweep) {
    // Group 1 reads a node of group 0: not independent, so one plain sweep, still correct.
    sg::tape t(sg::dtype::f64);
    auto x = t.input(A{1.0, 2.0}, true);
    sg::expr a, b;
    {
        sg::group_scope g(t, 0);
        a = sg::tanh(x);
    }
    {
        sg::group_scope g(t, 1);
        b = a * 3.0;
    }
    auto st = t.backward(sg::sum(b));
    BOOST_TEST(!st.parallel);
    BOOST_TEST(std::abs(t.grad(x)(1) - 3.0 * (1 - std::tanh(2.0) * std::tanh(2.0))) < 1e-15);
}

BOOST_AUTO_TEST_SUITE_END()
