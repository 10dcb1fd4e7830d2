#pragma once
// Random graphs for tests/nn/test_engine_diff.cpp: the same seeded graph built on any tape (a
// random DAG of elementwise ops with broadcasting, activations read once, twice or in pairs,
// products in every transpose form, shape ops, reductions, softmax and losses, lookups; random
// recurrent cells with step marks and state edges, bidirectional groups, nn cells per step, over
// a sequence and the fused layer by hand), and a random backward plan (truncation, clipping,
// checkpointing). Written as a differential fuzzer of the graph optimisations. Builder::ext, when
// set, draws more ops among step_op's (engine_diff_families.hpp); unset, the graphs are unchanged.
#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <seqgrad/core/executor.hpp>
#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/lstm_layer.hpp>
#include <seqgrad/nn/unroll.hpp>
#include <seqgrad/ops/recurrent.hpp>
#include <seqgrad/seqgrad.hpp>

namespace engine_diff {
namespace sg = seqgrad;
namespace nn = seqgrad::nn;
using A = xt::xarray<double>;

struct Rng {
    std::mt19937_64 g;
    explicit Rng(std::uint64_t s) : g(s * 0x9E3779B97F4A7C15ull + 12345) {}
    int I(int n) { return int(g() % std::uint64_t(n)); }
    bool P(double p) { return std::uniform_real_distribution<double>(0, 1)(g) < p; }
    double U(double a = -1, double b = 1) { return std::uniform_real_distribution<double>(a, b)(g); }
    A arr(const std::vector<std::size_t>& s, double sc = 1) {
        A v = xt::zeros<double>(s);
        for (auto& x : v) x = U(-sc, sc);
        return v;
    }
};

struct Cfg {
    std::size_t B, H, I, T, V;
    int mode;  // 0 DAG, 1 random cell, 2 nn cells, 3 mixed
    int cellkind;
    bool f32;
    int threads;
    int plan;  // 0 none, 1 trunc k1, 2 trunc k1,k2, 3 clip_state, 4 clip norm, 5 clip value, 6 checkpoint, 7 trunc+clipstate
    std::size_t k1, k2, seg;
    std::uint64_t cellseed;
};

struct Env {
    sg::parameter_store ps;
    sg::parameter wx, wx2, wh, b, b1, emb, wo, bo;
    std::unique_ptr<nn::lstm_cell> lstm;
    std::unique_ptr<nn::gru_cell> gru;
    Env(const Cfg& c, std::uint64_t seed) : ps(c.f32 ? sg::dtype::f32 : sg::dtype::f64) {
        Rng r(seed ^ 0xABCDEF);
        wx = ps.add("wx", r.arr({c.H, c.I}, 0.6));
        wx2 = ps.add("wx2", r.arr({c.I, c.H}, 0.6), sg::weight_layout::in_out);
        wh = ps.add("wh", r.arr({c.H, c.H}, 0.6));
        b = ps.add("b", r.arr({c.H}, 0.5));
        b1 = ps.add("b1", r.arr({1, c.H}, 0.5));
        emb = ps.add("emb", r.arr({c.V, c.I}, 0.8));
        wo = ps.add("wo", r.arr({c.H, c.H}, 0.6));
        bo = ps.add("bo", r.arr({c.H}, 0.5));
        std::mt19937_64 g(seed + 7);
        lstm = std::make_unique<nn::lstm_cell>(sg::parameter_scope(ps, "lstm"), c.I, c.H, g);
        gru = std::make_unique<nn::gru_cell>(sg::parameter_scope(ps, "gru"), c.I, c.H, g);
        for (auto& p : ps.parameters()) p.assign(r.arr(p.shape().to_vector(), 0.7));
    }
};

struct Item {
    sg::expr e;
    bool pos = false;
    int uses = 0;
};

struct Builder {
    sg::tape& t;
    Env& env;
    const Cfg& c;
    Rng r;
    std::vector<sg::expr> all;     // every node to compare
    std::vector<sg::expr> inputs;  // requires_grad inputs
    std::vector<Item> pool;
    Builder(sg::tape& tt, Env& e, const Cfg& cc, std::uint64_t seed) : t(tt), env(e), c(cc), r(seed) {}

