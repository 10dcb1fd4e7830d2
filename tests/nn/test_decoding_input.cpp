// Decoders on bad model output: a zero-size vocabulary (a [rows, 0] step result passed the shape
// check and greedy/sample dereferenced null) and NaN log-probabilities (decoded into arbitrary
// tokens, sorted by beam search) give typed errors.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <seqgrad/nn/decoding.hpp>
#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace nn = seqgrad::nn;

namespace {
// Every row gets the same log-probabilities; `bad` (if >= 0) is replaced by `bad_value` from
// step `bad_step` on.
class fixed_model : public nn::decoder_model {
public:
    fixed_model(std::size_t vocab, int bad = -1, double bad_value = 0, std::size_t bad_step = 0)
        : vocab_(vocab), bad_(bad), bad_value_(bad_value), bad_step_(bad_step) {}
    std::size_t vocab_size() const override { return vocab_; }
    void begin(std::size_t rows) override {
        rows_ = rows;
        steps_ = 0;
    }
    xt::xarray<double> step(std::span<const int> previous) override {
        rows_ = previous.size();
        xt::xarray<double> lp = xt::zeros<double>({rows_, vocab_});
        for (std::size_t r = 0; r < rows_; ++r)
            for (std::size_t v = 0; v < vocab_; ++v) lp(r, v) = std::log((v + 1.0) / (vocab_ * (vocab_ + 1) / 2.0));
        if (bad_ >= 0 && steps_ >= bad_step_)
            for (std::size_t r = 0; r < rows_; ++r) lp(r, static_cast<std::size_t>(bad_)) = bad_value_;
        ++steps_;
        return lp;
    }
    void reorder(std::span<const std::size_t> parents) override { rows_ = parents.size(); }

private:
    std::size_t vocab_, rows_ = 1, steps_ = 0;
    int bad_;
    double bad_value_;
    std::size_t bad_step_;
};

// fixed_model with another end-of-sequence token.
class eos_model : public fixed_model {
public:
    eos_model(std::size_t vocab, int eos) : fixed_model(vocab), eos_(eos) {}
    int eos_token() const override { return eos_; }

private:
    int eos_;
};

// fixed_model until step `dead` (0-based), where no token is possible: every log-probability -Inf.
class dead_end_model : public fixed_model {
public:
    dead_end_model(std::size_t vocab, std::size_t dead) : fixed_model(vocab), dead_(dead) {}
    void begin(std::size_t rows) override {
        fixed_model::begin(rows);
        steps_ = 0;
    }
    xt::xarray<double> step(std::span<const int> previous) override {
        xt::xarray<double> lp = fixed_model::step(previous);
        if (steps_++ >= dead_) lp.fill(-std::numeric_limits<double>::infinity());
        return lp;
    }

private:
    std::size_t dead_, steps_ = 0;
};

using seqgrad_test::expect_error;
}  // namespace

BOOST_AUTO_TEST_SUITE(decoding_input)

BOOST_AUTO_TEST_CASE(zero_vocabulary_is_a_value_error) {
    fixed_model m(0);
    std::mt19937_64 rng(1);
    expect_error<seqgrad::value_error>([&] { nn::greedy(m, {}); }, "nn::greedy: decoder_model::vocab_size() is 0");
    expect_error<seqgrad::value_error>([&] { nn::sample(m, {.temperature = 1.0}, rng); }, "nn::sample");
    expect_error<seqgrad::value_error>([&] { nn::beam_search(m, {}); }, "nn::beam_search");
}

BOOST_AUTO_TEST_CASE(nan_log_probabilities_are_a_numeric_error) {
    std::mt19937_64 rng(1);
    {
        fixed_model m(4, 2, std::nan(""));
        expect_error<seqgrad::numeric_error>([&] { nn::greedy(m, {}); }, "NaN at row 0, token 2");
    }
    {
        fixed_model m(4, 3, std::nan(""), 1);  // the second step goes bad
        expect_error<seqgrad::numeric_error>([&] { nn::sample(m, {.temperature = 1.0, .max_length = 5}, rng); },
                                             "nn::sample: decoder_model::step returned NaN");
    }
    {
        fixed_model m(4, 0, std::nan(""));
        expect_error<seqgrad::numeric_error>([&] { nn::beam_search(m, {.width = 3}); }, "nn::beam_search");
    }
    {
        fixed_model m(4, 2, std::numeric_limits<double>::infinity());
        expect_error<seqgrad::numeric_error>([&] { nn::greedy(m, {}); }, "+Inf");
    }
}

