// Backward transforms: truncated BPTT against hand-built windows, clipping against hand-computed
// values, gradient-flow records, and the parallel executor against the serial one.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include <xtensor/xview.hpp>

#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;
using A = xt::xarray<double>;

namespace {

// A tanh RNN written out with ops: h_t = tanh(x_t W + h_{t-1} U + b); loss_t = sum(h_t * r_t).
struct rnn_fixture {
    std::size_t steps = 12, batch = 2, in = 3, hid = 4;
    sg::parameter_store ps{sg::dtype::f64};
    sg::parameter w, u, b;
    std::vector<A> xs, rs;
    A h0;
    explicit rnn_fixture(std::size_t T = 12) : steps(T) {
        std::mt19937_64 rng(7);
        w = ps.add("w", random_normal({in, hid}, rng, 0.5));
        u = ps.add("u", random_normal({hid, hid}, rng, 0.6));
        b = ps.add("b", random_normal({hid}, rng, 0.5));
        for (std::size_t t = 0; t < steps; ++t) {
            xs.push_back(random_normal({batch, in}, rng, 1.0));
            rs.push_back(random_normal({batch, hid}, rng, 1.0));
        }
        h0 = random_normal({batch, hid}, rng, 0.5);
    }
    // Steps [from, to) starting from state h (an expr on t); returns the summed loss of the steps
    // in [loss_from, to) and the last state.
    std::pair<sg::expr, sg::expr> run(sg::tape& t, sg::expr h, std::size_t from, std::size_t to,
                                      std::size_t loss_from) {
        sg::expr loss = t.constant(0.0);
        for (std::size_t s = from; s < to; ++s) {
            sg::expr term;
            {
                sg::step_scope scope(t, static_cast<int>(s));
                h = sg::tanh(sg::matmul(t.input(xs[s]), t.param(w)) + sg::matmul(h, t.param(u)) + t.param(b));
                t.mark_state(h);
                if (s >= loss_from) term = sg::sum(h * t.input(rs[s]));
            }
            // The running total is untimed: summed inside a step, truncation would cut it.
            if (term.valid()) loss = loss + term;
        }
        return {loss, h};
    }
    std::vector<A> grads() const { return {w.grad<double>(), u.grad<double>(), b.grad<double>()}; }
};

double max_diff(const std::vector<A>& a, const std::vector<A>& b) {
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, double(xt::amax(xt::abs(a[i] - b[i]))()));
    return m;
}
bool bitwise_equal(const std::vector<A>& a, const std::vector<A>& b) {
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(double)) != 0) return false;
    return true;
}

// The truncated gradient built independently: one tape per window, its first state the (detached)
// value of the state before the window.
std::vector<A> windows_by_hand(rnn_fixture& f, std::size_t k1, std::size_t k2) {
    // States of the full forward pass, as plain values.
    std::vector<A> states;
    {
        sg::tape t(sg::dtype::f64);
        sg::expr h = t.input(f.h0);
        for (std::size_t s = 0; s < f.steps; ++s) {
            h = f.run(t, h, s, s + 1, s + 1).second;
            states.push_back(t.value(h));
        }
    }
    f.ps.zero_grad();
    for (std::size_t hi = k1; hi < f.steps + k1; hi += k1) {
        // Back k2 steps from the window's nominal end (k2 - k1 before its start).
        const std::size_t end = std::min(hi, f.steps), loss_from = hi - k1;
        const std::size_t lo = hi >= k2 ? hi - k2 : 0;
        sg::tape t(sg::dtype::f64);
        sg::expr h = t.input(lo == 0 ? f.h0 : states[lo - 1]);
        t.backward(f.run(t, h, lo, end, loss_from).first);
    }
    return f.grads();
}