    sg::expr keep(sg::expr e, bool pos = false) {
        all.push_back(e);
        pool.push_back({e, pos, 0});
        return e;
    }
    sg::expr input(const std::vector<std::size_t>& s, double sc = 1) {
        auto e = t.input(r.arr(s, sc), true);
        inputs.push_back(e);
        return keep(e);
    }
    static std::vector<std::size_t> shp(const sg::expr& e) { return e.shape().to_vector(); }
    int pick() {
        // prefer recent items
        int n = int(pool.size());
        int k = r.P(0.6) ? n - 1 - r.I(std::min(n, 4)) : r.I(n);
        pool[k].uses++;
        return k;
    }
    sg::expr param(int which) {
        switch (which) {
        case 0: return t.param(env.wx);
        case 1: return t.param(env.wh);
        case 2: return t.param(env.b);
        case 3: return t.param(env.b1);
        default: return t.param(env.wo);
        }
    }
    // operand for a binary op with a (broadcast-compatible), or null
    int compatible(const sg::expr& a) {
        auto sa = shp(a);
        std::vector<int> cand;
        for (int i = 0; i < int(pool.size()); ++i) {
            auto sb = shp(pool[i].e);
            bool ok = sb == sa || sb.empty() || sa.empty();
            if (!ok && sa.size() == 2 && sb.size() == 2)
                ok = (sb[0] == 1 && sb[1] == sa[1]) || (sb[1] == 1 && sb[0] == sa[0]) ||
                     (sa[0] == 1 && sa[1] == sb[1]) || (sa[1] == 1 && sa[0] == sb[0]);
            if (!ok && sa.size() == 2 && sb.size() == 1) ok = sb[0] == sa[1];
            if (!ok && sa.size() == 1 && sb.size() == 2) ok = sa[0] == sb[1];
            if (!ok && sa.size() == 1 && sb.size() == 1) ok = sa[0] == sb[0];
            if (ok) cand.push_back(i);
        }
        if (cand.empty()) return -1;
        int k = cand[r.I(int(cand.size()))];
        return k;
    }
    sg::expr act(const sg::expr& x, int k, bool& pos) {
        pos = false;
        switch (k) {
        case 0: return sg::tanh(x);
        case 1: pos = true; return sg::sigmoid(x);
        case 2: return sg::relu(x);
        default: pos = true; return sg::exp(sg::mul_scalar(x, 0.5));
        }
    }
    sg::expr act_raw(const sg::expr& x, int k, bool& pos) {
        pos = k == 1 || k == 3;
        switch (k) {
        case 0: return sg::tanh(x);
        case 1: return sg::sigmoid(x);
        case 2: return sg::relu(x);
        default: return sg::exp(x);
        }
    }
    // one random op on the pool
    std::function<void()> ext;  // when set, 7 draws in 31 call it
    void step_op() {
        int op = r.I(ext ? 31 : 24);
        if (op >= 24) return ext();
        int ia = pick();
        sg::expr a = pool[ia].e;
        auto sa = shp(a);
        bool two = sa.size() == 2;
        switch (op) {
        case 0:
        case 1:
        case 2:
        case 3: {  // binary
            int ib = r.P(0.15) ? ia : compatible(a);
            if (ib < 0) break;
            pool[ib].uses++;
            sg::expr b = pool[ib].e;
            int k = r.I(4);
            if (k == 3) {
                sg::expr d = pool[ib].pos ? b
                                          : (r.P(0.5) ? sg::add_scalar(sg::sigmoid(b), 0.5)
                                                      : sg::add_scalar(sg::square(b), 1.0));
                keep(sg::div(a, d));
            } else if (k == 0) keep(r.P(0.5) ? a + b : b + a);
            else if (k == 1) keep(r.P(0.5) ? a - b : b - a);
            else keep(r.P(0.5) ? a * b : b * a, pool[ia].pos && pool[ib].pos);
            break;
        }
        case 4: keep(r.P(0.5) ? sg::mul_scalar(a, r.U(-2, 2)) : sg::add_scalar(a, r.U(-1, 1)), false); break;
        case 5:
        case 6:
        case 7: {  // activations: one, or several on the same node, or one read twice
            int n = r.P(0.4) ? 2 + r.I(2) : 1;
            for (int j = 0; j < n; ++j) {
                bool pos = false;
                keep(act_raw(a, r.I(4), pos), pos);
            }
            break;
        }
        case 8:
        case 9: {  // matmul with any flags
            if (!two) break;
            std::vector<std::pair<int, int>> cand;  // (index, flags)
            for (int i = 0; i < int(pool.size()); ++i) {
                auto sb = shp(pool[i].e);
                if (sb.size() != 2) continue;
                for (int f = 0; f < 4; ++f) {
                    bool ta = f & 1, tb = f & 2;
                    std::size_t k1 = ta ? sa[0] : sa[1];
                    std::size_t k2 = tb ? sb[1] : sb[0];
                    if (k1 == k2) cand.push_back({i, f});
                }
            }
            if (r.P(0.3) || cand.empty()) {
                // by a parameter
                if (sa[1] == c.H) {
                    keep(r.P(0.5) ? sg::matmul(a, sg::T(env.wh)) : sg::matmul(a, env.wo));
                } else if (sa[1] == c.I) {
                    keep(r.P(0.5) ? sg::matmul(a, sg::T(env.wx)) : sg::matmul(a, env.wx2));
                } else if (sa[0] == c.H) {
                    keep(sg::matmul(a, t.param(env.wh), true, false));
                }
                break;
            }
            auto [ib, f] = cand[r.I(int(cand.size()))];
            pool[ib].uses++;
            sg::expr b = pool[ib].e;
            keep(sg::matmul(a, b, f & 1, f & 2));
            break;
        }
        case 10: {  // matmul_add
            if (!two) break;
            if (sa[1] == c.H) {
                int bk = r.I(3);
                sg::expr bias = bk == 0 ? t.param(env.b) : bk == 1 ? t.param(env.b1) : a;
                if (bk == 2 && sa[0] == c.H) bias = sg::transpose(a);
                else if (bk == 2) bias = t.param(env.bo);
                keep(r.P(0.5) ? sg::matmul_add(bias, a, sg::T(env.wh)) : sg::matmul_add(bias, a, t.param(env.wo)));
            } else {
                // bias from pool with row shape
                std::size_t n = sa[1];
                sg::expr w = input({n, n}, 0.6);
                sg::expr bias = r.P(0.5) ? input({n}, 0.5) : a;
                keep(sg::matmul_add(bias, a, w, false, r.P(0.5)));
            }
            break;
        }
        case 11: {  // split / slice
            if (sa.empty()) break;
            std::size_t n = sa.back();
            if (n >= 2 && r.P(0.5)) {
                std::size_t parts = n % 3 == 0 ? 3 : n % 2 == 0 ? 2 : 1;
                if (parts > 1) {
                    auto ps = sg::split(a, parts, -1);
                    for (auto& p : ps) keep(p, pool[ia].pos);
                    break;
                }
            }
            if (two && sa[0] >= 2 && r.P(0.5)) {
                std::size_t b0 = r.I(int(sa[0]) - 1), e0 = b0 + 1 + r.I(int(sa[0] - b0));
                if (e0 > sa[0]) e0 = sa[0];
                keep(sg::slice(a, 0, b0, e0), pool[ia].pos);
            } else if (n >= 2) {
                std::size_t b0 = r.I(int(n) - 1), e0 = std::min(n, b0 + 1 + r.I(2));
                keep(sg::slice(a, -1, b0, e0), pool[ia].pos);
            }
            break;
        }
        case 12: {  // concat
            if (!two) break;
            std::vector<int> cand;
            int axis = r.I(2);
            for (int i = 0; i < int(pool.size()); ++i) {
                auto sb = shp(pool[i].e);
                if (sb.size() == 2 && sb[1 - axis] == sa[1 - axis]) cand.push_back(i);
            }
            int ib = cand[r.I(int(cand.size()))];
            pool[ib].uses++;
            if (r.P(0.5)) keep(sg::concat({a, pool[ib].e}, axis));
            else keep(sg::concat({pool[ib].e, a, pool[ib].e}, axis));
            break;
        }
        case 13: {  // reshape / transpose
            std::size_t n = 1;
            for (auto s : sa) n *= s;
            int k = r.I(4);
            if (k == 0 && two) keep(sg::transpose(a), pool[ia].pos);
            else if (k == 1 && two) keep(sg::reshape(a, {sa[1], sa[0]}), pool[ia].pos);
            else if (k == 2) keep(sg::reshape(a, {1, n}), pool[ia].pos);
            else keep(sg::reshape(a, {n, 1}), pool[ia].pos);
            break;
        }
        case 14: {  // reductions
            int k = r.I(5);
            if (k == 0 || !two) keep(r.P(0.5) ? sg::sum(a) : sg::mean(a));
            else if (k == 1) keep(sg::sum(a, 0, r.P(0.5)));
            else if (k == 2) keep(sg::sum(a, 1, r.P(0.5)));
            else if (k == 3) keep(sg::mean(a, -1, true));
            else keep(sg::mean(a, 0, false));
            break;
        }
        case 15: {  // softmax family
            if (!two) break;
            int k = r.I(3);
            if (k == 0) keep(sg::softmax(a), true);
            else if (k == 1) keep(sg::log_softmax(a));
            else {
                std::vector<int> tg(sa[0]);
                for (auto& x : tg) x = r.P(0.15) ? -1 : r.I(int(sa[1]));
                keep(sg::cross_entropy(a, tg, r.P(0.5) ? sg::reduction::sum : sg::reduction::mean));
            }
            break;
        }
        case 16: {  // gather_rows with repeated ids
            if (!two) break;
            std::size_t n = 1 + r.I(5);
            std::vector<int> ids(n);
            for (auto& x : ids) x = r.I(int(sa[0]));
            keep(sg::gather_rows(a, ids), pool[ia].pos);
            break;
        }
        case 17: {  // pick
            if (!two) break;
            std::vector<int> ids(sa[0]);
            for (auto& x : ids) x = r.I(int(sa[1]));
            keep(sg::pick(a, ids), pool[ia].pos);
            break;
        }
        case 18: {  // broadcast_to / row / col
            if (sa.empty()) keep(sg::broadcast_to(a, {c.B, c.H}), pool[ia].pos);
            else if (two && sa[0] == 1) keep(sg::broadcast_to(a, {c.B, sa[1]}), pool[ia].pos);
            else if (two && sa[1] == 1) keep(sg::broadcast_to(a, {sa[0], c.H}), pool[ia].pos);
            else keep(sg::square(a), true);
            break;
        }
        case 19: {  // new inputs of broadcast shapes
            int k = r.I(5);
            if (k == 0) input({c.B, c.H});
            else if (k == 1) input({1, c.H});
            else if (k == 2) input({c.B, 1});
            else if (k == 3) input({});
            else input({c.H});
            break;
        }
        case 20: {  // a param in the pool (shared by many readers)
            int k = r.I(4);
            keep(param(k));
            break;
        }
        case 22: {  // where / maximum / minimum with broadcasting
            int ib = compatible(a);
            if (ib < 0) break;
            pool[ib].uses++;
            sg::expr b = pool[ib].e;
            int k = r.I(3);
            if (k == 0) {
                sg::expr cond = pool[r.I(int(pool.size()))].e;
                try {
                    keep(sg::where(cond, a, b));
                } catch (sg::shape_error&) {}
            } else if (k == 1) keep(sg::maximum(a, b));
            else keep(sg::minimum(a, b));
            break;
        }
        case 23: {  // more math
            int k = r.I(8);
            if (k == 0) keep(sg::abs(a));
            else if (k == 1) keep(sg::clamp(a, -0.5, 0.5));
            else if (k == 2 && two) keep(sg::logsumexp(a, r.I(2), r.P(0.5)));
            else if (k == 3 && two) keep(sg::cumsum(a, r.I(2)));
            else if (k == 4) keep(sg::softplus(a), true);
            else if (k == 5) keep(sg::elu(a));
            else if (k == 6) keep(sg::log1p(sg::sigmoid(a)));
            else {
                int ib = compatible(a);
                if (ib >= 0 && shp(pool[ib].e) == sa) keep(sg::mse_loss(a, pool[ib].e));
            }
            break;
        }
        case 21: {  // misc math
            int k = r.I(4);
            if (k == 0) keep(sg::square(a), true);
            else if (k == 1) keep(sg::neg(a));
            else if (k == 2) keep(sg::sqrt(sg::add_scalar(sg::square(a), 0.5)), true);
            else keep(sg::stop_gradient(a), pool[ia].pos);
            break;
        }
        }
    }

