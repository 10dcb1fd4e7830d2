#include "shape_ops.hpp"

#include "kernels.hpp"

namespace seqgrad {
namespace {
using namespace detail;
using std::size_t;

// Copies use std::copy_n, not memcpy: an empty parameter is read in place, and its data pointer
// is null (memcpy from null is undefined even for 0 bytes).

std::string slice_attrs(const attrs& a) {
    return "axis=" + std::to_string(a.i[0]) + ", " + std::to_string(a.i[1]) + ":" + std::to_string(a.i[2]);
}

size_t axis_of(const shape& s, std::int64_t a) {
    return static_cast<size_t>(a < 0 ? a + static_cast<std::int64_t>(s.rank()) : a);
}

void check_ids(const op_def& op, std::span<const shape> in, std::span<const int> ids, size_t limit, const char* what) {
    for (size_t i = 0; i < ids.size(); ++i)
        if (ids[i] < 0 || static_cast<size_t>(ids[i]) >= limit)
            throw value_error(op.name + ": " + what + " " + std::to_string(ids[i]) + " at position " +
                              std::to_string(i) + " is out of range for input shape " + in[0].str() +
                              " (expected 0 <= id < " + std::to_string(limit) + ")");
}

struct shape_ops {
    const op_def& reshape = builtin(
        op_builder("reshape")
            .saves(saves::nothing)
            .shape([](const op_def& op, std::span<const shape> in, const attrs& at) {
                if (at.shp.size() != in[0].size())
                    fail_shape(op, in,
                               "cannot reshape to " + at.shp.str() + " (" + std::to_string(at.shp.size()) +
                                   " entries, the input has " + std::to_string(in[0].size()) + ")");
                return at.shp;
            })
            .print_attrs([](const attrs& a) { return "shape=" + a.shp.str(); })
            .view([](std::span<const shape>, const attrs&) { return std::size_t(0); })
            .gradient_block([](std::span<const shape>, const attrs&, size_t) { return size_t(0); })
            .forward([](auto& c) { std::copy_n(c.in(0).data, c.in(0).size(), c.out().data); })
            .backward([](auto& c) {
                auto g = c.grad_out();
                c.emit(0, [&](size_t i) { return g[i]; });
            })
            .sample({{3, 4}}, attrs{.shp = {2, 6}})
            .sample({{2, 3}}, attrs{.shp = {6}}));

    // i[0] = axis. Each input is viewed as [outer, n_j * inner]; the output row o is the inputs'
    // rows o laid end to end.
    const op_def& concat = builtin(
        op_builder("concat")
            .arity(-1)
            .saves(saves::nothing)
            .print_attrs(axis_attr)
            .shape([](const op_def& op, std::span<const shape> in, const attrs& at) {
                const size_t axis = resolve_axis(op, in, at.i[0], in[0].rank());
                shape out = in[0];
                for (size_t j = 1; j < in.size(); ++j) {
                    bool ok = in[j].rank() == in[0].rank();
                    for (size_t k = 0; ok && k < in[0].rank(); ++k) ok = k == axis || in[j][k] == in[0][k];
                    if (!ok)
                        fail_shape(op, in,
                                   "expected equal ranks and equal sizes except along axis " + std::to_string(axis));
                    out[axis] += in[j][axis];
                }
                return out;
            })
            .gradient_block([](std::span<const shape> in, const attrs& at, size_t j) {
                // Blocks when every dimension before the axis is 1 (steps stacked along the first).
                if (view_along(in[0], axis_of(in[0], at.i[0])).outer != 1) return op_def::no_view;
                size_t off = 0;
                for (size_t q = 0; q < j; ++q) off += in[q].size();
                return off;
            })
            .forward([](auto& c) {
                const auto& y = c.out();
                const size_t axis = axis_of(y.shape, c.at.i[0]);
                const auto vy = view_along(y.shape, axis);
                size_t offset = 0;
                for (size_t j = 0; j < c.num_inputs; ++j) {
                    auto x = c.in(j);
                    const size_t w = x.shape[axis] * vy.inner;
                    for (size_t o = 0; o < vy.outer; ++o)
                        std::copy_n(x.data + o * w, w, y.data + o * vy.n * vy.inner + offset);
                    offset += w;
                }
            })
            .backward([](auto& c) {
                auto g = c.grad_out();
                const size_t axis = axis_of(g.shape, c.at.i[0]);
                const auto vy = view_along(g.shape, axis);
                size_t offset = 0;
                const size_t stride = vy.n * vy.inner;
                for (size_t j = 0; j < c.num_inputs; ++j) {
                    const size_t w = c.in(j).shape[axis] * vy.inner;
                    const auto* src = g.data + offset;
                    if (vy.outer == 1)  // one block (steps stacked along the first axis): a copy
                        c.emit(j, [&](size_t idx) { return src[idx]; });
                    else  // rows of w entries; emit visits entries in order, so no division per entry
                        c.emit(j, [&, row = src, q = size_t(0)](size_t) mutable {
                            const auto v = row[q];
                            if (++q == w) q = 0, row += stride;
                            return v;
                        });
                    offset += w;
                }
            })
            .sample({{2, 3}, {2, 4}}, attrs{.i = {1, 0, 0, 0}})
            .sample({{2, 3}, {1, 3}, {3, 3}}, attrs{.i = {0, 0, 0, 0}})
            .sample({{2, 2, 3}, {2, 1, 3}}, attrs{.i = {-2, 0, 0, 0}}));

