#include "dropout.hpp"

#include <string>

#include "../ops/activation.hpp"
#include "../ops/elementwise.hpp"
#include "../ops/linalg.hpp"
#include "../ops/math.hpp"
#include "../ops/operands.hpp"
#include "../ops/random.hpp"
#include "../ops/shape_ops.hpp"

namespace seqgrad::nn {
namespace {

void check_p(const char* who, double p) {
    if (!(p >= 0 && p < 1))
        throw value_error(std::string("nn::") + who + ": expected a probability in [0, 1), got " +
                          seqgrad::detail::number(p));
}

bool active(const char* who, const expr& x, double p) {
    check_p(who, p);
    return p > 0 && x.owner().training();
}

// A fresh inverted-dropout mask over x, one entry per `inner` consecutive entries.
expr drop(const expr& x, double p, std::size_t inner, std::size_t period) {
    tape& t = x.owner();
    return random_mask(x, mask_spec{t.seed(), t.next_draw(), p, 1 / (1 - p), inner, period});
}

}  // namespace

expr dropout(const expr& x, double p) { return active("dropout", x, p) ? drop(x, p, 1, 0) : x; }

locked_dropout::locked_dropout(tape& t, double p, const shape& mask_shape) : p_(p), mask_(mask_shape) {
    check_p("locked_dropout", p);
    if (mask_.size() == 0) throw shape_error("nn::locked_dropout: empty mask shape " + mask_.str());
    active_ = p > 0 && t.training();
    if (active_) {
        seed_ = t.seed();
        draw_ = t.next_draw();
    }
}

expr locked_dropout::operator()(const expr& x) const {
    if (!active_) return x;
    // The mask repeats every mask_.size() entries of x, so each entry of x keeps one mask entry
    // (its row of the mask) at every step only when x's trailing dims are the mask's, except the
    // one under the mask's first, which may be a multiple of it (rows of the mask stacked). Rows
    // counted across a leading axis (x [T, B', H] for a [B, H] mask with B' not a multiple of B,
    // or x [N, 3] for a [6] mask) would give a step-dependent mask.
    const shape xs = x.shape();
    bool ok = xs.rank() >= mask_.rank() && xs.size() % mask_.size() == 0;
    for (std::size_t k = 0; ok && k + 1 < mask_.rank(); ++k) ok = xs.back(k) == mask_.back(k);
    if (ok && mask_.rank() > 0) ok = xs.back(mask_.rank() - 1) % mask_.back(mask_.rank() - 1) == 0;
    if (!ok)
        throw shape_error("nn::locked_dropout: input " + xs.str() + " does not repeat the mask " + mask_.str() +
                          " (expected x's trailing dims to be the mask's, the first of them a multiple of the "
                          "mask's first: rows of the mask stacked, e.g. [T*B, H] or [T, B, H] for a [B, H] mask)");
    return random_mask(x, mask_spec{seed_, draw_, p_, 1 / (1 - p_), 1, mask_.size()});
}

expr embedding_dropout(const expr& table, double p) {
    if (table.shape().rank() != 2)
        throw shape_error("nn::embedding_dropout: table " + table.shape().str() + " (expected [V, E])");
    return active("embedding_dropout", table, p) ? drop(table, p, table.shape()[1], 0) : table;
}

expr drop_connect(const expr& w, double p) { return active("drop_connect", w, p) ? drop(w, p, 1, 0) : w; }

weight_dropped_lstm::weight_dropped_lstm(tape& t, const lstm_cell& c, double p)
    : cell(c), w_hh(drop_connect(t.param(c.w_hh), p)) {}

lstm_state weight_dropped_lstm::operator()(const expr& x, const lstm_state& s) const {
    // c too, as lstm_cell: f * c would broadcast a [1, H] or [H] c silently.
    detail::check_step("weight_dropped_lstm", cell.w_ih, cell.input_size, cell.hidden_size, x, s.h, "h");
    detail::check_step("weight_dropped_lstm", cell.w_ih, cell.input_size, cell.hidden_size, x, s.c, "c");
    const expr gates = matmul(x, T(cell.w_ih)) + cell.b_ih + (matmul(s.h, T(w_hh)) + cell.b_hh);
    const std::vector<expr> q = split(gates, 4, -1);
    const expr i = sigmoid(q[0]), f = sigmoid(q[1]), g = tanh(q[2]), o = sigmoid(q[3]);
    const expr c = f * s.c + i * g;
    return {o * tanh(c), c};
}

expr zoneout(const expr& prev, const expr& next, double z) {
    check_p("zoneout", z);
    if (prev.shape() != next.shape())  // before z = 0 returns next: a wrong pair fails at any z
        throw shape_error("nn::zoneout: previous state " + prev.shape().str() + ", next " + next.shape().str() +
                          " (expected equal shapes)");
    if (z == 0) return next;
    tape& t = next.owner();
    if (!t.training()) return next + (prev - next) * z;
    // A 0/1 mask that keeps (takes prev) with probability z: drop probability 1 - z, unscaled. For
    // z <= 2^-54, 1 - z rounds to 1 (which random_mask refuses): no entry is kept at the mask's
    // resolution (2^-53), as with z = 0.
    if (1 - z >= 1) return next;
    // A selection, not next + mask * (prev - next): that sum rounds (1e-20 kept next to 1 came back
    // 0) and turns an infinite next into NaN even where it is taken.
    const expr keep = random_mask(t.constant(1.0, prev.shape()), mask_spec{t.seed(), t.next_draw(), 1 - z, 1.0, 1, 0});
    return where(keep, prev, next);
}

lstm_state zoneout(const lstm_state& prev, const lstm_state& next, double z_h, double z_c) {
    return {zoneout(prev.h, next.h, z_h), zoneout(prev.c, next.c, z_c)};
}

}  // namespace seqgrad::nn
