#include "random.hpp"

#include "kernels.hpp"

namespace seqgrad {
namespace {
using namespace detail;
using std::size_t;

// splitmix64's finaliser: a bijection whose outputs pass BigCrush as a counter-based generator.
std::uint64_t mix(std::uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
std::uint64_t key_of(std::int64_t seed, std::int64_t draw) {
    return mix(static_cast<std::uint64_t>(seed) ^ mix(static_cast<std::uint64_t>(draw) + 0x632be59bd9b4e019ull));
}
bool keeps(std::uint64_t key, std::uint64_t j, double p) {
    return static_cast<double>(mix(key + j) >> 11) * 0x1p-53 >= p;
}

// i[0] = seed, i[1] = draw, i[2] = inner, i[3] = period; f[0] = drop probability, f[1] = scale.
template <class C, class F>
void each_mask(const C& c, size_t n, F&& f) {
    const std::uint64_t key = key_of(c.at.i[0], c.at.i[1]);
    const size_t inner = static_cast<size_t>(std::max<std::int64_t>(c.at.i[2], 1));
    const size_t period = c.at.i[3] > 0 ? static_cast<size_t>(c.at.i[3]) : n;
    const double p = c.at.f[0];
    using T = std::remove_cvref_t<decltype(c.out()[0])>;
    const T scale = static_cast<T>(c.at.f[1]);
    for (size_t i = 0; i < n; ++i) f(i, keeps(key, (i / inner) % period, p) ? scale : T(0));
}

std::string mask_attrs(const attrs& a) {
    return "seed=" + std::to_string(a.i[0]) + ", draw=" + std::to_string(a.i[1]) + ", p=" + std::to_string(a.f[0]);
}

struct random_ops {
    const op_def& random_mask = builtin(op_builder("random_mask")
                                            .shape(same_shape)
                                            .saves(saves::nothing)
                                            .print_attrs(mask_attrs)
                                            .forward([](auto& c) {
                                                auto x = c.in(0);
                                                const auto& y = c.out();
                                                each_mask(c, y.size(), [&](size_t i, auto m) { y[i] = x[i] * m; });
                                            })
                                            .backward([](auto& c) {
                                                auto t = c.target(0);
                                                if (!t.data) return;
                                                auto g = c.grad_out();
                                                each_mask(c, t.size(), [&](size_t i, auto m) { t[i] = g[i] * m; });
                                            })
                                            .sample({{4, 5}}, attrs{.i = {7, 0, 1, 0}, .f = {0.4, 1.0 / 0.6}})
                                            .sample({{3, 2, 4}}, attrs{.i = {7, 3, 4, 2}, .f = {0.5, 1.0}}));
};

const random_ops& ops() {
    static const random_ops o;
    return o;
}
}  // namespace

void detail::register_random_ops() { ops(); }

bool mask_keeps(std::uint64_t seed, std::uint64_t draw, std::uint64_t j, double p) {
    return keeps(key_of(static_cast<std::int64_t>(seed), static_cast<std::int64_t>(draw)), j, p);
}

expr random_mask(const expr& x, const mask_spec& s) {
    if (!(s.drop >= 0 && s.drop < 1))
        throw value_error("random_mask: expected a drop probability in [0, 1), got " + detail::number(s.drop));
    if (s.period > 0 && x.shape().size() % (s.period * std::max<std::size_t>(s.inner, 1)) != 0)
        throw shape_error("random_mask: input shape " + x.shape().str() + " has " + std::to_string(x.shape().size()) +
                          " entries, expected a multiple of the mask's " + std::to_string(s.period) + " x " +
                          std::to_string(std::max<std::size_t>(s.inner, 1)));
    attrs at{.i = {static_cast<std::int64_t>(s.seed), static_cast<std::int64_t>(s.draw),
                   static_cast<std::int64_t>(s.inner), static_cast<std::int64_t>(s.period)},
             .f = {s.drop, s.scale}};
    return apply(ops().random_mask, {x}, at);
}

}  // namespace seqgrad