std::vector<A> full_graph(rnn_fixture& f, const sg::backward_plan& plan, sg::backward_stats* st = nullptr) {
    f.ps.zero_grad();
    sg::tape t(sg::dtype::f64);
    auto loss = f.run(t, t.input(f.h0), 0, f.steps, 0).first;
    auto s = t.backward(loss, plan);
    if (st) *st = s;
    return f.grads();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(transforms)

BOOST_AUTO_TEST_CASE(truncation_longer_than_the_sequence_is_full_bptt_to_the_bit) {
    rnn_fixture f;
    const auto full = full_graph(f, {});
    BOOST_TEST(bitwise_equal(full_graph(f, sg::truncate_bptt(4, 12)), full));
    BOOST_TEST(bitwise_equal(full_graph(f, sg::truncate_bptt(12)), full));
    BOOST_TEST(bitwise_equal(full_graph(f, sg::truncate_bptt(5, 100)), full));
}

BOOST_AUTO_TEST_CASE(chunked_truncation_equals_separate_windows) {
    for (std::size_t k : {1u, 3u, 4u, 5u}) {
        rnn_fixture f;
        sg::backward_stats st;
        const auto got = full_graph(f, sg::truncate_bptt(k), &st);
        const auto want = windows_by_hand(f, k, k);
        BOOST_TEST(max_diff(got, want) < 1e-12, "k = " << k);
        BOOST_TEST(st.windows == (f.steps + k - 1) / k);
        // And it really differs from full BPTT.
        BOOST_TEST(max_diff(got, full_graph(f, {})) > 1e-6);
    }
}

BOOST_AUTO_TEST_CASE(overlapping_truncation_equals_separate_windows) {
    for (auto [k1, k2] : {std::pair<std::size_t, std::size_t>{2, 5}, {3, 4}, {4, 9}}) {
        rnn_fixture f;
        const auto got = full_graph(f, sg::truncate_bptt(k1, k2));
        const auto want = windows_by_hand(f, k1, k2);
        BOOST_TEST(max_diff(got, want) < 1e-12, "k1 = " << k1 << ", k2 = " << k2);
    }
    // A last window shorter than k1 (10 steps in windows of 4 or 3) by the same rule for every k2:
    // k2 = 10 and 11 still cut it (it took them as full BPTT while k2 = 9 cut it), 12 is full.
    rnn_fixture f(10);
    const auto full = full_graph(f, {});
    for (auto [k1, k2] : {std::pair<std::size_t, std::size_t>{4, 9}, {4, 6}, {3, 5}, {4, 10}, {4, 11}, {4, 12}}) {
        const auto got = full_graph(f, sg::truncate_bptt(k1, k2));
        BOOST_TEST(max_diff(got, windows_by_hand(f, k1, k2)) < 1e-12, "T 10, k1 = " << k1 << ", k2 = " << k2);
        if (k2 >= 12) BOOST_TEST(bitwise_equal(got, full), "k2 = " << k2);
        else BOOST_TEST(max_diff(got, full) > 1e-9, "k2 = " << k2);
    }
}

BOOST_AUTO_TEST_CASE(windows_in_parallel_equal_windows_in_series_bitwise) {
    rnn_fixture f(24);
    sg::set_num_threads(1);
    sg::backward_stats serial_stats, parallel_stats;
    const auto serial = full_graph(f, sg::truncate_bptt(4), &serial_stats);
    sg::set_num_threads(2);
    const auto parallel = full_graph(f, sg::truncate_bptt(4), &parallel_stats);
    BOOST_TEST(!serial_stats.parallel);
    BOOST_TEST(parallel_stats.parallel);
    BOOST_TEST(bitwise_equal(serial, parallel));
    for (int rep = 0; rep < 3; ++rep) BOOST_TEST(bitwise_equal(full_graph(f, sg::truncate_bptt(4)), parallel));
}

BOOST_AUTO_TEST_CASE(clip_global_norm_scales_this_pass) {
    sg::parameter_store ps(sg::dtype::f64);
    auto p = ps.add("p", A{1.0, 1.0});
    sg::tape t(sg::dtype::f64);
    auto loss = sg::sum(t.param(p) * t.input(A{3.0, 4.0}));  // gradient (3, 4), norm 5
    auto st = t.backward(loss, sg::clip_global_norm(1.0));
    BOOST_TEST(st.grad_norm == 5.0);
    BOOST_TEST(st.clipped);
    BOOST_TEST(std::abs(p.grad<double>()(0) - 3.0 / (5.0 + 1e-6)) < 1e-15);
    BOOST_TEST(std::abs(p.grad<double>()(1) - 4.0 / (5.0 + 1e-6)) < 1e-15);
    ps.zero_grad();
    st = t.backward(loss, sg::clip_global_norm(10.0));  // below the threshold: untouched
    BOOST_TEST(!st.clipped);
    BOOST_TEST(p.grad<double>()(1) == 4.0);
}

BOOST_AUTO_TEST_CASE(clip_value_clamps_this_pass) {
    sg::parameter_store ps(sg::dtype::f64);
    auto p = ps.add("p", A{1.0, 1.0, 1.0});
    sg::tape t(sg::dtype::f64);
    t.backward(sg::sum(t.param(p) * t.input(A{3.0, -4.0, 0.5})), sg::clip_value(2.0) | sg::clip_global_norm(100.0));
    BOOST_TEST(p.grad<double>()(0) == 2.0);
    BOOST_TEST(p.grad<double>()(1) == -2.0);
    BOOST_TEST(p.grad<double>()(2) == 0.5);
}

BOOST_AUTO_TEST_CASE(clip_state_gradient_clamps_edges_between_steps) {
    // h1 = 3 h0 (step 1), h2 = 3 h1 (step 2), loss = 10 sum(h2) (untimed).
    // dL/dh2 = 10 arrives from an untimed node: not clipped. Along h2 -> h1: 30, clipped to 5.
    // Along h1 -> h0: 5 * 3 = 15, clipped to 5. Unclipped, dL/dh0 would be 90.
    sg::tape t(sg::dtype::f64);
    sg::expr h0, h1, h2;
    {
        sg::step_scope s(t, 0);
        h0 = t.input(A{1.0}, true);
    }
    {
        sg::step_scope s(t, 1, 0);  // reads the state of step 0
        h1 = h0 * 3.0;
    }
    {
        sg::step_scope s(t, 2, 1);
        h2 = h1 * 3.0;
    }
    auto loss = sg::sum(h2 * 10.0);
    t.backward(loss, sg::clip_state_gradient(5.0));
    BOOST_TEST(t.grad(h2)(0) == 10.0);
    BOOST_TEST(t.grad(h1)(0) == 5.0);
    BOOST_TEST(t.grad(h0)(0) == 5.0);
    t.backward(loss);
    BOOST_TEST(t.grad(h0)(0) == 90.0);
}

BOOST_AUTO_TEST_CASE(gradient_flow_records_norm_per_step) {
    // h_t = 0.5 h_{t-1} on a [1, 2] state, loss = sum(h_9): dL/dh_t = 0.5^(9-t) per entry,
    // so ||dL/dh_t|| = sqrt(2) * 0.5^(9-t).
    sg::tape t(sg::dtype::f64);
    sg::expr h = t.input(A{{1.0, 1.0}}, true);
    for (int s = 0; s < 10; ++s) {
        sg::step_scope scope(t, s);
        h = h * 0.5;
        t.mark_state(h);
    }
    sg::gradient_flow flow;
    t.backward(sg::sum(h), sg::record_gradient_flow(flow));
    BOOST_TEST_REQUIRE(flow.norm.size() == 10u);
    for (int s = 0; s < 10; ++s) BOOST_TEST(std::abs(flow.norm[s] - std::sqrt(2.0) * std::pow(0.5, 9 - s)) < 1e-15);
    // A checkpointed tape releases the steps' gradients during the sweep: refused before it (it
    // read zeros), the store untouched; the plain backward still runs.
    sg::parameter_store ps(sg::dtype::f64);
    const sg::parameter h0 = ps.add("h0", A{{1.0, 1.0}});
    sg::tape c(sg::dtype::f64);
    c.set_plan(sg::checkpoint_bptt(3));
    sg::expr g = c.param(h0);
    for (int s = 0; s < 10; ++s) {
        sg::step_scope scope(c, s);
        g = g * 0.5;
        c.mark_state(g);
    }
    expect_error<sg::graph_error>([&] { c.backward(sg::sum(g), sg::record_gradient_flow(flow)); },
                                  "record_gradient_flow reads the time steps' gradients");
    BOOST_TEST(xt::amax(xt::abs(h0.grad<double>()))() == 0.0);
    c.backward(sg::sum(g));
    BOOST_TEST(std::abs(h0.grad<double>()(0, 0) - std::pow(0.5, 10)) < 1e-15);
}

BOOST_AUTO_TEST_CASE(truncating_from_a_timed_loss_is_an_error) {
    sg::tape t(sg::dtype::f64);
    sg::expr h = t.input(A{1.0}, true), loss;
    for (int s = 0; s < 4; ++s) {
        sg::step_scope scope(t, s);
        h = sg::tanh(h);
        loss = s == 0 ? sg::sum(h) : loss + sg::sum(h);  // accumulated inside the steps
    }
    try {
        t.backward(loss, sg::truncate_bptt(2));
        BOOST_FAIL("expected graph_error");
    } catch (const sg::graph_error& e) {
        BOOST_TEST(std::string(e.what()).find("outside the step") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(bad_plans_are_rejected) {
    BOOST_CHECK_THROW(sg::truncate_bptt(0), sg::value_error);
    BOOST_CHECK_THROW(sg::truncate_bptt(5, 3), sg::value_error);
    BOOST_CHECK_THROW(sg::clip_global_norm(-1), sg::value_error);
    BOOST_CHECK_THROW(sg::clip_value(0), sg::value_error);
    BOOST_CHECK_THROW(sg::truncate_bptt(2) | sg::truncate_bptt(3), sg::value_error);
    BOOST_CHECK_THROW(sg::set_num_threads(0), sg::value_error);
    // Thresholds in names and messages read back as given (six decimals made 1e-8 "0", -1e-9 "-0").
    BOOST_TEST(sg::clip_value(1e-8).transforms()[0]->name() == "clip_value(1e-08)");
    BOOST_TEST(sg::clip_state_gradient(2.5e-7).transforms()[0]->name() == "clip_state_gradient(2.5e-07)");
    BOOST_TEST(sg::clip_global_norm(5.0).transforms()[0]->name() == "clip_global_norm(5)");
    expect_error<sg::value_error>([] { sg::clip_global_norm(-1e-9); },
                                  "clip_global_norm: expected a positive threshold (+inf: no clipping), got -1e-09");
    // A user's transform partitioning with k2 < k1 (truncate_bptt refuses it when built; this one
    // was run as k2 = k1): refused by name at backward.
    struct short_windows : sg::transform {
        std::string name() const override { return "short_windows"; }
        std::pair<std::size_t, std::size_t> windows() const override { return {4, 2}; }
    };
    rnn_fixture f;
    expect_error<sg::value_error>([&] { full_graph(f, sg::make_transform<short_windows>()); },
                                  "short_windows partitions into windows of 4 steps sending gradients back 2");
}

BOOST_AUTO_TEST_CASE(a_transform_that_only_reads_parameter_gradients_sees_them) {
    // on_parameters ran only when some transform of the plan said edits_parameters: a user's
    // transform reading the gradients (and rightly saying it edits nothing) was never called alone,
    // and was called once clip_value joined the plan.
    struct gradient_norms : sg::transform {
        std::vector<double>* out;
        explicit gradient_norms(std::vector<double>* o) : out(o) {}
        std::string name() const override { return "gradient_norms"; }
        void on_parameters(std::span<const sg::parameter_gradient> ps, sg::backward_stats&) const override {
            out->clear();
            for (const auto& p : ps)
                out->push_back(p.grad.visit([](auto span) {
                    double sq = 0;
                    for (auto v : span) sq += double(v) * v;
                    return std::sqrt(sq);
                }));
        }
    };
    sg::parameter_store ps(sg::dtype::f64);
    const auto p = ps.add("p", A{1.0, 1.0});
    const auto q = ps.add("q", A{1.0});
    sg::tape t(sg::dtype::f64);
    const sg::expr pp = t.param(p), qq = t.param(q);  // in this order on the tape
    const auto loss = sg::sum(pp * t.input(A{3.0, 4.0})) + sg::sum(qq * 12.0);
    std::vector<double> norms;
    for (const auto& plan :
         {sg::make_transform<gradient_norms>(&norms), sg::truncate_bptt(3) | sg::make_transform<gradient_norms>(&norms),
          sg::make_transform<gradient_norms>(&norms) | sg::clip_global_norm(1.0)}) {
        norms.clear();
        ps.zero_grad();
        t.backward(loss, plan);
        BOOST_TEST_REQUIRE(norms.size() == 2u);
        BOOST_TEST(norms[0] == 5.0);  // before the clipping that follows it in the pipeline
        BOOST_TEST(norms[1] == 12.0);
    }
    BOOST_TEST(std::abs(p.grad<double>()(1) - 4.0 / (13.0 + 1e-6)) < 1e-15);  // the clip came after
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(execution)

BOOST_AUTO_TEST_CASE(data_parallel_equals_one_tape_within_1e12) {
    rnn_fixture f;
    // Reference: the whole batch of 2 rows on one tape.
    const auto whole = full_graph(f, {});
    // Parts: one row each, on separate tapes, on 1 and on 2 threads.
    auto part = [&](sg::tape& t, std::size_t i) {
        sg::expr h = t.input(A(xt::view(f.h0, xt::range(i, i + 1), xt::all())));
        sg::expr loss = t.constant(0.0);
        for (std::size_t s = 0; s < f.steps; ++s) {
            A x = xt::view(f.xs[s], xt::range(i, i + 1), xt::all()),
              r = xt::view(f.rs[s], xt::range(i, i + 1), xt::all());
            h = sg::tanh(sg::matmul(t.input(x), t.param(f.w)) + sg::matmul(h, t.param(f.u)) + t.param(f.b));
            loss = loss + sg::sum(h * t.input(r));
        }
        return loss;
    };
    for (std::size_t threads : {1u, 2u}) {
        sg::set_num_threads(threads);
        f.ps.zero_grad();
        sg::data_parallel(2, part, sg::dtype::f64);
        BOOST_TEST(max_diff(f.grads(), whole) < 1e-12, "threads = " << threads);
    }
    f.ps.zero_grad();
    sg::data_parallel(2, part, sg::dtype::f64);
    const auto again = f.grads();
    sg::set_num_threads(1);
    f.ps.zero_grad();
    sg::data_parallel(2, part, sg::dtype::f64);
    BOOST_TEST(bitwise_equal(f.grads(), again));  // the reduction order is fixed
    BOOST_CHECK_THROW(sg::data_parallel(2, part, sg::dtype::f64, sg::clip_global_norm(1)), sg::value_error);
    sg::set_num_threads(2);
}

BOOST_AUTO_TEST_CASE(data_parallel_refuses_a_plan_recording_the_gradient_flow) {
    // record_gradient_flow describes one tape: each part ran it on its own, concurrently, into the
    // same output (a data race), which kept one part's norms: h_t = tanh(h_{t-1} w) on rows
    // (1, 2) and (-1, 0.5) with losses sum(h_3) and 3 sum(h_3) recorded 4.24264 (3 sqrt 2, part 1
    // alone) for the last step, where the batch's ||dL/dh_3|| is sqrt(2 + 18) = 4.47214.
    sg::parameter_store ps(sg::dtype::f64);
    const sg::parameter w = ps.add("w", A{{0.5, -0.3}, {0.2, 0.7}});
    auto part = [&](sg::tape& t, std::size_t i) {
        sg::expr h = t.input(i == 0 ? A{{1.0, 2.0}} : A{{-1.0, 0.5}});
        for (int s = 0; s < 4; ++s) {
            sg::step_scope scope(t, s, s > 0 ? s - 1 : -1);
            h = sg::tanh(sg::matmul(h, t.param(w)));
            t.mark_state(h);
        }
        return sg::sum(h * (i == 0 ? 1.0 : 3.0));
    };
    sg::gradient_flow flow;
    for (std::size_t threads : {1u, 2u}) {
        sg::set_num_threads(threads);
        expect_error<sg::value_error>(
            [&] { sg::data_parallel(2, part, sg::dtype::f64, sg::record_gradient_flow(flow)); },
            "data_parallel: record_gradient_flow reads the time steps' gradients of one tape");
        BOOST_TEST(flow.norm.empty());
        BOOST_TEST(xt::amax(xt::abs(w.grad<double>()))() == 0.0);  // refused before any part ran
    }
    // On one tape over the whole batch it reads the batch's norms.
    sg::tape t(sg::dtype::f64);
    sg::expr h = t.input(A{{1.0, 2.0}, {-1.0, 0.5}});
    for (int s = 0; s < 4; ++s) {
        sg::step_scope scope(t, s, s > 0 ? s - 1 : -1);
        h = sg::tanh(sg::matmul(h, t.param(w)));
        t.mark_state(h);
    }
    t.backward(sg::sum(h * t.input(A{{1.0, 1.0}, {3.0, 3.0}})), sg::record_gradient_flow(flow));
    BOOST_TEST_REQUIRE(flow.norm.size() == 4u);
    BOOST_TEST(std::abs(flow.norm[3] - std::sqrt(20.0)) < 1e-12);
}

BOOST_AUTO_TEST_CASE(tbptt_stream_carries_values_and_refuses_stale_chunks) {
    rnn_fixture f(8);
    sg::tbptt_stream stream(sg::dtype::f64);
    // Two chunks of 4 steps through the stream equal truncate_bptt(4) on the whole graph.
    f.ps.zero_grad();
    sg::expr old_h;
    for (std::size_t c = 0; c < 2; ++c) {
        auto carried = stream.begin();
        sg::tape& t = stream.tape();
        sg::expr h = carried.empty() ? t.input(f.h0) : carried[0];
        auto [loss, last] = f.run(t, h, 4 * c, 4 * c + 4, 4 * c);
        t.backward(loss);
        stream.carry({last});
        if (c == 0) old_h = last;
    }
    const auto streamed = f.grads();
    BOOST_TEST(max_diff(streamed, full_graph(f, sg::truncate_bptt(4))) < 1e-12);
    BOOST_TEST(stream.chunks() == 2u);
    try {
        (void)sg::tanh(old_h);
        BOOST_FAIL("expected graph_error");
    } catch (const sg::graph_error& e) {
        BOOST_TEST(std::string(e.what()).find("cleared or destroyed") != std::string::npos);
    }
    // A carry that fails part-way (its second expr is stale) keeps the state carried before: it
    // cleared it first and kept the first expr alone, so the next chunk began with one state of two.
    const auto before = stream.carried().at(0);
    auto carried = stream.begin();
    sg::expr h = carried[0];
    BOOST_CHECK_THROW(stream.carry({sg::tanh(h), old_h}), sg::graph_error);
    BOOST_TEST(stream.carried().size() == 1u);
    BOOST_TEST((stream.carried()[0] == before));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(clip_norm_reduction)

BOOST_AUTO_TEST_CASE(parallel_norm_is_exact_and_thread_independent) {
    // Two large parameters (over the parallel threshold) with known gradients: the norm is
    // sqrt(sum of squares) and bitwise the same on 1 and 2 threads.
    sg::parameter_store ps(sg::dtype::f64);
    const std::size_t n = 50000;
    auto a = ps.add("a", A(xt::ones<double>({n})));
    auto b = ps.add("b", A(xt::ones<double>({n})));
    auto run = [&] {
        ps.zero_grad();
        sg::tape t(sg::dtype::f64);
        auto loss = sg::sum(t.param(a) * 3.0) + sg::sum(t.param(b) * 4.0);  // grads 3 and 4 everywhere
        return t.backward(loss, sg::clip_global_norm(1.0)).grad_norm;
    };
    sg::set_num_threads(1);
    const double one = run();
    sg::set_num_threads(2);
    const double two = run();
    BOOST_TEST(std::memcmp(&one, &two, sizeof(double)) == 0);
    BOOST_TEST(std::abs(one - 5.0 * std::sqrt(double(n))) < 1e-9);
}

BOOST_AUTO_TEST_SUITE_END()
