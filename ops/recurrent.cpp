#include "recurrent.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../core/blas.hpp"
#include "kernels.hpp"
#include "lstm_kernels.hpp"

namespace seqgrad {
namespace {
using namespace detail;
using namespace detail::lstm;
using std::size_t;

// dL/dc' of an LSTM record [6, B, H] = [h'; c'; i, f, g, o]: what c's readers sent back plus the
// path through h' = o tanh(c') (as the step's backward forms it, cell_backward_row's dct).
template <class T>
void lstm_c_gradient(const shape& r, const T* v, const T* g, T* out) {
    const size_t B = r[1], H = r[2], BH = B * H;
    for (size_t b = 0; b < B; ++b)
        for (size_t j = 0; j < H; ++j) {
            const T tc = vtanh(v[BH + b * H + j]), o = v[2 * BH + b * 4 * H + 3 * H + j];
            out[b * H + j] = g[BH + b * H + j] + g[b * H + j] * o * (1 - tc * tc);
        }
}

bool lstm_state_gradient(bool f32, const shape& r, const void* v, const void* g, int s, void* out) {
    if (s != 1 || r.rank() != 3 || r[0] != 6) return false;  // h' (s = 0): its own gradient is all of it
    if (f32) lstm_c_gradient(r, static_cast<const float*>(v), static_cast<const float*>(g), static_cast<float*>(out));
    else lstm_c_gradient(r, static_cast<const double*>(v), static_cast<const double*>(g), static_cast<double*>(out));
    return true;
}

// ---- shape rules -------------------------------------------------------------------------------

shape matmul_add_shape(const op_def& op, std::span<const shape> in, const attrs& at) {
    if (in[1].rank() != 2 || in[2].rank() != 2) fail_shape(op, in, "expected a and b to be matrices (rank 2)");
    const bool ta = at.i[0] != 0, tb = at.i[1] != 0;
    const size_t ka = ta ? in[1][0] : in[1][1], kb = tb ? in[2][1] : in[2][0];
    if (ka != kb)
        fail_shape(op, in,
                   std::string("expected the inner dimensions of a") + (ta ? "^T" : "") + " and b" + (tb ? "^T" : "") +
                       " to agree (" + std::to_string(ka) + " vs " + std::to_string(kb) + ")");
    const auto s = sizes(in[1], in[2], at);
    const shape& c = in[0];
    const bool full = c.rank() == 2 && c[0] == s.m && c[1] == s.n;
    const bool row = (c.rank() == 1 && c[0] == s.n) || (c.rank() == 2 && c[0] == 1 && c[1] == s.n);
    if (!full && !row)
        fail_shape(op, in,
                   "expected c of shape [" + std::to_string(s.m) + ", " + std::to_string(s.n) + "], [" +
                       std::to_string(s.n) + "] or [1, " + std::to_string(s.n) + "] (the product is [" +
                       std::to_string(s.m) + ", " + std::to_string(s.n) + "])");
    return {s.m, s.n};
}

shape lstm_pointwise_shape(const op_def& op, std::span<const shape> in, const attrs&) {
    const shape& c = in.back();
    bool ok = (in.size() == 2 || in.size() == 3) && c.rank() == 2;
    for (size_t j = 0; ok && j + 1 < in.size(); ++j) ok = in[j].rank() == 2 && in[j][0] == c[0] && in[j][1] == 4 * c[1];
    if (!ok) fail_shape(op, in, "expected gates [B, 4H] (or two summands of them) and c_prev [B, H]");
    return {6, c[0], c[1]};
}

// "[row, row + n)", or "from row" where the end would not fit.
std::string row_range(std::int64_t row, std::uint64_t n) {
    const auto r = static_cast<std::uint64_t>(row);
    if (n > UINT64_MAX - r) return "from " + std::to_string(r);
    return "[" + std::to_string(r) + ", " + std::to_string(r + n) + ")";
}

shape lstm_step_shape(const op_def& op, std::span<const shape> in, const attrs& at) {
    if (in.size() != 3 && in.size() != 4) fail_shape(op, in, "expected x, prev, w_hh and optionally w_hh^T");
    const shape &x = in[0], &p = in[1], &w = in[2];
    if (p.rank() != 3 || (p[0] != 2 && p[0] != 6))
        fail_shape(op, in, "expected prev to be a state [2, B, H] (h over c) or a step record [6, B, H]");
    const size_t B = p[1], H = p[2];
    if (x.rank() != 2 || x[1] != 4 * H)
        fail_shape(op, in, "expected x to be input projections [N, 4H] = [N, " + std::to_string(4 * H) + "]");
    if (w.rank() != 2 || w[0] != 4 * H || w[1] != H)
        fail_shape(op, in,
                   "expected w_hh of shape [4H, H] = [" + std::to_string(4 * H) + ", " + std::to_string(H) + "]");
    if (in.size() == 4 && !(in[3] == shape{H, 4 * H}) && !(in[3] == shape{2, H, 4 * H}))
        fail_shape(op, in,
                   "expected w_hh^T of shape [H, 4H] = [" + std::to_string(H) + ", " + std::to_string(4 * H) +
                       "] (or lstm_pack's [2, H, 4H])");
    // Rows and steps come from size_t arguments: a huge one reads negative here.
    if (at.i[0] < 0 || static_cast<size_t>(at.i[0]) + B > x[0])
        fail_shape(op, in,
                   "expected rows " + row_range(at.i[0], B) + " of x to exist (row " +
                       std::to_string(static_cast<std::uint64_t>(at.i[0])) + ", B = " + std::to_string(B) +
                       " rows per step, " + std::to_string(x[0]) + " rows in x)");
    return {6, B, H};
}

shape lstm_pack_shape(const op_def& op, std::span<const shape> in, const attrs&) {
    if (in[0].rank() != 2 || in[0][0] != 4 * in[0][1] || in[0][1] % 4 != 0)
        fail_shape(op, in, "expected w_hh of shape [4H, H] with H a multiple of 4");
    const size_t H = in[0][1];
    if (H % 16 == 0) return {2, H, 4 * H};  // and w_hh packed for backward's product
    return {H, 4 * H};
}

shape lstm_run_shape(const op_def& op, std::span<const shape> in, const attrs& at) {
    const shape s = lstm_step_shape(op, in, at);
    const shape& x = in[0];
    const size_t B = s[1], H = s[2];
    if (!(in[3] == shape{H, 4 * H}) && !(in[3] == shape{2, H, 4 * H}))
        fail_shape(op, in, "expected lstm_pack(w_hh) as the fourth input");
    if (at.i[1] < 1 || static_cast<size_t>(at.i[1]) > x[0] ||
        static_cast<size_t>(at.i[0]) + static_cast<size_t>(at.i[1]) * B > x[0])
        fail_shape(op, in,
                   "expected rows " + row_range(at.i[0], static_cast<std::uint64_t>(at.i[1]) * B) + " of x (row " +
                       std::to_string(static_cast<std::uint64_t>(at.i[0])) + ", " +
                       std::to_string(static_cast<std::uint64_t>(at.i[1])) + " steps (at least 1) of B = " +
                       std::to_string(B) + " rows, " + std::to_string(x[0]) + " rows in x)");
    return {static_cast<size_t>(at.i[1]), 6, B, H};
}

shape lstm_step_view_shape(const op_def& op, std::span<const shape> in, const attrs& at) {
    if (in.size() < 4) fail_shape(op, in, "expected an lstm_run, then x, prev, w_hh and optionally w_hh^T");
    const shape s = lstm_step_shape(op, in.subspan(1), at);
    const shape& r = in[0];
    if (r.rank() != 4 || r[0] <= static_cast<size_t>(at.i[1]) || r[1] != 6 || r[2] != s[1] || r[3] != s[2])
        fail_shape(op, in, "expected the lstm_run [T, 6, B, H] it views, with T > step " + std::to_string(at.i[1]));
    return s;
}

shape lstm_rows_shape(const op_def& op, std::span<const shape> in, const attrs& at) {
    for (const shape& s : in)
        if (s.rank() != 3 || s[0] <= static_cast<size_t>(at.i[0]) || s[1] != in[0][1] || s[2] != in[0][2])
            fail_shape(op, in,
                       "expected states or step records [k, B, H] with equal B and H and k > part " +
                           std::to_string(at.i[0]));
    return {in.size() * in[0][1], in[0][2]};
}

std::string trans_attrs(const attrs& a) {
    return std::string("trans_a=") + (a.i[0] ? "1" : "0") + ", trans_b=" + (a.i[1] ? "1" : "0");
}

// ---- ops -----------------------------------------------------------------------------------------

struct recurrent_ops;
const recurrent_ops& ops();
// Whether lstm_step's w_hh^T input (3, after `o` leading inputs) is lstm_pack's output, in
// panels, and not a transpose.
template <class C>
bool packed_weight(const C& c, size_t o = 0);
// lstm_step's forward; O as for step_backward.
template <size_t O, class C>
void step_forward(const C& c) {
    using T = std::remove_cvref_t<decltype(c.out()[0])>;
    auto x = c.in(O + 0), prev = c.in(O + 1), w = c.in(O + 2);
    const auto& y = c.out();
    const size_t B = prev.shape[1], H = prev.shape[2], BH = B * H, row = static_cast<size_t>(c.at.i[0]);
    T* act = y.data + 2 * BH;
    // With w_hh^T (row-major [H, 4H], or packed by lstm_pack) the product reads it in
    // place on the own kernel for a few rows; OpenBLAS would pack w_hh in every call
    // and every thread.
    const bool packed = packed_weight(c, O);
    if (c.num_inputs == O + 4 && !packed && c.in(O + 3).shape.rank() != 2)
        throw shape_error("lstm_step: w_hh^T " + c.in(O + 3).shape.str() +
                          " is not lstm_pack's output (expected stop_gradient(transpose(w_hh)) [" + std::to_string(H) +
                          ", " + std::to_string(4 * H) + "] or lstm_pack(w_hh))");
    const bool wt = c.num_inputs == O + 4 && B > 1;
    step_rows(B, H, [&](size_t lo, size_t hi) {
        const size_t n = hi - lo;
        const T* xr = x.data + (row + lo) * 4 * H;
        if (packed)  // x's rows added in the product's store
            small_gemm_packed(n, 4 * H, H, prev.data + lo * H, H, c.in(O + 3).data, 0, 4 * H, T(1), act + lo * 4 * H,
                              4 * H, xr, 4 * H);
        else {
            std::memcpy(act + lo * 4 * H, xr, n * 4 * H * sizeof(T));
            if (wt) gemm(false, false, n, 4 * H, H, T(1), prev.data + lo * H, c.in(O + 3).data, T(1), act + lo * 4 * H);
            else
                gemm(false, true, n, 4 * H, H, T(1), prev.data + lo * H, w.data, T(1),
                     act + lo * 4 * H);  // GEMV at B = 1
        }
        cell_forward(n, H, act + lo * 4 * H, prev.data + BH + lo * H, y.data + lo * H, y.data + BH + lo * H);
    });
}

// lstm_step's backward; O = the index of its first input (x): 0 for lstm_step, 1 for
// lstm_step_view, whose input 0 is the lstm_run it views.
template <size_t O, class C>
void step_backward(const C& c) {
    using T = std::remove_cvref_t<decltype(c.grad_out()[0])>;
    auto prev = c.in(O + 1), w = c.in(O + 2);
    const auto& y = c.out();
    auto g = c.grad_out();
    const size_t B = prev.shape[1], H = prev.shape[2], BH = B * H, G = 4 * H;
    if (c.num_inputs == O + 4 && c.needs(O + 3))
        throw graph_error("lstm_step: w_hh^T " + c.in(O + 3).shape.str() +
                          " is a copy for the forward product and takes no gradient (expected "
                          "stop_gradient(transpose(w_hh)); the gradient goes to w_hh)");
    const size_t row = static_cast<size_t>(c.at.i[0]);
    // dpre goes straight into x's gradient rows when this step writes them first.
    T* dpre = scratch<T>(B * G, 1);
    if (c.needs(O + 0) && !c.accumulate(O + 0)) {
        auto t = c.target(O + 0);
        dpre = t.data + row * G;
        std::fill(t.data, dpre, T(0));
        std::fill(dpre + B * G, t.end(), T(0));
    }
    T* dcp = c.needs(O + 1) ? c.target(O + 1).data + BH : scratch<T>(BH, 2);
    const bool acc1 = c.accumulate(O + 1), acc2 = c.accumulate(O + 2);
    if (c.needs(O + 1) && !acc1 && !c.internal_unwritten(O + 1))
        std::fill(c.target(O + 1).data + 2 * BH, c.target(O + 1).end(), T(0));
    // The activations' rows of the output gradient, unless no reader wrote them.
    const T* gd = c.output_internal_unwritten() ? nullptr : g.data + 2 * BH;
    const bool fused_b1 = B == 1 && c.needs(O + 1) && c.needs(O + 2);
    // lstm_pack's second block: w_hh in panels for dh_prev = dpre w_hh.
    const T* w_bwd = packed_weight(c, O) && c.in(O + 3).shape.rank() == 3 ? c.in(O + 3).data + 4 * H * H : nullptr;
    // The rows of a step are independent up to dW_hh: dpre, dc_prev and dh_prev per block.
    step_rows(B, H, [&](size_t lo, size_t hi) {
        for (size_t b = lo; b < hi; ++b)
            cell_backward_row(H, y.data + 2 * BH + b * G, prev.data + BH + b * H, y.data + BH + b * H, g.data + b * H,
                              g.data + BH + b * H, gd ? gd + b * G : nullptr, dpre + b * G, dcp + b * H, acc1);
        if (c.needs(O + 0) && c.accumulate(O + 0))
            put(c.target(O + 0).data + (row + lo) * G, dpre + lo * G, (hi - lo) * G, true);
        if (c.needs(O + 1) && !fused_b1 && w_bwd)
            small_gemm_packed(hi - lo, H, G, dpre + lo * G, G, w_bwd, 0, H, T(acc1 ? 1 : 0),
                              c.target(O + 1).data + lo * H, H);
        else if (c.needs(O + 1) && !fused_b1)
            gemm(false, false, hi - lo, H, G, T(1), dpre + lo * G, w.data, T(acc1 ? 1 : 0),
                 c.target(O + 1).data + lo * H);
    });
    if (fused_b1) {
        gemv_t_rank1(G, H, w.data, dpre, prev.data, c.target(O + 1).data, acc1, c.target(O + 2).data, acc2);
        return;
    }
    if (c.needs(O + 2)) {
        if (B == 1) rank1_update(G, H, dpre, prev.data, c.target(O + 2).data, acc2);
        else if (B < 8) gemm(true, false, G, H, B, T(1), dpre, prev.data, T(acc2 ? 1 : 0), c.target(O + 2).data);
        else  // dW_hh += dpre^T h_prev in blocks of its rows, split as the step's rows are
            parallel_rows(
                G, 2.0 * double(H) * double(B),
                [&](size_t lo, size_t hi) {
                    gemm_block(true, false, hi - lo, H, B, T(1), dpre + lo, G, prev.data, H, T(acc2 ? 1 : 0),
                               c.target(O + 2).data + lo * H, H);
                },
                step_split_flops);
    }
}

// Runs of steps (op_builder::chain): with lstm_pack's weight at B >= 8, where rows split; and at
// B = 1 (no packed weight), where the chain's one product for dW_hh over all steps replaces a
// rank-1 update a step that reads and writes all of dW_hh. (Defined after recurrent_ops, whose
// member it reads.)
template <size_t O>
bool chain_accepts(const detail::node* nodes, const std::uint32_t* in, std::size_t k);
template <size_t O, class C>
void chain(const C& c) {
    decltype(c.value(0).data) w_bwd = nullptr;  // lstm_pack's backward block; none at B = 1
    if (c.num_inputs == O + 4) {
        const auto p = c.value(c.inputs[O + 3]);
        if (p.shape.rank() == 3) w_bwd = p.data + 4 * p.shape[1] * p.shape[1];
    }
    step_chain(c, O, w_bwd);
}

struct recurrent_ops {
    // y = c + op(a) op(b): c copied (rows broadcast) into y, then one GEMM with beta = 1.
    // dc = g (or its column sums), da and db as for matmul.
    const op_def& matmul_add = builtin(
        op_builder("matmul_add")
            .arity(3)
            .shape(matmul_add_shape)
            .saves(saves::inputs)
            .accumulates()
            .product(1, 2, 0)
            .print_attrs(trans_attrs)
            .forward([](auto& c) {
                using T = std::remove_cvref_t<decltype(c.out()[0])>;
                auto bias = c.in(0), a = c.in(1), b = c.in(2);
                const auto& y = c.out();
                const auto s = sizes(a.shape, b.shape, c.at);
                // Across the threads, as the product is: a pass bound by memory.
                parallel_rows(s.m, double(s.n), [&](size_t lo, size_t hi) {
                    if (bias.size() == y.size())
                        std::memcpy(y.data + lo * s.n, bias.data + lo * s.n, (hi - lo) * s.n * sizeof(T));
                    else
                        for (size_t r = lo; r < hi; ++r) std::memcpy(y.data + r * s.n, bias.data, s.n * sizeof(T));
                });
                gemm(c.at.i[0] != 0, c.at.i[1] != 0, s.m, s.n, s.k, T(1), a.data, b.data, T(1), y.data);
            })
            .backward([](auto& c) {
                using T = std::remove_cvref_t<decltype(c.grad_out()[0])>;
                auto a = c.in(1), b = c.in(2);
                auto g = c.grad_out();
                const auto s = sizes(a.shape, b.shape, c.at);
                if (c.needs(0)) {
                    auto t = c.target(0);
                    if (t.size() == g.size()) put(t.data, g.data, g.size(), c.accumulate(0));
                    else {
                        if (!c.accumulate(0)) std::fill(t.begin(), t.end(), T(0));
                        // Column blocks across the threads; each sum in row order.
                        constexpr size_t cb = 256;
                        parallel_rows((s.n + cb - 1) / cb, double(s.m * cb), [&](size_t lo, size_t hi) {
                            const size_t j0 = lo * cb, j1 = std::min(s.n, hi * cb);
                            for (size_t r = 0; r < s.m; ++r)
                                for (size_t j = j0; j < j1; ++j) t[j] += g[r * s.n + j];
                        });
                    }
                }
                product_gradients(c, 1, 2, a.data, b.data, g.data, s);
            })
            .sample({{3, 5}, {3, 4}, {4, 5}})
            .sample({{5}, {3, 4}, {5, 4}}, attrs{.i = {0, 1, 0, 0}})
            .sample({{1, 5}, {4, 3}, {4, 5}}, attrs{.i = {1, 0, 0, 0}})
            .sample({{1, 5}, {1, 4}, {5, 4}}, attrs{.i = {0, 1, 0, 0}})
            .sample({{3, 1}, {4, 3}, {1, 4}}, attrs{.i = {1, 1, 0, 0}}));

