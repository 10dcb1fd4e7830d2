// Unrolling: step marks, every sequence shape (many-to-many/one, one-to-many, encoder-decoder),
// masked variable-length batches, stacked and bidirectional layers, type-erased cells, and a
// user-written cell (a minimal gated unit), all gradient-checked over parameters, inputs and
// initial states for sequences of 1, 2 and 7 steps.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <xtensor/xview.hpp>

#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/init.hpp>
#include <seqgrad/nn/linear.hpp>
#include <seqgrad/nn/unroll.hpp>
#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;
namespace nn = seqgrad::nn;

namespace {

constexpr std::size_t B = 2, I = 3, H = 4, C = 3;
const std::size_t step_counts[] = {1, 2, 7};

// Minimal gated unit (Zhou et al. 2016), a cell the library does not ship, as plain user code:
//   f = sigmoid(W_f x + U_f h + b_f);  h~ = tanh(W_h x + U_h (f * h) + b_h);  h' = (1 - f) h + f h~
struct mgu {
    sg::parameter w_f, u_f, b_f, w_h, u_h, b_h;
    mgu(const sg::parameter_scope& s, std::size_t in, std::size_t hid, std::mt19937_64& rng)
        : w_f(s.add("w_f", sg::shape{hid, in})),
          u_f(s.add("u_f", sg::shape{hid, hid})),
          b_f(s.add("b_f", sg::shape{hid})),
          w_h(s.add("w_h", sg::shape{hid, in})),
          u_h(s.add("u_h", sg::shape{hid, hid})),
          b_h(s.add("b_h", sg::shape{hid})) {
        for (const auto* p : {&w_f, &u_f, &b_f, &w_h, &u_h, &b_h}) nn::rnn_default(*p, hid, rng);
    }
    sg::expr operator()(const sg::expr& x, const sg::expr& h) const {
        const sg::expr f = sg::sigmoid(sg::matmul(x, sg::T(w_f)) + sg::matmul(h, sg::T(u_f)) + b_f);
        const sg::expr c = sg::tanh(sg::matmul(x, sg::T(w_h)) + sg::matmul(f * h, sg::T(u_h)) + b_h);
        return (1.0 - f) * h + f * c;
    }
};

// A user state type with its own hidden() and blend(), found by argument-dependent lookup.
struct running_state {
    sg::expr h, total;  // total: running sum of h
};
sg::expr hidden(const running_state& s) { return s.h; }
running_state blend(const sg::expr& m, const running_state& a, const running_state& b) {
    return {nn::blend(m, a.h, b.h), nn::blend(m, a.total, b.total)};
}

// Inputs, initial states and targets: a store of their own so gradcheck covers them too.
struct sequence_data {
    sg::parameter_store store{sg::dtype::f64};
    std::vector<sg::parameter> xs;
    sg::parameter h0, c0, hb;
    std::vector<std::vector<int>> classes;
    std::vector<xt::xarray<double>> values;

    sequence_data(std::size_t steps, std::uint64_t seed, std::size_t out_width = C) {
        std::mt19937_64 rng(seed);
        for (std::size_t k = 0; k < steps; ++k) {
            xs.push_back(store.add("x" + std::to_string(k), random_array({B, I}, rng)));
            std::vector<int> c;
            for (std::size_t b = 0; b < B; ++b) c.push_back(static_cast<int>((k + 2 * b + 1) % C));
            classes.push_back(c);
            values.push_back(random_array({B, out_width}, rng));
        }
        h0 = store.add("h0", random_array({B, H}, rng, 0.5));
        c0 = store.add("c0", random_array({B, H}, rng, 0.5));
        hb = store.add("h0_backward", random_array({B, H}, rng, 0.5));
    }
    std::vector<sg::expr> inputs(sg::tape& t) const {
        std::vector<sg::expr> v;
        for (const auto& p : xs) v.push_back(t.param(p));
        return v;
    }
};

enum class loss_kind { cross_entropy, mse };
const loss_kind both_losses[] = {loss_kind::cross_entropy, loss_kind::mse};
const char* name_of(loss_kind k) { return k == loss_kind::mse ? "mse" : "cross-entropy"; }

// Cross-entropy of out(outputs[k]) summed over time, or per-step mse against random targets.
// With lengths, finished rows contribute nothing: -1 targets, or a mask on the squared error.
sg::expr sequence_loss(sg::tape& t, const std::vector<sg::expr>& outputs, const nn::linear& out, const sequence_data& d,
                       loss_kind kind, std::span<const std::size_t> lengths = {}) {
    const std::vector<std::vector<int>> targets =
        lengths.empty() ? d.classes : nn::mask_targets(std::span(d.classes).first(outputs.size()), lengths);
    sg::expr total;
    for (std::size_t k = 0; k < outputs.size(); ++k) {
        const sg::expr y = out(outputs[k]);
        sg::expr l;
        if (kind == loss_kind::cross_entropy) l = sg::cross_entropy(y, targets[k], sg::reduction::sum);
        else if (lengths.empty()) l = sg::mse_loss(y, t.input(d.values[k]));
        else l = sg::sum(sg::square(y - t.input(d.values[k])) * nn::step_mask(t, lengths, k));
        total = k == 0 ? l : total + l;
    }
    return total;
}

void expect_pass(sg::parameter_store& model, sg::parameter_store& data,
                 const std::function<sg::expr(sg::tape&)>& loss) {
    sg::parameter_store* stores[] = {&model, &data};
    const auto report = sg::gradcheck(stores, loss);
    BOOST_TEST(report.passed, "" << report);
    BOOST_TEST(report.checked > 0u);
}

// Lengths for a batch of two over `steps` steps: one full row, one shorter (possibly empty).
std::vector<std::size_t> ragged(std::size_t steps) { return {steps, steps / 2}; }

}  // namespace

