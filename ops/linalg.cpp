#include "linalg.hpp"

#include "../core/blas.hpp"
#include "kernels.hpp"

namespace seqgrad {
namespace {
using namespace detail;
using std::size_t;

shape matmul_shape(const op_def& op, std::span<const shape> in, const attrs& at) {
    if (in[0].rank() != 2 || in[1].rank() != 2) fail_shape(op, in, "expected two matrices (rank 2)");
    const bool ta = at.i[0] != 0, tb = at.i[1] != 0;
    const size_t ka = ta ? in[0][0] : in[0][1], kb = tb ? in[1][1] : in[1][0];
    if (ka != kb)
        fail_shape(op, in,
                   std::string("expected the inner dimensions to agree (a") + (ta ? "^T" : "") + " has " +
                       std::to_string(ka) + " columns, b" + (tb ? "^T" : "") + " has " + std::to_string(kb) + " rows)");
    const auto s = sizes(in[0], in[1], at);
    return {s.m, s.n};
}

// [B, M, K] x [B, K, N] (stored layouts per the transpose flags) -> [B, M, N].
shape bmm_shape(const op_def& op, std::span<const shape> in, const attrs& at) {
    if (in[0].rank() != 3 || in[1].rank() != 3) fail_shape(op, in, "expected two batches of matrices (rank 3)");
    if (in[0][0] != in[1][0]) fail_shape(op, in, "expected equal batch sizes (dimension 0)");
    const shape a{in[0][1], in[0][2]}, b{in[1][1], in[1][2]};
    const bool ta = at.i[0] != 0, tb = at.i[1] != 0;
    const size_t ka = ta ? a[0] : a[1], kb = tb ? b[1] : b[0];
    if (ka != kb)
        fail_shape(op, in,
                   std::string("expected the inner dimensions to agree (a") + (ta ? "^T" : "") + " has " +
                       std::to_string(ka) + " columns, b" + (tb ? "^T" : "") + " has " + std::to_string(kb) + " rows)");
    const auto s = sizes(a, b, at);
    return {in[0][0], s.m, s.n};
}

std::string matmul_attrs(const attrs& a) {
    return std::string("trans_a=") + (a.i[0] ? "1" : "0") + ", trans_b=" + (a.i[1] ? "1" : "0");
}

struct linalg_ops {
    // C = op(A) op(B). dop(A) = G op(B)^T and dop(B) = op(A)^T G, each written back in the stored
    // layout of A and B, with beta = 1 when accumulating.
    const op_def& matmul = builtin(
        op_builder("matmul")
            .arity(2)
            .shape(matmul_shape)
            .saves(saves::inputs)
            .accumulates()
            .product(0, 1)
            .print_attrs(matmul_attrs)
            .forward([](auto& c) {
                auto a = c.in(0), b = c.in(1);
                const auto& y = c.out();
                const bool ta = c.at.i[0] != 0, tb = c.at.i[1] != 0;
                const auto s = sizes(a.shape, b.shape, c.at);
                gemm(ta, tb, s.m, s.n, s.k, decltype(y[0] + 0)(1), a.data, b.data, decltype(y[0] + 0)(0), y.data);
            })
            .backward([](auto& c) {
                auto a = c.in(0), b = c.in(1);
                product_gradients(c, 0, 1, a.data, b.data, c.grad_out().data, sizes(a.shape, b.shape, c.at));
            })
            .sample({{3, 4}, {4, 5}})
            .sample({{1, 4}, {4, 5}})
            .sample({{3, 4}, {4, 1}})
            .sample({{4, 3}, {4, 5}}, attrs{.i = {1, 0, 0, 0}})
            .sample({{3, 4}, {5, 4}}, attrs{.i = {0, 1, 0, 0}})
            .sample({{1, 4}, {5, 4}}, attrs{.i = {0, 1, 0, 0}})
            .sample({{4, 3}, {5, 4}}, attrs{.i = {1, 1, 0, 0}}));