    // y = [h', c', activations] as lstm_step's record [6, B, H]; backward reads the activations.
    // Inputs: gates [B, 4H], or two summands of them (x and h projections: no add node), then c.
    const op_def& lstm_pointwise = builtin(
        op_builder("lstm_pointwise")
            .arity(-1)
            .record(2, lstm_state_gradient)
            .shape(lstm_pointwise_shape)
            .saves(saves::both)
            .forward([](auto& c) {
                using T = std::remove_cvref_t<decltype(c.out()[0])>;
                const size_t k = c.num_inputs;
                auto cp = c.in(k - 1);
                const auto& y = c.out();
                const size_t B = cp.shape[0], H = cp.shape[1], BH = B * H;
                T* act = y.data + 2 * BH;
                const T *g0 = c.in(0).data, *g1 = k == 3 ? c.in(1).data : nullptr;
                step_rows(B, H, [&](size_t lo, size_t hi) {  // rows are independent
                    // A row at a time, so that the summed row is still in L1 for the activations.
                    for (size_t b = lo; b < hi; ++b) {
                        const size_t q0 = b * 4 * H, q1 = q0 + 4 * H;
                        if (g1)
                            for (size_t q = q0; q < q1; ++q) act[q] = g0[q] + g1[q];
                        else std::memcpy(act + q0, g0 + q0, 4 * H * sizeof(T));
                        cell_forward(1, H, act + q0, cp.data + b * H, y.data + b * H, y.data + BH + b * H);
                    }
                });
            })
            .backward([](auto& c) {
                using T = std::remove_cvref_t<decltype(c.grad_out()[0])>;
                const size_t k = c.num_inputs, ci = k - 1;
                auto cp = c.in(ci);
                const auto& y = c.out();
                auto g = c.grad_out();
                const size_t B = cp.shape[0], H = cp.shape[1], BH = B * H, G = 4 * H;
                // Every gate summand gets the same gradient: computed into the first that needs
                // it, copied into the other.
                size_t first = k;
                for (size_t j = 0; j < ci && first == k; ++j)
                    if (c.needs(j)) first = j;
                T* dpre = first < k ? c.target(first).data : scratch<T>(B * G, 1);
                T* dcp = c.needs(ci) ? c.target(ci).data : scratch<T>(BH, 2);
                T* copy = nullptr;  // the other summand's target, when it needs one
                for (size_t j = first + 1; j < ci; ++j)
                    if (c.needs(j)) copy = c.target(j).data;
                // The activations' rows of the output gradient, unless no reader wrote them.
                const T* gd = c.output_internal_unwritten() ? nullptr : g.data + 2 * BH;
                step_rows(B, H, [&](size_t lo, size_t hi) {
                    for (size_t b = lo; b < hi; ++b) {
                        cell_backward_row(H, y.data + 2 * BH + b * G, cp.data + b * H, y.data + BH + b * H,
                                          g.data + b * H, g.data + BH + b * H, gd ? gd + b * G : nullptr, dpre + b * G,
                                          dcp + b * H, false);
                        if (copy) std::memcpy(copy + b * G, dpre + b * G, G * sizeof(T));  // the row still in L1
                    }
                });
            })
            .sample({{2, 12}, {2, 3}})
            .sample({{1, 8}, {1, 2}})
            .sample({{2, 12}, {2, 12}, {2, 3}}));