BOOST_AUTO_TEST_SUITE(unroll)

BOOST_AUTO_TEST_CASE(marks_every_step_and_matches_a_hand_loop) {
    sg::parameter_store ps(sg::dtype::f64);
    const nn::gru_cell cell(sg::parameter_scope(ps, "gru"), I, H);
    sequence_data d(3, 1);
    sg::tape t(sg::dtype::f64);
    const auto xs = d.inputs(t);
    const sg::expr h0 = t.param(d.h0);
    const std::uint32_t before = static_cast<std::uint32_t>(t.size());
    const auto hs = nn::unroll(t, cell, xs, h0, 5);
    const std::uint32_t after = static_cast<std::uint32_t>(t.size());
    BOOST_TEST(t.step() == -1);  // restored
    std::vector<std::size_t> per_step(3, 0);
    for (std::uint32_t id = before; id < after; ++id) {
        if (t.node_at(id).kind == sg::detail::node_kind::parameter) continue;  // leaves shared by all steps
        const int s = t.node_at(id).step;
        BOOST_TEST_REQUIRE((s >= 5 && s < 8), "node " << t.describe(id) << " marked " << s);
        ++per_step[static_cast<std::size_t>(s - 5)];
    }
    BOOST_TEST((per_step[0] == per_step[1] && per_step[1] == per_step[2] && per_step[0] > 0u));
    for (std::uint32_t id = 0; id < before; ++id) BOOST_TEST(t.node_at(id).step == -1);  // inputs, h0
    // The step-k state is produced at step k, and reads the step k-1 state: the state edge.
    BOOST_TEST(t.node_at(hs[1].id()).step == 6);
    // Same numbers as calling the cell by hand; many-to-one is the last state.
    sg::expr h = h0;
    for (const auto& x : xs) h = cell(x, h);
    BOOST_TEST(max_diff(t.value(hs.back()), t.value(h)) == 0.0);
    BOOST_TEST(hs.size() == 3u);
}

BOOST_AUTO_TEST_CASE(initial_state_overload_sequence_tensors_and_lambdas) {
    sg::parameter_store ps(sg::dtype::f64);
    const nn::lstm_cell lstm(sg::parameter_scope(ps, "lstm"), I, H);
    std::mt19937_64 rng(3);
    const xt::xarray<double> seq = random_array({4, B, I}, rng);
    sg::tape t(sg::dtype::f64);
    const sg::expr whole = t.input(seq);
    const auto steps = nn::unstack_steps(whole);
    BOOST_TEST(steps.size() == 4u);
    BOOST_TEST(max_diff(t.value(nn::stack_steps(steps)), seq) == 0.0);
    const auto a = nn::unroll(t, lstm, steps);                            // zero state
    const auto b = nn::unroll(t, lstm, whole, lstm.initial_state(t, B));  // [T, B, I] input
    // (The whole sequence runs as the fused layer: its biases are summed first, so to rounding.)
    BOOST_TEST(max_diff(t.value(a.back().c), t.value(b.back().c)) <= 1e-15);
    BOOST_TEST(max_diff(t.value(a.back().h), t.value(b.back().h)) <= 1e-15);
    BOOST_TEST((nn::stack_steps(nn::hiddens(a)).shape() == sg::shape{4, B, H}));
    // Any callable is a cell: a lambda leaky integrator.
    auto leaky = [](const sg::expr& x, const sg::expr& h) { return 0.5 * h + sg::sum(x, 1, true); };
    const auto hs = nn::unroll(t, leaky, steps, t.constant(0.0, {B, 1}));
    // h_k = sum_j 0.5^(k-j) * rowsum(x_j)
    xt::xarray<double> expected = xt::zeros<double>({B, std::size_t{1}});
    for (std::size_t k = 0; k < 4; ++k)
        for (std::size_t r = 0; r < B; ++r) expected(r, 0) = 0.5 * expected(r, 0) + xt::sum(xt::view(seq, k, r))();
    BOOST_TEST(max_diff(t.value(hs.back()), expected) < 1e-14);
}

