#include "norm_cells.hpp"

#include <algorithm>
#include <limits>

#include <string>
#include <vector>

#include "../ops/activation.hpp"
#include "../ops/elementwise.hpp"
#include "../ops/linalg.hpp"
#include "../ops/norm.hpp"
#include "../ops/operands.hpp"
#include "../ops/shape_ops.hpp"
#include "init.hpp"

namespace seqgrad::nn {
namespace {

std::mt19937_64& lvalue(std::mt19937_64&& r) { return r; }

void check_sizes(const char* who, const parameter_scope& scope, std::size_t in, std::size_t hid) {
    // 4 hid (a 3.5e18 hidden size wrapped to a [0, in] weight) and 4 hid x max(in, hid) entries.
    const std::size_t most = std::numeric_limits<std::size_t>::max() / 4;
    if (in == 0 || hid == 0 || hid > most / std::max(in, hid))
        throw value_error(std::string("nn::") + who + " '" + scope.prefix() + "': input size " + std::to_string(in) +
                          ", hidden size " + std::to_string(hid) +
                          " (expected both > 0, and 4 x hidden x max(input, hidden) entries within size_t)");
}

// LN(a W^T; gain) with no shift (the cells add their biases after).
expr normed(const expr& a, const parameter& w, const parameter& gain, double eps) {
    tape& t = a.owner();
    const std::size_t n = w.shape()[0];
    return layer_norm(matmul(a, T(w)), t.param(gain), t.constant(0.0, {n}), eps);
}

}  // namespace

layer_norm_lstm_cell::layer_norm_lstm_cell(const parameter_scope& scope, std::size_t in, std::size_t hid)
    : layer_norm_lstm_cell(scope, in, hid, lvalue(detail::seeded_from(scope.prefix()))) {}

layer_norm_lstm_cell::layer_norm_lstm_cell(const parameter_scope& scope, std::size_t in, std::size_t hid,
                                           std::mt19937_64& rng)
    : input_size(in), hidden_size(hid) {
    check_sizes("layer_norm_lstm_cell", scope, in, hid);
    const seqgrad::detail::store_transaction undo(scope.store());
    w_ih = scope.add("w_ih", shape{4 * hid, in});
    w_hh = scope.add("w_hh", shape{4 * hid, hid});
    g_ih = scope.add("g_ih", shape{4 * hid});
    g_hh = scope.add("g_hh", shape{4 * hid});
    b = scope.add("b", shape{4 * hid});
    g_c = scope.add("g_c", shape{hid});
    b_c = scope.add("b_c", shape{hid});
    reset_parameters(rng);
}

void layer_norm_lstm_cell::reset_parameters(std::mt19937_64& rng) const {
    for (const parameter* p : {&w_ih, &w_hh, &b}) rnn_default(*p, hidden_size, rng);
    for (const parameter* p : {&g_ih, &g_hh, &g_c}) constant(*p, 1.0);
    zeros(b_c);
}

lstm_state layer_norm_lstm_cell::initial_state(tape& t, std::size_t batch) const {
    return {t.constant(0.0, {batch, hidden_size}), t.constant(0.0, {batch, hidden_size})};
}

lstm_state layer_norm_lstm_cell::operator()(const expr& x, const lstm_state& s) const {
    detail::check_step("layer_norm_lstm_cell", w_ih, input_size, hidden_size, x, s.h, "h");
    detail::check_step("layer_norm_lstm_cell", w_ih, input_size, hidden_size, x, s.c, "c");
    tape& t = x.owner();
    const expr gates = normed(x, w_ih, g_ih, eps) + normed(s.h, w_hh, g_hh, eps) + t.param(b);
    const std::vector<expr> q = split(gates, 4, -1);
    const expr i = sigmoid(q[0]), f = sigmoid(q[1]), g = tanh(q[2]), o = sigmoid(q[3]);
    const expr c = f * s.c + i * g;
    return {o * tanh(layer_norm(c, t.param(g_c), t.param(b_c), eps)), c};
}

layer_norm_gru_cell::layer_norm_gru_cell(const parameter_scope& scope, std::size_t in, std::size_t hid)
    : layer_norm_gru_cell(scope, in, hid, lvalue(detail::seeded_from(scope.prefix()))) {}

layer_norm_gru_cell::layer_norm_gru_cell(const parameter_scope& scope, std::size_t in, std::size_t hid,
                                         std::mt19937_64& rng)
    : input_size(in), hidden_size(hid) {
    check_sizes("layer_norm_gru_cell", scope, in, hid);
    const seqgrad::detail::store_transaction undo(scope.store());
    w_ih = scope.add("w_ih", shape{3 * hid, in});
    w_hh = scope.add("w_hh", shape{3 * hid, hid});
    g_ih = scope.add("g_ih", shape{3 * hid});
    g_hh = scope.add("g_hh", shape{3 * hid});
    b_ih = scope.add("b_ih", shape{3 * hid});
    b_hh = scope.add("b_hh", shape{3 * hid});
    reset_parameters(rng);
}

void layer_norm_gru_cell::reset_parameters(std::mt19937_64& rng) const {
    for (const parameter* p : {&w_ih, &w_hh, &b_ih, &b_hh}) rnn_default(*p, hidden_size, rng);
    for (const parameter* p : {&g_ih, &g_hh}) constant(*p, 1.0);
}

expr layer_norm_gru_cell::initial_state(tape& t, std::size_t batch) const {
    return t.constant(0.0, {batch, hidden_size});
}

expr layer_norm_gru_cell::operator()(const expr& x, const expr& h) const {
    detail::check_step("layer_norm_gru_cell", w_ih, input_size, hidden_size, x, h, "h");
    tape& t = x.owner();
    const expr a_all = normed(x, w_ih, g_ih, eps) + t.param(b_ih);
    const expr u_all = normed(h, w_hh, g_hh, eps) + t.param(b_hh);
    const std::vector<expr> a = split(a_all, 3, -1), u = split(u_all, 3, -1);
    const expr r = sigmoid(a[0] + u[0]), z = sigmoid(a[1] + u[1]);
    const expr n = tanh(a[2] + r * u[2]);
    return (1.0 - z) * n + z * h;
}

}  // namespace seqgrad::nn