    // i[0] = first row of x. y = [h', c', activations] with activations [B, 4H] (i, f, g, o per
    // row) of pre = x[rows] + h_prev w_hh^T, computed in place in y.
    const op_def& lstm_step = builtin(
        op_builder("lstm_step")
            .arity(-1)
            .record(2, lstm_state_gradient)
            .record_reader()
            .shape(lstm_step_shape)
            .saves(saves::both)
            .accumulates()
            .print_attrs([](const attrs& a) { return "row=" + std::to_string(a.i[0]); })
            .forward([](auto& c) { step_forward<0>(c); })
            .backward([](auto& c) { step_backward<0>(c); })
            // A run of steps of one sequence: each thread's rows through every step in one region.
            .chain(1, chain_accepts<0>, [](const auto& c) { chain<0>(c); })
            .sample({{6, 12}, {2, 2, 3}, {12, 3}}, attrs{.i = {2, 0, 0, 0}})
            .sample({{3, 8}, {6, 1, 2}, {8, 2}}, attrs{.i = {1, 0, 0, 0}})
            .sample({{2, 8}, {6, 2, 2}, {8, 2}}));

    // w_hh [4H, H] -> w_hh^T [H, 4H] in column panels (detail::pack_panels), for lstm_step.
    const op_def& lstm_pack = builtin(op_builder("lstm_pack")
                                          .shape(lstm_pack_shape)
                                          .constant_output()
                                          .no_gradient()
                                          .saves(saves::nothing)
                                          .forward([](auto& c) {
                                              auto w = c.in(0);
                                              const size_t H = w.shape[1];
                                              pack_panels(true, H, 4 * H, w.data, c.out().data);
                                              if (c.out().shape.rank() == 3)
                                                  pack_panels(false, 4 * H, H, w.data, c.out().data + 4 * H * H);
                                          })
                                          .sample({{16, 4}})
                                          .sample({{64, 16}}));