BOOST_AUTO_TEST_CASE(generate_feeds_outputs_back) {
    std::mt19937_64 rng(4);
    for (std::size_t steps : step_counts)
        for (loss_kind kind : both_losses) {
            BOOST_TEST_CONTEXT("steps " << steps << ", " << name_of(kind)) {
                sequence_data d(steps, 40 + steps);
                sg::parameter_store model(sg::dtype::f64);
                const nn::lstm_cell cell(sg::parameter_scope(model, "dec"), I, H, rng);
                const nn::linear feed(sg::parameter_scope(model, "feed"), H, I, true, rng);
                const nn::linear out(sg::parameter_scope(model, "out"), H, C, true, rng);
                auto run = [&](sg::tape& t) {
                    const nn::lstm_state s0{t.param(d.h0), t.param(d.c0)};
                    std::vector<std::size_t> seen;
                    auto states = nn::generate(t, cell, t.param(d.xs[0]), s0, steps,
                                               [&](const nn::lstm_state& s, std::size_t k) {
                                                   seen.push_back(k);
                                                   return sg::tanh(feed(s.h));
                                               });
                    BOOST_TEST(seen.size() == steps - 1);
                    return states;
                };
                {  // values: the same as feeding back by hand
                    sg::tape t(sg::dtype::f64);
                    const auto states = run(t);
                    nn::lstm_state s{t.param(d.h0), t.param(d.c0)};
                    sg::expr x = t.param(d.xs[0]);
                    for (std::size_t k = 0; k < steps; ++k) {
                        if (k) x = sg::tanh(feed(s.h));
                        s = cell(x, s);
                    }
                    BOOST_TEST(states.size() == steps);
                    BOOST_TEST(max_diff(t.value(states.back().h), t.value(s.h)) == 0.0);
                    BOOST_TEST(t.node_at(states.back().h.id()).step == static_cast<int>(steps) - 1);
                }
                expect_pass(model, d.store,
                            [&](sg::tape& t) { return sequence_loss(t, nn::hiddens(run(t)), out, d, kind); });
            }
        }
}

BOOST_AUTO_TEST_CASE(encoder_decoder) {
    std::mt19937_64 rng(5);
    for (std::size_t steps : step_counts)
        for (loss_kind kind : both_losses) {
            BOOST_TEST_CONTEXT("steps " << steps << ", " << name_of(kind)) {
                sequence_data src(steps, 50 + steps), tgt(steps, 60 + steps);
                sg::parameter_store model(sg::dtype::f64);
                const nn::lstm_cell enc(sg::parameter_scope(model, "enc"), I, H, rng);
                const nn::gru_cell dec(sg::parameter_scope(model, "dec"), I, H, rng);
                const nn::linear out(sg::parameter_scope(model, "out"), H, C, true, rng);
                auto bridge = [](const nn::lstm_state& s) { return s.h; };  // LSTM encoder -> GRU decoder
                auto run = [&](sg::tape& t) {
                    return nn::encode_decode(t, enc, dec, src.inputs(t), tgt.inputs(t),
                                             nn::lstm_state{t.param(src.h0), t.param(src.c0)}, {}, bridge);
                };
                {
                    sg::tape t(sg::dtype::f64);
                    const auto r = run(t);
                    BOOST_TEST(r.encoder.size() == steps);
                    BOOST_TEST(r.decoder.size() == steps);
                    const auto by_hand = nn::unroll(t, dec, tgt.inputs(t), r.encoder.back().h);
                    BOOST_TEST(max_diff(t.value(r.decoder.back()), t.value(by_hand.back())) == 0.0);
                    // Decoder steps are numbered after the encoder's.
                    BOOST_TEST(t.node_at(r.decoder.front().id()).step == static_cast<int>(steps));
                }
                sg::parameter_store* stores[] = {&model, &src.store, &tgt.store};
                const auto report = sg::gradcheck(stores, [&](sg::tape& t) {
                    return sequence_loss(t, run(t).decoder, out, tgt, kind);
                });
                BOOST_TEST(report.passed, "" << report);
            }
        }
}

