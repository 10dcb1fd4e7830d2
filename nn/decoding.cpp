#include "decoding.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <string>

namespace seqgrad::nn {
namespace {

void check_length(const char* who, std::size_t max_length) {
    if (max_length == 0) throw value_error(std::string("nn::") + who + ": max_length 0 (expected >= 1)");
}

// alpha of log_prob / n^alpha: NaN would make every score NaN, +Inf every score of n >= 2 tokens -0,
// and beam search's bound on a live hypothesis holds for alpha >= 0 only.
void check_penalty(const char* who, double alpha) {
    if (!(alpha >= 0) || !std::isfinite(alpha))
        throw value_error(std::string("nn::") + who + ": length_penalty " + detail::number(alpha) +
                          " (expected finite and >= 0)");
}

// The model's vocabulary size and EOS, checked before the first step: with an EOS outside
// 0 .. V-1, exhaustive_search would read its log-probability out of bounds and the other
// decoders could never finish a hypothesis.
int checked_eos(const decoder_model& m, const char* who) {
    const std::size_t V = m.vocab_size();
    if (V == 0) throw value_error(std::string("nn::") + who + ": decoder_model::vocab_size() is 0 (expected >= 1)");
    const int eos = m.eos_token();
    if (eos < 0 || static_cast<std::size_t>(eos) >= V)
        throw value_error(std::string("nn::") + who + ": decoder_model::eos_token() is " + std::to_string(eos) +
                          " for " + std::to_string(V) + " tokens (expected a token id in [0, " + std::to_string(V) +
                          "))");
    return eos;
}

// One step's log-probabilities [rows, V], checked: a [rows, 0] result would leave nothing to pick,
// and a NaN (or +Inf) would be picked or sorted arbitrarily.
xt::xarray<double> step_checked(decoder_model& m, std::span<const int> prev, const char* who) {
    if (m.vocab_size() == 0)
        throw value_error(std::string("nn::") + who + ": decoder_model::vocab_size() is 0 (expected >= 1)");
    xt::xarray<double> lp = m.step(prev);
    if (lp.dimension() != 2 || lp.shape()[0] != prev.size() || lp.shape()[1] != m.vocab_size())
        throw shape_error(std::string("nn::") + who + ": decoder_model::step returned shape [" +
                          std::to_string(lp.dimension() ? lp.shape()[0] : 0) +
                          (lp.dimension() == 2 ? ", " + std::to_string(lp.shape()[1]) : std::string()) + "] for " +
                          std::to_string(prev.size()) + " rows (expected [" + std::to_string(prev.size()) + ", " +
                          std::to_string(m.vocab_size()) + "])");
    const std::size_t V = lp.shape()[1];
    for (std::size_t i = 0; i < lp.size(); ++i)
        if (std::isnan(lp.data()[i]) || lp.data()[i] == std::numeric_limits<double>::infinity())
            throw numeric_error(std::string("nn::") + who + ": decoder_model::step returned " +
                                (std::isnan(lp.data()[i]) ? "NaN" : "+Inf") + " at row " + std::to_string(i / V) +
                                ", token " + std::to_string(i % V) + " (expected log-probabilities: finite or -Inf)");
    return lp;
}

std::size_t argmax_row(const xt::xarray<double>& lp, std::size_t row) {
    const std::size_t V = lp.shape()[1];
    std::size_t best = 0;
    for (std::size_t v = 1; v < V; ++v)
        if (lp(row, v) > lp(row, best)) best = v;
    return best;
}

void finish(hypothesis& h, double alpha) { h.score = length_normalised(h.log_prob, h.tokens.size(), alpha); }

void sort_by_score(std::vector<hypothesis>& hs) {
    std::stable_sort(hs.begin(), hs.end(), [](const hypothesis& a, const hypothesis& b) { return a.score > b.score; });
}

}  // namespace

std::vector<int> hypothesis::output() const {
    std::vector<int> out = tokens;
    if (finished && !out.empty()) out.pop_back();
    return out;
}

double length_normalised(double log_prob, std::size_t n, double alpha) {
    return n == 0 || alpha == 0 ? log_prob : log_prob / std::pow(double(n), alpha);
}

hypothesis greedy(decoder_model& m, const greedy_options& o) {
    check_length("greedy", o.max_length);
    const int eos = checked_eos(m, "greedy");
    hypothesis h;
    m.begin(1);
    int prev = m.start_token();
    while (h.tokens.size() < o.max_length) {
        const auto lp = step_checked(m, std::span<const int>(&prev, 1), "greedy");
        prev = static_cast<int>(argmax_row(lp, 0));
        h.tokens.push_back(prev);
        h.log_prob += lp(0, prev);
        if (prev == eos) {
            h.finished = true;
            break;
        }
    }
    finish(h, 0.0);
    return h;
}

hypothesis sample(decoder_model& m, const sample_options& o, std::mt19937_64& rng) {
    check_length("sample", o.max_length);
    if (!(o.temperature >= 0) || !std::isfinite(o.temperature))
        throw value_error("nn::sample: temperature " + detail::number(o.temperature) + " (expected finite and >= 0)");
    const int eos = checked_eos(m, "sample");
    const std::size_t V = m.vocab_size();
    hypothesis h;
    m.begin(1);
    int prev = m.start_token();
    std::vector<std::size_t> order(V);
    std::vector<double> w(V);
    while (h.tokens.size() < o.max_length) {
        const auto lp = step_checked(m, std::span<const int>(&prev, 1), "sample");
        std::size_t pick = argmax_row(lp, 0);
        if (o.temperature > 0) {
            std::iota(order.begin(), order.end(), std::size_t{0});
            const std::size_t k = o.top_k == 0 ? V : std::min(o.top_k, V);
            std::stable_sort(order.begin(), order.end(),
                             [&](std::size_t a, std::size_t b) { return lp(0, a) > lp(0, b); });
            // The weights below are relative to the best token: with it at -Inf they would be NaN.
            if (lp(0, order[0]) == -std::numeric_limits<double>::infinity())
                throw numeric_error("nn::sample: decoder_model::step gave every token log-probability -Inf at step " +
                                    std::to_string(h.tokens.size() + 1) +
                                    " (expected at least one token with probability > 0 to draw from)");
            double total = 0;
            for (std::size_t i = 0; i < k; ++i)
                total += w[i] = std::exp((lp(0, order[i]) - lp(0, order[0])) / o.temperature);
            double u = std::uniform_real_distribution<double>(0.0, total)(rng);
            pick = order[0];
            for (std::size_t i = 0; i < k; ++i) {
                if (u < w[i] || i + 1 == k) {
                    pick = order[i];
                    break;
                }
                u -= w[i];
            }
        }
        prev = static_cast<int>(pick);
        h.tokens.push_back(prev);
        h.log_prob += lp(0, pick);
        if (prev == eos) {
            h.finished = true;
            break;
        }
    }
    finish(h, 0.0);
    return h;
}

std::vector<hypothesis> beam_search(decoder_model& m, const beam_options& o) {
    check_length("beam_search", o.max_length);
    if (o.width == 0) throw value_error("nn::beam_search: width 0 (expected >= 1)");
    check_penalty("beam_search", o.length_penalty);
    const int eos = checked_eos(m, "beam_search");
    const std::size_t V = m.vocab_size();
    struct candidate {
        double log_prob;
        std::size_t row;
        int token;
    };
    std::vector<hypothesis> live(1), done, next;
    std::vector<int> prev{m.start_token()};
    std::vector<std::size_t> parents;
    std::vector<candidate> cands;
    m.begin(1);
    for (std::size_t len = 1; len <= o.max_length && !live.empty(); ++len) {
        const auto lp = step_checked(m, prev, "beam_search");
        cands.clear();
        for (std::size_t r = 0; r < live.size(); ++r)
            for (std::size_t v = 0; v < V; ++v) cands.push_back({live[r].log_prob + lp(r, v), r, static_cast<int>(v)});
        // The loop below reads at most 2 * width candidates: `width` live ones and at most one EOS
        // per live row. Ties go to the earlier (row, token), as a stable sort would give them. (A
        // width of half size_t's range or more would wrap 2 * width: such a beam reads them all.)
        const std::size_t reads = o.width >= cands.size() ? cands.size() : std::min(cands.size(), 2 * o.width);
        const auto top = cands.begin() + static_cast<std::ptrdiff_t>(reads);
        std::partial_sort(cands.begin(), top, cands.end(), [V](const candidate& a, const candidate& b) {
            if (a.log_prob != b.log_prob) return a.log_prob > b.log_prob;
            return a.row * V + static_cast<std::size_t>(a.token) < b.row * V + static_cast<std::size_t>(b.token);
        });
        next.clear();
        parents.clear();
        prev.clear();
        for (std::size_t i = 0;
             i < static_cast<std::size_t>(top - cands.begin()) && (i < o.width || next.size() < o.width); ++i) {
            const candidate& c = cands[i];
            if (c.token == eos && i >= o.width) continue;
            if (c.token != eos && next.size() >= o.width) continue;
            hypothesis h = live[c.row];
            h.tokens.push_back(c.token);
            h.log_prob = c.log_prob;
            if (c.token == eos) {
                h.finished = true;
                done.push_back(std::move(h));
            } else {
                next.push_back(std::move(h));
                parents.push_back(c.row);
                prev.push_back(c.token);
            }
        }
        if (len == o.max_length) {
            for (auto& h : next) done.push_back(std::move(h));
            break;
        }
        if (next.empty()) break;
        if (done.size() >= o.width) {
            // A live hypothesis only loses log-probability as it grows, so its best possible score
            // is log_prob / max_length^alpha. Stop when none can enter the top `width`.
            std::vector<double> scores;
            for (auto& h : done) scores.push_back(length_normalised(h.log_prob, h.tokens.size(), o.length_penalty));
            std::nth_element(scores.begin(), scores.begin() + (o.width - 1), scores.end(), std::greater<>());
            const double bar = scores[o.width - 1];
            bool hope = false;
            for (const auto& h : next) hope |= length_normalised(h.log_prob, o.max_length, o.length_penalty) > bar;
            if (!hope) break;
        }
        m.reorder(parents);
        live.swap(next);
    }
    for (auto& h : done) finish(h, o.length_penalty);
    sort_by_score(done);
    return done;
}

std::vector<hypothesis> exhaustive_search(decoder_model& m, const exhaustive_options& o) {
    check_length("exhaustive_search", o.max_length);
    check_penalty("exhaustive_search", o.length_penalty);
    const std::size_t V = m.vocab_size();
    if (V < 2) throw value_error("nn::exhaustive_search: vocabulary of " + std::to_string(V) + " (expected >= 2)");
    const int eos = checked_eos(m, "exhaustive_search");
    // Non-EOS tokens, in id order.
    std::vector<int> alphabet;
    for (std::size_t v = 0; v < V; ++v)
        if (static_cast<int>(v) != eos) alphabet.push_back(static_cast<int>(v));
    const std::size_t n = alphabet.size();
    // Counted only until past the limit: max_length may be SIZE_MAX ("no limit"), where summing
    // n^k over every length never ended.
    double count = 0;
    if (n == 1) count = double(o.max_length) + 1;
    else
        for (std::size_t k = 0; count <= double(o.max_hypotheses); ++k) {
            count += std::pow(double(n), double(k));
            if (k == o.max_length) break;
        }
    if (count > double(o.max_hypotheses))
        throw value_error("nn::exhaustive_search: more than max_hypotheses = " + std::to_string(o.max_hypotheses) +
                          " hypotheses for " + std::to_string(V) + " tokens and max_length " +
                          std::to_string(o.max_length) + " (" + std::to_string(n) +
                          "^k of each length k up to max_length; expected at most max_hypotheses)");
    std::vector<hypothesis> all;
    // k non-EOS tokens, then EOS when k < max_length (else the hypothesis is cut there).
    for (std::size_t k = 0; k <= o.max_length; ++k) {
        std::vector<std::size_t> digit(k, 0);
        while (true) {
            hypothesis h;
            for (std::size_t d : digit) h.tokens.push_back(alphabet[d]);
            if (k < o.max_length) h.tokens.push_back(eos), h.finished = true;
            m.begin(1);
            int prev = m.start_token();
            for (int tok : h.tokens) {
                const auto lp = step_checked(m, std::span<const int>(&prev, 1), "exhaustive_search");
                h.log_prob += lp(0, tok);
                prev = tok;
            }
            finish(h, o.length_penalty);
            all.push_back(std::move(h));
            std::size_t i = k;  // odometer, last digit fastest
            while (i > 0 && ++digit[i - 1] == n) digit[--i] = 0;
            if (i == 0) break;
        }
    }
    // Enumerated by the number of non-EOS tokens, a finished hypothesis of max_length tokens comes
    // before the cut ones of that length whatever its ids: order ties as documented instead.
    std::stable_sort(all.begin(), all.end(), [](const hypothesis& a, const hypothesis& b) {
        if (a.score != b.score) return a.score > b.score;
        if (a.tokens.size() != b.tokens.size()) return a.tokens.size() < b.tokens.size();
        return a.tokens < b.tokens;
    });
    return all;
}

}  // namespace seqgrad::nn
