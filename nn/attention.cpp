#include "attention.hpp"

#include <cmath>
#include <string>

#include "../ops/activation.hpp"
#include "../ops/elementwise.hpp"
#include "../ops/linalg.hpp"
#include "../ops/math.hpp"
#include "../ops/operands.hpp"
#include "../ops/shape_ops.hpp"
#include "init.hpp"

namespace seqgrad::nn {
namespace {

std::mt19937_64& lvalue(std::mt19937_64&& r) { return r; }

constexpr const char* score_names[] = {"additive", "dot", "general", "concat", "scaled_dot"};

std::string who(const attention& a) {
    return std::string("nn::attention '") + a.scope_name + "' (" + to_string(a.score) + ")";
}

// x [..., F] times w^T (w [O, F]) -> [..., O]: one GEMM over all leading dimensions.
expr project(const expr& x, const parameter& w) {
    const shape& s = x.shape();
    const std::size_t f = s.back(), o = w.shape()[0];
    expr y = matmul(reshape(x, {s.size() / f, f}), T(w));
    shape out = s;
    out[s.rank() - 1] = o;
    return reshape(y, out);
}

}  // namespace

const char* to_string(attention_score s) { return score_names[static_cast<int>(s)]; }

attention_score attention_score_from_string(std::string_view name) {
    for (int i = 0; i < 5; ++i)
        if (name == score_names[i]) return static_cast<attention_score>(i);
    throw value_error("nn::attention: unknown score '" + std::string(name) +
                      "' (expected additive, dot, general, concat or scaled_dot)");
}

expr memory_from_steps(std::span<const expr> states) {
    if (states.empty()) throw value_error("nn::memory_from_steps: no states (expected at least one step)");
    const shape s0 = states[0].shape();
    std::vector<expr> rows;
    rows.reserve(states.size());
    for (std::size_t k = 0; k < states.size(); ++k) {
        const shape& s = states[k].shape();
        if (s.rank() != 2 || !(s == s0))
            throw shape_error("nn::memory_from_steps: state " + std::to_string(k) + " has shape " + s.str() +
                              ", state 0 " + s0.str() + " (expected one shape [B, D])");
        rows.push_back(reshape(states[k], {s[0], 1, s[1]}));
    }
    return rows.size() == 1 ? rows[0] : concat(rows, 1);
}

attention::attention(const parameter_scope& scope, attention_score sc, std::size_t q, std::size_t m, std::size_t a)
    : attention(scope, sc, q, m, a, lvalue(detail::seeded_from(scope.prefix()))) {}

attention::attention(const parameter_scope& scope, attention_score sc, std::size_t q, std::size_t m, std::size_t a,
                     std::mt19937_64& rng)
    : score(sc), query_size(q), memory_size(m), attention_size(a ? a : q), scope_name(scope.prefix()) {
    if (q == 0 || m == 0 || q + m < q)  // q + m: concat's weight, wrapped to [A, 0] for m = SIZE_MAX
        throw value_error("nn::attention '" + scope.prefix() + "': query size " + std::to_string(q) + ", memory size " +
                          std::to_string(m) + " (expected both > 0, their sum within size_t)");
    const std::size_t A = attention_size;
    const seqgrad::detail::store_transaction undo(scope.store());
    switch (score) {
    case attention_score::dot:
    case attention_score::scaled_dot:
        if (q != m)
            throw shape_error("nn::attention '" + scope.prefix() + "' (" + to_string(score) + "): query size " +
                              std::to_string(q) + ", memory size " + std::to_string(m) +
                              " (expected equal sizes; use general or additive otherwise)");
        break;
    case attention_score::general: w = scope.add("w", shape{q, m}); break;
    case attention_score::additive:
        w_q = scope.add("w_q", shape{A, q});
        w_k = scope.add("w_k", shape{A, m});
        b = scope.add("b", shape{A});
        v = scope.add("v", shape{1, A});
        break;
    case attention_score::concat:
        w = scope.add("w", shape{A, q + m});
        v = scope.add("v", shape{1, A});
        break;
    }
    reset_parameters(rng);
}

void attention::reset_parameters(std::mt19937_64& rng) const {
    const double kq = 1.0 / std::sqrt(double(query_size)), km = 1.0 / std::sqrt(double(memory_size));
    const double ka = 1.0 / std::sqrt(double(attention_size)), kc = 1.0 / std::sqrt(double(query_size + memory_size));
    if (w.valid())
        uniform(w, score == attention_score::general ? -km : -kc, score == attention_score::general ? km : kc, rng);
    if (w_q.valid()) uniform(w_q, -kq, kq, rng);
    if (w_k.valid()) uniform(w_k, -km, km, rng);
    if (b.valid()) uniform(b, -km, km, rng);
    if (v.valid()) uniform(v, -ka, ka, rng);
}

attention_memory attention::prepare(const expr& memory, std::span<const std::size_t> lengths) const {
    const shape s = memory.shape();  // a copy: node storage moves as nodes are added
    if (s.rank() != 3 || s[2] != memory_size || s[1] == 0)
        throw shape_error(who(*this) + ": memory " + s.str() + " (expected [B, S, " + std::to_string(memory_size) +
                          "] with S >= 1)");
    attention_memory m;
    m.batch = s[0];
    m.steps = s[1];
    if (!lengths.empty() && lengths.size() != m.batch)
        throw shape_error(who(*this) + ": " + std::to_string(lengths.size()) + " lengths for memory " + s.str() +
                          " (expected one per batch row, B = " + std::to_string(m.batch) + ")");
    bool any = false;
    for (std::size_t r = 0; r < lengths.size(); ++r) {
        if (lengths[r] > m.steps)
            throw value_error(who(*this) + ": row " + std::to_string(r) + " has length " + std::to_string(lengths[r]) +
                              " (expected at most S = " + std::to_string(m.steps) + ")");
        any = any || lengths[r] < m.steps;
    }
    tape& t = memory.owner();
    expr mem = memory;
    if (any) {
        m.lengths.assign(lengths.begin(), lengths.end());
        // Masked positions read as zeros: a weight of exactly 0 times an Inf or NaN left in the padding
        // (0 * Inf) made every context and gradient of the row NaN.
        xt::xarray<double> valid = xt::zeros<double>({m.batch, m.steps, std::size_t{1}});
        for (std::size_t r = 0; r < m.batch; ++r)
            for (std::size_t k = 0; k < lengths[r]; ++k) valid(r, k, 0) = 1.0;
        mem = where(t.input(valid), memory, t.constant(0.0));
    }
    m.values = mem;
    switch (score) {
    case attention_score::dot:
    case attention_score::scaled_dot: m.keys = mem; break;
    case attention_score::general: m.keys = project(mem, w); break;
    case attention_score::additive: m.keys = project(mem, w_k) + t.param(b); break;
    case attention_score::concat: {
        const expr wk = slice(t.param(w), 1, query_size, query_size + memory_size);
        m.keys = reshape(matmul(reshape(mem, {s[0] * s[1], s[2]}), T(wk)), {s[0], s[1], attention_size});
        break;
    }
    }
    return m;
}

void attention::check_query(const attention_memory& m, const expr& q, std::size_t rank) const {
    const shape& s = q.shape();
    if (s.rank() != rank || s[0] != m.batch || s.back() != query_size)
        throw shape_error(who(*this) + ": query " + s.str() + " for memory [" + std::to_string(m.batch) + ", " +
                          std::to_string(m.steps) + ", " + std::to_string(memory_size) + "] (expected [" +
                          std::to_string(m.batch) + (rank == 3 ? ", T, " : ", ") + std::to_string(query_size) + "])");
}

expr attention::scores(const attention_memory& m, const expr& q) const {
    check_query(m, q, 3);
    const shape& s = q.shape();  // [B, R, Dq]
    const std::size_t B = s[0], R = s[1], S = m.steps, A = attention_size;
    tape& t = q.owner();
    switch (score) {
    case attention_score::dot:
    case attention_score::general: return bmm(q, T(m.keys));
    case attention_score::scaled_dot: return bmm(q, T(m.keys)) * (1.0 / std::sqrt(double(query_size)));
    case attention_score::additive:
    case attention_score::concat: {
        const expr wq = score == attention_score::additive ? t.param(w_q) : slice(t.param(w), 1, 0, query_size);
        const expr qp = reshape(matmul(reshape(q, {B * R, query_size}), T(wq)), {B, R, 1, A});
        const expr h = tanh(qp + reshape(m.keys, {B, 1, S, A}));  // [B, R, S, A]
        return reshape(matmul(reshape(h, {B * R * S, A}), T(v)), {B, R, S});
    }
    }
    return {};
}

attention_output attention::all_steps(const attention_memory& m, const expr& queries) const {
    expr e = scores(m, queries);
    expr alpha = m.masked() ? masked_softmax(e, m.lengths) : softmax(e);
    return {bmm(alpha, m.values), alpha};
}

attention_output attention::operator()(const attention_memory& m, const expr& query) const {
    check_query(m, query, 2);
    const attention_output o = all_steps(m, reshape(query, {m.batch, 1, query_size}));
    return {reshape(o.context, {m.batch, memory_size}), reshape(o.weights, {m.batch, m.steps})};
}

xt::xarray<double> weights_of_row(const tape& t, std::span<const expr> step_weights, std::size_t row) {
    if (step_weights.empty()) return xt::zeros<double>({std::size_t{0}, std::size_t{0}});
    const std::size_t S = step_weights[0].shape().back();
    xt::xarray<double> out = xt::zeros<double>({step_weights.size(), S});
    for (std::size_t k = 0; k < step_weights.size(); ++k) {
        const shape& s = step_weights[k].shape();
        if (s.rank() != 2 || row >= s[0] || s[1] != S)
            throw shape_error("nn::weights_of_row: step " + std::to_string(k) + " weights " + s.str() + ", row " +
                              std::to_string(row) + " (expected [B, " + std::to_string(S) + "] with row < B)");
        const xt::xarray<double> w = t.value(step_weights[k]);
        for (std::size_t j = 0; j < S; ++j) out(k, j) = w(row, j);
    }
    return out;
}

xt::xarray<double> weights_of_row(const tape& t, const expr& all_weights, std::size_t row) {
    const shape& s = all_weights.shape();
    if (s.rank() != 3 || row >= s[0])
        throw shape_error("nn::weights_of_row: weights " + s.str() + ", row " + std::to_string(row) +
                          " (expected [B, T, S] with row < B)");
    const xt::xarray<double> w = t.value(all_weights);
    xt::xarray<double> out = xt::zeros<double>({s[1], s[2]});
    for (std::size_t k = 0; k < s[1]; ++k)
        for (std::size_t j = 0; j < s[2]; ++j) out(k, j) = w(row, k, j);
    return out;
}

}  // namespace seqgrad::nn