// ---- masks ---------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(mask_and_target_helpers) {
    const std::vector<std::size_t> lengths{3, 1, 0};
    const std::vector<std::vector<int>> targets{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}};
    const auto m = nn::mask_targets(targets, lengths);
    BOOST_TEST((m == std::vector<std::vector<int>>{{1, 2, -1}, {4, -1, -1}, {7, -1, -1}}));
    const std::vector<std::vector<int>> ragged_batch{{1, 2}, {3}, {}};
    const std::vector<std::vector<int>> by_step{{1, 3, -1}, {2, -1, -1}, {-1, -1, -1}};
    BOOST_TEST((nn::step_targets(ragged_batch, 3) == by_step));
    BOOST_TEST((nn::lengths_of(ragged_batch) == std::vector<std::size_t>{2, 1, 0}));
    BOOST_CHECK_THROW(nn::step_targets(ragged_batch, 1), sg::value_error);
    BOOST_CHECK_THROW(nn::mask_targets(targets, std::vector<std::size_t>{1, 2}), sg::shape_error);
    sg::tape t(sg::dtype::f64);
    const auto mask = t.value(nn::step_mask(t, lengths, 1));
    xt::xarray<double> expected = xt::zeros<double>({3, 1});
    expected(0, 0) = 1.0;
    BOOST_TEST(max_diff(mask, expected) == 0.0);
}

// A finished row keeps, bit for bit, its state at its last valid step; an empty row keeps s0;
// nothing after a row's end reaches any gradient.
BOOST_AUTO_TEST_CASE(finished_rows_keep_their_state_and_get_no_gradient) {
    const std::size_t T = 5, b3 = 3;
    std::mt19937_64 rng(6);
    sg::parameter_store model(sg::dtype::f64), data(sg::dtype::f64);
    const nn::lstm_cell cell(sg::parameter_scope(model, "lstm"), I, H, rng);
    std::vector<sg::parameter> xs;
    for (std::size_t k = 0; k < T; ++k) xs.push_back(data.add("x" + std::to_string(k), random_array({b3, I}, rng)));
    const std::vector<std::size_t> lengths{T, 2, 0};
    sg::tape t(sg::dtype::f64);
    std::vector<sg::expr> in;
    for (const auto& p : xs) in.push_back(t.param(p));
    const nn::lstm_state s0{t.constant(0.25, {b3, H}), t.constant(-0.5, {b3, H})};
    const auto states = nn::unroll_masked(t, cell, in, s0, lengths);
    auto row = [&](const sg::expr& e, std::size_t r) { return xt::xarray<double>(xt::view(t.value(e), r)); };
    for (std::size_t k = 2; k < T; ++k) {
        BOOST_TEST(max_diff(row(states[k].h, 1), row(states[1].h, 1)) == 0.0);
        BOOST_TEST(max_diff(row(states[k].c, 1), row(states[1].c, 1)) == 0.0);
    }
    for (std::size_t k = 0; k < T; ++k) BOOST_TEST(max_diff(row(states[k].c, 2), row(s0.c, 2)) == 0.0);
    BOOST_TEST(max_diff(row(states[3].h, 0), row(states[4].h, 0)) > 0.0);  // the full row moves on
    // A loss over every step's state, padded positions included: inputs past a row's end get
    // exactly zero gradient, valid ones do not.
    sg::expr loss = sg::sum(sg::square(states[0].h));
    for (std::size_t k = 1; k < T; ++k) loss = loss + sg::sum(sg::square(states[k].h)) + sg::sum(states[k].c);
    t.backward(loss);
    for (std::size_t k = 0; k < T; ++k) {
        const auto& g = xs[k].grad<double>();
        for (std::size_t r = 0; r < b3; ++r) {
            const double norm = xt::sum(xt::abs(xt::view(g, r)))();
            BOOST_TEST_CONTEXT("step " << k << ", row " << r) {
                if (k < lengths[r]) BOOST_TEST(norm > 0.0);
                else BOOST_TEST(norm == 0.0);
            }
        }
    }
}