    // i[0] = first row of x, i[1] = steps. The records of `steps` steps, [steps, 6, B, H], each
    // thread's rows through all of them in one region; the steps' nodes are lstm_step_views of it.
    const op_def& lstm_run = builtin(
        op_builder("lstm_run")
            .arity(4)
            .shape(lstm_run_shape)
            .constant_output()
            .no_gradient()
            .saves(saves::nothing)
            .print_attrs(
                [](const attrs& a) { return "row=" + std::to_string(a.i[0]) + ", steps=" + std::to_string(a.i[1]); })
            .forward([](auto& c) {
                auto prev = c.in(1);
                run_forward(c.in(0).data, static_cast<size_t>(c.at.i[0]), prev.data, prev.shape[1], prev.shape[2],
                            static_cast<size_t>(c.at.i[1]), c.in(3).data, c.out().data);
            })
            .sample({{6, 64}, {2, 2, 16}, {64, 16}, {16, 64}}, attrs{.i = {2, 2, 0, 0}}));

    // Inputs: an lstm_run, then lstm_step's (x, prev, w_hh and optionally w_hh^T); i[0] = row,
    // i[1] = step, i[2] = 1: the value is the run's record of that step (a view), which is what
    // lstm_step computes from the other inputs (as this op does with i[2] = 0 or the optimisations
    // off). The gradient is lstm_step's; none goes to the run.
    const op_def& lstm_step_view = builtin(
        op_builder("lstm_step_view")
            .arity(-1)
            .record(2, lstm_state_gradient)
            .record_reader()
            .shape(lstm_step_view_shape)
            .saves(saves::both)
            .accumulates()
            .print_attrs(
                [](const attrs& a) { return "row=" + std::to_string(a.i[0]) + ", step=" + std::to_string(a.i[1]); })
            .view([](std::span<const shape> in, const attrs& at) {
                return at.i[2] ? static_cast<size_t>(at.i[1]) * 6 * in[0][2] * in[0][3] : op_def::no_view;
            })
            .forward([](auto& c) { step_forward<1>(c); })
            .backward([](auto& c) {
                using T = std::remove_cvref_t<decltype(c.grad_out()[0])>;
                if (c.needs(0) && !c.accumulate(0)) std::fill(c.target(0).begin(), c.target(0).end(), T(0));
                step_backward<1>(c);
            })
            .chain(2, chain_accepts<1>, [](const auto& c) { chain<1>(c); })
            .sample({{2, 6, 2, 3}, {6, 12}, {2, 2, 3}, {12, 3}}, attrs{.i = {2, 1, 0, 0}})
            .sample({{1, 6, 1, 2}, {3, 8}, {6, 1, 2}, {8, 2}}, attrs{.i = {1, 0, 0, 0}}));

