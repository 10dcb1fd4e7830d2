#pragma once
// NumPy-style broadcast iteration over row-major tensors of rank <= 4, shared by the elementwise
// kernels and by the engine, which sums output-shaped contributions back to an input's shape.
#include <algorithm>
#include <array>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "shape.hpp"

namespace seqgrad::detail {

/// Dims of `out` padded on the left to rank 4, and the strides that map an index of `out` to an
/// index of `in` (0 along dims where `in` is broadcast).
struct bcast_plan {
    std::array<std::size_t, 4> dims{1, 1, 1, 1};
    std::array<std::size_t, 4> stride{0, 0, 0, 0};
};

inline bcast_plan plan_broadcast(const shape& in, const shape& out) {
    bcast_plan p;
    const std::size_t ro = out.rank(), ri = in.rank();
    for (std::size_t k = 0; k < ro; ++k) p.dims[4 - ro + k] = out[k];
    std::size_t s = 1;
    for (std::size_t k = 0; k < ri; ++k) {
        const std::size_t d = in[ri - 1 - k];
        p.stride[3 - k] = d == 1 ? 0 : s;
        s *= d;
    }
    return p;
}

/// Calls f(out_index, a_index, b_index) for every entry of out.
template <class F>
void for_each_broadcast(const shape& out, const shape& a, const shape& b, F&& f) {
    const bcast_plan pa = plan_broadcast(a, out), pb = plan_broadcast(b, out);
    const auto& d = pa.dims;
    std::size_t o = 0;
    for (std::size_t i0 = 0; i0 < d[0]; ++i0)
        for (std::size_t i1 = 0; i1 < d[1]; ++i1)
            for (std::size_t i2 = 0; i2 < d[2]; ++i2) {
                std::size_t ia = i0 * pa.stride[0] + i1 * pa.stride[1] + i2 * pa.stride[2];
                std::size_t ib = i0 * pb.stride[0] + i1 * pb.stride[1] + i2 * pb.stride[2];
                // The common innermost strides spelled out, so the compiler sees unit or zero
                // strides and vectorises (a row of biases, a column of per-row statistics).
                const std::size_t sa = pa.stride[3], sb = pb.stride[3], n = d[3];
                if (sa == 1 && sb == 1)
                    for (std::size_t i3 = 0; i3 < n; ++i3) f(o + i3, ia + i3, ib + i3);
                else if (sa == 1 && sb == 0)
                    for (std::size_t i3 = 0; i3 < n; ++i3) f(o + i3, ia + i3, ib);
                else if (sa == 0 && sb == 1)
                    for (std::size_t i3 = 0; i3 < n; ++i3) f(o + i3, ia, ib + i3);
                else
                    for (std::size_t i3 = 0; i3 < n; ++i3) f(o + i3, ia + i3 * sa, ib + i3 * sb);
                o += n;
            }
}

/// Calls f(out_index, in_index) for every entry of out.
template <class F>
void for_each_broadcast(const shape& out, const shape& in, F&& f) {
    for_each_broadcast(out, in, in, [&](std::size_t o, std::size_t i, std::size_t) { f(o, i); });
}

/// The sum of f(0), ..., f(n - 1) as type T in a fixed order: 32 lanes (two AVX-512 registers of
/// floats) summed by a halving tree, then the tail. A single running sum is a chain of dependent
/// adds, 4 cycles each; the lanes vectorise and overlap (a layer norm's row statistics and their
/// gradients).
template <class T, class F>
T lane_sum(std::size_t n, F&& f) {
    constexpr std::size_t lanes = 32;
    std::size_t i = 0;
    T sum = 0;
    if (n >= lanes) {
        T acc[lanes] = {};
        for (; i + lanes <= n; i += lanes)
            for (std::size_t l = 0; l < lanes; ++l) acc[l] += f(i + l);
        for (std::size_t w = lanes / 2; w > 0; w /= 2)
            for (std::size_t l = 0; l < w; ++l) acc[l] += acc[l + w];
        sum = acc[0];
    }
    for (; i < n; ++i) sum += f(i);
    return sum;
}
template <class T>
T row_sum(const T* r, std::size_t n) {
    return lane_sum<T>(n, [r](std::size_t i) { return r[i]; });
}

/// Float sums of at least this many entries per result accumulate in double: a float running sum
/// drifts by up to one ulp per entry (a bias gradient over 10^6 rows of 0.1 read 1% high). Below
/// it the sum stays in float, whose error there is small, in the loops of small batches (a step's
/// bias gradient over B rows) that run most often.
constexpr std::size_t wide_sum_entries = 256;

/// Runs f(acc) on an accumulator of n zeros, then leaves its values in dst: acc is dst itself, or,
/// for float sums of at least wide_sum_entries entries per result, a thread's double scratch.
template <class T, class F>
void accumulate(T* dst, std::size_t n, std::size_t entries_per_result, F&& f) {
    if constexpr (std::is_same_v<T, float>) {
        if (entries_per_result >= wide_sum_entries) {
            thread_local std::vector<double> acc;
            acc.assign(n, 0.0);
            f(acc.data());
            std::copy(acc.begin(), acc.end(), dst);
            return;
        }
    }
    std::fill(dst, dst + n, T(0));
    f(dst);
}

/// dst (shape in) = src (shape out) summed over the dimensions that in broadcasts along. The
/// innermost dimension is summed with unit stride (a bias row) or into one entry (a column of
/// per-row statistics) without index arithmetic per entry.
template <class T>
void sum_to_shape(const T* src, const shape& out, const shape& in, T* dst) {
    const std::size_t m = in.size();
    accumulate(dst, m, m ? out.size() / m : 0, [&](auto* acc) {
        using A = std::remove_pointer_t<decltype(acc)>;
        const bcast_plan p = plan_broadcast(in, out);
        const auto& d = p.dims;
        const std::size_t s3 = p.stride[3], n = d[3];
        std::size_t o = 0;
        for (std::size_t i0 = 0; i0 < d[0]; ++i0)
            for (std::size_t i1 = 0; i1 < d[1]; ++i1)
                for (std::size_t i2 = 0; i2 < d[2]; ++i2, o += n) {
                    A* q = acc + i0 * p.stride[0] + i1 * p.stride[1] + i2 * p.stride[2];
                    const T* r = src + o;
                    if (s3 == 1) {
                        for (std::size_t i3 = 0; i3 < n; ++i3) q[i3] += r[i3];
                    } else {
                        *q += lane_sum<A>(n, [r](std::size_t i) { return A(r[i]); });
                    }
                }
    });
}

}  // namespace seqgrad::detail
