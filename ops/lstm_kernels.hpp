#pragma once
// The LSTM cell's kernels shared by ops/recurrent.cpp (lstm_pointwise, lstm_step) and
// ops/recurrent_chain.cpp (a run of lstm_step nodes swept as one): internal.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../core/blas.hpp"
#include "../core/executor.hpp"
#include "kernels.hpp"

namespace seqgrad::detail {
namespace lstm {
using std::size_t;

// Activations: detail::vexp, vsigmoid, vtanh (ops/kernels.hpp).

// Per-thread scratch that grows and is then reused: no allocation per step in steady state.
template <class T>
T* scratch(size_t n, int slot) {
    thread_local std::vector<T> buf[3];
    if (buf[slot].size() < n) buf[slot].resize(n);
    return buf[slot].data();
}

// c' = f c + i g and h' = o tanh(c') over one row, from the activations act (4H: i, f, g, o).
template <class T>
void cell_combine_row(size_t H, const T* __restrict act, const T* __restrict c, T* __restrict h2, T* __restrict c2) {
    const T *i = act, *f = act + H, *g = act + 2 * H, *o = act + 3 * H;
    for (size_t j = 0; j < H; ++j) {
        const T cc = f[j] * c[j] + i[j] * g[j];
        c2[j] = cc;
        h2[j] = o[j] * vtanh(cc);
    }
}

// The pointwise LSTM kernel over B rows. act [B, 4H] holds gate pre-activations and is
// overwritten with the activations i, f, g, o; then h' and c' [B, H].
template <class T>
void cell_forward(size_t B, size_t H, T* act, const T* cp, T* hn, T* cn) {
    for (size_t b = 0; b < B; ++b) {
        T* __restrict r = act + b * 4 * H;
        for (size_t j = 0; j < 2 * H; ++j) r[j] = vsigmoid(r[j]);
        for (size_t j = 2 * H; j < 3 * H; ++j) r[j] = vtanh(r[j]);
        for (size_t j = 3 * H; j < 4 * H; ++j) r[j] = vsigmoid(r[j]);
        cell_combine_row(H, r, cp + b * H, hn + b * H, cn + b * H);
    }
}

// The pointwise backward over one row: activations act (4H: i, f, g, o), c_prev, c', gradients of
// h' and c' and, with Direct (lstm_step), of the activations themselves (gd, 4H). Writes the
// pre-activation gradient dpre (4H) and dc_prev (added to with Acc). Acc is a template parameter:
// as a run-time select, dcp's load was conditional and GCC 12 left the loop scalar (the step's
// backward pointwise 14% of char_b32's layer on an AVX2 EPYC).
template <bool Direct, bool Acc, class T>
void cell_backward_row(size_t H, const T* __restrict act, const T* __restrict c, const T* __restrict cn,
                       const T* __restrict gh, const T* __restrict gc, const T* __restrict gd, T* __restrict dpre,
                       T* __restrict dcp) {
    const T* __restrict i = act, * __restrict f = act + H, * __restrict g = act + 2 * H, * __restrict o = act + 3 * H;
    for (size_t j = 0; j < H; ++j) {
        const T tc = vtanh(cn[j]);
        const T dct = gc[j] + gh[j] * o[j] * (1 - tc * tc);
        T di = dct * g[j], df = dct * c[j], dg = dct * i[j], dout = gh[j] * tc;
        if constexpr (Direct) {
            di += gd[j];
            df += gd[H + j];
            dg += gd[2 * H + j];
            dout += gd[3 * H + j];
        }
        dpre[j] = di * i[j] * (1 - i[j]);
        dpre[H + j] = df * f[j] * (1 - f[j]);
        dpre[2 * H + j] = dg * (1 - g[j] * g[j]);
        dpre[3 * H + j] = dout * o[j] * (1 - o[j]);
        const T d = dct * f[j];
        if constexpr (Acc) dcp[j] += d;
        else dcp[j] = d;
    }
}

// The same with gd null where no reader wrote the activations' rows of the record's gradient.
template <class T>
void cell_backward_row(size_t H, const T* act, const T* c, const T* cn, const T* gh, const T* gc, const T* gd, T* dpre,
                       T* dcp, bool acc) {
    if (gd && acc) cell_backward_row<true, true>(H, act, c, cn, gh, gc, gd, dpre, dcp);
    else if (gd) cell_backward_row<true, false>(H, act, c, cn, gh, gc, gd, dpre, dcp);
    else if (acc) cell_backward_row<false, true>(H, act, c, cn, gh, gc, gd, dpre, dcp);
    else cell_backward_row<false, false>(H, act, c, cn, gh, gc, gd, dpre, dcp);
}

// t (+)= src, t and src of n entries.
template <class T>
void put(T* __restrict t, const T* __restrict src, size_t n, bool acc) {
    if (acc)
        for (size_t k = 0; k < n; ++k) t[k] += src[k];
    else std::memcpy(t, src, n * sizeof(T));
}

// ---- batch-1 products ------------------------------------------------------------------------
// At B = 1 a step is two matrix-vector products over w_hh [4H, H] plus a rank-1 update of its
// gradient, all bound by reading w_hh (and dw_hh) from L2. Forward's product is detail::gemm's
// GEMV (core/blas.cpp). A run of steps swept as one (step_chain) does the GEMV and leaves dW_hh to
// one product over all steps; a step swept on its own (chains off, or a step whose neighbours are
// not steps) fuses its two backward products here into one pass over the rows, ~1.7x faster than a
// GEMV and a separate rank-1 pass at H = 128.

// Columns [j0, j0 + C) of gemv_t_rank1, with the C sums of dh and C entries of h in registers.
template <size_t C, class T>
void gemv_t_rank1_block(size_t m, size_t n, size_t j0, const T* __restrict w, const T* __restrict d,
                        const T* __restrict h, T* __restrict dh, bool acc_dh, T* __restrict dw, bool acc_dw) {
    T a[C] = {}, hb[C];
    for (size_t l = 0; l < C; ++l) hb[l] = h[j0 + l];
    for (size_t r = 0; r < m; ++r) {
        const T dr = d[r];
        const T* __restrict wr = w + r * n + j0;
        T* __restrict dwr = dw + r * n + j0;
        for (size_t l = 0; l < C; ++l) a[l] += dr * wr[l];
        if (acc_dw)
            for (size_t l = 0; l < C; ++l) dwr[l] += dr * hb[l];
        else
            for (size_t l = 0; l < C; ++l) dwr[l] = dr * hb[l];
    }
    for (size_t l = 0; l < C; ++l) dh[j0 + l] = acc_dh ? dh[j0 + l] + a[l] : a[l];
}

// dh[N] (+)= W[M, N]^T d[M] and dW[M, N] (+)= d h^T in one pass over the rows of W and dW.
template <class T>
void gemv_t_rank1(size_t m, size_t n, const T* w, const T* d, const T* h, T* dh, bool acc_dh, T* dw, bool acc_dw) {
    constexpr size_t C = 512 / sizeof(T), L = 64 / sizeof(T);
    size_t j0 = 0;
    for (; j0 + C <= n; j0 += C) gemv_t_rank1_block<C>(m, n, j0, w, d, h, dh, acc_dh, dw, acc_dw);
    for (; j0 + L <= n; j0 += L) gemv_t_rank1_block<L>(m, n, j0, w, d, h, dh, acc_dh, dw, acc_dw);
    for (; j0 < n; ++j0) gemv_t_rank1_block<1>(m, n, j0, w, d, h, dh, acc_dh, dw, acc_dw);
}

// t[M, N] (+)= d[M] h[N]^T (an SGEMM with K = 1 would pack its operands for nothing).
template <class T>
void rank1_update(size_t m, size_t n, const T* __restrict d, const T* __restrict h, T* __restrict t, bool acc) {
    for (size_t r = 0; r < m; ++r) {
        T* __restrict tr = t + r * n;
        const T dr = d[r];
        if (acc)
            for (size_t j = 0; j < n; ++j) tr[j] += dr * h[j];
        else
            for (size_t j = 0; j < n; ++j) tr[j] = dr * h[j];
    }
}

// A step's rows in blocks, one per executor thread at B >= 8 when the step's products are large
// enough (detail::parallel_rows); f(lo, hi) on the calling thread otherwise (always at B = 1).
constexpr double step_split_flops = 2e6;  // the recurrent product's flops per step
template <class F>
void step_rows(size_t B, size_t H, const F& f) {
    if (B < 8) f(size_t(0), B);
    else parallel_rows(B, 8.0 * double(H) * double(H), f, step_split_flops);
}

// The backward of a run of lstm_step (o = 0) or lstm_step_view (o = 1) nodes (op_def::chain_input),
// rows split across threads for all steps at once; w_bwd is lstm_pack's backward block, or null
// to read w_hh row-major.
template <class T>
void step_chain(const chain_ctx<T>& c, size_t o, const T* w_bwd);
// lstm_run: `steps` records [6, B, H] into y from x's rows [row0, row0 + steps B) and the state s0
// (h then c), w_hh^T packed by lstm_pack (wt); per row the same calls as lstm_step's forward.
template <class T>
void run_forward(const T* x, size_t row0, const T* s0, size_t B, size_t H, size_t steps, const T* wt, T* y);
}  // namespace lstm
}  // namespace seqgrad::detail