    // i[0] = axis, i[1] = begin, i[2] = end.
    const op_def& slice = builtin(
        op_builder("slice")
            .saves(saves::nothing)
            .accumulates()
            .print_attrs(slice_attrs)
            .shape([](const op_def& op, std::span<const shape> in, const attrs& at) {
                const size_t axis = resolve_axis(op, in, at.i[0], in[0].rank());
                if (at.i[1] < 0 || at.i[2] < at.i[1] || static_cast<size_t>(at.i[2]) > in[0][axis])
                    fail_shape(op, in,
                               "expected 0 <= begin <= end <= " + std::to_string(in[0][axis]) + " along axis " +
                                   std::to_string(axis) + ", got " + std::to_string(at.i[1]) + ":" +
                                   std::to_string(at.i[2]));
                shape out = in[0];
                out[axis] = static_cast<size_t>(at.i[2] - at.i[1]);
                return out;
            })
            .view([](std::span<const shape> in, const attrs& at) {
                // One block when every dimension before the axis is 1 (a time step of [T, B, F]).
                const std::int64_t r = static_cast<std::int64_t>(in[0].rank());
                const size_t axis = static_cast<size_t>(at.i[0] < 0 ? at.i[0] + r : at.i[0]);
                const auto v = view_along(in[0], axis);
                return v.outer == 1 ? static_cast<size_t>(at.i[1]) * v.inner : op_def::no_view;
            })
            .forward([](auto& c) {
                auto x = c.in(0);
                const auto& y = c.out();
                const auto v = view_along(x.shape, axis_of(x.shape, c.at.i[0]));
                const size_t b = static_cast<size_t>(c.at.i[1]), w = y.shape.size() / std::max<size_t>(v.outer, 1);
                for (size_t o = 0; o < v.outer; ++o) std::copy_n(x.data + (o * v.n + b) * v.inner, w, y.data + o * w);
            })
            .backward([](auto& c) {
                using T = std::remove_cvref_t<decltype(c.grad_out()[0])>;
                auto g = c.grad_out();
                const auto& xs = c.in(0).shape;
                const auto v = view_along(xs, axis_of(xs, c.at.i[0]));
                const size_t b = static_cast<size_t>(c.at.i[1]), w = (static_cast<size_t>(c.at.i[2]) - b) * v.inner;
                auto t = c.target(0);
                if (!t.data) return;
                // Only the sliced region is touched when adding: the T slices of a sequence (or the
                // gates of a step) cost O(T) together, not O(T^2). The first contribution writes its
                // region and zeroes the rest, so the input is written once, not cleared and then added.
                const size_t row = v.n * v.inner, off = b * v.inner;
                const bool acc = c.accumulate(0);
                for (size_t o = 0; o < v.outer; ++o) {
                    T* dst = t.data + o * row;
                    const T* src = g.data + o * w;
                    if (acc) {
                        for (size_t q = 0; q < w; ++q) dst[off + q] += src[q];
                    } else {
                        std::fill(dst, dst + off, T(0));
                        std::copy_n(src, w, dst + off);
                        std::fill(dst + off + w, dst + row, T(0));
                    }
                }
            })
            .sample({{4, 3}}, attrs{.i = {0, 1, 3, 0}})
            .sample({{2, 5}}, attrs{.i = {-1, 2, 5, 0}})
            .sample({{2, 3, 4}}, attrs{.i = {1, 0, 2, 0}}));

    const op_def& broadcast_to = builtin(
        op_builder("broadcast_to")
            .broadcasting()
            .saves(saves::nothing)
            .print_attrs([](const attrs& a) { return "shape=" + a.shp.str(); })
            .shape([](const op_def& op, std::span<const shape> in, const attrs& at) {
                // The target is not an input: a mismatch names the one input and the target.
                const shape both[2] = {in[0], at.shp};
                bool ok;
                try {
                    ok = broadcast_shape(op, both, at) == at.shp;
                } catch (const shape_error&) {
                    ok = false;
                }
                if (!ok) fail_shape(op, in, "cannot broadcast to " + at.shp.str() + " (NumPy rules)");
                return at.shp;
            })
            .forward([](auto& c) {
                auto x = c.in(0);
                const auto& y = c.out();
                for_each_broadcast(y.shape, x.shape, [&](size_t o, size_t i) { y[o] = x[i]; });
            })
            .backward([](auto& c) {
                auto g = c.grad_out();
                c.emit(0, [&](size_t i) { return g[i]; });
            })
            .sample({{3}}, attrs{.shp = {2, 3}})
            .sample({{2, 1}}, attrs{.shp = {2, 4}}));

