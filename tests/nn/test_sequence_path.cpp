#include <boost/test/unit_test.hpp>

// Whole-sequence paths through nn::unroll (nn/unroll.hpp): a stack of nn::lstm_cell layers, plain
// or residual, and the same layers wrapped in any_cell (as examples/char_lm builds them), run
// layer after layer when unrolled over a [T, B, I] sequence, the first on the fused layer, the
// others step by step over its outputs (also a GRU above an LSTM). Held equal to the
// step-by-step run of the same cells (unroll over the list of steps): the loss and every
// parameter's and the input's gradient, in double to 1e-12 and float to 1e-5, at 1 and 2 threads,
// and under truncate_bptt and clip_state_gradient. A stack whose first layer has no such path
// (GRU), or with dropout between layers in training mode, runs step by step.
#include <random>
#include <string>
#include <vector>

#include <xtensor/xmath.hpp>

#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/lstm_layer.hpp>
#include <seqgrad/nn/unroll.hpp>
#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;
namespace nn = seqgrad::nn;

namespace {

constexpr std::size_t T = 5, I = 6, H = 8;

struct outcome {
    double loss = 0;
    std::vector<xt::xarray<double>> grads;
    std::size_t fused_steps = 0;  // step nodes of fused layers (lstm_step or lstm_step_view)
};

enum class stack_kind { lstm, residual, any_lstm, any_gru_above, any_gru_first };

template <class Stack, class State>
sg::expr loss_of(sg::tape& t, const Stack& st, const sg::expr& seq, const State& s0, bool sequence_path) {
    const std::vector<sg::expr> steps = nn::unstack_steps(seq);
    const auto states = sequence_path ? nn::unroll(t, st, seq, s0)
                                      : nn::unroll(t, st, std::span<const sg::expr>(steps), s0);
    sg::expr l;
    for (std::size_t k = 0; k < states.size(); ++k) {
        const sg::expr e = sg::sum(sg::tanh(nn::hidden(states[k])) * static_cast<double>(k + 1));
        l = l.valid() ? l + e : e;
    }
    return l;
}

outcome run(stack_kind kind, std::size_t B, sg::dtype dt, bool sequence_path, const sg::backward_plan& plan = {},
            double dropout = 0) {
    sg::parameter_store ps(dt);
    std::mt19937_64 rng(11);
    const std::size_t layers = 3;
    std::vector<nn::lstm_cell> cells;
    for (std::size_t l = 0; l < layers; ++l)
        cells.emplace_back(sg::parameter_scope(ps, "l" + std::to_string(l)), l == 0 ? I : H, H, rng);
    nn::gru_cell gru(sg::parameter_scope(ps, "gru"), H, H), gru0(sg::parameter_scope(ps, "gru0"), I, H);
    for (const sg::parameter& p : ps.parameters()) p.assign(random_array(p.shape().to_vector(), rng, 0.6));
    const sg::parameter x = ps.add("x", random_array({T, B, I}, rng));
    sg::tape t(dt);
    t.set_accumulate_into_parameters(false);
    t.set_training(dropout > 0);
    const sg::expr seq = t.param(x);
    sg::expr loss;
    if (kind == stack_kind::lstm || kind == stack_kind::residual) {
        nn::stacked<nn::lstm_cell> st(cells, kind == stack_kind::residual);
        st.dropout = dropout;
        loss = loss_of(t, st, seq, st.initial_state(t, B), sequence_path);
    } else {
        std::vector<nn::any_cell> any;
        for (std::size_t l = 0; l < layers; ++l)
            if (kind == stack_kind::any_gru_above && l == 1) any.emplace_back(gru);
            else if (kind == stack_kind::any_gru_first && l == 0) any.emplace_back(gru0);
            else any.emplace_back(cells[l]);
        nn::stacked<nn::any_cell> st(std::move(any));
        loss = loss_of(t, st, seq, st.initial_state(t, B), sequence_path);
    }
    t.backward(loss, plan);
    outcome o{t.item(loss), {}, 0};
    for (std::uint32_t i = 0; i < t.size(); ++i) {
        const auto* op = t.node_at(i).op;
        o.fused_steps += op && (op->name == "lstm_step" || op->name == "lstm_step_view");
    }
    for (const sg::parameter& p : ps.parameters()) o.grads.push_back(t.param_grad(p));
    return o;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sequence_path)

BOOST_AUTO_TEST_CASE(a_stack_of_lstm_layers_runs_layer_after_layer_and_equals_the_step_run) {
    const std::size_t before = sg::num_threads();
    for (const std::size_t threads : {1u, 2u}) {
        sg::set_num_threads(threads);
        for (const stack_kind kind :
             {stack_kind::lstm, stack_kind::residual, stack_kind::any_lstm, stack_kind::any_gru_above})
            for (const std::size_t B : {1u, 3u, 9u})
                for (const sg::dtype dt : {sg::dtype::f64, sg::dtype::f32}) {
                    const double tol = dt == sg::dtype::f64 ? 1e-12 : 1e-5;
                    const outcome steps = run(kind, B, dt, false), seq = run(kind, B, dt, true);
                    BOOST_TEST_CONTEXT("kind " << int(kind) << " B " << B << " threads " << threads
                                               << (dt == sg::dtype::f64 ? " f64" : " f32")) {
                        BOOST_TEST(steps.fused_steps == 0u);  // the per-step cell: lstm_cell's own nodes
                        BOOST_TEST(seq.fused_steps == T);     // the first layer's fused steps
                        expect_same_run(seq, steps, tol);
                    }
                }
    }
    sg::set_num_threads(before);
}

// tape::grad of the states the fused layer returns (views of its step records, which the next step
// reads whole): dL/dh_t and dL/dc_t with the recurrent part, as the step run shows them. The
// views' own gradients held only what the loss read from them directly.
BOOST_AUTO_TEST_CASE(the_states_gradients_equal_the_step_runs) {
    for (const std::size_t B : {1, 3, 9})
        for (const sg::dtype dt : {sg::dtype::f64, sg::dtype::f32}) {
            std::vector<xt::xarray<double>> grads[2];
            std::size_t fused = 0;
            for (const bool sequence_path : {false, true}) {
                sg::parameter_store ps(dt);
                std::mt19937_64 rng(12);
                nn::lstm_cell cell(sg::parameter_scope(ps, "l"), I, H, rng);
                const xt::xarray<double> xv = random_array({T, B, I}, rng);
                sg::tape t(dt);
                const sg::expr seq = t.input(xv, true);
                const std::vector<sg::expr> steps = nn::unstack_steps(seq);
                const auto states = sequence_path ? nn::unroll(t, cell, seq, cell.initial_state(t, B))
                                                  : nn::unroll(t, cell, std::span<const sg::expr>(steps),
                                                               cell.initial_state(t, B));
                sg::expr l;
                for (std::size_t k = 0; k < T; ++k) {
                    const sg::expr e = sg::sum(states[k].h * t.input(random_array({B, H}, rng))) +
                                       sg::sum(states[k].c * t.input(random_array({B, H}, rng))) * 0.5;
                    l = l.valid() ? l + e : e;
                }
                t.backward(l);
                if (sequence_path) {  // the fused layer called by hand, optimisations off and on: the same
                    std::vector<xt::xarray<double>> by_hand[2];
                    for (const bool on : {false, true}) {
                        sg::tape p(dt);
                        p.set_optimize(on);
                        const auto run = nn::detail::lstm_layer(cell)(sg::reshape(p.input(xv, true), {T * B, I}), B);
                        std::mt19937_64 r2(99);
                        std::vector<sg::expr> shown;
                        sg::expr lp;
                        for (std::size_t k = 0; k < T; ++k) {
                            shown.insert(shown.end(), {run.h(k), run.c(k)});
                            const sg::expr e = sg::sum(shown[2 * k] * p.input(random_array({B, H}, r2)));
                            lp = lp.valid() ? lp + e : e;
                        }
                        p.backward(lp);
                        for (const sg::expr& e : shown) by_hand[on].push_back(p.grad(e));
                    }
                    for (std::size_t q = 0; q < 2 * T; ++q)
                        BOOST_TEST(max_diff(by_hand[0][q], by_hand[1][q]) <= (dt == sg::dtype::f64 ? 1e-12 : 1e-5),
                                   "B " << B << ", state " << q);
                }
                for (std::uint32_t i = 0; i < t.size(); ++i) {
                    const auto* op = t.node_at(i).op;
                    fused += sequence_path && op && (op->name == "lstm_step" || op->name == "lstm_step_view");
                }
                for (std::size_t k = 0; k < T; ++k) {
                    BOOST_TEST(t.has_grad(states[k].h));
                    grads[sequence_path].push_back(t.grad(states[k].h));
                    grads[sequence_path].push_back(t.grad(states[k].c));
                }
                grads[sequence_path].push_back(t.grad(seq));
            }
            BOOST_TEST(fused == T);  // the fused path was taken
            const double tol = dt == sg::dtype::f64 ? 1e-12 : 1e-5;
            for (std::size_t q = 0; q < grads[0].size(); ++q)
                BOOST_TEST(max_diff(grads[0][q], grads[1][q]) <= tol, "B " << B << ", gradient " << q);
        }
}

// tape::grad of c_t is dL/dc_t: what the next step sends back plus the path through
// h_t = o tanh(c_t) inside the step's node, as an LSTM written from plain ops shows it (where c_t is
// a node of its own). The per-step cell and the fused layer showed the first part only.
BOOST_AUTO_TEST_CASE(the_cell_states_gradient_is_dl_dc) {
    constexpr std::size_t B = 9;
    std::mt19937_64 draw(5);
    std::vector<xt::xarray<double>> weights;
    for (std::size_t k = 0; k < 2 * T; ++k) weights.push_back(random_array({B, H}, draw));
    for (const sg::dtype dt : {sg::dtype::f64, sg::dtype::f32}) {
        std::vector<xt::xarray<double>> dc[3];  // plain ops, per-step cell, fused layer
        for (int way = 0; way < 3; ++way) {
            sg::parameter_store ps(dt);
            std::mt19937_64 rng(12);
            nn::lstm_cell cell(sg::parameter_scope(ps, "l"), I, H, rng);
            sg::tape t(dt);
            const sg::expr seq = t.input(random_array({T, B, I}, rng), true);
            const std::vector<sg::expr> steps = nn::unstack_steps(seq);
            std::vector<nn::lstm_state> states;
            if (way == 0) {
                sg::expr h = t.constant(0.0, {B, H}), c = h;
                for (std::size_t k = 0; k < T; ++k) {
                    const auto q = sg::split(sg::matmul(steps[k], sg::transpose(t.param(cell.w_ih))) +
                                                 t.param(cell.b_ih) + sg::matmul(h, sg::transpose(t.param(cell.w_hh))) +
                                                 t.param(cell.b_hh),
                                             4, 1);
                    c = sg::sigmoid(q[1]) * c + sg::sigmoid(q[0]) * sg::tanh(q[2]);
                    h = sg::sigmoid(q[3]) * sg::tanh(c);
                    states.push_back({h, c});
                }
            } else {
                states = way == 1 ? nn::unroll(t, cell, std::span<const sg::expr>(steps), cell.initial_state(t, B))
                                  : nn::unroll(t, cell, seq, cell.initial_state(t, B));
            }
            sg::expr l;
            for (std::size_t k = 0; k < T; ++k) {
                const sg::expr e = sg::sum(states[k].h * t.input(weights[2 * k])) +
                                   sg::sum(states[k].c * t.input(weights[2 * k + 1])) * 0.5;
                l = l.valid() ? l + e : e;
            }
            t.backward(l);
            for (std::size_t k = 0; k < T; ++k) dc[way].push_back(t.grad(states[k].c));
        }
        const double tol = dt == sg::dtype::f64 ? 1e-12 : 1e-5;
        for (int way = 1; way < 3; ++way)
            for (std::size_t k = 0; k < T; ++k)
                BOOST_TEST(max_diff(dc[way][k], dc[0][k]) <= tol, "way " << way << ", step " << k);
    }
}

BOOST_AUTO_TEST_CASE(a_stack_runs_step_by_step_where_a_layer_has_no_sequence_path) {
    const outcome steps = run(stack_kind::any_gru_first, 9, sg::dtype::f64, false),
                  seq = run(stack_kind::any_gru_first, 9, sg::dtype::f64, true);
    BOOST_TEST(seq.fused_steps == 0u);
    expect_same_run(seq, steps, 1e-12);
    // Dropout between layers in training mode draws a fresh mask a step, in step order.
    const outcome drop = run(stack_kind::lstm, 9, sg::dtype::f64, true, {}, 0.3);
    BOOST_TEST(drop.fused_steps == 0u);
}

BOOST_AUTO_TEST_CASE(truncation_and_state_clipping_over_a_stack) {
    for (const auto& plan : {sg::truncate_bptt(2), sg::truncate_bptt(2, 3), sg::clip_state_gradient(0.02)})
        for (const stack_kind kind : {stack_kind::lstm, stack_kind::residual}) {
            const outcome steps = run(kind, 9, sg::dtype::f64, false, plan),
                          seq = run(kind, 9, sg::dtype::f64, true, plan);
            BOOST_TEST_CONTEXT("plan " << plan.transforms()[0]->name() << " kind " << int(kind)) {
                BOOST_TEST(seq.fused_steps == T);
                expect_same_run(seq, steps, 1e-12);
            }
        }
}

// record_gradient_flow reads the marked state of each step: for a stack, its output (the top layer), as the
// step-by-step run marks it. The fused first layer and the layers above it marked their own states too, so the
// sequence path summed every layer's ||dL/dh_t||: with loss = sum(output at T - 1), step T - 1 read
// sqrt(||1||^2 + ||dL/dh^0||^2) instead of ||1|| = sqrt(B H).
BOOST_AUTO_TEST_CASE(gradient_flow_reads_the_stacks_output_on_either_path) {
    const std::size_t B = 3;
    for (const bool residual : {false, true}) {
        std::vector<double> flows[2];
        for (const bool sequence_path : {false, true}) {
            sg::parameter_store ps(sg::dtype::f64);
            std::mt19937_64 rng(5);
            const auto st = nn::make_stacked<nn::lstm_cell>(sg::parameter_scope(ps, "s"), 2, I, H, residual, rng);
            const xt::xarray<double> xv = random_array({T, B, I}, rng);
            sg::tape t(sg::dtype::f64);
            const sg::expr seq = t.input(xv);
            const std::vector<sg::expr> steps = nn::unstack_steps(seq);
            const auto states = sequence_path
                                    ? nn::unroll(t, st, seq, st.initial_state(t, B))
                                    : nn::unroll(t, st, std::span<const sg::expr>(steps), st.initial_state(t, B));
            sg::gradient_flow flow;
            t.backward(sg::sum(states.back().output), sg::record_gradient_flow(flow));
            flows[sequence_path] = flow.norm;
        }
        BOOST_TEST_CONTEXT("residual " << residual) {
            BOOST_TEST_REQUIRE(flows[0].size() == T);
            BOOST_TEST_REQUIRE(flows[1].size() == T);
            BOOST_TEST(std::abs(flows[1][T - 1] - std::sqrt(double(B * H))) < 1e-12);
            for (std::size_t k = 0; k < T; ++k) {
                BOOST_TEST(flows[0][k] > 1e-4, "step " << k);
                BOOST_TEST(std::abs(flows[1][k] - flows[0][k]) <= 1e-12 * flows[0][k], "step " << k);
            }
        }
    }
}

// nn::stack_steps over the h (or the c) of every step of the sequence path is one lstm_rows over
// the records, whose forward and backward split across threads, instead of a concat of per-step
// views: the same values and the same gradients of every parameter and the input as that concat,
// and the same bits on 1 and 2 threads. T B H = 163,840 entries: enough for the rows to split.
BOOST_AUTO_TEST_CASE(stacked_states_of_the_sequence_path_are_one_node_equal_to_a_concat) {
    constexpr std::size_t steps = 64, B = 32, in = 8, hid = 80;
    struct result {
        double loss = 0;
        xt::xarray<double> h;
        std::vector<xt::xarray<double>> grads;
    };
    result runs[2][2];  // [threads - 1][stacked]
    const std::size_t before = sg::num_threads();
    for (const std::size_t threads : {1u, 2u})
        for (const bool stacked : {false, true}) {
            sg::set_num_threads(threads);
            sg::parameter_store ps(sg::dtype::f64);
            std::mt19937_64 rng(31);
            const nn::lstm_cell cell(sg::parameter_scope(ps, "l"), in, hid, rng);
            const xt::xarray<double> xv = random_array({steps, B, in}, rng), rh = random_array({steps, B, hid}, rng),
                                     rc = random_array({steps, B, hid}, rng);
            sg::tape t(sg::dtype::f64);
            const sg::expr seq = t.input(xv, true);
            const auto states = nn::unroll(t, cell, seq, cell.initial_state(t, B));
            std::vector<sg::expr> hs, cs;
            for (const auto& s : states) {
                hs.push_back(s.h);
                cs.push_back(s.c);
            }
            const sg::shape out{steps, B, hid};
            const sg::expr h = stacked ? nn::stack_steps(hs) : sg::reshape(sg::concat(hs, 0), out);
            const sg::expr c = stacked ? nn::stack_steps(cs) : sg::reshape(sg::concat(cs, 0), out);
            std::size_t whole = 0;  // lstm_rows nodes over every record
            for (std::uint32_t i = 0; i < t.size(); ++i) {
                const auto& n = t.node_at(i);
                whole += n.op && n.op->name == "lstm_rows" && n.num_inputs == steps;
            }
            BOOST_TEST(whole == (stacked ? 2u : 0u));
            const sg::expr loss = sg::sum(h * t.input(rh)) + sg::sum(sg::tanh(c) * t.input(rc));
            t.backward(loss);
            result& r = runs[threads - 1][stacked];
            r.loss = t.item(loss);
            r.h = t.value(h);
            for (const sg::parameter& p : ps.parameters()) r.grads.push_back(t.param_grad(p));
            r.grads.push_back(t.grad(seq));
        }
    sg::set_num_threads(before);
    for (std::size_t th = 0; th < 2; ++th) BOOST_TEST_CONTEXT((th + 1) << " threads") {
            const result &a = runs[th][0], &b = runs[th][1];
            BOOST_TEST(std::abs(a.loss - b.loss) <= 1e-12 * std::abs(a.loss));
            BOOST_TEST(max_diff(a.h, b.h) == 0.0);
            BOOST_TEST_REQUIRE(a.grads.size() == b.grads.size());
            for (std::size_t q = 0; q < a.grads.size(); ++q) BOOST_TEST(max_diff(a.grads[q], b.grads[q]) <= 1e-12);
        }
    for (std::size_t q = 0; q < runs[0][1].grads.size(); ++q)
        BOOST_TEST(max_diff(runs[0][1].grads[q], runs[1][1].grads[q]) == 0.0, "gradient " << q);
    // With the graph optimisations off, the steps' views are concatenated as written.
    sg::parameter_store ps(sg::dtype::f64);
    std::mt19937_64 rng(32);
    const nn::lstm_cell cell(sg::parameter_scope(ps, "l"), in, hid, rng);
    sg::tape t(sg::dtype::f64);
    t.set_optimize(false);
    const auto states = nn::unroll(t, cell, t.input(random_array({3, B, in}, rng)), cell.initial_state(t, B));
    const std::vector<sg::expr> hs = nn::hiddens(states);
    BOOST_TEST_REQUIRE(t.node_at(hs[0].id()).op->name == "lstm_rows");  // views of the steps' records
    BOOST_TEST(t.node_at(t.operand(nn::stack_steps(hs), 0).id()).op->name == "concat");
    // Nor under checkpointing, which would copy whole records out of their segments.
    sg::tape tc(sg::dtype::f64);
    tc.set_plan(sg::checkpoint_bptt(2));
    nn::lstm_state s = cell.initial_state(tc, B);
    std::vector<sg::expr> hc;
    for (int k = 0; k < 4; ++k) {
        const sg::expr xk = tc.input(random_array({B, in}, rng));
        s = nn::unroll(tc, cell, std::span<const sg::expr>(&xk, 1), s, k)[0];
        hc.push_back(s.h);
    }
    BOOST_TEST_REQUIRE(tc.node_at(hc[0].id()).op->name == "lstm_rows");
    BOOST_TEST(tc.node_at(tc.operand(nn::stack_steps(hc), 0).id()).op->name == "concat");
}

BOOST_AUTO_TEST_SUITE_END()
