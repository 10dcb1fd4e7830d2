#pragma once
// Parameters as operands, and named transposes for products.
//
//     auto f = sg::sigmoid(sg::matmul(x, sg::T(w_f)) + sg::matmul(h, sg::T(u_f)) + b_f);
//
// A parameter may stand wherever add, sub, mul, div (and + - * /), matmul, bmm or matmul_add take
// an expr, provided at least one other operand is an expr: it is resolved on that expr's tape
// exactly as t.param(w) would be (one leaf per parameter per tape, shared by every use), so the
// two spellings build the same graph. An op whose operands are all parameters has no tape to go
// on and does not compile (a static_assert says so): write t.param(w) for one of them, as for a
// unary op of a parameter (sg::tanh(t.param(w))).
//
// sg::T(a) names the transposed operand of a product: matmul(x, T(w)) is x w^T with w stored
// [out, in], done by BLAS with no transpose node (the same node as the positional
// matmul(x, w, false, true), which is kept for old code and is deprecated). T(a) is not an expr;
// only matmul, bmm and matmul_add take it. sg::transpose(x) builds the transposed matrix as a node.
//
// Weight layout. Weight matrices are stored [out, in], PyTorch's layout, and applied as
// matmul(x, T(w)) (or nn::linear): the built-in layers, nn/torch_state and checkpoints use it.
// Code that prefers [in, out] and matmul(x, w) declares it when adding the parameter
// (s.add("w", {in, out}, sg::weight_layout::in_out)) so that initialisers (nn/init.hpp) take
// fan-in and fan-out from the right dimensions.
#include <concepts>
#include <type_traits>

#include "elementwise.hpp"
#include "linalg.hpp"
#include "recurrent.hpp"

