// checkpoint_bptt: values recorded per segment of steps, released two segments on, recomputed in
// backward. Gradients must equal plain BPTT's: bitwise with graph optimisations off (the same
// operations in the same order), within rounding with them on (weight-gradient products summed
// per segment instead of over all steps).
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <random>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
using A = xt::xarray<double>;

namespace {

A random_array(std::vector<std::size_t> shape, std::mt19937_64& rng) {
    std::normal_distribution<double> d(0.0, 0.7);
    A a = xt::zeros<double>(shape);
    for (auto& v : a) v = d(rng);
    return a;
}

enum class model { lstm, stacked_gru, bidirectional, dropout_lstm };

struct result {
    double loss = 0;
    std::vector<A> grads;
    A x_grad, value_mid;
};

// T steps of the model over a [T, B, I] input that requires a gradient; the loss reads every
// step's hidden state (per-step terms summed as the steps go, plus, for `late`, a term built after
// the whole unroll from a state of the first segment, which forces a recompute while recording).
result run(model m, std::size_t segment, bool optimize, bool late, sg::dtype dt = sg::dtype::f64) {
    const std::size_t T = 23, B = 3, I = 4, H = 5;
    sg::parameter_store ps(dt);
    std::mt19937_64 rng(3);
    nn::lstm_cell lstm(sg::parameter_scope(ps, "lstm"), I, H, rng);
    auto grus = nn::make_stacked<nn::gru_cell>(sg::parameter_scope(ps, "gru"), 2, I, H, false, rng);
    nn::lstm_cell back(sg::parameter_scope(ps, "back"), I, H, rng);
    const A x = random_array({T, B, I}, rng);
    std::vector<A> rs;
    for (std::size_t k = 0; k < T; ++k) rs.push_back(random_array({B, 2 * H}, rng));

    sg::tape t(dt);
    t.set_optimize(optimize);
    if (segment) t.set_plan(sg::checkpoint_bptt(segment));
    if (m == model::dropout_lstm) {
        t.set_training(true);
        t.set_seed(42);
    }
    const sg::expr xs = t.input(x, true);
    const auto steps = nn::unstack_steps(xs);
    std::vector<sg::expr> hs;
    if (m == model::lstm || m == model::dropout_lstm) {
        nn::lstm_state s = lstm.initial_state(t, B);
        for (std::size_t k = 0; k < T; ++k) {
            const sg::expr in = m == model::dropout_lstm ? nn::dropout(steps[k], 0.3) : steps[k];
            s = nn::unroll(t, lstm, std::span<const sg::expr>(&in, 1), s, static_cast<int>(k))[0];
            hs.push_back(s.h);
        }
    } else if (m == model::stacked_gru) {
        for (const auto& s : nn::unroll(t, grus, std::span<const sg::expr>(steps))) hs.push_back(s.output);
    } else {
        const auto r = nn::bidirectional<nn::lstm_cell>{lstm, back}(t, std::span<const sg::expr>(steps));
        hs = r.outputs;
    }
    sg::expr loss = t.constant(0.0);
    for (std::size_t k = 0; k < T; ++k) {
        sg::expr term;
        {
            sg::step_scope scope(t, static_cast<int>(k));
            const sg::expr h = hs[k].shape()[1] == H ? sg::concat({hs[k], hs[k]}, 1) : hs[k];
            term = sg::sum(sg::tanh(h) * t.input(rs[k]));
        }
        loss = loss + term;
    }
    result r;
    if (late) loss = loss + sg::sum(sg::square(hs[1]));  // read long after its segment was released
    r.value_mid = t.value(hs[T / 2]);
    r.loss = t.item(loss);
    t.backward(loss);
    for (std::size_t i = 0; i < ps.size(); ++i)
        r.grads.push_back(dt == sg::dtype::f64 ? ps[i].grad<double>() : A(xt::cast<double>(ps[i].grad<float>())));
    r.x_grad = t.grad(xs);
    return r;
}

bool bitwise(const A& a, const A& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}
double max_diff(const A& a, const A& b) { return double(xt::amax(xt::abs(a - b))()); }

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint_bptt)