// A masked batch is the sum of its rows run alone over their own lengths: same loss, same
// parameter gradients.
BOOST_AUTO_TEST_CASE(masked_batch_equals_rows_run_alone) {
    const std::size_t T = 6;
    std::mt19937_64 rng(7);
    sg::parameter_store model(sg::dtype::f64);
    const nn::gru_cell cell(sg::parameter_scope(model, "gru"), I, H, rng);
    const nn::linear out(sg::parameter_scope(model, "out"), H, C, true, rng);
    sequence_data d(T, 70);
    const std::vector<std::size_t> lengths{T, 3};
    sg::tape t(sg::dtype::f64);
    const auto states = nn::unroll_masked(t, cell, d.inputs(t), t.param(d.h0), lengths);
    const sg::expr batch_loss = sequence_loss(t, states, out, d, loss_kind::cross_entropy, lengths);
    t.backward(batch_loss);
    std::vector<xt::xarray<double>> batch_grads;
    for (const auto& p : model.parameters()) batch_grads.push_back(p.grad<double>());
    model.zero_grad();
    double rows_loss = 0;
    for (std::size_t r = 0; r < B; ++r) {
        sg::tape tr(sg::dtype::f64);
        auto row_of = [&](const sg::parameter& p) {
            return tr.input(xt::xarray<double>(xt::view(p.value<double>(), xt::range(r, r + 1))));
        };
        std::vector<sg::expr> xs;
        for (std::size_t k = 0; k < lengths[r]; ++k) xs.push_back(row_of(d.xs[k]));
        const auto hs = nn::unroll(tr, cell, xs, row_of(d.h0));
        sg::expr l;
        for (std::size_t k = 0; k < hs.size(); ++k) {
            const std::vector<int> target{d.classes[k][r]};
            const sg::expr lk = sg::cross_entropy(out(hs[k]), target, sg::reduction::sum);
            l = k == 0 ? lk : l + lk;
        }
        rows_loss += tr.item(l);
        tr.backward(l);  // adds into the parameters' gradients
    }
    BOOST_TEST(t.item(batch_loss) == rows_loss, boost::test_tools::tolerance(1e-12));
    const auto ps = model.parameters();
    for (std::size_t i = 0; i < ps.size(); ++i)
        BOOST_TEST(max_diff(batch_grads[i], ps[i].grad<double>()) < 1e-12, ps[i].name());
}

BOOST_AUTO_TEST_CASE(gradcheck_masked_variable_length) {
    std::mt19937_64 rng(8);
    for (std::size_t steps : step_counts)
        for (loss_kind kind : both_losses) {
            BOOST_TEST_CONTEXT("steps " << steps << ", " << name_of(kind)) {
                sequence_data d(steps, 80 + steps);
                const auto lengths = ragged(steps);
                sg::parameter_store model(sg::dtype::f64);
                const nn::lstm_cell lstm(sg::parameter_scope(model, "lstm"), I, H, rng);
                const nn::gru_cell gru(sg::parameter_scope(model, "gru"), I, H, rng);
                const nn::linear out(sg::parameter_scope(model, "out"), H, C, true, rng);
                expect_pass(model, d.store, [&](sg::tape& t) {
                    const nn::lstm_state s0{t.param(d.h0), t.param(d.c0)};
                    const auto a = nn::unroll_masked(t, lstm, d.inputs(t), s0, lengths);
                    const auto b = nn::unroll_masked(t, gru, d.inputs(t), t.param(d.hb), lengths);
                    return sequence_loss(t, nn::hiddens(a), out, d, kind, lengths) +
                           sequence_loss(t, b, out, d, kind, lengths);
                });
            }
        }
}