    // loss over terminal items + random extras
    sg::expr loss_of(std::size_t from = 0) {
        sg::expr L;
        for (std::size_t i = from; i < pool.size(); ++i) {
            if (pool[i].uses > 0 && !r.P(0.15)) continue;
            sg::expr e = pool[i].e;
            auto s = shp(e);
            sg::expr term;
            int k = r.I(4);
            if (k == 0) term = sg::sum(e * t.input(r.arr(s)));
            else if (k == 1 && s.size() == 2) {
                std::vector<int> tg(s[0]);
                for (auto& x : tg) x = r.I(int(s[1]));
                term = sg::cross_entropy(e, tg);
            } else if (k == 2) term = sg::mean(sg::square(e));
            else term = sg::sum(e * t.input(r.arr(s)));
            L = L.valid() ? L + term : term;
        }
        return L;
    }

    // ---- random cell: same program every step (reseeded)
    sg::expr rcell(const sg::expr& x, const sg::expr& h) {
        Rng saved = r;
        r = Rng(c.cellseed);
        std::vector<Item> savedpool;
        std::swap(pool, savedpool);
        keep(x);
        keep(h);
        sg::expr px, ph;
        int pk = r.I(4);
        if (pk == 0) px = sg::matmul(x, sg::T(env.wx));
        else if (pk == 1) px = sg::matmul(x, env.wx2);
        else if (pk == 2) px = sg::matmul_add(env.b, x, sg::T(env.wx));
        else px = sg::matmul(x, t.param(env.wx), false, true);
        keep(px);
        ph = r.P(0.5) ? sg::matmul(h, sg::T(env.wh)) : sg::matmul_add(t.param(env.b1), h, t.param(env.wh), false, true);
        keep(ph);
        sg::expr pre = r.P(0.5) ? px + ph + sg::expr(t.param(env.b)) : px + ph;
        keep(pre);
        int n = 2 + r.I(10);
        for (int i = 0; i < n; ++i) step_op();
        // candidates [B,H] in the cell pool
        std::vector<int> cand;
        for (int i = 0; i < int(pool.size()); ++i)
            if (shp(pool[i].e) == std::vector<std::size_t>{c.B, c.H}) cand.push_back(i);
        sg::expr a = pool[cand[r.I(int(cand.size()))]].e;
        sg::expr b2 = pool[cand[r.I(int(cand.size()))]].e;
        sg::expr out;
        int k = r.I(4);
        if (k == 0) out = sg::tanh(a + pre);
        else if (k == 1) {
            auto g = sg::sigmoid(pre);
            out = g * h + (1.0 - g) * sg::tanh(a);
        } else if (k == 2) {
            auto s = sg::split(pre, c.H % 2 == 0 ? 2 : 1);
            out = sg::tanh(b2) * sg::sigmoid(pre) + sg::tanh(a);
            (void)s;
        } else out = sg::tanh(sg::mul_scalar(a, 0.5) + b2 * sg::sigmoid(pre));
        all.push_back(out);
        std::vector<Item> cellpool;
        std::swap(pool, cellpool);
        pool = std::move(savedpool);
        r = saved;
        return out;
    }

