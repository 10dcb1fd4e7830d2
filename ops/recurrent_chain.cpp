// lstm_run's forward (each thread's rows through every step in one region) and lstm_step's
// backward over a run of steps (op_builder::chain): each thread takes its block of
// batch rows through every step, latest first, in one parallel region (a row's dpre, dc_prev and
// dh_prev need only that row; per row and step the same calls as lstm_step's backward), then the
// weight gradient of all steps as one GEMM (the per-node sweep adds one product a step: the same
// sum in another order).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "lstm_kernels.hpp"

namespace seqgrad::detail::lstm {
namespace {
template <class T>
bool all_zero(const T* p, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (p[i] != T(0)) return false;
    return true;
}

// dW_hh handed to another thread (chain_ctx::hand_over) in pieces of steps: the sweep finishes
// the steps latest first, and each piece's product starts as soon as the sweep has finished its
// steps, so by the run's end the other thread has done most of it and this one goes on with the
// rest of backward. Only at batches whose steps run on one thread (B < 8) and below the product
// size that gemm splits itself: char_b1's LM (B 1, H 128, 64 steps, 8 MFLOP), whose backward after
// the recurrence is two more such products (W_ih's and the inputs'), one thread each then.
// The pieces' sum is dW_hh in another order than the one product's (rounding differs from 1 thread).
struct weight_pieces {
    static constexpr size_t count = 4;
    size_t bound[count + 1];                    // steps [bound[p], bound[p + 1]) form piece p
    std::atomic<size_t> lowest_done{SIZE_MAX};  // the sweep has finished every step from this one
    std::atomic<bool> abandoned{false};
    void done(size_t k) {
        for (size_t p = 0; p < count; ++p)
            if (bound[p] == k) lowest_done.store(k, std::memory_order_release);
    }
    // Whether piece p's steps are finished, waiting for them; false: abandoned.
    bool wait(size_t p) const {
        while (lowest_done.load(std::memory_order_acquire) > bound[p]) {
            if (abandoned.load(std::memory_order_acquire)) return false;
#if defined(__SSE2__)
            _mm_pause();
#else
            std::this_thread::yield();
#endif
        }
        return true;
    }
};

template <class T, class Prev>
std::shared_ptr<weight_pieces> hand_over_weight(const chain_ctx<T>& c, size_t o, size_t B, size_t H, size_t k0,
                                                const T* dpre, const Prev& prev_of) {
    const size_t n = c.ids.size(), G = 4 * H;
    const tensor_ref<T> tw = c.targets[o + 2];
    const double flops = 2.0 * double(G) * double(H) * double((n - k0) * B);
    if (!tw.data || !c.hand_over || B >= 8 || n - k0 < weight_pieces::count || flops < hand_over_min_flops ||
        flops >= split_min_flops)
        return nullptr;
    auto pieces = std::make_shared<weight_pieces>();
    for (size_t p = 0; p <= weight_pieces::count; ++p) pieces->bound[p] = k0 + (n - k0) * p / weight_pieces::count;
    std::vector<const T*> prev(n);  // each step's h_prev (values: they stay put)
    for (size_t k = k0; k < n; ++k) prev[k] = prev_of(k);
    const T beta = T(c.adds[o + 2] ? 1 : 0);
    auto work = [pieces, prev = std::move(prev), dpre, out = tw.data, beta, B, H, G, k0] {
        const size_t BH = B * H;
        std::vector<T> hp;
        T add = beta;
        for (size_t p = weight_pieces::count; p-- > 0;) {  // the latest steps first, as the sweep
            if (!pieces->wait(p)) return;
            const size_t lo = pieces->bound[p], hi = pieces->bound[p + 1];
            hp.resize((hi - lo) * BH);
            for (size_t k = lo; k < hi; ++k) std::memcpy(hp.data() + (k - lo) * BH, prev[k], BH * sizeof(T));
            gemm(true, false, G, H, (hi - lo) * B, T(1), dpre + (lo - k0) * B * G, hp.data(), add, out);
            add = T(1);
        }
    };
    if (!(*c.hand_over)(o + 2, std::move(work))) return nullptr;
    return pieces;
}
}  // namespace

template <class T>
void step_chain(const chain_ctx<T>& c, size_t o, const T* w_bwd) {
    const size_t n = c.ids.size();
    const auto s0 = c.value(c.inputs[o + 1]), w = c.value(c.inputs[o + 2]);
    const size_t B = s0.shape[1], H = s0.shape[2], BH = B * H, G = 4 * H;
    const tensor_ref<T> tx = c.targets[o], ts = c.targets[o + 1], tw = c.targets[o + 2];
    const bool* adds = c.adds + o;
    auto row = [&](size_t k) { return static_cast<size_t>(c.at(k).i[0]); };
    // dpre of each step goes straight into x's gradient rows when nothing is there yet (all rows
    // the run does not write are zeroed first), else into scratch added in after.
    bool direct = tx.data && !adds[0], add_x = tx.data && adds[0];
    if (direct) {
        bool consecutive = true;
        for (size_t k = 0; k < n; ++k) consecutive = consecutive && row(k) == row(0) + k * B;
        if (consecutive) {
            std::fill(tx.data, tx.data + row(0) * G, T(0));
            std::fill(tx.data + (row(0) + n * B) * G, tx.end(), T(0));
        } else {
            std::fill(tx.begin(), tx.end(), T(0));
            direct = false;
            add_x = true;
        }
    }
    T* buf = direct ? nullptr : scratch<T>(n * B * G, 0);
    auto dpre_of = [&](size_t k) { return direct ? tx.data + row(k) * G : buf + k * BH * 4; };
    auto prev_of = [&](size_t k) { return k ? c.value(c.ids[k - 1]).data : s0.data; };

    // A zero initial h (a sequence's usual start) adds nothing to dW_hh: its step is left out.
    const size_t k0 = all_zero(s0.data, BH) ? 1 : 0;
    const std::shared_ptr<weight_pieces> pieces = direct && k0 < n
                                                      ? hand_over_weight(c, o, B, H, k0, dpre_of(k0), prev_of)
                                                      : nullptr;
    struct finish {  // a piece never finished (this op threw) is abandoned, not waited for
        weight_pieces* p;
        ~finish() {
            if (p) p->abandoned.store(true, std::memory_order_release);
        }
    } unfinished{pieces.get()};
    step_rows(B, H, [&](size_t lo, size_t hi) {
        for (size_t k = n; k-- > 0;) {
            const T* y = c.value(c.ids[k]).data;
            const T* g = c.grads[k];
            const T* prev = prev_of(k);
            T* tp = k ? c.grads[k - 1] : ts.data;  // the previous state's gradient
            const bool acc = k ? c.external[k - 1] != 0 : adds[1];
            const bool record = k || s0.shape[0] == 6;
            T* dcp = tp ? tp + BH : scratch<T>(BH, 2);
            T* dpre = dpre_of(k);
            // The activations' gradient rows: none where only the next step or readers of the
            // state wrote the record's gradient.
            const T* gd = c.external[k] && !c.internal_unwritten(k) ? g + 2 * BH : nullptr;
            for (size_t b = lo; b < hi; ++b)
                cell_backward_row(H, y + 2 * BH + b * G, prev + BH + b * H, y + BH + b * H, g + b * H, g + BH + b * H,
                                  gd ? gd + b * G : nullptr, dpre + b * G, dcp + b * H, acc);
            if (add_x) put(tx.data + (row(k) + lo) * G, dpre + lo * G, (hi - lo) * G, true);
            if (!tp) continue;
            if (w_bwd) small_gemm_packed(hi - lo, H, G, dpre + lo * G, G, w_bwd, 0, H, T(acc ? 1 : 0), tp + lo * H, H);
            else gemm(false, false, hi - lo, H, G, T(1), dpre + lo * G, w.data, T(acc ? 1 : 0), tp + lo * H);
            if (record && !acc && !(k && c.internal_unwritten(k - 1)))
                std::fill(tp + 2 * BH + lo * G, tp + 2 * BH + hi * G, T(0));
            if (pieces) pieces->done(k);
        }
    });
    unfinished.p = nullptr;
    if (!tw.data || pieces) return;
    // dW_hh += sum over steps of dpre_k^T h_prev_k as one GEMM with inner dimension n B (the
    // steps' dpre lie one after another; their h_prev are gathered): dW is read and written once
    // instead of once a step, which at H 256 (1 MB) does not stay in L2.
    // A product over the whole run, not a step's: split across threads only from the threshold of
    // whole products (at B = 1, char_b1's 8 MFLOP, splitting it made 2 threads 5% slower than 1).
    const step_work whole(false);
    if (k0 == n) {
        if (!adds[2]) std::fill(tw.begin(), tw.end(), T(0));
        return;
    }
    T* hp = scratch<T>(n * BH, 1);
    parallel_rows(n - k0, double(BH), [&](size_t lo, size_t hi) {
        for (size_t k = lo + k0; k < hi + k0; ++k) std::memcpy(hp + (k - k0) * BH, prev_of(k), BH * sizeof(T));
    });
    gemm(true, false, G, H, (n - k0) * B, T(1), dpre_of(k0), hp, T(adds[2] ? 1 : 0), tw.data);
}

template <class T>
void run_forward(const T* x, size_t row0, const T* s0, size_t B, size_t H, size_t steps, const T* wt, T* y) {
    const size_t BH = B * H, G = 4 * H, R = 6 * BH;
    step_rows(B, H, [&](size_t lo, size_t hi) {
        const size_t m = hi - lo;
        // A zero initial h (a sequence's usual start) makes the first product zero: left out.
        const bool zero_start = all_zero(s0 + lo * H, m * H);
        for (size_t k = 0; k < steps; ++k) {
            T* rec = y + k * R;
            const T* prev = k ? rec - R : s0;
            T* act = rec + 2 * BH + lo * G;
            const T* xk = x + (row0 + k * B + lo) * G;
            if (k == 0 && zero_start) std::memcpy(act, xk, m * G * sizeof(T));
            else small_gemm_packed(m, G, H, prev + lo * H, H, wt, 0, G, T(1), act, G, xk, G);
            cell_forward(m, H, act, prev + BH + lo * H, rec + lo * H, rec + BH + lo * H);
        }
    });
}

template void step_chain<float>(const chain_ctx<float>&, size_t, const float*);
template void step_chain<double>(const chain_ctx<double>&, size_t, const double*);
template void run_forward<float>(const float*, size_t, const float*, size_t, size_t, size_t, const float*, float*);
template void run_forward<double>(const double*, size_t, const double*, size_t, size_t, size_t, const double*, double*);

}  // namespace seqgrad::detail::lstm