BOOST_AUTO_TEST_CASE(minus_infinity_is_probability_zero) {
    // Token 3 (the most probable otherwise) is impossible: greedy must take 2.
    fixed_model m(4, 3, -std::numeric_limits<double>::infinity());
    auto h = nn::greedy(m, {.max_length = 1});
    BOOST_TEST(h.tokens.size() == 1u);
    BOOST_TEST(h.tokens[0] == 2);
    BOOST_TEST(std::abs(h.log_prob - std::log(3.0 / 10.0)) < 1e-12);
}

BOOST_AUTO_TEST_CASE(an_eos_token_outside_the_vocabulary_is_a_value_error) {
    // exhaustive_search appended the EOS to hypotheses and read its log-probability out of bounds
    // (eos 7 of 3 tokens: the hypothesis "7" came first with log_prob 1.6e-322); the others ran to
    // max_length, never able to finish.
    std::mt19937_64 rng(1);
    for (int eos : {3, 7, -1}) BOOST_TEST_CONTEXT("eos " << eos) {
            eos_model m(3, eos);
            const std::string what = "decoder_model::eos_token() is " + std::to_string(eos) + " for 3 tokens";
            expect_error<seqgrad::value_error>([&] { nn::exhaustive_search(m, {.max_length = 2}); },
                                               "nn::exhaustive_search: " + what);
            expect_error<seqgrad::value_error>([&] { nn::greedy(m, {}); }, "nn::greedy: " + what);
            expect_error<seqgrad::value_error>([&] { nn::sample(m, {}, rng); }, "nn::sample: " + what);
            expect_error<seqgrad::value_error>([&] { nn::beam_search(m, {}); }, "nn::beam_search: " + what);
        }
    eos_model last(3, 2);  // any token of the vocabulary may end sequences
    BOOST_TEST(nn::greedy(last, {.max_length = 4}).tokens == std::vector<int>{2}, boost::test_tools::per_element());
    BOOST_TEST(nn::exhaustive_search(last, {.max_length = 2}).size() == 1u + 2u + 4u);
}

BOOST_AUTO_TEST_CASE(a_length_penalty_that_is_not_finite_and_non_negative_is_a_value_error) {
    // exhaustive_search took any alpha: NaN gave NaN scores (sorted by a comparison NaN breaks) and
    // -1 a ranking beam_search refuses; +Inf made every score of two tokens or more -0.
    fixed_model m(3);
    for (double alpha : {std::nan(""), -1.0, std::numeric_limits<double>::infinity()})
        BOOST_TEST_CONTEXT("alpha " << alpha) {
            expect_error<seqgrad::value_error>(
                [&] { nn::exhaustive_search(m, {.max_length = 2, .length_penalty = alpha}); },
                "nn::exhaustive_search: length_penalty");
            expect_error<seqgrad::value_error>([&] { nn::beam_search(m, {.width = 2, .length_penalty = alpha}); },
                                               "nn::beam_search: length_penalty");
        }
}

BOOST_AUTO_TEST_CASE(sampling_where_no_token_is_possible_is_a_numeric_error) {
    // A row of -Inf only has nothing to draw from: sample divided -Inf by -Inf, drew from
    // uniform_real_distribution(0, NaN) and returned the last token (greedy's rule gives the first).
    const std::size_t V = 4;
    dead_end_model m(V, 1);
    std::mt19937_64 rng(1);
    for (std::size_t k : {std::size_t{0}, std::size_t{2}}) BOOST_TEST_CONTEXT("top_k " << k) {
            expect_error<seqgrad::numeric_error>(
                [&] { nn::sample(m, {.temperature = 1.0, .top_k = k, .max_length = 3}, rng); },
                "nn::sample: decoder_model::step gave every token log-probability -Inf at step 2");
        }
    // Temperature 0 is greedy, which takes the lowest id among the tied tokens.
    const auto s = nn::sample(m, {.temperature = 0.0, .max_length = 2}, rng);
    BOOST_TEST(s.tokens == (std::vector<int>{3, 0}), boost::test_tools::per_element());
    BOOST_TEST(s.tokens == nn::greedy(m, {.max_length = 2}).tokens, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