    sg::expr build() {
        const std::size_t T = c.T, B = c.B;
        sg::expr total;
        auto addl = [&](sg::expr l) {
            if (l.valid()) total = total.valid() ? total + l : l;
        };
        // starting pool
        input({B, c.H});
        input({B, c.H});
        if (r.P(0.5)) input({1, c.H});
        if (r.P(0.5)) input({B, 1});
        if (c.mode == 0) {
            int n = 3 + r.I(14);
            for (int i = 0; i < n; ++i) step_op();
            addl(loss_of());
            return total;
        }
        // sequence input
        sg::expr seq;
        int sk = r.I(3);
        std::vector<sg::expr> xs;
        if (sk == 0) {
            seq = input({T, B, c.I});
            xs = nn::unstack_steps(seq);
        } else if (sk == 1) {
            sg::expr flat = input({T * B, c.I});
            for (std::size_t s = 0; s < T; ++s) xs.push_back(sg::slice(flat, 0, s * B, (s + 1) * B));
            seq = sg::reshape(flat, {T, B, c.I});
        } else {
            std::vector<int> ids(T * B);
            for (auto& x : ids) x = r.I(int(c.V));
            sg::expr tab = r.P(0.5) ? t.param(env.emb) : input({c.V, c.I});
            sg::expr g = sg::gather_rows(tab, ids);
            all.push_back(g);
            seq = sg::reshape(g, {T, B, c.I});
            xs = nn::unstack_steps(seq);
        }
        for (auto& x : xs) all.push_back(x);
        std::vector<sg::expr> hs;
        bool step_loss_in = r.P(0.5);
        int ck = c.mode == 1 ? 0 : c.mode == 2 ? 1 + c.cellkind : c.mode == 4 ? 5 + r.I(3) : r.I(5);
        if (ck >= 5) {
            // 5: bidirectional random cell (group_scope), 6: unroll_masked gru, 7: unroll_masked lstm
            if (ck == 5) {
                for (int dir = 0; dir < 2; ++dir) {
                    sg::group_scope gs(t, dir);
                    sg::expr h = r.P(0.5) ? input({B, c.H}) : t.constant(0.0, {B, c.H});
                    for (std::size_t k = 0; k < T; ++k) {
                        std::size_t s = dir ? T - 1 - k : k;
                        int from = k == 0 ? -1 : int(dir ? s + 1 : s - 1);
                        sg::step_scope sc(t, int(s), from);
                        h = rcell(xs[s], h);
                        t.mark_state(h);
                        all.push_back(h);
                        hs.push_back(h);
                    }
                }
            } else {
                std::vector<std::size_t> lens(B);
                for (auto& l : lens) l = 1 + r.I(int(T));
                if (ck == 6) {
                    auto st = nn::unroll_masked(t, *env.gru, xs,
                                                r.P(0.5) ? input({B, c.H}) : env.gru->initial_state(t, B), lens);
                    for (auto& h : st) {
                        hs.push_back(h);
                        all.push_back(h);
                    }
                } else {
                    auto st = nn::unroll_masked(t, *env.lstm, xs, env.lstm->initial_state(t, B), lens);
                    for (auto& s : st) {
                        hs.push_back(s.h);
                        all.push_back(s.h);
                    }
                }
            }
        } else if (ck == 0 || ck == 1 || ck == 2) {  // random cell / lstm cell / gru cell step by step
            sg::expr h = r.P(0.5) ? input({B, c.H}) : t.constant(0.0, {B, c.H});
            nn::lstm_state ls{h, r.P(0.5) ? input({B, c.H}) : t.constant(0.0, {B, c.H})};
            for (std::size_t s = 0; s < T; ++s) {
                sg::expr term;
                {
                    sg::step_scope sc(t, int(s), s > 0 ? int(s) - 1 : -1);
                    if (ck == 0) h = rcell(xs[s], h);
                    else if (ck == 1) {
                        ls = (*env.lstm)(xs[s], ls);
                        h = ls.h;
                        all.push_back(ls.c);
                    } else h = (*env.gru)(xs[s], h);
                    t.mark_state(h);
                    all.push_back(h);
                    if (step_loss_in && r.P(0.7)) {
                        std::vector<int> tg(B);
                        for (auto& x : tg) x = r.I(int(c.H));
                        term = r.P(0.5) ? sg::cross_entropy(sg::matmul_add(env.bo, h, sg::T(env.wo)), tg)
                                        : sg::sum(h * t.input(r.arr({B, c.H})));
                    }
                }
                addl(term);
                hs.push_back(h);
            }
        } else if (ck == 3) {  // unroll of lstm_cell over the whole sequence
            nn::lstm_state s0 = r.P(0.5) ? env.lstm->initial_state(t, B)
                                         : nn::lstm_state{input({B, c.H}), input({B, c.H})};
            auto st = nn::unroll(t, *env.lstm, seq, s0);
            for (auto& s : st) {
                hs.push_back(s.h);
                all.push_back(s.h);
                all.push_back(s.c);
            }
        } else {  // fused layer
            nn::detail::lstm_layer layer(*env.lstm);
            sg::expr flat = sg::reshape(seq, {T * B, c.I});
            auto sq = r.P(0.5) ? layer(flat, B) : layer(flat, nn::lstm_state{input({B, c.H}), input({B, c.H})});
            for (auto& h : sq.hs()) {
                hs.push_back(h);
                all.push_back(h);
            }
            all.push_back(sq.final_state().c);
        }
        // post: random ops on the states
        for (auto& h : hs) keep(h);
        int n = r.I(8);
        for (int i = 0; i < n; ++i) step_op();
        if (!step_loss_in || r.P(0.3)) addl(loss_of());
        if (!total.valid()) addl(sg::sum(hs.back() * t.input(r.arr({B, c.H}))));
        return total;
    }
};

inline sg::backward_plan plan_of(const Cfg& c) {
    switch (c.plan) {
    case 1: return sg::truncate_bptt(c.k1);
    case 2: return sg::truncate_bptt(c.k1, c.k2);
    case 3: return sg::clip_state_gradient(0.05);
    case 4: return sg::clip_global_norm(0.5);
    case 5: return sg::clip_value(0.1);
    case 7: return sg::truncate_bptt(c.k1, c.k2) | sg::clip_state_gradient(0.1);
    case 8: return sg::truncate_bptt(c.k1) | sg::clip_global_norm(0.3);
    default: return {};
    }
}

}  // namespace engine_diff
