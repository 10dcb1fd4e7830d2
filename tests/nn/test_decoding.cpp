// Decoding algorithms on models whose probabilities are known: a hand-built table where greedy is
// not optimal (beam and exhaustive search must find the better sequence), and random tables over
// every prefix, on which beam width 1 equals greedy, a width covering every hypothesis equals
// exhaustive search, sampling at temperature -> 0 equals greedy, and sampling at temperature 1
// follows the model's distribution.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <seqgrad/nn/decoding.hpp>
#include <seqgrad/seqgrad.hpp>

namespace nn = seqgrad::nn;

namespace {

constexpr int UNK = 0, EOS = 1, A = 2, B = 3;

// A decoder_model from a function prefix -> next-token probabilities; each row remembers its prefix.
class table_model : public nn::decoder_model {
public:
    using table = std::function<std::vector<double>(const std::vector<int>&)>;
    table_model(std::size_t vocab, table probs) : vocab_(vocab), probs_(std::move(probs)) {}
    std::size_t vocab_size() const override { return vocab_; }
    void begin(std::size_t rows) override {
        prefixes_.assign(rows, {});
        started_ = false;
        ++begins;
    }
    xt::xarray<double> step(std::span<const int> previous) override {
        BOOST_REQUIRE_EQUAL(previous.size(), prefixes_.size());
        xt::xarray<double> lp = xt::zeros<double>({prefixes_.size(), vocab_});
        for (std::size_t r = 0; r < prefixes_.size(); ++r) {
            if (started_) prefixes_[r].push_back(previous[r]);
            else BOOST_REQUIRE_EQUAL(previous[r], start_token());
            const auto p = probs_(prefixes_[r]);
            for (std::size_t v = 0; v < vocab_; ++v) lp(r, v) = std::log(p[v]);
        }
        started_ = true;
        ++steps;
        return lp;
    }
    void reorder(std::span<const std::size_t> parents) override {
        std::vector<std::vector<int>> next;
        for (std::size_t p : parents) next.push_back(prefixes_.at(p));
        prefixes_ = std::move(next);
    }
    std::size_t begins = 0, steps = 0;

private:
    std::size_t vocab_;
    table probs_;
    std::vector<std::vector<int>> prefixes_;
    bool started_ = false;
};

// Greedy takes "a" (0.5) and then its best continuation, EOS (0.35): p = 0.175. The best sequence
// is "b EOS": 0.4 * 0.9 = 0.36.
std::vector<double> known(const std::vector<int>& prefix) {
    if (prefix.empty()) return {0.0001, 0.0999, 0.5, 0.4};
    if (prefix == std::vector<int>{A}) return {0.05, 0.35, 0.3, 0.3};
    if (prefix == std::vector<int>{B}) return {0.01, 0.9, 0.05, 0.04};
    return {0.1, 0.6, 0.15, 0.15};
}

// Random distributions, one per prefix (seeded by the prefix), sharp enough to matter.
table_model::table random_table(std::uint64_t seed, std::size_t vocab) {
    return [seed, vocab](const std::vector<int>& prefix) {
        std::uint64_t h = seed * 0x9E3779B97F4A7C15ull;
        for (int t : prefix) h = (h ^ static_cast<std::uint64_t>(t + 1)) * 0x100000001B3ull;
        std::mt19937_64 g(h);
        std::normal_distribution<double> n(0.0, 1.5);
        std::vector<double> p(vocab);
        double z = 0;
        for (auto& x : p) z += x = std::exp(n(g));
        for (auto& x : p) x /= z;
        return p;
    };
}

std::size_t hypotheses(std::size_t vocab, std::size_t max_length) {
    std::size_t n = 0, k = 1;
    for (std::size_t len = 0; len <= max_length; ++len, k *= vocab - 1) n += k;
    return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(decoding)

BOOST_AUTO_TEST_CASE(hand_built_model_beam_finds_the_known_best_sequence_greedy_does_not) {
    table_model m(4, known);
    const auto g = nn::greedy(m, {.max_length = 5});
    BOOST_TEST(g.tokens == (std::vector<int>{A, EOS}), boost::test_tools::per_element());
    BOOST_TEST(g.log_prob == std::log(0.5) + std::log(0.35), boost::test_tools::tolerance(1e-12));
    BOOST_TEST(g.finished);
    BOOST_TEST(g.output() == std::vector<int>{A}, boost::test_tools::per_element());

    const auto beam = nn::beam_search(m, {.width = 2, .max_length = 5});
    BOOST_TEST(beam.front().tokens == (std::vector<int>{B, EOS}), boost::test_tools::per_element());
    BOOST_TEST(beam.front().log_prob == std::log(0.36), boost::test_tools::tolerance(1e-12));
    BOOST_TEST(beam.front().score == beam.front().log_prob);
    // Width 2 finishes "b EOS" (0.36) and "a EOS" (0.175) at step 2, in that order.
    BOOST_REQUIRE_EQUAL(beam.size(), 2u);
    BOOST_TEST(beam[1].tokens == (std::vector<int>{A, EOS}), boost::test_tools::per_element());

    const auto all = nn::exhaustive_search(m, {.max_length = 3});
    BOOST_TEST(all.size() == hypotheses(4, 3));
    BOOST_TEST(all.front().tokens == (std::vector<int>{B, EOS}), boost::test_tools::per_element());
    BOOST_TEST(all.front().log_prob == std::log(0.36), boost::test_tools::tolerance(1e-12));
    // Probabilities of all hypotheses (finished or cut at max_length) add up to 1.
    double total = 0;
    for (const auto& h : all) total += std::exp(h.log_prob);
    BOOST_TEST(total == 1.0, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(length_penalty_divides_by_length_to_the_alpha) {
    BOOST_TEST(nn::length_normalised(-6.0, 3, 1.0) == -2.0);
    BOOST_TEST(nn::length_normalised(-6.0, 4, 0.5) == -3.0);
    BOOST_TEST(nn::length_normalised(-6.0, 4, 0.0) == -6.0);
    // Per-token average: "b EOS" (log 0.36 / 2 = -0.51) still beats "a a EOS" (log 0.09 / 3 = -0.80).
    table_model m(4, known);
    const auto beam = nn::beam_search(m, {.width = 50, .max_length = 3, .length_penalty = 1.0});
    const auto all = nn::exhaustive_search(m, {.max_length = 3, .length_penalty = 1.0});
    BOOST_TEST(beam.front().tokens == all.front().tokens, boost::test_tools::per_element());
    BOOST_TEST(beam.front().score == std::log(0.36) / 2, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(beam_width_one_equals_greedy) {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        table_model m(5, random_table(seed, 5));
        const auto g = nn::greedy(m, {.max_length = 6});
        const auto b = nn::beam_search(m, {.width = 1, .max_length = 6});
        BOOST_TEST_CONTEXT("seed " << seed) {
            BOOST_REQUIRE_EQUAL(b.size(), 1u);
            BOOST_TEST(b.front().tokens == g.tokens, boost::test_tools::per_element());
            BOOST_TEST(b.front().log_prob == g.log_prob, boost::test_tools::tolerance(1e-12));
            BOOST_TEST(b.front().finished == g.finished);
        }
    }
}

BOOST_AUTO_TEST_CASE(beam_wide_enough_for_every_hypothesis_equals_exhaustive_search) {
    for (double alpha : {0.0, 1.0})
        for (std::uint64_t seed = 1; seed <= 6; ++seed) {
            const std::size_t V = 4, L = 4;
            table_model m(V, random_table(seed, V));
            const auto all = nn::exhaustive_search(m, {.max_length = L, .length_penalty = alpha});
            BOOST_TEST(all.size() == hypotheses(V, L));
            BOOST_TEST(m.begins == all.size());  // one fresh start per hypothesis
            const auto beam = nn::beam_search(m, {.width = all.size(), .max_length = L, .length_penalty = alpha});
            BOOST_TEST_CONTEXT("seed " << seed << " alpha " << alpha) {
                BOOST_REQUIRE_EQUAL(beam.size(), all.size());
                for (std::size_t i = 0; i < all.size(); ++i) {
                    BOOST_TEST(beam[i].score == all[i].score, boost::test_tools::tolerance(1e-12));
                    BOOST_TEST(beam[i].log_prob == all[i].log_prob, boost::test_tools::tolerance(1e-12));
                }
                BOOST_TEST(beam.front().tokens == all.front().tokens, boost::test_tools::per_element());
            }
        }
}

BOOST_AUTO_TEST_CASE(a_width_near_the_top_of_size_t_prunes_nothing) {
    // beam_search sorted the first 2 * width candidates: for width 2^63 + 1 that wrapped to 2, and
    // the search kept 2 of the 40 hypotheses (best log_prob -3.9 instead of -1.4 on a seq2seq model).
    table_model m(4, random_table(3, 4));
    const auto all = nn::exhaustive_search(m, {.max_length = 3});
    for (std::size_t width : {std::numeric_limits<std::size_t>::max() / 2 + 2, std::numeric_limits<std::size_t>::max()})
        BOOST_TEST_CONTEXT("width " << width) {
            const auto beam = nn::beam_search(m, {.width = width, .max_length = 3});
            BOOST_REQUIRE_EQUAL(beam.size(), all.size());
            for (std::size_t i = 0; i < all.size(); ++i)
                BOOST_TEST(beam[i].score == all[i].score, boost::test_tools::tolerance(1e-12));
        }
}

BOOST_AUTO_TEST_CASE(exhaustive_search_breaks_ties_by_length_then_token_ids) {
    // Every token 1/3: all hypotheses of one length tie (and with alpha 1 all of them). The finished
    // "0 EOS" and "2 EOS" were listed before the cut "0 0", as they were enumerated.
    table_model m(3, [](const std::vector<int>&) { return std::vector<double>(3, 1.0 / 3); });
    for (double alpha : {0.0, 1.0}) BOOST_TEST_CONTEXT("alpha " << alpha) {
            const auto all = nn::exhaustive_search(m, {.max_length = 2, .length_penalty = alpha});
            const std::vector<std::vector<int>> want = {{EOS}, {0, 0}, {0, EOS}, {0, 2}, {2, 0}, {2, EOS}, {2, 2}};
            BOOST_REQUIRE_EQUAL(all.size(), want.size());
            for (std::size_t i = 0; i < want.size(); ++i)
                BOOST_TEST(all[i].tokens == want[i], boost::test_tools::per_element());
        }
}

BOOST_AUTO_TEST_CASE(a_narrow_beam_never_beats_exhaustive_and_often_beats_greedy) {
    int better = 0, worse = 0, optimal = 0;
    for (std::uint64_t seed = 1; seed <= 40; ++seed) {
        table_model m(4, random_table(seed, 4));
        const double best = nn::exhaustive_search(m, {.max_length = 4}).front().score;
        const double beam = nn::beam_search(m, {.width = 3, .max_length = 4}).front().score;
        const double greedy = nn::greedy(m, {.max_length = 4}).log_prob;
        BOOST_TEST(beam <= best + 1e-12);
        better += beam > greedy + 1e-12;
        worse += beam < greedy - 1e-12;  // possible in general (the greedy path can be pruned), rare
        optimal += beam > best - 1e-12;
    }
    BOOST_TEST(better >= 5);
    BOOST_TEST(worse <= 2);
    BOOST_TEST(optimal >= 30);
    BOOST_TEST_MESSAGE("width 3 vs greedy over 40 random tables: " << better << " better, " << worse << " worse, "
                                                                   << optimal << " optimal");
}

BOOST_AUTO_TEST_CASE(sampling_at_temperature_towards_zero_equals_greedy) {
    for (std::uint64_t seed = 1; seed <= 10; ++seed) {
        table_model m(5, random_table(seed, 5));
        const auto g = nn::greedy(m, {.max_length = 6});
        std::mt19937_64 rng(seed);
        for (double temp : {0.0, 1e-3}) {
            const auto s = nn::sample(m, {.temperature = temp, .max_length = 6}, rng);
            BOOST_TEST(s.tokens == g.tokens, boost::test_tools::per_element());
            BOOST_TEST(s.log_prob == g.log_prob, boost::test_tools::tolerance(1e-12));
        }
        const auto k1 = nn::sample(m, {.temperature = 1.0, .top_k = 1, .max_length = 6}, rng);
        BOOST_TEST(k1.tokens == g.tokens, boost::test_tools::per_element());
    }
}

BOOST_AUTO_TEST_CASE(sampling_at_temperature_one_follows_the_model_and_top_k_restricts_it) {
    table_model m(4, known);
    std::mt19937_64 rng(3);
    const int n = 20000;
    std::map<int, int> first, first_top2;
    for (int i = 0; i < n; ++i) {
        ++first[nn::sample(m, {.max_length = 1}, rng).tokens[0]];
        ++first_top2[nn::sample(m, {.top_k = 2, .max_length = 1}, rng).tokens[0]];
    }
    // p = 0.5, 0.4, 0.0999 for a, b, EOS: 3 standard deviations are under 0.011.
    BOOST_TEST(std::abs(first[A] / double(n) - 0.5) < 0.012);
    BOOST_TEST(std::abs(first[B] / double(n) - 0.4) < 0.012);
    BOOST_TEST(std::abs(first[EOS] / double(n) - 0.0999) < 0.008);
    // top-2 keeps a and b, renormalised: 5/9 and 4/9.
    BOOST_TEST(first_top2.count(EOS) == 0u);
    BOOST_TEST(first_top2.count(UNK) == 0u);
    BOOST_TEST(std::abs(first_top2[A] / double(n) - 5.0 / 9) < 0.012);
    // A high temperature flattens: b becomes nearly as likely as a.
    std::map<int, int> hot;
    for (int i = 0; i < n; ++i)
        ++hot[nn::sample(m, {.temperature = 100.0, .top_k = 2, .max_length = 1}, rng).tokens[0]];
    BOOST_TEST(std::abs(hot[A] / double(n) - 0.5) < 0.02);
}

BOOST_AUTO_TEST_CASE(max_length_cuts_hypotheses_that_never_end) {
    table_model m(3, [](const std::vector<int>&) { return std::vector<double>{0.1, 0.2, 0.7}; });  // token 2 wins
    const auto g = nn::greedy(m, {.max_length = 4});
    BOOST_TEST(g.tokens == (std::vector<int>{2, 2, 2, 2}), boost::test_tools::per_element());
    BOOST_TEST(!g.finished);
    BOOST_TEST(g.output().size() == 4u);
    const auto b = nn::beam_search(m, {.width = 2, .max_length = 4});
    // The cut "2 2 2 2" (0.7^4 = 0.24) is more probable than any finished hypothesis (at most 0.2).
    BOOST_TEST(b.front().tokens == (std::vector<int>{2, 2, 2, 2}), boost::test_tools::per_element());
    BOOST_TEST(!b.front().finished);
    BOOST_TEST(b.front().log_prob == 4 * std::log(0.7), boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(bad_options_are_value_errors) {
    table_model m(4, known);
    std::mt19937_64 rng(1);
    BOOST_CHECK_THROW(nn::beam_search(m, {.width = 0}), seqgrad::value_error);
    BOOST_CHECK_THROW(nn::beam_search(m, {.width = 2, .length_penalty = -1}), seqgrad::value_error);
    BOOST_CHECK_THROW(nn::greedy(m, {.max_length = 0}), seqgrad::value_error);
    BOOST_CHECK_THROW(nn::sample(m, {.temperature = -1}, rng), seqgrad::value_error);
    BOOST_CHECK_THROW(nn::exhaustive_search(m, {.max_length = 30}), seqgrad::value_error);
    // A max_length up to SIZE_MAX ("no limit") is refused at once: counting every length's
    // hypotheses to the end never returned. V 2 has one non-EOS token: one hypothesis a length.
    table_model two(2, [](const std::vector<int>&) { return std::vector<double>{0.5, 0.5}; });
    for (nn::decoder_model* model : {static_cast<nn::decoder_model*>(&m), static_cast<nn::decoder_model*>(&two)})
        for (const std::size_t len :
             {std::size_t(2000), std::size_t(1) << 40, std::numeric_limits<std::size_t>::max()}) {
            if (model == &two && len == 2000) continue;  // 2,001 hypotheses: within the limit
            const std::string want = "nn::exhaustive_search: more than max_hypotheses = 200000 hypotheses for " +
                                     std::to_string(model->vocab_size()) + " tokens and max_length " +
                                     std::to_string(len);
            try {
                nn::exhaustive_search(*model, {.max_length = len});
                BOOST_ERROR("no value_error for max_length " << len);
            } catch (const seqgrad::value_error& e) {
                BOOST_TEST(std::string(e.what()).find(want) != std::string::npos, e.what());
            }
        }
    BOOST_TEST(nn::exhaustive_search(two, {.max_length = 5}).size() == 6u);  // 0..5 tokens of id 0
}

BOOST_AUTO_TEST_SUITE_END()