BOOST_AUTO_TEST_CASE(masked_errors_and_user_state_types) {
    sg::parameter_store ps(sg::dtype::f64);
    const nn::gru_cell cell(sg::parameter_scope(ps, "gru"), I, H);
    sg::tape t(sg::dtype::f64);
    const std::vector<sg::expr> xs{t.constant(1.0, {B, I}), t.constant(2.0, {B, I})};
    const sg::expr h0 = cell.initial_state(t, B);
    BOOST_CHECK_THROW(nn::unroll_masked(t, cell, xs, h0, std::vector<std::size_t>{2, 1, 1}), sg::shape_error);
    BOOST_CHECK_THROW(nn::unroll_masked(t, cell, xs, h0, std::vector<std::size_t>{3, 1}), sg::value_error);
    BOOST_CHECK_THROW(nn::unroll_masked(t, cell, xs, h0, std::vector<std::size_t>{}), sg::value_error);
    // A state of another batch size, also where every length is 0 and no cell runs to check it.
    for (const auto& lengths : {std::vector<std::size_t>{0, 0}, std::vector<std::size_t>{2, 1}}) try {
            nn::unroll_masked(t, cell, xs, cell.initial_state(t, B + 1), lengths);
            BOOST_ERROR("no shape_error");
        } catch (const sg::shape_error& e) {
            const std::string m = e.what();
            BOOST_TEST(m.find("nn::unroll_masked: state [3, 4] for 2 lengths (expected [B, ...] with B = 2") !=
                           std::string::npos,
                       m);
        }
    // A user state with hidden()/blend() of its own works in masked unrolls.
    auto counting = [&](const sg::expr& x, const running_state& s) {
        const sg::expr h = cell(x, s.h);
        return running_state{h, s.total + h};
    };
    const auto states = nn::unroll_masked(t, counting, xs, running_state{h0, h0}, std::vector<std::size_t>{2, 1});
    const auto total = t.value(states.back().total), first = t.value(states.front().h);
    BOOST_TEST(max_diff(xt::xarray<double>(xt::view(total, 1)), xt::xarray<double>(xt::view(first, 1))) == 0.0);
    BOOST_TEST((nn::hiddens(states).back().shape() == sg::shape{B, H}));
}

// ---- stacked -------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(stacked_values_names_and_errors) {
    sg::parameter_store ps(sg::dtype::f64);
    const auto deep = nn::make_stacked<nn::lstm_cell>(sg::parameter_scope(ps, "enc"), 3, I, H, true);
    BOOST_TEST(deep.layers.size() == 3u);
    BOOST_TEST(ps.contains("enc.l2.w_hh"));
    BOOST_TEST(deep.layers[0].input_size == I);
    BOOST_TEST(deep.layers[1].input_size == H);
    sg::tape t(sg::dtype::f64);
    std::mt19937_64 rng(9);
    const sg::expr x = t.input(random_array({B, I}, rng));
    const auto s0 = deep.initial_state(t, B);
    const auto s1 = deep(x, s0);
    // By hand: layer 0 reads x, layers 1 and 2 read the layer below and add their input.
    const nn::lstm_state l0 = deep.layers[0](x, s0.layers[0]);
    const nn::lstm_state l1 = deep.layers[1](l0.h, s0.layers[1]);
    const nn::lstm_state l2 = deep.layers[2](l1.h + l0.h, s0.layers[2]);
    BOOST_TEST(max_diff(t.value(s1.layers[2].c), t.value(l2.c)) == 0.0);
    BOOST_TEST(max_diff(t.value(nn::hidden(s1)), t.value(l2.h + (l1.h + l0.h))) == 0.0);
    // Residual layers must keep the width.
    std::vector<nn::gru_cell> uneven{nn::gru_cell(sg::parameter_scope(ps, "g0"), I, H),
                                     nn::gru_cell(sg::parameter_scope(ps, "g1"), H, H + 1)};
    const nn::stacked<nn::gru_cell> bad(uneven, true);
    try {
        bad(x, bad.initial_state(t, B));
        BOOST_FAIL("expected a shape_error");
    } catch (const sg::shape_error& e) {
        const std::string m = e.what();
        BOOST_TEST(m.find("residual connection around layer 1") != std::string::npos, m);
    }
    const nn::stacked<nn::gru_cell> plain(uneven, false);  // fine without residual
    BOOST_TEST((nn::hidden(plain(x, plain.initial_state(t, B))).shape() == sg::shape{B, H + 1}));
    const sg::expr z = t.constant(0.0, {B, H});
    BOOST_CHECK_THROW(plain(x, nn::stacked_state<sg::expr>{{z}, z}), sg::shape_error);  // one layer state for two
    BOOST_CHECK_THROW(nn::stacked<nn::gru_cell>(std::vector<nn::gru_cell>{}), sg::shape_error);
}