namespace seqgrad {

/// The transpose of a product operand (an expr or a parameter); made by T().
template <class X>
struct transposed {
    X of;
};

namespace detail {
template <class X>
struct operand_traits {
    static constexpr bool ok = false, has_expr = false, trans = false;
};
template <>
struct operand_traits<expr> {
    static constexpr bool ok = true, has_expr = true, trans = false;
};
template <>
struct operand_traits<parameter> {
    static constexpr bool ok = true, has_expr = false, trans = false;
};
template <class X>
struct operand_traits<transposed<X>> {
    static constexpr bool ok = operand_traits<X>::ok, has_expr = operand_traits<X>::has_expr, trans = true;
};
template <class X>
using operand_traits_of = operand_traits<std::remove_cvref_t<X>>;

/// An expr or a parameter (not transposed).
template <class X>
concept plain_operand = operand_traits_of<X>::ok && !operand_traits_of<X>::trans;
/// An expr or a parameter, maybe transposed (a product's operand).
template <class X>
concept product_operand = operand_traits_of<X>::ok;
/// True when every operand is a plain expr: the non-template overloads take those.
template <class... X>
inline constexpr bool all_plain_exprs = (std::same_as<std::remove_cvref_t<X>, expr> && ...);
template <class... X>
inline constexpr bool any_expr = (operand_traits_of<X>::has_expr || ...);
/// Operands of an elementwise op, not all plain exprs.
template <class A, class B>
concept mixed = plain_operand<A> && plain_operand<B> && !all_plain_exprs<A, B>;
/// Operands of a product, not all plain exprs (an expr or parameter in T() counts as not plain).
template <class A, class B>
concept mixed_product = product_operand<A> && product_operand<B> && !all_plain_exprs<A, B>;
/// Operands of matmul_add: an addend and a product's two operands, not all plain exprs.
template <class C, class A, class B>
concept mixed_product_add = plain_operand<C> && product_operand<A> && product_operand<B> && !all_plain_exprs<C, A, B>;

inline const expr* expr_in(const expr& e) { return &e; }
inline const expr* expr_in(const parameter&) { return nullptr; }
template <class X>
const expr* expr_in(const transposed<X>& x) {
    return expr_in(x.of);
}
/// The tape of the first expr among the operands (null without one: the callers' static_assert
/// has already failed then).
inline tape* tape_of() { return nullptr; }
template <class X, class... R>
tape* tape_of(const X& x, const R&... r) {
    if constexpr (operand_traits_of<X>::has_expr) return &expr_in(x)->owner();
    else return tape_of(r...);
}
inline expr on_tape(tape&, const expr& e) { return e; }
inline expr on_tape(tape& t, const parameter& p) { return t.param(p); }
template <class X>
expr on_tape(tape& t, const transposed<X>& x) {
    return on_tape(t, x.of);
}
template <class X>
inline constexpr bool is_transposed = operand_traits_of<X>::trans;
}  // namespace detail

/// The transpose of an operand of matmul, bmm or matmul_add (no node is built; see above).
template <detail::plain_operand X>
transposed<X> T(const X& x) {
    return {x};
}

// Each overload takes over where an operand is not a plain expr, puts the parameters on the tape
// of the first expr operand and calls the expr-only form.
#define SEQGRAD_MIXED_BINARY(fn, call)                                                        \
    template <class A, class B>                                                               \
    expr fn(const A& a, const B& b) requires detail::mixed<A, B> {                            \
        static_assert(detail::any_expr<A, B>, "seqgrad: " #fn                                 \
                                              " of parameters only: no tape to put them on; " \
                                              "write t.param(w) for one of them");            \
        tape& t = *detail::tape_of(a, b);                                                     \
        return call(detail::on_tape(t, a), detail::on_tape(t, b));                            \
    }
SEQGRAD_MIXED_BINARY(add, add)
SEQGRAD_MIXED_BINARY(sub, sub)
SEQGRAD_MIXED_BINARY(mul, mul)
SEQGRAD_MIXED_BINARY(div, div)
SEQGRAD_MIXED_BINARY(operator+, add)
SEQGRAD_MIXED_BINARY(operator-, sub)
SEQGRAD_MIXED_BINARY(operator*, mul)
SEQGRAD_MIXED_BINARY(operator/, div)
#undef SEQGRAD_MIXED_BINARY

/// matmul(a, b) with parameters and T() operands: matmul(x, T(w)) is x w^T.
template <class A, class B>
expr matmul(const A& a, const B& b) requires detail::mixed_product<A, B> {
    static_assert(detail::any_expr<A, B>,
                  "seqgrad: matmul of parameters only: no tape to put them on; write t.param(w) for one of them");
    tape& t = *detail::tape_of(a, b);
    return matmul(detail::on_tape(t, a), detail::on_tape(t, b), detail::is_transposed<A>, detail::is_transposed<B>);
}

/// bmm(a, b) with parameters and T() operands: bmm(q, T(k)) is q k^T per batch entry.
template <class A, class B>
expr bmm(const A& a, const B& b) requires detail::mixed_product<A, B> {
    static_assert(detail::any_expr<A, B>,
                  "seqgrad: bmm of parameters only: no tape to put them on; write t.param(w) for one of them");
    tape& t = *detail::tape_of(a, b);
    return bmm(detail::on_tape(t, a), detail::on_tape(t, b), detail::is_transposed<A>, detail::is_transposed<B>);
}

/// matmul_add(c, a, b) = c + a b with parameters and T() operands: matmul_add(bias, x, T(w)) is a
/// linear layer x w^T + bias in one node.
template <class C, class A, class B>
expr matmul_add(const C& c, const A& a, const B& b) requires detail::mixed_product_add<C, A, B> {
    static_assert(detail::any_expr<C, A, B>,
                  "seqgrad: matmul_add of parameters only: no tape to put them on; write t.param(w) for one of them");
    tape& t = *detail::tape_of(c, a, b);
    return matmul_add(detail::on_tape(t, c), detail::on_tape(t, a), detail::on_tape(t, b), detail::is_transposed<A>,
                      detail::is_transposed<B>);
}

}  // namespace seqgrad