BOOST_AUTO_TEST_CASE(equals_plain_bptt_bitwise_without_graph_optimisations) {
    for (model m : {model::lstm, model::stacked_gru, model::bidirectional, model::dropout_lstm})
        for (std::size_t segment : {1u, 4u, 5u, 30u})
            for (bool late : {false, true}) {
                const result plain = run(m, 0, false, late), ck = run(m, segment, false, late);
                BOOST_TEST(plain.loss == ck.loss);
                BOOST_TEST(bitwise(plain.value_mid, ck.value_mid));
                BOOST_TEST(bitwise(plain.x_grad, ck.x_grad));
                for (std::size_t i = 0; i < plain.grads.size(); ++i)
                    BOOST_TEST(bitwise(plain.grads[i], ck.grads[i]), "model " << int(m) << ", segment " << segment
                                                                              << ", late " << late << ", parameter "
                                                                              << i);
            }
}

BOOST_AUTO_TEST_CASE(equals_plain_bptt_with_graph_optimisations) {
    for (model m : {model::lstm, model::stacked_gru, model::bidirectional})
        for (std::size_t segment : {3u, 7u}) {
            const result plain = run(m, 0, true, true), ck = run(m, segment, true, true);
            BOOST_TEST(plain.loss == ck.loss);  // forward values: the same computation
            BOOST_TEST(max_diff(plain.x_grad, ck.x_grad) < 1e-12);
            for (std::size_t i = 0; i < plain.grads.size(); ++i)
                BOOST_TEST(max_diff(plain.grads[i], ck.grads[i]) < 1e-12, "model " << int(m) << ", parameter " << i);
        }
    const result plain = run(model::lstm, 0, true, false, sg::dtype::f32),
                 ck = run(model::lstm, 6, true, false, sg::dtype::f32);
    for (std::size_t i = 0; i < plain.grads.size(); ++i) BOOST_TEST(max_diff(plain.grads[i], ck.grads[i]) < 1e-5);
}

BOOST_AUTO_TEST_CASE(memory_is_released_per_segment) {
    // A long tanh chain on [64, 64] states: with checkpointing the tape holds a few segments of
    // step values, plain BPTT all of them.
    auto reserved = [](std::size_t segment) {
        sg::tape t(sg::dtype::f64);
        if (segment) t.set_plan(sg::checkpoint_bptt(segment));
        else t.set_release_unsaved(false);  // plain BPTT keeping every value (saves alone keeps the tanh's)
        sg::expr h = t.input(A(xt::ones<double>({64, 64})), true), loss = t.constant(0.0);
        std::size_t peak = 0;
        for (int k = 0; k < 400; ++k) {
            sg::step_scope s(t, k, k - 1);
            h = sg::tanh(h * 0.9 + 0.1);
            h = sg::tanh(h * 1.1);
            peak = std::max(peak, t.bytes_reserved());
        }
        loss = sg::sum(h);
        t.backward(loss);
        return peak;
    };
    const std::size_t plain = reserved(0), ck = reserved(20);
    BOOST_TEST_MESSAGE("tape bytes while recording: plain " << plain << ", checkpointed " << ck);
    BOOST_TEST(ck * 5 < plain);
}

// An LSTM over an input sequence with graph optimisations on: its input products of all steps were
// one GEMM whose [T B, 4H] result stayed for the whole backward (16 KB a step here: 19.6 MB of tape
// at T 1,000 against 5.0 MB with the optimisations off, growing with T). Under checkpointing each
// step's product is its own, so the optimised tape holds no more than the plain one.
BOOST_AUTO_TEST_CASE(input_products_are_kept_per_segment) {
    auto reserved = [](bool optimize) {
        const std::size_t T = 400, B = 8, I = 32, H = 128;
        sg::parameter_store ps(sg::dtype::f32);
        std::mt19937_64 rng(5);
        nn::lstm_cell cell(sg::parameter_scope(ps, "lstm"), I, H, rng);
        sg::tape t(sg::dtype::f32);
        t.set_optimize(optimize);
        t.set_plan(sg::checkpoint_bptt(20));
        const auto steps = nn::unstack_steps(t.input(random_array({T, B, I}, rng)));
        const sg::expr r = t.input(random_array({B, H}, rng));
        nn::lstm_state s = cell.initial_state(t, B);
        sg::expr loss = t.constant(0.0);
        std::size_t peak = 0;
        for (std::size_t k = 0; k < T; ++k) {
            s = nn::unroll(t, cell, std::span<const sg::expr>(&steps[k], 1), s, int(k))[0];
            sg::step_scope sc(t, int(k));
            loss = loss + sg::sum(s.h * r);
            peak = std::max(peak, t.bytes_reserved());
        }
        t.backward(loss);
        return peak;
    };
    const std::size_t on = reserved(true), off = reserved(false);
    BOOST_TEST_MESSAGE("checkpointed tape bytes: optimisations on " << on << ", off " << off);
    BOOST_TEST(on <= off);
}

