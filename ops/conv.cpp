#include "conv.hpp"

#include "../core/blas.hpp"
#include "kernels.hpp"

namespace seqgrad {
namespace {
using namespace detail;
using std::size_t;

shape conv_shape(const op_def& op, std::span<const shape> in, const attrs&) {
    if (in[0].rank() != 3 || in[1].rank() != 3)
        fail_shape(op, in, "expected x [T, B, C_in] and w [K, C_in, C_out] (rank 3 each)");
    if (in[0][2] != in[1][1]) fail_shape(op, in, "expected the channels of x (dimension 2) to equal w's dimension 1");
    if (in[1][0] == 0) fail_shape(op, in, "expected at least one tap (K >= 1)");
    return {in[0][0], in[0][1], in[1][2]};
}

struct conv_ops {
    // Tap k multiplies rows [0, T - k) of x, viewed as [(T - k) B, C_in], into rows [k, T) of y.
    const op_def& conv1d_causal = builtin(
        op_builder("conv1d_causal")
            .arity(2)
            .shape(conv_shape)
            .saves(saves::inputs)
            .accumulates()
            .forward([](auto& c) {
                using T = std::remove_cvref_t<decltype(c.out()[0])>;
                auto x = c.in(0), w = c.in(1);
                const auto& y = c.out();
                const size_t steps = x.shape[0], B = x.shape[1], ci = x.shape[2], K = w.shape[0], co = w.shape[2];
                std::fill(y.begin(), y.end(), T(0));
                for (size_t k = 0; k < K && k < steps; ++k)
                    gemm<T>(false, false, (steps - k) * B, co, ci, T(1), x.data, w.data + k * ci * co, T(1),
                            y.data + k * B * co);
            })
            .backward([](auto& c) {
                using T = std::remove_cvref_t<decltype(c.out()[0])>;
                auto x = c.in(0), w = c.in(1);
                const auto& gy = c.grad_out();
                const size_t steps = x.shape[0], B = x.shape[1], ci = x.shape[2], K = w.shape[0], co = w.shape[2];
                if (auto gx = c.target(0); gx.data) {
                    if (!c.accumulate(0)) std::fill(gx.begin(), gx.end(), T(0));
                    for (size_t k = 0; k < K && k < steps; ++k)
                        gemm<T>(false, true, (steps - k) * B, ci, co, T(1), gy.data + k * B * co, w.data + k * ci * co,
                                T(1), gx.data);
                }
                if (auto gw = c.target(1); gw.data) {
                    const bool acc = c.accumulate(1);
                    for (size_t k = 0; k < K; ++k) {
                        T* gk = gw.data + k * ci * co;
                        if (k < steps && B > 0)
                            gemm<T>(true, false, ci, co, (steps - k) * B, T(1), x.data, gy.data + k * B * co,
                                    acc ? T(1) : T(0), gk);
                        else if (!acc) std::fill(gk, gk + ci * co, T(0));
                    }
                }
            })
            .sample({{5, 2, 3}, {2, 3, 4}})
            .sample({{2, 1, 2}, {3, 2, 2}}));
};

const conv_ops& ops() {
    static const conv_ops o;
    return o;
}
}  // namespace

void detail::register_conv_ops() { ops(); }

expr conv1d_causal(const expr& x, const expr& w) { return apply(ops().conv1d_causal, {x, w}); }

}  // namespace seqgrad