    // ints = row ids. Backward scatters the rows of the gradient back into the table.
    const op_def& gather_rows = builtin(op_builder("gather_rows")
                                            .saves(saves::nothing)
                                            .accumulates()
                                            .shape([](const op_def& op, std::span<const shape> in, const attrs& at) {
                                                if (in[0].rank() != 2)
                                                    fail_shape(op, in, "expected a table of rank 2 [rows, width]");
                                                check_ids(op, in, at.ints, in[0][0], "row id");
                                                return shape{at.ints.size(), in[0][1]};
                                            })
                                            .forward([](auto& c) {
                                                auto t = c.in(0);
                                                const auto& y = c.out();
                                                const size_t d = t.shape[1];
                                                for (size_t r = 0; r < c.at.ints.size(); ++r)
                                                    std::copy_n(t.data + static_cast<size_t>(c.at.ints[r]) * d, d,
                                                                y.data + r * d);
                                            })
                                            .backward([](auto& c) {
                                                auto tgt = c.target(0);
                                                auto g = c.grad_out();
                                                if (!tgt.data) return;
                                                if (!c.accumulate(0)) std::fill(tgt.begin(), tgt.end(), 0);
                                                const size_t d = g.shape[1];
                                                for (size_t r = 0; r < c.at.ints.size(); ++r) {
                                                    auto* dst = tgt.data + static_cast<size_t>(c.at.ints[r]) * d;
                                                    for (size_t k = 0; k < d; ++k) dst[k] += g[r * d + k];
                                                }
                                            })
                                            .sample({{5, 3}}, {}, {4, 0, 4, 2}));

    // ints = one column per row.
    const op_def& pick = builtin(op_builder("pick")
                                     .saves(saves::nothing)
                                     .shape([](const op_def& op, std::span<const shape> in, const attrs& at) {
                                         if (in[0].rank() != 2) fail_shape(op, in, "expected a matrix [rows, columns]");
                                         if (at.ints.size() != in[0][0])
                                             fail_shape(op, in,
                                                        "expected one index per row (" + std::to_string(in[0][0]) +
                                                            "), got " + std::to_string(at.ints.size()));
                                         check_ids(op, in, at.ints, in[0][1], "column index");
                                         return shape{in[0][0]};
                                     })
                                     .forward([](auto& c) {
                                         auto x = c.in(0);
                                         const auto& y = c.out();
                                         const size_t n = x.shape[1];
                                         for (size_t r = 0; r < y.size(); ++r)
                                             y[r] = x[r * n + static_cast<size_t>(c.at.ints[r])];
                                     })
                                     .backward([](auto& c) {
                                         auto tgt = c.target(0);
                                         auto g = c.grad_out();
                                         if (!tgt.data) return;
                                         std::fill(tgt.begin(), tgt.end(), 0);
                                         const size_t n = tgt.shape[1];
                                         for (size_t r = 0; r < g.size(); ++r)
                                             tgt[r * n + static_cast<size_t>(c.at.ints[r])] += g[r];
                                     })
                                     .sample({{3, 4}}, {}, {1, 3, 0}));

    const op_def& stop_gradient = builtin(
        op_builder("stop_gradient")
            .shape(same_shape)
            .constant_output()
            .saves(saves::nothing)
            .no_gradient()
            .forward([](auto& c) { std::copy_n(c.in(0).data, c.in(0).size(), c.out().data); })
            .sample({{2, 3}}));
};

const shape_ops& ops() {
    static const shape_ops o;
    return o;
}
}  // namespace

void detail::register_shape_ops() { ops(); }

expr reshape(const expr& x, const shape& s) { return apply(ops().reshape, {x}, attrs{.shp = s}); }
expr concat(std::span<const expr> xs, int axis) { return apply(ops().concat, xs, attrs{.i = {axis, 0, 0, 0}}); }
expr slice(const expr& x, int axis, std::size_t begin, std::size_t end) {
    return apply(ops().slice, {x},
                 attrs{.i = {axis, static_cast<std::int64_t>(begin), static_cast<std::int64_t>(end), 0}});
}
std::vector<expr> split(const expr& x, std::size_t parts, int axis) {
    const shape& s = x.shape();
    const std::int64_t r = static_cast<std::int64_t>(s.rank());
    if (parts == 0 || axis < -r || axis >= r || s[axis < 0 ? axis + r : axis] % parts != 0)
        throw shape_error("split: cannot cut shape " + s.str() + " into " + std::to_string(parts) +
                          " equal parts along axis " + std::to_string(axis));
    const std::size_t w = s[axis < 0 ? axis + r : axis] / parts;
    std::vector<expr> out;
    for (std::size_t p = 0; p < parts; ++p) out.push_back(slice(x, axis, p * w, (p + 1) * w));
    return out;
}
expr broadcast_to(const expr& x, const shape& s) { return apply(ops().broadcast_to, {x}, attrs{.shp = s}); }
expr gather_rows(const expr& table, std::span<const int> ids) {
    return apply(ops().gather_rows, {table}, attrs{.ints = ids});
}
expr pick(const expr& x, std::span<const int> idx) { return apply(ops().pick, {x}, attrs{.ints = idx}); }
expr stop_gradient(const expr& x) { return apply(ops().stop_gradient, {x}); }

}  // namespace seqgrad
