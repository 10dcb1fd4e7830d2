#pragma once
// More random graphs for test_engine_diff_families.cpp, built with engine_diff_graphs.hpp's Builder
// on families its generator does not draw: eight more ops among step_op's (bmm, layer_norm,
// masked_softmax, conv1d_causal, dropout / zoneout, user-defined ops, logsumexp / cumsum / max /
// gelu, an activation read by a user op), and nine recurrent families (rnn_cell, the layer-norm
// cells, stacked cells, also of any_cell, bidirectional, zoneout and weight-dropped cells,
// encode_decode, seq2seq), masked or not, in training (dropout masks) or not, their states then
// read by attention, adaptive softmax or a causal convolution, and by random ops.
#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <seqgrad/nn/adaptive_softmax.hpp>
#include <seqgrad/nn/attention.hpp>
#include <seqgrad/nn/dropout.hpp>
#include <seqgrad/nn/norm_cells.hpp>
#include <seqgrad/nn/seq2seq.hpp>

#include "engine_diff_graphs.hpp"

namespace engine_diff {

// User ops: one whose derivative comes from its output (it folds like tanh), one with its own
// backward through target() and emit(), one reducing rows (emit_rows).
inline SEQGRAD_REGISTER_OP(diff_tanh) =  // tanh x
    sg::op_builder("engine_diff_tanh")
        .arity(1)
        .shape(sg::same_shape)
        .forward([](auto& c) {
            auto x = c.in(0);
            auto y = c.out();
            for (std::size_t i = 0; i < y.size(); ++i) y[i] = std::tanh(x[i]);
        })
        .derivative_of_output<sg::output_derivative::tanh>()
        .sample({{2, 3}});
inline SEQGRAD_REGISTER_OP(diff_mul_sq) =  // a * b^2
    sg::op_builder("engine_diff_mul_sq")
        .arity(2)
        .shape(sg::same_shape)
        .saves(sg::saves::inputs)
        .forward([](auto& c) {
            auto a = c.in(0), b = c.in(1);
            auto y = c.out();
            for (std::size_t i = 0; i < y.size(); ++i) y[i] = a[i] * b[i] * b[i];
        })
        .backward([](auto& c) {
            auto a = c.in(0), b = c.in(1);
            auto gy = c.grad_out();
            if (c.needs(0)) {
                auto t0 = c.target(0);
                for (std::size_t i = 0; i < t0.size(); ++i) t0[i] = gy[i] * b[i] * b[i];
            }
            c.emit(1, [&](std::size_t i) { return 2 * gy[i] * a[i] * b[i]; });
        })
        .sample({{2, 3}, {2, 3}});
inline sg::shape diff_rowsum_shape(const sg::op_def&, std::span<const sg::shape> in, const sg::attrs&) {
    return sg::shape{in[0][0], 1};
}
inline SEQGRAD_REGISTER_OP(diff_rowsum) =  // [m, n] -> [m, 1]
    sg::op_builder("engine_diff_rowsum")
        .arity(1)
        .shape(&diff_rowsum_shape)
        .saves(sg::saves::nothing)
        .forward([](auto& c) {
            auto x = c.in(0);
            auto y = c.out();
            const std::size_t n = x.shape[1];
            for (std::size_t r = 0; r < y.size(); ++r) {
                y[r] = 0;
                for (std::size_t k = 0; k < n; ++k) y[r] += x[r * n + k];
            }
        })
        .backward([](auto& c) {
            auto gy = c.grad_out();
            const std::size_t n = c.targets[0].shape.rank() ? c.targets[0].shape[1] : 1;
            c.emit_rows(0, n, [&](std::size_t o) { return gy[o]; });
        })
        .sample({{2, 3}});

// The models the families use (beside Env's), drawn from the seed.
struct FamilyEnv {
    sg::parameter_store ps;
    std::unique_ptr<nn::rnn_cell> rnn;
    std::unique_ptr<nn::layer_norm_lstm_cell> lnl;
    std::unique_ptr<nn::layer_norm_gru_cell> lng;
    std::unique_ptr<nn::lstm_cell> l2;
    std::unique_ptr<nn::gru_cell> g2;
    std::unique_ptr<nn::stacked<nn::lstm_cell>> stl;
    std::unique_ptr<nn::stacked<nn::gru_cell>> stg;
    std::unique_ptr<nn::stacked<nn::any_cell>> sta;
    std::vector<std::unique_ptr<nn::attention>> att1, att2;  // by score, over [B,H] / [B,2H] states
    std::unique_ptr<nn::adaptive_softmax> asm_;
    std::unique_ptr<nn::seq2seq<nn::lstm_cell>> s2s;
    std::unique_ptr<nn::seq2seq<nn::gru_cell>> s2g;
    std::string layers;  // what sta stacks
    nn::seq2seq_options o;
    FamilyEnv(const Cfg& c, std::uint64_t seed) : ps(c.f32 ? sg::dtype::f32 : sg::dtype::f64) {
        Rng r(seed ^ 0x5151);
        std::mt19937_64 g(seed + 11);
        rnn = std::make_unique<nn::rnn_cell>(sg::parameter_scope(ps, "rnn"), c.I, c.H,
                                             r.P(0.5) ? nn::rnn_activation::tanh : nn::rnn_activation::relu, g);
        lnl = std::make_unique<nn::layer_norm_lstm_cell>(sg::parameter_scope(ps, "lnl"), c.I, c.H, g);
        lng = std::make_unique<nn::layer_norm_gru_cell>(sg::parameter_scope(ps, "lng"), c.I, c.H, g);
        l2 = std::make_unique<nn::lstm_cell>(sg::parameter_scope(ps, "l2"), c.I, c.H, g);
        g2 = std::make_unique<nn::gru_cell>(sg::parameter_scope(ps, "g2"), c.I, c.H, g);
        const int depth = 1 + r.I(3);
        const bool resid = r.P(0.5);
        stl = std::make_unique<nn::stacked<nn::lstm_cell>>(
            nn::make_stacked<nn::lstm_cell>(sg::parameter_scope(ps, "stl"), depth, c.I, c.H, resid, g));
        stg = std::make_unique<nn::stacked<nn::gru_cell>>(
            nn::make_stacked<nn::gru_cell>(sg::parameter_scope(ps, "stg"), depth, c.I, c.H, resid, g));
        std::vector<nn::any_cell> cells;
        for (int l = 0; l < 1 + r.I(3); ++l) {
            const std::size_t in = l == 0 ? c.I : c.H;
            const auto sc = sg::parameter_scope(ps, "sta" + std::to_string(l));
            const int k = r.I(5);
            const char* names[] = {"lstm", "gru", "rnn", "ln_lstm", "ln_gru"};
            layers += std::string(l ? "," : "") + names[k];
            if (k == 0) cells.emplace_back(nn::lstm_cell(sc, in, c.H, g));
            else if (k == 1) cells.emplace_back(nn::gru_cell(sc, in, c.H, g));
            else if (k == 2) cells.emplace_back(nn::rnn_cell(sc, in, c.H, nn::rnn_activation::tanh, g));
            else if (k == 3) cells.emplace_back(nn::layer_norm_lstm_cell(sc, in, c.H, g));
            else cells.emplace_back(nn::layer_norm_gru_cell(sc, in, c.H, g));
        }
        sta = std::make_unique<nn::stacked<nn::any_cell>>(std::move(cells), r.P(0.5));
        for (int s = 0; s < 5; ++s) {
            const auto sc = nn::attention_score(s);
            const std::string n = std::to_string(s);
            att1.push_back(
                std::make_unique<nn::attention>(sg::parameter_scope(ps, "a1_" + n), sc, c.H, c.H, 1 + r.I(4), g));
            if (sc != nn::attention_score::dot && sc != nn::attention_score::scaled_dot)
                att2.push_back(std::make_unique<nn::attention>(sg::parameter_scope(ps, "a2_" + n), sc, c.H, 2 * c.H,
                                                               1 + r.I(4), g));
            else att2.push_back(nullptr);
        }
        const std::size_t V = 8;
        asm_ = c.H >= 4 ? std::make_unique<nn::adaptive_softmax>(sg::parameter_scope(ps, "as"), c.H, V,
                                                                 std::vector<std::size_t>{2, 5}, 2.0, r.P(0.5), g)
                        : std::make_unique<nn::adaptive_softmax>(sg::parameter_scope(ps, "as"), c.H, V,
                                                                 std::vector<std::size_t>{3}, 1.0, r.P(0.5), g);
        o.source_vocab = 5;
        o.target_vocab = 6;
        o.embedding_size = 1 + r.I(3);
        o.encoder_size = 1 + r.I(3);
        o.encoder_layers = 1 + r.I(2);
        o.bidirectional = r.P(0.5);
        o.decoder_size = 1 + r.I(4);
        o.decoder_layers = 1 + r.I(2);
        o.score = nn::attention_score(r.I(5));
        if (o.score == nn::attention_score::dot || o.score == nn::attention_score::scaled_dot)
            o.decoder_size = o.memory_size();
        o.attention_size = r.I(3);
        o.input_feeding = r.P(0.5);
        if (r.P(0.5)) s2s = std::make_unique<nn::seq2seq<nn::lstm_cell>>(sg::parameter_scope(ps, "s2s"), o);
        else s2g = std::make_unique<nn::seq2seq<nn::gru_cell>>(sg::parameter_scope(ps, "s2g"), o);
        for (auto& p : ps.parameters()) p.assign(r.arr(p.shape().to_vector(), 0.7));
    }
};

// What a graph drew, for the messages and the coverage counts.
inline constexpr const char* kind_names[] = {"dag",
                                             "rnn_cell",
                                             "layer_norm_lstm_cell",
                                             "layer_norm_gru_cell",
                                             "stacked lstm_cell",
                                             "stacked gru_cell / any_cell",
                                             "bidirectional",
                                             "zoneout / weight_dropped",
                                             "encode_decode",
                                             "seq2seq"};
inline constexpr const char* post_names[] = {"", "attention", "adaptive_softmax", "conv1d_causal over the states"};
inline constexpr const char* op_names[] =
    {"bmm",     "layer_norm",          "masked_softmax",         "conv1d_causal", "dropout / zoneout",
     "user op", "lse/cumsum/max/gelu", "activation into user op"};
struct Drawn {
    int kind = 0, post = 0;
    unsigned ops = 0;                 // bit k: op_names[k] taken at least once
    std::string detail, post_detail;  // the variants of the kind and of the post family
    std::string label() const {
        std::string s = kind_names[kind] + detail;
        if (post) s += " + " + std::string(post_names[post]) + post_detail;
        if (ops) {
            s += ", ops {";
            for (int k = 0, n = 0; k < 8; ++k)
                if (ops & (1u << k)) s += (n++ ? ", " : "") + std::string(op_names[k]);
            s += "}";
        }
        return s;
    }
};

// Builder::ext: one of the eight more ops on a pool item (one that does not fit it does nothing).
inline void install_family_ops(Builder& b, Drawn& d) {
    b.ext = [&b, &d]() {
        auto& r = b.r;
        auto& t = b.t;
        const int ia = b.pick();
        const sg::expr a = b.pool[ia].e;
        const auto sa = Builder::shp(a);
        const bool two = sa.size() == 2;
        const int op = r.I(8);
        const auto took = [&](const sg::expr& y, bool pos = false) {
            d.ops |= 1u << op;
            b.keep(y, pos);
        };
        switch (op) {
        case 0: {  // bmm of a (or a transposed) stacked with tanh of it, by an input; maybe y^T y
            if (!two) break;
            const std::size_t m = sa[0], n = sa[1], p = 1 + r.I(4);
            const int f = r.I(4);
            const bool ta = f & 1, tb = f & 2;
            sg::expr a3 = ta ? sg::reshape(sg::transpose(a), {1, n, m}) : sg::reshape(a, {1, m, n});
            std::size_t nb = 1;
            if (r.P(0.5)) {
                a3 = sg::concat({a3, sg::tanh(a3)}, 0);
                nb = 2;
            }
            const sg::expr bb = tb ? b.input({nb, p, n}) : b.input({nb, n, p});
            sg::expr y = sg::bmm(a3, bb, ta, tb);
            if (r.P(0.3)) y = sg::bmm(y, y, true, false);  // [nb,p,p]
            b.all.push_back(y);
            const auto sy = Builder::shp(y);
            took(sg::reshape(y, {sy[0] * sy[1], sy[2]}));
            break;
        }
        case 1: {  // layer_norm, gain and bias parameters or inputs
            if (sa.empty()) break;
            const std::size_t n = sa.back();
            const sg::expr g = (n == b.c.H && r.P(0.5)) ? sg::expr(t.param(b.env.b)) : b.input({n}, 1.0);
            const sg::expr be = (n == b.c.H && r.P(0.5)) ? sg::expr(t.param(b.env.bo)) : b.input({n}, 1.0);
            took(sg::layer_norm(a, g, be, r.P(0.5) ? 1e-5 : 0.1));
            break;
        }
        case 2: {  // masked_softmax, lengths 0..n
            if (!two) break;
            std::vector<int> L(sa[0]);
            for (auto& x : L) x = r.I(int(sa[1]) + 1);
            took(sg::masked_softmax(a, L), true);
            break;
        }
        case 3: {  // conv1d_causal along a's rows
            if (!two) break;
            const std::size_t T = sa[0], n = sa[1], K = 1 + r.I(3), co = 1 + r.I(4);
            const sg::expr w = b.input({K, n, co}, 0.7);
            const sg::expr y = sg::conv1d_causal(sg::reshape(a, {T, 1, n}), w);
            b.all.push_back(y);
            took(sg::reshape(y, {T, co}));
            break;
        }
        case 4: {  // dropout / zoneout (identity or expectation unless training)
            if (r.P(0.6)) took(nn::dropout(a, 0.1 + 0.5 * r.U(0, 1)), b.pool[ia].pos);
            else {
                const int ib = b.compatible(a);
                if (ib >= 0 && Builder::shp(b.pool[ib].e) == sa) took(nn::zoneout(a, b.pool[ib].e, 0.3));
            }
            break;
        }
        case 5: {  // user ops
            const int k = r.I(3);
            if (k == 0) took(sg::apply(diff_tanh, {a}));
            else if (k == 1) {
                std::vector<int> cand;
                for (int i = 0; i < int(b.pool.size()); ++i)
                    if (Builder::shp(b.pool[i].e) == sa) cand.push_back(i);
                const int ib = cand[r.I(int(cand.size()))];
                b.pool[ib].uses++;
                took(r.P(0.5) ? sg::apply(diff_mul_sq, {a, b.pool[ib].e}) : sg::apply(diff_mul_sq, {b.pool[ib].e, a}));
            } else if (two) took(sg::apply(diff_rowsum, {a}));
            break;
        }
        case 6: {  // reductions along an axis, gelu
            if (!two) break;
            const int k = r.I(4);
            if (k == 0) took(sg::logsumexp(a, r.I(2), r.P(0.5)));
            else if (k == 1) took(sg::cumsum(a, r.I(2)));
            else if (k == 2) took(sg::max(a, r.I(2), r.P(0.5)));
            else took(sg::gelu(a));
            break;
        }
        case 7: {  // an activation read by a user op (folded into it, or not)
            bool pos;
            const sg::expr y = b.act_raw(a, r.I(4), pos);
            b.all.push_back(y);
            const int k = r.I(3);
            if (k == 0) took(sg::apply(diff_mul_sq, {y, a}));
            else if (k == 1) took(sg::apply(diff_mul_sq, {a, y}));
            else if (two) took(sg::apply(diff_rowsum, {y}));
            break;
        }
        }
    };
}

// The graph of the kind (an index into kind_names) on b; returns its loss.
inline sg::expr build_family(Builder& b, FamilyEnv& e2, int kind, bool train, Drawn& d) {
    auto& r = b.r;
    auto& t = b.t;
    const Cfg& c = b.c;
    const std::size_t T = c.T, B = c.B, H = c.H;
    d.kind = kind;
    sg::expr total;
    const auto addl = [&](sg::expr l) {
        if (l.valid()) total = total.valid() ? total + l : l;
    };
    b.input({B, H});
    b.input({B, H});
    if (kind == 0) {
        const int n = 3 + r.I(14);
        for (int i = 0; i < n; ++i) b.step_op();
        addl(b.loss_of());
        return total;
    }
    if (kind == 9) {  // seq2seq on ragged pairs, targets maybe empty
        const int Bn = 1 + r.I(3);
        std::vector<std::vector<int>> src(Bn), tgt(Bn);
        for (int i = 0; i < Bn; ++i) {
            src[i].resize(1 + r.I(4));
            for (auto& x : src[i]) x = r.I(5);
            tgt[i].resize(r.I(4));
            for (auto& x : tgt[i]) x = r.I(6);
        }
        const nn::seq2seq_options& o = e2.o;
        d.detail = std::string(e2.s2s ? " lstm" : " gru") + " (" + (o.bidirectional ? "bidirectional, " : "") +
                   nn::to_string(o.score) + (o.input_feeding ? ", input feeding" : "") + ")";
        const nn::seq2seq_output so = e2.s2s ? e2.s2s->forward(t, src, tgt) : e2.s2g->forward(t, src, tgt);
        b.all.push_back(so.logits);
        for (auto& w : so.step_weights) b.all.push_back(w);
        if (so.all_weights.valid()) b.all.push_back(so.all_weights);
        addl(so.loss);
        if (r.P(0.5)) {
            b.keep(so.logits);
            const int n = r.I(5);
            for (int i = 0; i < n; ++i) b.step_op();
            addl(b.loss_of(2));
        }
        return total;
    }
    const sg::expr seq = b.input({T, B, c.I});
    const std::vector<sg::expr> xs = nn::unstack_steps(seq);
    for (auto& x : xs) b.all.push_back(x);
    std::vector<std::size_t> lens(B);
    for (auto& l : lens) l = 1 + r.I(int(T));
    const bool masked = r.P(0.4);
    const std::span<const std::size_t> L = masked ? std::span<const std::size_t>(lens) : std::span<const std::size_t>();
    std::vector<sg::expr> hs;
    const auto geth = [&](sg::expr h) {
        hs.push_back(h);
        b.all.push_back(h);
    };
    const auto variant = [&](const std::string& v) { d.detail = " (" + v + (masked ? ", masked)" : ")"); };
    bool bi = false;
    // Zoneout in training keeps a unit of the previous state as next + (prev - next): prev in exact
    // arithmetic, within an ulp in floating point, where the plain and the optimised tape may round
    // differently (products batched or packed). A maximum, minimum or relu of the two would then
    // route the gradient differently on the two tapes (a tie split on one, whole on the other), so
    // such states are read by the loss only (seeds 310405, 522892 and 570851 did this).
    bool near_copies = false;
    switch (kind) {
    case 1: {
        variant(e2.rnn->activation == nn::rnn_activation::tanh ? "tanh" : "relu");
        const auto s0 = r.P(0.5) ? b.input({B, H}) : e2.rnn->initial_state(t, B);
        const auto st = masked ? nn::unroll_masked(t, *e2.rnn, xs, s0, L) : nn::unroll(t, *e2.rnn, xs, s0);
        for (auto& h : st) geth(h);
        break;
    }
    case 2: {
        variant("unroll");
        const nn::lstm_state s0 = r.P(0.5) ? e2.lnl->initial_state(t, B)
                                           : nn::lstm_state{b.input({B, H}), b.input({B, H})};
        const auto st = masked ? nn::unroll_masked(t, *e2.lnl, xs, s0, L) : nn::unroll(t, *e2.lnl, xs, s0);
        for (auto& s : st) {
            geth(s.h);
            b.all.push_back(s.c);
        }
        break;
    }
    case 3: {
        variant("unroll");
        const auto s0 = r.P(0.5) ? e2.lng->initial_state(t, B) : b.input({B, H});
        const auto st = masked ? nn::unroll_masked(t, *e2.lng, xs, s0, L) : nn::unroll(t, *e2.lng, xs, s0);
        for (auto& h : st) geth(h);
        break;
    }
    case 4: {  // stacked lstm, sequence path or steps
        e2.stl->dropout = train && r.P(0.5) ? 0.3 : 0;
        auto s0 = e2.stl->initial_state(t, B);
        if (r.P(0.4)) s0.layers[0] = nn::lstm_state{b.input({B, H}), b.input({B, H})};
        std::vector<nn::stacked_state<nn::lstm_state>> st;
        const int k = r.I(3);
        variant(std::to_string(e2.stl->layers.size()) + " layers" + (e2.stl->dropout > 0 ? ", dropout" : "") +
                (masked   ? ""
                 : k == 0 ? ", sequence"
                          : ", steps"));
        if (masked) st = nn::unroll_masked(t, *e2.stl, xs, s0, L);
        else if (k == 0) st = nn::unroll(t, *e2.stl, seq, s0);
        else st = nn::unroll(t, *e2.stl, xs, s0);
        for (auto& s : st) {
            geth(s.output);
            for (auto& l : s.layers) b.all.push_back(l.c);
        }
        break;
    }
    case 5: {  // stacked gru / any_cell
        if (r.P(0.5)) {
            e2.stg->dropout = train && r.P(0.5) ? 0.3 : 0;
            variant("gru, " + std::to_string(e2.stg->layers.size()) + " layers" +
                    (e2.stg->dropout > 0 ? ", dropout" : ""));
            const auto s0 = e2.stg->initial_state(t, B);
            const auto st = masked ? nn::unroll_masked(t, *e2.stg, xs, s0, L) : nn::unroll(t, *e2.stg, seq, s0);
            for (auto& s : st) geth(s.output);
        } else {
            variant("any_cell: " + e2.layers);
            const auto s0 = e2.sta->initial_state(t, B);
            const auto st = masked ? nn::unroll_masked(t, *e2.sta, xs, s0, L) : nn::unroll(t, *e2.sta, seq, s0);
            for (auto& s : st) geth(s.output);
        }
        break;
    }
    case 6: {  // bidirectional
        bi = true;
        const int k = r.I(3);
        if (k == 0) {
            nn::bidirectional<nn::gru_cell> bd{*b.env.gru, *e2.g2, train && r.P(0.5) ? 0.3 : 0.0};
            variant(std::string("gru") + (bd.dropout > 0 ? ", dropout" : ""));
            const auto st = bd(t, xs, L);
            for (auto& h : st.outputs) geth(h);
        } else if (k == 1) {
            nn::bidirectional<nn::lstm_cell> bd{*b.env.lstm, *e2.l2, train && r.P(0.5) ? 0.3 : 0.0};
            variant(std::string("lstm") + (bd.dropout > 0 ? ", dropout" : ""));
            const auto st = r.P(0.5) ? bd(t, xs, L)
                                     : bd(t, xs, nn::lstm_state{b.input({B, H}), b.input({B, H})},
                                          e2.l2->initial_state(t, B), L);
            for (auto& h : st.outputs) geth(h);
        } else {
            variant("lstm, layer_norm_gru");
            nn::bidirectional<nn::lstm_cell, nn::layer_norm_gru_cell> bd{*b.env.lstm, *e2.lng, 0.0};
            const auto st = bd(t, xs, L);
            for (auto& h : st.outputs) geth(h);
        }
        break;
    }
    case 7: {  // zoneout / weight-dropped
        const int k = r.I(3);
        if (k == 0) {
            variant("zoneout lstm");
            near_copies = train;
            nn::zoneout_cell<nn::lstm_cell> zc{*b.env.lstm, 0.2, 0.5};
            const auto s0 = b.env.lstm->initial_state(t, B);
            const auto st = masked ? nn::unroll_masked(t, zc, xs, s0, L) : nn::unroll(t, zc, xs, s0);
            for (auto& s : st) geth(s.h);
        } else if (k == 1) {
            d.detail = " (zoneout gru)";
            near_copies = train;
            nn::zoneout_cell<nn::gru_cell> zc{*b.env.gru, 0.3, 0};
            const auto st = nn::unroll(t, zc, xs, b.env.gru->initial_state(t, B));
            for (auto& h : st) geth(h);
        } else {
            variant("weight_dropped_lstm");
            nn::weight_dropped_lstm wd(t, *b.env.lstm, 0.4);
            const auto s0 = wd.initial_state(t, B);
            const auto st = masked ? nn::unroll_masked(t, wd, xs, s0, L) : nn::unroll(t, wd, xs, s0);
            for (auto& s : st) geth(s.h);
        }
        break;
    }
    case 8: {  // encode_decode
        variant("lstm, lstm");
        const std::size_t T2 = 1 + r.I(3);
        std::vector<sg::expr> tx;
        for (std::size_t k = 0; k < T2; ++k) tx.push_back(b.input({B, c.I}));
        const auto s0 = b.env.lstm->initial_state(t, B);
        const auto st = nn::encode_decode(t, *b.env.lstm, *e2.l2, xs, tx, s0, L);
        for (auto& s : st.encoder) b.all.push_back(s.h);
        for (auto& s : st.decoder) geth(s.h);
        break;
    }
    }
    // the states read by attention, adaptive softmax or a convolution
    const int post = near_copies ? 0 : r.I(5);
    if (post == 1) {  // attention: steps of a query, or all_steps
        const std::size_t D = bi ? 2 * H : H;
        const int sc = r.I(5);
        nn::attention* at = bi ? e2.att2[sc].get() : e2.att1[sc].get();
        if (at) {
            d.post = 1;
            d.post_detail = std::string(" (") + nn::to_string(nn::attention_score(sc)) + ")";
            const sg::expr mem = nn::memory_from_steps(hs);
            std::vector<std::size_t> ml = lens;
            for (auto& x : ml) x = r.I(int(hs.size()) + 1);
            const auto m = at->prepare(mem,
                                       r.P(0.5) ? std::span<const std::size_t>(ml) : std::span<const std::size_t>());
            if (r.P(0.5)) {
                sg::expr q = b.input({B, H});
                for (int k = 0; k < 1 + r.I(3); ++k) {
                    const auto o = (*at)(m, q);
                    b.all.push_back(o.weights);
                    b.keep(o.context);
                    q = sg::tanh(sg::matmul(q, sg::T(b.env.wh)) +
                                 (D == H ? o.context : sg::slice(o.context, -1, 0, H)));
                    b.keep(q);
                }
            } else {
                const auto o = at->all_steps(m, b.input({B, 1 + std::size_t(r.I(3)), H}));
                b.all.push_back(o.weights);
                const auto so = Builder::shp(o.context);
                b.keep(sg::reshape(o.context, {so[0] * so[1], so[2]}));
            }
        }
    } else if (post == 2 && !bi) {  // adaptive softmax: its loss, or log_prob read by random ops
        d.post = 2;
        const sg::expr hh = sg::concat(hs, 0);
        std::vector<int> tg(hs.size() * B);
        for (auto& x : tg) x = r.P(0.15) ? -1 : r.I(8);
        if (r.P(0.7)) addl(e2.asm_->loss(hh, tg, r.P(0.5) ? sg::reduction::mean : sg::reduction::sum));
        else b.keep(e2.asm_->log_prob(hh));
    } else if (post == 3) {  // conv over states
        d.post = 3;
        const sg::expr s3 = nn::stack_steps(hs);
        const auto ss = Builder::shp(s3);
        const sg::expr w = b.input({1 + std::size_t(r.I(3)), ss[2], 3}, 0.7);
        const sg::expr y = sg::conv1d_causal(s3, w);
        b.all.push_back(y);
        b.keep(sg::reshape(y, {ss[0] * ss[1], 3}));
    }
    for (auto& h : hs) b.keep(h);
    const int n = near_copies ? 0 : r.I(6);
    for (int i = 0; i < n; ++i) b.step_op();
    addl(b.loss_of());
    if (!total.valid()) addl(sg::sum(hs.back() * t.input(r.arr(Builder::shp(hs.back())))));
    return total;
}

}  // namespace engine_diff
