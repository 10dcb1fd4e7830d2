#include "adaptive_softmax.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "../ops/activation.hpp"
#include "../ops/elementwise.hpp"
#include "../ops/shape_ops.hpp"
#include "init.hpp"

namespace seqgrad::nn {
namespace {
std::mt19937_64& lvalue(std::mt19937_64&& r) { return r; }

std::string list(const std::vector<std::size_t>& v) {
    std::string s = "{";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "}";
}

// Cluster i's projection size: in // div^(i+1) with Python's float floor division, as PyTorch
// sizes tail[i]. That is not floor(in / d): 8 // 1.6 is 4 (fmod(8, 1.6) = 1.5999999999999996), while
// 8 / 1.6 rounds to exactly 5; a state dict would not load into the other by name.
std::size_t projection_size(std::size_t in, double div, std::size_t i) {
    const double a = static_cast<double>(in), d = std::pow(div, static_cast<double>(i + 1));
    const double mod = std::fmod(a, d), q = (a - mod) / d;  // CPython's float_divmod, a >= 0, d >= 1
    double f = std::floor(q);
    if (q - f > 0.5) f += 1.0;
    return static_cast<std::size_t>(f);
}

// The cutoffs followed by n_classes, checked.
std::vector<std::size_t> checked_cutoffs(const parameter_scope& scope, std::size_t in, std::size_t n_classes,
                                         std::vector<std::size_t> c, double div_value) {
    const std::string who = "nn::adaptive_softmax '" + scope.prefix() + "': ";
    const std::string given = list(c);
    if (!c.empty() && c.back() == n_classes) c.pop_back();
    bool ok = !c.empty() && c.front() >= 1 && c.back() < n_classes;
    for (std::size_t i = 1; i < c.size(); ++i) ok = ok && c[i - 1] < c[i];
    if (!ok)
        throw value_error(who + "cutoffs " + given + " for " + std::to_string(n_classes) +
                          " classes (expected a strictly increasing, non-empty list of values in [1, " +
                          std::to_string(n_classes) + "), optionally ending with " + std::to_string(n_classes) + ")");
    if (in == 0) throw value_error(who + "in_features 0 (expected > 0)");
    if (!(div_value >= 1.0))
        throw value_error(who + "div_value " + seqgrad::detail::number(div_value) + " (expected >= 1)");
    for (std::size_t i = 0; i < c.size(); ++i)
        if (projection_size(in, div_value, i) < 1)
            throw value_error(who + "cluster " + std::to_string(i) + " would project " + std::to_string(in) +
                              " features to in / div_value^" + std::to_string(i + 1) +
                              " < 1 (expected fewer clusters or a smaller div_value)");
    c.push_back(n_classes);
    return c;
}
}  // namespace

adaptive_softmax::adaptive_softmax(const parameter_scope& scope, std::size_t in, std::size_t n_classes,
                                   std::vector<std::size_t> cutoffs, double div_value, bool head_bias)
    : adaptive_softmax(scope, in, n_classes, std::move(cutoffs), div_value, head_bias,
                       lvalue(detail::seeded_from(scope.prefix()))) {}

adaptive_softmax::adaptive_softmax(const parameter_scope& scope, std::size_t in, std::size_t n_classes,
                                   std::vector<std::size_t> cut, double div, bool head_bias, std::mt19937_64& rng)
    : in_features(in),
      n_classes(n_classes),
      cutoffs(checked_cutoffs(scope, in, n_classes, std::move(cut), div)),
      div_value(div),
      head(scope.sub("head"), in, cutoffs.front() + cutoffs.size() - 1, head_bias, rng),
      name_("nn::adaptive_softmax '" + scope.prefix() + "'") {
    const seqgrad::detail::store_transaction undo(scope.store(),
                                                  scope.store().size() - (head.has_bias() ? 2 : 1));  // head's too
    for (std::size_t i = 0; i + 1 < cutoffs.size(); ++i) {
        const std::size_t hsz = projection_size(in, div, i);
        const parameter_scope tail = scope.sub("tail." + std::to_string(i));
        tail_proj.emplace_back(tail.sub("0"), in, hsz, false, rng);
        tail_out.emplace_back(tail.sub("1"), hsz, cutoffs[i + 1] - cutoffs[i], false, rng);
    }
}

expr adaptive_softmax::rows_of(const expr& x, const char* who) const {
    const shape xs = x.shape();
    if (xs.rank() == 0 || xs.back() != in_features)
        throw shape_error(name_ + " " + who + ": input " + xs.str() + " (expected [N, " + std::to_string(in_features) +
                          "])");
    return xs.rank() == 2 ? x : reshape(x, {xs.size() / in_features, in_features});
}

expr adaptive_softmax::loss(const expr& x_in, std::span<const int> targets, reduction r) const {
    const std::string& who = name_;
    if (r == reduction::none)
        throw value_error(who +
                          " loss: reduction::none is not supported (expected sum or mean; use log_prob for "
                          "per-row log-probabilities)");
    const expr x = rows_of(x_in, "loss");
    const std::size_t n = x.shape()[0], shortlist = shortlist_size(), k = n_clusters();
    if (targets.size() != n)
        throw value_error(who + " loss: " + std::to_string(targets.size()) + " targets for input " +
                          x_in.shape().str() + " (expected one per row, " + std::to_string(n) + ")");
    // Head targets: the word itself in the shortlist, its cluster's entry otherwise; each cluster
    // gets the rows whose target it holds and their targets relative to its first word.
    std::vector<int> head_targets(n);
    std::vector<std::vector<int>> rows(k), rel(k);
    std::size_t counted = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const int t = targets[i];
        if (t < 0) {
            head_targets[i] = -1;
            continue;
        }
        if (static_cast<std::size_t>(t) >= n_classes)
            throw value_error(who + " loss: target " + std::to_string(t) + " at row " + std::to_string(i) +
                              " (expected 0 <= target < " + std::to_string(n_classes) + ", or negative to ignore)");
        ++counted;
        const auto u = static_cast<std::size_t>(t);
        if (u < shortlist) {
            head_targets[i] = t;
            continue;
        }
        const std::size_t c =
            static_cast<std::size_t>(std::upper_bound(cutoffs.begin(), cutoffs.end(), u) - cutoffs.begin()) - 1;
        head_targets[i] = static_cast<int>(shortlist + c);
        rows[c].push_back(static_cast<int>(i));
        rel[c].push_back(static_cast<int>(u - cutoffs[c]));
    }
    expr total = cross_entropy(head(x), head_targets, reduction::sum);
    for (std::size_t c = 0; c < k; ++c) {
        if (rows[c].empty()) continue;
        const expr xc = rows[c].size() == n ? x : gather_rows(x, rows[c]);
        total = total + cross_entropy(tail_out[c](tail_proj[c](xc)), rel[c], reduction::sum);
    }
    if (r == reduction::sum) return total;
    return mul_scalar(total, counted ? 1.0 / static_cast<double>(counted) : 0.0);
}

expr adaptive_softmax::log_prob(const expr& x_in) const {
    const expr x = rows_of(x_in, "log_prob");
    const std::size_t shortlist = shortlist_size();
    const expr head_lp = log_softmax(head(x));
    std::vector<expr> parts{slice(head_lp, 1, 0, shortlist)};
    for (std::size_t c = 0; c < n_clusters(); ++c) {
        const expr cluster_lp = slice(head_lp, 1, shortlist + c, shortlist + c + 1);  // [N, 1], broadcast
        parts.push_back(log_softmax(tail_out[c](tail_proj[c](x))) + cluster_lp);
    }
    return concat(parts, 1);
}

}  // namespace seqgrad::nn
