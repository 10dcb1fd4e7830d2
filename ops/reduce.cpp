#include "reduce.hpp"

#include "elementwise.hpp"
#include "kernels.hpp"

namespace seqgrad {
namespace {
using namespace detail;
using std::size_t;

shape sum_axis_shape(const op_def& op, std::span<const shape> in, const attrs& at) {
    return keep_or_drop(in[0], resolve_reduce_axis(op, in, at.i[0]), at.i[1] != 0);
}

// The resolved axis; 0 for a rank-0 input (its implicit axis, see resolve_reduce_axis).
size_t axis_of(const shape& s, std::int64_t a) {
    return s.rank() == 0 ? 0 : static_cast<size_t>(a < 0 ? a + static_cast<std::int64_t>(s.rank()) : a);
}

struct reduce_ops {
    const op_def& sum = builtin(op_builder("sum")
                                    .shape(scalar_shape)
                                    .saves(saves::nothing)
                                    .forward([](auto& c) {
                                        auto x = c.in(0);
                                        sum_to_shape(x.data, x.shape, shape{}, c.out().data);
                                    })
                                    .backward([](auto& c) {
                                        const auto g = c.grad_out()[0];
                                        c.emit(0, [g](size_t) { return g; });
                                    })
                                    .sample({{3, 4}})
                                    .sample(std::vector<shape>{shape{}}));

    // i[0] = axis, i[1] = keepdims. x is viewed as [outer, n, inner]; y as [outer, inner].
    const op_def& sum_axis = builtin(
        op_builder("sum_axis")
            .shape(sum_axis_shape)
            .saves(saves::nothing)
            .print_attrs(axis_attr)
            // The engine's un-broadcasting sum (broadcast.hpp): x summed into x's shape with the
            // axis kept as 1, the layout of y with or without keepdims; long float sums in double.
            .forward([](auto& c) {
                auto x = c.in(0);
                shape kept = x.shape;
                if (kept.rank() != 0) kept[axis_of(x.shape, c.at.i[0])] = 1;
                sum_to_shape(x.data, x.shape, kept, c.out().data);
            })
            .backward([](auto& c) {
                auto g = c.grad_out();
                const auto& xs = c.in(0).shape;
                const auto v = view_along(xs, axis_of(xs, c.at.i[0]));
                if (v.inner == 1) {
                    c.emit_rows(0, v.n, [&](size_t o) { return g[o]; });
                    return;
                }
                c.emit(0, [&](size_t idx) { return g[(idx / (v.n * v.inner)) * v.inner + idx % v.inner]; });
            })
            .sample({{3, 4}}, attrs{.i = {0, 0, 0, 0}})
            .sample({{3, 4}}, attrs{.i = {1, 1, 0, 0}})
            .sample({{2, 3, 4}}, attrs{.i = {-2, 0, 0, 0}})
            .sample(std::vector<shape>{shape{}}, attrs{.i = {-1, 1, 0, 0}}));
};

const reduce_ops& ops() {
    static const reduce_ops o;
    return o;
}
}  // namespace

void detail::register_reduce_ops() { ops(); }

expr sum(const expr& x) { return apply(ops().sum, {x}); }
expr sum(const expr& x, int axis, bool keepdims) {
    return apply(ops().sum_axis, {x}, attrs{.i = {axis, keepdims, 0, 0}});
}
// The mean of nothing is 0/0: an error rather than a silent NaN.
expr mean(const expr& x) {
    const shape xs = x.shape();
    if (xs.size() == 0)
        throw shape_error("mean: input of shape " + xs.str() + " has no entries (expected at least one)");
    return mul_scalar(sum(x), 1.0 / static_cast<double>(xs.size()));
}
expr mean(const expr& x, int axis, bool keepdims) {
    const shape xs = x.shape();
    const int rank = std::max(static_cast<int>(xs.rank()), 1);  // a scalar has one implicit axis
    if (axis < -rank || axis >= rank)  // checked here so that the error names mean, not sum_axis
        throw shape_error("mean: axis " + std::to_string(axis) + " out of range for input " + xs.str() + " (expected " +
                          std::to_string(-rank) + " <= axis < " + std::to_string(rank) + ")");
    auto s = sum(x, axis, keepdims);
    const size_t n = xs.rank() == 0 ? 1 : xs[axis < 0 ? axis + rank : axis];
    if (n == 0)
        throw shape_error("mean: axis " + std::to_string(axis) + " of shape " + xs.str() +
                          " has no entries (expected at least one)");
    return mul_scalar(s, 1.0 / static_cast<double>(n));
}

}  // namespace seqgrad