    // The matmul rule applied to each of the B pairs of matrices, one GEMM (or GEMV) per pair.
    const op_def& bmm = builtin(
        op_builder("bmm")
            .arity(2)
            .shape(bmm_shape)
            .saves(saves::inputs)
            .accumulates()
            .print_attrs(matmul_attrs)
            .forward([](auto& c) {
                using T = std::remove_cvref_t<decltype(c.out()[0])>;
                auto a = c.in(0), b = c.in(1);
                const auto& y = c.out();
                const bool ta = c.at.i[0] != 0, tb = c.at.i[1] != 0;
                const auto s = sizes(shape{a.shape[1], a.shape[2]}, shape{b.shape[1], b.shape[2]}, c.at);
                for (size_t p = 0; p < a.shape[0]; ++p)
                    gemm(ta, tb, s.m, s.n, s.k, T(1), a.data + p * s.m * s.k, b.data + p * s.k * s.n, T(0),
                         y.data + p * s.m * s.n);
            })
            .backward([](auto& c) {
                using T = std::remove_cvref_t<decltype(c.grad_out()[0])>;
                auto a = c.in(0), b = c.in(1);
                auto g = c.grad_out();
                const bool ta = c.at.i[0] != 0, tb = c.at.i[1] != 0;
                const auto s = sizes(shape{a.shape[1], a.shape[2]}, shape{b.shape[1], b.shape[2]}, c.at);
                const size_t na = s.m * s.k, nb = s.k * s.n, ng = s.m * s.n;
                for (size_t p = 0; p < a.shape[0]; ++p) {
                    const T* ap = a.data + p * na;
                    const T* bp = b.data + p * nb;
                    const T* gp = g.data + p * ng;
                    if (c.needs(0)) {
                        const T beta = c.accumulate(0) ? 1 : 0;
                        T* da = c.target(0).data + p * na;
                        if (!ta) gemm(false, !tb, s.m, s.k, s.n, T(1), gp, bp, beta, da);
                        else gemm(tb, true, s.k, s.m, s.n, T(1), bp, gp, beta, da);
                    }
                    if (c.needs(1)) {
                        const T beta = c.accumulate(1) ? 1 : 0;
                        T* db = c.target(1).data + p * nb;
                        if (!tb) gemm(!ta, false, s.k, s.n, s.m, T(1), ap, gp, beta, db);
                        else gemm(true, ta, s.n, s.k, s.m, T(1), gp, ap, beta, db);
                    }
                }
            })
            .sample({{2, 3, 4}, {2, 4, 5}})
            .sample({{3, 1, 4}, {3, 4, 5}})
            .sample({{2, 3, 4}, {2, 5, 4}}, attrs{.i = {0, 1, 0, 0}})
            .sample({{2, 4, 3}, {2, 4, 1}}, attrs{.i = {1, 0, 0, 0}})
            .sample({{2, 4, 3}, {2, 5, 4}}, attrs{.i = {1, 1, 0, 0}}));

    const op_def& transpose = builtin(op_builder("transpose")
                                          .shape([](const op_def& op, std::span<const shape> in, const attrs&) {
                                              if (in[0].rank() != 2) fail_shape(op, in, "expected a matrix (rank 2)");
                                              return shape{in[0][1], in[0][0]};
                                          })
                                          .saves(saves::nothing)
                                          .forward([](auto& c) {
                                              auto x = c.in(0);
                                              const auto& y = c.out();
                                              detail::transpose(x.data, x.shape[0], x.shape[1], y.data);
                                          })
                                          .backward([](auto& c) {
                                              auto g = c.grad_out();  // [k, r] for an input [r, k]
                                              if (c.needs(0))
                                                  detail::transpose(g.data, g.shape[0], g.shape[1], c.target(0).data);
                                          })
                                          .sample({{3, 4}}));
};

const linalg_ops& ops() {
    static const linalg_ops o;
    return o;
}
}  // namespace

void detail::register_linalg_ops() { ops(); }

expr matmul(const expr& a, const expr& b, bool trans_a, bool trans_b) {
    return apply(ops().matmul, {a, b}, attrs{.i = {trans_a, trans_b, 0, 0}});
}
expr bmm(const expr& a, const expr& b, bool trans_a, bool trans_b) {
    return apply(ops().bmm, {a, b}, attrs{.i = {trans_a, trans_b, 0, 0}});
}
expr transpose(const expr& x) { return apply(ops().transpose, {x}); }

}  // namespace seqgrad