    // i[0] = part. y rows [t B, (t+1) B) = block `part` of input t.
    const op_def& lstm_rows = builtin(
        op_builder("lstm_rows")
            .arity(-1)
            .record_reader()
            .shape(lstm_rows_shape)
            .saves(saves::nothing)
            .accumulates()
            .print_attrs([](const attrs& a) { return std::string("part=") + (a.i[0] == 0 ? "h" : "c"); })
            // One record's h or c is a block of it: a view (h' and c' of every step, no copies).
            .view([](std::span<const shape> in, const attrs& at) {
                return in.size() == 1 ? static_cast<size_t>(at.i[0]) * in[0][1] * in[0][2] : op_def::no_view;
            })
            .forward([](auto& c) {
                using T = std::remove_cvref_t<decltype(c.out()[0])>;
                const auto& y = c.out();
                const size_t part = static_cast<size_t>(c.at.i[0]);
                const size_t BH = c.in(0).shape[1] * c.in(0).shape[2];
                // Records are independent: split across threads (the copies would otherwise run on
                // one thread between the steps' parallel regions).
                parallel_rows(c.num_inputs, double(BH), [&](size_t lo, size_t hi) {
                    for (size_t j = lo; j < hi; ++j)
                        std::memcpy(y.data + j * BH, c.in(j).data + part * BH, BH * sizeof(T));
                });
            })
            .backward([](auto& c) {
                using T = std::remove_cvref_t<decltype(c.grad_out()[0])>;
                auto g = c.grad_out();
                const size_t part = static_cast<size_t>(c.at.i[0]);
                const size_t BH = c.in(0).shape[1] * c.in(0).shape[2];
                parallel_rows(c.num_inputs, double(c.in(0).shape.size()), [&](size_t lo, size_t hi) {
                    for (size_t j = lo; j < hi; ++j) {
                        if (!c.needs(j)) continue;
                        auto t = c.target(j);
                        if (!c.accumulate(j)) {  // the other state block, and the activations' unless unread
                            std::fill(t.data + (1 - part) * BH, t.data + (2 - part) * BH, T(0));
                            if (!c.internal_unwritten(j)) std::fill(t.data + 2 * BH, t.end(), T(0));
                        }
                        put(t.data + part * BH, g.data + j * BH, BH, c.accumulate(j));
                    }
                });
            })
            .sample({{6, 2, 3}, {2, 2, 3}})
            .sample({{6, 2, 3}}, attrs{.i = {1, 0, 0, 0}})
            .sample({{6, 1, 2}, {6, 1, 2}, {6, 1, 2}}));
};

const recurrent_ops& ops() {
    static const recurrent_ops o;
    return o;
}
template <class C>
bool packed_weight(const C& c, size_t o) {
    return c.num_inputs == o + 4 && c.nodes[c.inputs[o + 3]].op == &ops().lstm_pack;
}
template <size_t O>
bool chain_accepts(const detail::node* nodes, const std::uint32_t* in, std::size_t k) {
    const size_t B = nodes[in[O + 1]].shp[1];
    return (k == O + 4 && nodes[in[O + 3]].op == &ops().lstm_pack && B >= 8) || (k == O + 3 && B == 1);
}
}  // namespace

void detail::register_recurrent_ops() { ops(); }

expr matmul_add(const expr& c, const expr& a, const expr& b, bool trans_a, bool trans_b) {
    return apply(ops().matmul_add, {c, a, b}, attrs{.i = {trans_a, trans_b, 0, 0}});
}
expr lstm_pointwise(const expr& gates, const expr& c_prev) { return apply(ops().lstm_pointwise, {gates, c_prev}); }
expr lstm_pointwise(const expr& x_part, const expr& h_part, const expr& c_prev) {
    return apply(ops().lstm_pointwise, {x_part, h_part, c_prev});
}
expr lstm_step(const expr& x, const expr& prev, const expr& w_hh, std::size_t row) {
    return apply(ops().lstm_step, {x, prev, w_hh}, attrs{.i = {static_cast<std::int64_t>(row), 0, 0, 0}});
}
expr lstm_step(const expr& x, const expr& prev, const expr& w_hh, const expr& w_hh_t, std::size_t row) {
    return apply(ops().lstm_step, {x, prev, w_hh, w_hh_t}, attrs{.i = {static_cast<std::int64_t>(row), 0, 0, 0}});
}
expr lstm_pack(const expr& w_hh) { return apply(ops().lstm_pack, {w_hh}); }
expr lstm_run(const expr& x, const expr& state0, const expr& w_hh, const expr& w_hh_packed, std::size_t row,
              std::size_t steps) {
    if (w_hh_packed.owner().node_at(w_hh_packed.id()).op != &ops().lstm_pack)
        throw shape_error("lstm_run: w_hh_packed " + w_hh_packed.shape().str() +
                          " is not lstm_pack's output (expected lstm_pack(w_hh))");
    return apply(ops().lstm_run, {x, state0, w_hh, w_hh_packed},
                 attrs{.i = {static_cast<std::int64_t>(row), static_cast<std::int64_t>(steps), 0, 0}});
}
expr lstm_step_view(const expr& run, const expr& x, const expr& prev, const expr& w_hh, const expr& w_hh_packed,
                    std::size_t row, std::size_t step) {
    // The value is read from the run, the gradient computed from these inputs: they must be the
    // run's own, or the two would silently disagree.
    const tape& t = run.owner();
    const detail::node& r = t.node_at(run.id());
    const auto in = t.inputs_of(run.id());
    const std::size_t B = r.op == &ops().lstm_run ? r.shp[2] : 0;
    const bool prev_ok = step == 0 ? prev.id() == in[1]
                                   : t.node_at(prev.id()).op == &ops().lstm_step_view &&
                                         t.inputs_of(prev.id())[0] == run.id() &&
                                         static_cast<std::size_t>(t.node_at(prev.id()).at->i[1]) + 1 == step;
    if (r.op != &ops().lstm_run || in[0] != x.id() || in[2] != w_hh.id() || in[3] != w_hh_packed.id() || !prev_ok ||
        step >= r.shp[0] || row != static_cast<std::size_t>(r.at->i[0]) + step * B)
        throw value_error("lstm_step_view: step " + std::to_string(step) + ", row " + std::to_string(row) +
                          " is not a step of this lstm_run (expected the run's x, w_hh and packed weight, the "
                          "previous step's view (or the run's state at step 0), and row = the run's first row + "
                          "step * B)");
    return apply(ops().lstm_step_view, {run, x, prev, w_hh, w_hh_packed},
                 attrs{.i = {static_cast<std::int64_t>(row), static_cast<std::int64_t>(step), 1, 0}});
}
expr lstm_rows(std::span<const expr> records, int part) {
    if (part != 0 && part != 1)
        throw value_error("lstm_rows: part " + std::to_string(part) + " (expected 0 for h or 1 for c)");
    return apply(ops().lstm_rows, records, attrs{.i = {part, 0, 0, 0}});
}

}  // namespace seqgrad