BOOST_AUTO_TEST_CASE(gradcheck_stacked_depth_two_with_and_without_residual) {
    std::mt19937_64 rng(10);
    for (bool residual : {false, true})
        for (std::size_t steps : step_counts)
            for (loss_kind kind : both_losses) {
                BOOST_TEST_CONTEXT((residual ? "residual" : "plain") << ", steps " << steps << ", " << name_of(kind)) {
                    sequence_data d(steps, 100 + steps);
                    sg::parameter_store model(sg::dtype::f64);
                    const auto deep = nn::make_stacked<nn::lstm_cell>(sg::parameter_scope(model, "deep"), 2, I, H,
                                                                      residual, rng);
                    const nn::linear out(sg::parameter_scope(model, "out"), H, C, true, rng);
                    expect_pass(model, d.store, [&](sg::tape& t) {
                        const auto s0 = deep.make_state({nn::lstm_state{t.param(d.h0), t.param(d.c0)},
                                                         nn::lstm_state{t.param(d.hb), t.param(d.c0)}});
                        return sequence_loss(t, nn::hiddens(nn::unroll(t, deep, d.inputs(t), s0)), out, d, kind);
                    });
                }
            }
}

// Layers of different types behind any_cell, the user's MGU among them, masked.
BOOST_AUTO_TEST_CASE(gradcheck_mixed_stack_of_any_cells_masked) {
    std::mt19937_64 rng(11);
    for (std::size_t steps : step_counts) {
        BOOST_TEST_CONTEXT("steps " << steps) {
            sequence_data d(steps, 110 + steps);
            const auto lengths = ragged(steps);
            sg::parameter_store model(sg::dtype::f64);
            const nn::stacked<nn::any_cell> mixed({nn::any_cell(
                                                       nn::lstm_cell(sg::parameter_scope(model, "l0"), I, H, rng)),
                                                   nn::any_cell(mgu(sg::parameter_scope(model, "l1"), H, H, rng)),
                                                   nn::any_cell(nn::rnn_cell(sg::parameter_scope(model, "l2"), H, H,
                                                                             nn::rnn_activation::tanh, rng))},
                                                  true);
            const nn::linear out(sg::parameter_scope(model, "out"), H, C, true, rng);
            expect_pass(model, d.store, [&](sg::tape& t) {
                const auto s0 = mixed.make_state({nn::any_state(nn::lstm_state{t.param(d.h0), t.param(d.c0)}),
                                                  nn::any_state(t.param(d.hb)), nn::any_state(t.param(d.h0))});
                const auto states = nn::unroll_masked(t, mixed, d.inputs(t), s0, lengths);
                return sequence_loss(t, nn::hiddens(states), out, d, loss_kind::cross_entropy, lengths);
            });
        }
    }
    // any_cell checks the state type it is given, and knows whether the cell has initial_state().
    sg::parameter_store ps(sg::dtype::f64);
    const nn::any_cell lstm(nn::lstm_cell(sg::parameter_scope(ps, "lstm"), I, H));
    const nn::any_cell user(mgu(sg::parameter_scope(ps, "mgu"), I, H, rng));
    sg::tape t(sg::dtype::f64);
    const nn::any_state s = lstm.initial_state(t, B);
    BOOST_TEST((s.type() == typeid(nn::lstm_state)));
    BOOST_CHECK_THROW(user(t.constant(0.0, {B, I}), s), sg::value_error);
    BOOST_CHECK_THROW(user.initial_state(t, B), sg::value_error);
    BOOST_TEST((nn::hidden(lstm(t.constant(1.0, {B, I}), s)).shape() == sg::shape{B, H}));
}

