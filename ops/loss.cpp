#include "loss.hpp"

#include <cmath>
#include <utility>

#include "../core/executor.hpp"
#include "elementwise.hpp"
#include "kernels.hpp"
#include "reduce.hpp"

namespace seqgrad {
namespace {
using namespace detail;
using std::size_t;

// The max m of one row and s = sum_j exp(x[j] - m), so that log(sum_j exp(x[j])) = m + log(s).
// Kept apart: where |m| is large, m + log(s) rounds away what a loss or a softmax needs (float
// logits of 1e8 gave a loss of 0 for log 3). Sixteen independent lanes for the max and the sum:
// a single running float sum is a dependency chain the compiler may not reorder (no fast-math), so
// it would not vectorise, and the forward pass over [T*B, V] logits would cost as much as the
// backward's exp-and-write pass twice over. The row (40 KB at V = 10,000) stays in L2 between
// the two passes.
template <class T>
std::pair<T, T> row_max_sum(const T* __restrict xr, size_t n) {
    constexpr size_t L = 16;
    T m = xr[0];
    size_t j = 0;
    if (n >= L) {
        T ml[L];
        for (size_t k = 0; k < L; ++k) ml[k] = xr[k];
        for (j = L; j + L <= n; j += L)
            for (size_t k = 0; k < L; ++k) ml[k] = ml[k] < xr[j + k] ? xr[j + k] : ml[k];
        for (size_t k = 0; k < L; ++k) m = std::max(m, ml[k]);
    }
    for (; j < n; ++j) m = std::max(m, xr[j]);
    T sl[L] = {};
    j = 0;
    for (; j + L <= n; j += L)
        for (size_t k = 0; k < L; ++k) sl[k] += vexp(xr[j + k] - m);
    T s = 0;
    for (; j < n; ++j) s += vexp(xr[j] - m);
    for (size_t k = 0; k < L; ++k) s += sl[k];
    return {m, s};
}

struct loss_ops {
    // Per row: loss = logsumexp(x) - x[t]; dx = gy * (softmax(x) - onehot(t)). Rows with a
    // negative target are ignored.
    const op_def& cross_entropy = builtin(
        op_builder("cross_entropy")
            .saves(saves::both)
            .shape([](const op_def& op, std::span<const shape> in, const attrs& at) {
                if (in[0].rank() != 2) fail_shape(op, in, "expected logits of rank 2 [rows, classes]");
                if (at.ints.size() != in[0][0])
                    fail_shape(op, in,
                               "expected one target per row (" + std::to_string(in[0][0]) + "), got " +
                                   std::to_string(at.ints.size()));
                for (size_t i = 0; i < at.ints.size(); ++i)
                    if (at.ints[i] >= static_cast<int>(in[0][1]))
                        throw value_error("cross_entropy: target " + std::to_string(at.ints[i]) + " at row " +
                                          std::to_string(i) + " is out of range for logits " + in[0].str() +
                                          " (expected 0 <= target < " + std::to_string(in[0][1]) +
                                          ", or negative to ignore the row)");
                return shape{in[0][0]};
            })
            .forward([](auto& c) {
                auto x = c.in(0);
                const auto& y = c.out();
                const size_t n = x.shape[1];
                parallel_rows(y.size(), 4.0 * double(n), [&](size_t lo, size_t hi) {
                    for (size_t r = lo; r < hi; ++r) {
                        const int t = c.at.ints[r];
                        if (t < 0) {
                            y[r] = 0;
                            continue;
                        }
                        const auto* __restrict xr = x.data + r * n;
                        const auto [m, sum] = row_max_sum(xr, n);
                        y[r] = (m - xr[t]) + std::log(sum);
                    }
                });
            })
            // The saved loss gives the row's log-sum-exp back (lse = loss + x[t]): one exp per logit.
            // That sum rounds to |lse|'s precision, which decides each softmax entry's relative
            // error: from |lse| = 64 on (float: 8e-6) the row's max and sum are formed again.
            .backward([](auto& c) {
                using T = std::remove_cvref_t<decltype(c.grad_out()[0])>;
                auto x = c.in(0);
                const auto& y = c.out();
                auto g = c.grad_out();
                auto tgt = c.target(0);
                if (!tgt.data) return;
                const size_t n = x.shape[1];
                parallel_rows(g.size(), 4.0 * double(n), [&](size_t lo, size_t hi) {
                    for (size_t r = lo; r < hi; ++r) {
                        const int t = c.at.ints[r];
                        const T* __restrict xr = x.data + r * n;
                        T* __restrict dr = tgt.data + r * n;
                        if (t < 0) {
                            std::fill(dr, dr + n, T(0));
                            continue;
                        }
                        // So too where the loss is inf (the target's logit is -inf, or the
                        // spread overflows), and lse inf or NaN: the gradient is finite.
                        const T lse = y[r] + xr[t], gr = g[r];
                        if (std::abs(lse) < T(64)) {
                            for (size_t j = 0; j < n; ++j) dr[j] = gr * vexp(xr[j] - lse);
                        } else {
                            const auto [m, sum] = row_max_sum(xr, n);
                            const T scale = gr / sum;
                            for (size_t j = 0; j < n; ++j) dr[j] = scale * vexp(xr[j] - m);
                        }
                        dr[t] -= gr;
                    }
                });
            })
            .sample({{3, 5}}, {}, {4, 0, 2})
            .sample({{4, 3}}, {}, {2, -1, 0, 1})
            .sample({{3, 37}}, {}, {36, 0, 17}));  // wider than the 16 lanes of row_max_sum, with a tail
};

const loss_ops& ops() {
    static const loss_ops o;
    return o;
}
}  // namespace

void detail::register_loss_ops() { ops(); }

expr cross_entropy(const expr& logits, std::span<const int> targets, reduction r) {
    expr per_row = apply(ops().cross_entropy, {logits}, attrs{.ints = targets});
    if (r == reduction::none) return per_row;
    expr total = sum(per_row);
    if (r == reduction::sum) return total;
    std::size_t counted = 0;
    for (int t : targets) counted += t >= 0;
    return mul_scalar(total, counted ? 1.0 / static_cast<double>(counted) : 0.0);
}

expr mse_loss(const expr& prediction, const expr& target, reduction r) {
    if (!(prediction.shape() == target.shape()))
        throw shape_error("mse_loss: prediction " + prediction.shape().str() + " and target " + target.shape().str() +
                          " (expected equal shapes)");
    if (r == reduction::mean && prediction.shape().size() == 0)
        throw shape_error("mse_loss: prediction " + prediction.shape().str() +
                          " has no entries (expected at least one for reduction::mean)");
    expr sq = square(prediction - target);
    if (r == reduction::none) return sq;
    return r == reduction::sum ? sum(sq) : mean(sq);
}

}  // namespace seqgrad
