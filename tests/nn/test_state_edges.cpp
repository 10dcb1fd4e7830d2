// State edges recorded by unroll, and the transforms that act on them: clip_state_gradient and
// record_gradient_flow on both directions of a bidirectional layer and on every layer of a stack,
// and a transform written here, outside the library, through the public interface.
//
// The cells are linear, h' = 3 h + x on [1, 1] states, so every gradient is a power of 3 (or of
// the clipping threshold) that the comments compute by hand.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cmath>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
using A = xt::xarray<double>;

namespace {

struct linear_cell {
    double a = 3.0;
    sg::expr operator()(const sg::expr& x, const sg::expr& h) const { return h * a + x; }
};

A scalar(double v) {
    A a = xt::zeros<double>({1, 1});
    a(0, 0) = v;
    return a;
}

std::vector<sg::expr> ones(sg::tape& t, std::size_t steps) {
    std::vector<sg::expr> xs;
    for (std::size_t k = 0; k < steps; ++k) xs.push_back(t.input(scalar(1.0)));
    return xs;
}

double g(const sg::tape& t, const sg::expr& e) { return t.grad(e)(0); }

// A user transform: every contribution crossing a state edge is multiplied by `s`, and the edges
// seen are counted (hooks may run concurrently, hence the atomic).
struct scale_state_edges : sg::transform {
    double s;
    std::atomic<int>* seen;
    scale_state_edges(double s, std::atomic<int>* seen) : s(s), seen(seen) {}
    std::string name() const override { return "scale_state_edges"; }
    bool edits_state_edges() const override { return true; }
    void on_state_edge(const sg::state_edge& e, sg::gradient_ref gr) const override {
        BOOST_TEST(e.to_step == e.from_step + 1);
        ++*seen;
        gr.visit([&](auto span) {
            for (auto& v : span) v *= static_cast<typename decltype(span)::value_type>(s);
        });
    }
};

// A user transform on parameter gradients: adds a constant (as gradient noise would, noiselessly).
struct add_to_parameters : sg::transform {
    double c;
    explicit add_to_parameters(double c) : c(c) {}
    std::string name() const override { return "add_to_parameters"; }
    bool edits_parameters() const override { return true; }
    void on_parameters(std::span<const sg::parameter_gradient> ps, sg::backward_stats&) const override {
        for (const auto& p : ps)
            p.grad.visit([&](auto span) {
                for (auto& v : span) v += static_cast<typename decltype(span)::value_type>(c);
            });
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(state_edges)

BOOST_AUTO_TEST_CASE(clip_state_gradient_clips_both_directions_of_a_bidirectional_layer) {
    // Three positions. Forward: f_k = 3 f_{k-1} + 1 from f0; backward: b_k = 3 b_{k+1} + 1 from b0,
    // so the backward direction's state edges run from position k + 1 to k.
    // loss = 10 (f_2 + b_0): dL/df_2 = dL/db_0 = 10 (from an untimed node: not an edge). Along each
    // edge 10 * 3 = 30 is clipped to 5, then 5 * 3 = 15 to 5; f0 and b0 are untimed leaves (no
    // edge into them), so they get 5 * 3 = 15. Unclipped they would get 270.
    for (bool clip : {false, true}) {
        sg::tape t(sg::dtype::f64);
        const auto xs = ones(t, 3);
        sg::expr f0 = t.input(scalar(0.5), true), b0 = t.input(scalar(0.25), true);
        const auto r = nn::bidirectional<linear_cell>{}(t, xs, f0, b0);
        const auto loss = sg::sum(r.forward[2] + r.backward[0]) * 10.0;
        t.backward(loss, clip ? sg::clip_state_gradient(5.0) : sg::backward_plan{});
        const double edge = clip ? 5.0 : 1.0;
        BOOST_TEST(g(t, r.forward[2]) == 10.0);
        BOOST_TEST(g(t, r.backward[0]) == 10.0);
        BOOST_TEST(g(t, r.forward[1]) == (clip ? 5.0 : 30.0));
        BOOST_TEST(g(t, r.backward[1]) == (clip ? 5.0 : 30.0));
        BOOST_TEST(g(t, r.forward[0]) == (clip ? 5.0 : 90.0));
        BOOST_TEST(g(t, r.backward[2]) == (clip ? 5.0 : 90.0));
        BOOST_TEST(g(t, f0) == (clip ? 15.0 : 270.0));
        BOOST_TEST(g(t, b0) == (clip ? 15.0 : 270.0));
        (void)edge;
    }
}

BOOST_AUTO_TEST_CASE(clip_state_gradient_clips_every_layer_of_a_stack) {
    // Two layers over four steps: l1_k = 3 l1_{k-1} + x, l2_k = 3 l2_{k-1} + l1_k. loss = sum(l2_3).
    // Layer 2 along its edges: dL/dl2_3 = 1, dL/dl2_2 = 3 -> clip 2, dL/dl2_1 = 6 -> 2, l2_0: 2.
    // Layer 1 at step k gets dL/dl2_k from above (same step: no edge) plus 3 dL/dl1_{k+1} along its
    // own edge, clipped to 2: l1_3 = 1; l1_2 = 2 + clip(3) = 4; l1_1 = 2 + clip(12) = 4; l1_0 = 2 + 2 = 4.
    sg::tape t(sg::dtype::f64);
    const auto xs = ones(t, 4);
    nn::stacked<linear_cell> stack({linear_cell{}, linear_cell{}});
    nn::stacked_state<sg::expr> s0;
    s0.layers = {t.input(scalar(0.0), true), t.input(scalar(0.0), true)};
    s0.output = s0.layers[1];
    const auto states = nn::unroll(t, stack, std::span<const sg::expr>(xs), s0);
    t.backward(sg::sum(states[3].layers[1]), sg::clip_state_gradient(2.0));
    const double l2[] = {2, 2, 2, 1}, l1[] = {4, 4, 4, 1};
    for (int k = 0; k < 4; ++k) {
        BOOST_TEST(g(t, states[k].layers[1]) == l2[k], "layer 2, step " << k);
        BOOST_TEST(g(t, states[k].layers[0]) == l1[k], "layer 1, step " << k);
    }
}

BOOST_AUTO_TEST_CASE(gradient_flow_covers_both_directions_and_stacks) {
    // Bidirectional: the marked states at position k are f_k and b_k; ||dL/dh_k|| over both.
    {
        sg::tape t(sg::dtype::f64);
        const auto xs = ones(t, 3);
        const auto r = nn::bidirectional<linear_cell>{}(t, xs, t.input(scalar(0.0), true), t.input(scalar(0.0), true));
        sg::gradient_flow flow;
        t.backward(sg::sum(r.forward[2] + r.backward[0]), sg::record_gradient_flow(flow));
        // dL/df_k = 3^(2-k), dL/db_k = 3^k.
        BOOST_TEST_REQUIRE(flow.norm.size() == 3u);
        for (int k = 0; k < 3; ++k)
            BOOST_TEST(std::abs(flow.norm[k] - std::hypot(std::pow(3.0, 2 - k), std::pow(3.0, k))) < 1e-12);
    }
    // Stack, plain and residual: the marked state is the top layer's own (nn::flow_state), which
    // carries its state with weight 1: dL/dtop_k = 1 at every step. A residual stack's output is
    // top_k + l1_k, which the next step does not read (its gradient read 0 before step 3).
    for (const bool residual : {false, true}) {
        sg::tape t(sg::dtype::f64);
        const auto xs = ones(t, 4);
        nn::stacked<linear_cell> stack({linear_cell{}, linear_cell{1.0}}, residual);
        nn::stacked_state<sg::expr> s0;
        s0.layers = {t.input(scalar(0.0), true), t.input(scalar(0.0), true)};
        s0.output = s0.layers[1];
        const auto states = nn::unroll(t, stack, std::span<const sg::expr>(xs), s0);
        sg::gradient_flow flow;
        t.backward(sg::sum(states[3].output), sg::record_gradient_flow(flow));
        BOOST_TEST_REQUIRE(flow.norm.size() == 4u);
        for (int k = 0; k < 4; ++k) BOOST_TEST(flow.norm[k] == 1.0, "residual " << residual << ", step " << k);
    }
}

BOOST_AUTO_TEST_CASE(gradient_flow_covers_generate) {
    // One-to-many: h_k = 3 h_{k-1} + x_k over 4 steps, each input a constant (the feedback reads
    // no state), loss = sum(h_3): dL/dh_k = 3^(3-k), as unroll's run of the same steps reads. The
    // steps of generate were not marked as states: the record came back empty.
    sg::tape t(sg::dtype::f64);
    const auto hs = nn::generate(t, linear_cell{}, t.input(scalar(1.0)), t.input(scalar(0.0), true), 4,
                                 [&](const sg::expr&) { return t.input(scalar(1.0)); });
    sg::gradient_flow flow;
    t.backward(sg::sum(hs[3]), sg::record_gradient_flow(flow));
    BOOST_TEST_REQUIRE(flow.norm.size() == 4u);
    for (int k = 0; k < 4; ++k) BOOST_TEST(flow.norm[k] == std::pow(3.0, 3 - k), "step " << k);
}

BOOST_AUTO_TEST_CASE(gradient_flow_sums_overlapping_windows) {
    // h_k = h_{k-1} / 2 + x over 6 steps, loss = h_3 + h_5, truncate_bptt(2, 4): the window of steps
    // [2, 4) reaches back to step 0 (h_3: 1, 0.5, 0.25, 0.125 down to h_0), the window [4, 6) to
    // step 2 (h_5: 1, 0.5, 0.25, 0.125 down to h_2). A step reads the sum, as its input's gradient
    // does; each step read only its own window's share (0 at steps 0 and 1).
    sg::tape t(sg::dtype::f64);
    std::vector<sg::expr> xs;
    for (int k = 0; k < 6; ++k) xs.push_back(t.input(scalar(1.0), true));
    const auto hs = nn::unroll(t, linear_cell{0.5}, std::span<const sg::expr>(xs), t.input(scalar(0.0), true));
    sg::gradient_flow flow;
    t.backward(sg::sum(hs[3]) + sg::sum(hs[5]), sg::truncate_bptt(2, 4) | sg::record_gradient_flow(flow));
    const double want[] = {0.125, 0.25, 0.625, 1.25, 0.5, 1};
    BOOST_TEST_REQUIRE(flow.norm.size() == 6u);
    for (int k = 0; k < 6; ++k) {
        BOOST_TEST(flow.norm[k] == want[k], "step " << k);
        BOOST_TEST(g(t, hs[k]) == want[k], "step " << k);
        BOOST_TEST(g(t, xs[k]) == want[k], "step " << k);
    }
}

BOOST_AUTO_TEST_CASE(a_user_transform_composes_with_the_built_ins) {
    // h_k = 3 h_{k-1} + x over 5 steps from h0 (an untimed leaf); loss = sum(h_4) + sum(w) for a
    // parameter w. Scaling every state edge by 0.5: dL/dh_k = (1.5)^(4-k); four edges are crossed.
    // Then clip_value(0.8) | add_to_parameters(1): dL/dw = 1 -> 0.8 -> 1.8. The order matters:
    // add_to_parameters(1) | clip_value(0.8) gives 0.8.
    sg::parameter_store ps(sg::dtype::f64);
    auto w = ps.add("w", A{0.0});
    for (int order = 0; order < 2; ++order) {
        ps.zero_grad();
        sg::tape t(sg::dtype::f64);
        const auto xs = ones(t, 5);
        sg::expr h0 = t.input(scalar(0.0), true);
        const auto hs = nn::unroll(t, linear_cell{}, std::span<const sg::expr>(xs), h0);
        std::atomic<int> seen{0};
        const sg::backward_plan scale = sg::make_transform<scale_state_edges>(0.5, &seen);
        const sg::backward_plan params = order == 0 ? sg::clip_value(0.8) | sg::make_transform<add_to_parameters>(1.0)
                                                    : sg::make_transform<add_to_parameters>(1.0) | sg::clip_value(0.8);
        t.backward(sg::sum(hs[4]) + sg::sum(t.param(w)), scale | params);
        BOOST_TEST(seen.load() == 4);
        for (int k = 0; k < 5; ++k) BOOST_TEST(std::abs(g(t, hs[k]) - std::pow(1.5, 4 - k)) < 1e-15);
        BOOST_TEST(g(t, h0) == 3.0 * std::pow(1.5, 4));  // the edge into an untimed leaf: not a state edge
        BOOST_TEST(w.grad<double>()(0) == (order == 0 ? 1.8 : 0.8));
    }
    // With truncation too: a transform of the plan runs in every window's pass.
    {
        sg::tape t(sg::dtype::f64);
        const auto xs = ones(t, 6);
        const auto hs = nn::unroll(t, linear_cell{}, std::span<const sg::expr>(xs), t.input(scalar(0.0), true));
        sg::expr loss = sg::sum(hs[0]);
        for (int k = 1; k < 6; ++k) loss = loss + sg::sum(hs[k]);
        std::atomic<int> seen{0};
        t.backward(loss, sg::truncate_bptt(2) | sg::make_transform<scale_state_edges>(0.5, &seen));
        // Three windows of two steps; inside each, one edge is crossed.
        BOOST_TEST(seen.load() == 3);
        BOOST_TEST(g(t, hs[0]) == 2.5);  // 1 + 1.5 from step 1, nothing from later windows
    }
}

BOOST_AUTO_TEST_CASE(a_padded_carry_is_a_state_edge_whatever_the_batch_mates) {
    // Row 0 of a masked batch has length 1 over three steps; loss = 10 * its output at step 2, a
    // carried state. Next to a row of length 3, steps 1 and 2 blend row 0's state through two
    // edges; alone, no row is active there, and the carry must be the same two edges:
    // clip_state_gradient(5) clips 10 to 5 on each, so dL/dh0 = 3 * 5 = 15 (30 unclipped), and
    // truncate_bptt(1) cuts step 2 from step 1, so dL/dh0 = 0 (30 in full BPTT).
    const std::pair<const char*, sg::backward_plan> plans[] = {{"none", {}},
                                                               {"clip_state_gradient(5)", sg::clip_state_gradient(5.0)},
                                                               {"truncate_bptt(1)", sg::truncate_bptt(1)}};
    const double want[] = {30, 15, 0};
    for (std::size_t p = 0; p < 3; ++p)
        for (std::size_t batch : {1u, 2u}) {
            sg::tape t(sg::dtype::f64);
            std::vector<sg::expr> xs;
            for (int k = 0; k < 3; ++k) xs.push_back(t.input(A(xt::ones<double>({batch, std::size_t{1}}))));
            const sg::expr h0 = t.input(A(xt::zeros<double>({batch, std::size_t{1}})), true);
            const std::vector<std::size_t> lengths = batch == 1 ? std::vector<std::size_t>{1}
                                                                : std::vector<std::size_t>{1, 3};
            const auto states = nn::unroll_masked(t, linear_cell{}, std::span<const sg::expr>(xs), h0, lengths);
            A w = xt::zeros<double>({batch, std::size_t{1}});
            w(0, 0) = 10.0;
            t.backward(sg::sum(states[2] * t.input(w)), plans[p].second);
            BOOST_TEST(t.grad(h0)(0, 0) == want[p], plans[p].first << ", batch " << batch);
        }
}

BOOST_AUTO_TEST_CASE(plans_name_their_transforms_in_errors) {
    try {
        (void)(sg::clip_global_norm(1.0) | sg::truncate_bptt(2) | sg::truncate_bptt(3));
        BOOST_FAIL("expected value_error");
    } catch (const sg::value_error& e) {
        const std::string m = e.what();
        BOOST_TEST(m.find("truncate_bptt(2, 2)") != std::string::npos);
        BOOST_TEST(m.find("truncate_bptt(3, 3)") != std::string::npos);
    }
    BOOST_CHECK_THROW(sg::backward_plan(std::shared_ptr<const sg::transform>{}), sg::value_error);
}

BOOST_AUTO_TEST_SUITE_END()