// ---- bidirectional -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(bidirectional_values_and_masked_starts) {
    const std::size_t T = 5;
    std::mt19937_64 rng(12);
    sg::parameter_store ps(sg::dtype::f64);
    const nn::bidirectional<nn::gru_cell> bi{nn::gru_cell(sg::parameter_scope(ps, "fwd"), I, H, rng),
                                             nn::gru_cell(sg::parameter_scope(ps, "bwd"), I, H, rng)};
    sequence_data d(T, 120);
    sg::tape t(sg::dtype::f64);
    const auto xs = d.inputs(t);
    const auto r = bi(t, xs);
    BOOST_TEST(r.outputs.size() == T);
    BOOST_TEST((r.outputs[0].shape() == sg::shape{B, 2 * H}));
    // Unmasked: the backward half at step k has read xs[k..T) from zeros.
    sg::expr hb = bi.backward.initial_state(t, B);
    for (std::size_t k = T; k-- > 0;) {
        hb = bi.backward(xs[k], hb);
        const auto out = t.value(r.outputs[k]);
        BOOST_TEST(max_diff(xt::xarray<double>(xt::view(out, xt::all(), xt::range(H, 2 * H))), t.value(hb)) == 0.0);
    }
    BOOST_TEST(max_diff(xt::xarray<double>(xt::view(t.value(r.outputs[T - 1]), xt::all(), xt::range(0, H))),
                        t.value(r.forward.back())) == 0.0);
    // Masked: row 1 (length 2) starts its backward direction at step 1 from its own initial state.
    const std::vector<std::size_t> lengths{T, 2};
    const auto m = bi(t, xs, t.param(d.h0), t.param(d.hb), lengths);
    for (std::size_t r1 = 0; r1 < B; ++r1) {
        sg::tape tr(sg::dtype::f64);
        auto row_of = [&](const xt::xarray<double>& v) {
            return tr.input(xt::xarray<double>(xt::view(v, xt::range(r1, r1 + 1))));
        };
        std::vector<sg::expr> row_xs;
        for (std::size_t k = 0; k < lengths[r1]; ++k) row_xs.push_back(row_of(d.xs[k].value<double>()));
        const auto alone = bi(tr, row_xs, row_of(d.h0.value<double>()), row_of(d.hb.value<double>()));
        for (std::size_t k = 0; k < lengths[r1]; ++k)
            BOOST_TEST(max_diff(xt::xarray<double>(xt::view(t.value(m.outputs[k]), xt::range(r1, r1 + 1))),
                                tr.value(alone.outputs[k])) < 1e-14);
    }
    // Backward nodes carry the step of the position they read.
    BOOST_TEST(t.node_at(m.backward[3].id()).step == 3);
}

BOOST_AUTO_TEST_CASE(gradcheck_bidirectional_plain_and_masked) {
    std::mt19937_64 rng(13);
    for (bool masked : {false, true})
        for (std::size_t steps : step_counts)
            for (loss_kind kind : both_losses) {
                BOOST_TEST_CONTEXT((masked ? "masked" : "plain") << ", steps " << steps << ", " << name_of(kind)) {
                    sequence_data d(steps, 130 + steps);
                    const auto lengths = masked ? ragged(steps) : std::vector<std::size_t>{};
                    sg::parameter_store model(sg::dtype::f64);
                    // Different cell types each way: an LSTM forward, the user's MGU backward.
                    const nn::bidirectional bi{nn::lstm_cell(sg::parameter_scope(model, "fwd"), I, H, rng),
                                               mgu(sg::parameter_scope(model, "bwd"), I, H, rng)};
                    const nn::linear out(sg::parameter_scope(model, "out"), 2 * H, C, true, rng);
                    expect_pass(model, d.store, [&](sg::tape& t) {
                        const auto r = bi(t, d.inputs(t), nn::lstm_state{t.param(d.h0), t.param(d.c0)}, t.param(d.hb),
                                          lengths);
                        return sequence_loss(t, r.outputs, out, d, kind, lengths);
                    });
                }
            }
}

// ---- a user-written cell -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(gradcheck_user_mgu_cell) {
    std::mt19937_64 rng(14);
    for (std::size_t steps : step_counts)
        for (loss_kind kind : both_losses) {
            BOOST_TEST_CONTEXT("steps " << steps << ", " << name_of(kind)) {
                sequence_data d(steps, 140 + steps);
                sg::parameter_store model(sg::dtype::f64);
                const mgu cell(sg::parameter_scope(model, "mgu"), I, H, rng);
                const nn::linear out(sg::parameter_scope(model, "out"), H, C, true, rng);
                expect_pass(model, d.store, [&](sg::tape& t) {
                    return sequence_loss(t, nn::unroll(t, cell, d.inputs(t), t.param(d.h0)), out, d, kind);
                });
                // Deep MGU through make_stacked (constructor (scope, in, hidden, rng&)), masked.
                sg::parameter_store deep_model(sg::dtype::f64);
                const auto deep = nn::make_stacked<mgu>(sg::parameter_scope(deep_model, "deep"), 2, I, H, true, rng);
                const nn::linear deep_out(sg::parameter_scope(deep_model, "out"), H, C, true, rng);
                const auto lengths = ragged(steps);
                expect_pass(deep_model, d.store, [&](sg::tape& t) {
                    const auto s0 = deep.make_state({t.param(d.h0), t.param(d.hb)});
                    const auto states = nn::unroll_masked(t, deep, d.inputs(t), s0, lengths);
                    return sequence_loss(t, nn::hiddens(states), deep_out, d, kind, lengths);
                });
            }
        }
}

BOOST_AUTO_TEST_SUITE_END()