// Samples the tape's bytes at every state edge the sweep crosses.
struct tape_bytes_probe : sg::transform {
    const sg::tape* t;
    std::size_t* peak;
    tape_bytes_probe(const sg::tape* t, std::size_t* peak) : t(t), peak(peak) {}
    std::string name() const override { return "tape_bytes_probe"; }
    bool edits_state_edges() const override { return true; }
    void on_state_edge(const sg::state_edge&, sg::gradient_ref) const override {
        *peak = std::max(*peak, t->bytes_reserved());
    }
};

// Per-step loss terms summed after the whole unroll (the loss recorded last): the sweep meets all
// of them first and recomputed every segment for them, and kept every recomputed segment until it
// reached that segment's own steps: more memory during backward than plain BPTT (121 against 93 MB
// of RSS at T 1,000). A segment's values now go once the sweep has passed its late terms (its
// gradients stay), and are recomputed again for its steps: the gradients are the same.
BOOST_AUTO_TEST_CASE(losses_recorded_after_the_unroll_keep_the_sweep_small) {
    auto sweep = [](std::size_t segment, std::vector<A>& grads) {
        // A segment's values (about 6 MB) well above the 1 MB blocks every segment's gradients take.
        const std::size_t T = 400, B = 16, I = 16, H = 128;
        sg::parameter_store ps(sg::dtype::f64);
        std::mt19937_64 rng(5);
        nn::lstm_cell cell(sg::parameter_scope(ps, "lstm"), I, H, rng);
        sg::tape t(sg::dtype::f64);
        t.set_optimize(false);  // bitwise against plain BPTT
        std::size_t peak = 0;
        sg::backward_plan plan = sg::make_transform<tape_bytes_probe>(&t, &peak);
        if (segment) plan = sg::checkpoint_bptt(segment) | plan;
        t.set_plan(plan);
        const auto hs = nn::hiddens(
            nn::unroll(t, cell, t.input(random_array({T, B, I}, rng)), cell.initial_state(t, B)));
        const sg::expr r = t.input(random_array({B, H}, rng));
        sg::expr loss = t.constant(0.0);
        for (std::size_t k = 0; k < T; ++k) {
            sg::step_scope sc(t, int(k));
            loss = loss + sg::sum(hs[k] * r);
        }
        t.backward(loss);
        for (const auto& p : ps.parameters()) grads.push_back(p.grad_as_double());
        return peak;
    };
    std::vector<A> plain_grads, ck_grads;
    const std::size_t plain = sweep(0, plain_grads), ck = sweep(40, ck_grads);
    BOOST_TEST_MESSAGE("tape bytes during the sweep: plain " << plain << ", checkpointed " << ck);
    BOOST_TEST(ck * 5 < plain * 3);
    for (std::size_t i = 0; i < plain_grads.size(); ++i) BOOST_TEST(max_diff(plain_grads[i], ck_grads[i]) == 0.0);
}

BOOST_AUTO_TEST_CASE(misuse_is_refused) {
    sg::tape t(sg::dtype::f64);
    sg::expr h = t.input(A{1.0, 2.0}, true);
    {
        sg::step_scope s(t, 0);
        h = sg::tanh(h);
    }
    BOOST_CHECK_THROW(t.backward(sg::sum(h), sg::checkpoint_bptt(4)), sg::graph_error);  // not set before recording
    BOOST_CHECK_THROW(t.set_plan(sg::checkpoint_bptt(4)), sg::graph_error);              // tape not empty
    BOOST_CHECK_THROW(sg::checkpoint_bptt(0), sg::value_error);
    BOOST_CHECK_THROW(sg::checkpoint_bptt(2) | sg::checkpoint_bptt(3), sg::value_error);
    sg::tape c(sg::dtype::f64);
    c.set_plan(sg::checkpoint_bptt(2));
    sg::expr g = c.input(A{1.0, 2.0}, true), loss = c.constant(0.0);
    for (int k = 0; k < 6; ++k) {
        sg::expr term;
        {
            sg::step_scope s(c, k, k - 1);
            g = sg::tanh(g);
            term = sg::sum(g);
        }
        loss = loss + term;
    }
    BOOST_CHECK_THROW(c.backward(loss, sg::truncate_bptt(2)), sg::graph_error);
}

BOOST_AUTO_TEST_SUITE_END()
