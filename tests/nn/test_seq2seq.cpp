// Sequence-to-sequence with attention: the batch layout, padding that changes nothing (a ragged
// batch scores each pair exactly as that pair alone), the teacher-forced forward against the
// step-by-step decoder session, gradcheck of whole models in double, decoding on a real small
// model (beam width 1 = greedy, a wide beam = exhaustive search, temperature -> 0 = greedy), the
// attention weights after the forward pass, and a small task that must be learned.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <seqgrad/nn/seq2seq.hpp>
#include <seqgrad/optim/optim.hpp>
#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
namespace nn = seqgrad::nn;

namespace {

using seqs = std::vector<std::vector<int>>;

nn::seq2seq_options small_options(bool feeding, bool bi, nn::attention_score score = nn::attention_score::general) {
    return {.source_vocab = 6,
            .target_vocab = 5,
            .embedding_size = 3,
            .encoder_size = 3,
            .encoder_layers = 1,
            .bidirectional = bi,
            .decoder_size = 4,
            .decoder_layers = 1,
            .score = score,
            .attention_size = 3,
            .input_feeding = feeding};
}

const seqs sources = {{2, 3, 4, 5}, {3, 2}, {5, 4, 3}};
const seqs targets = {{2, 3}, {4, 4, 2, 3}, {}};

}  // namespace

BOOST_AUTO_TEST_SUITE(seq2seq)

BOOST_AUTO_TEST_CASE(batch_layout_pads_sources_and_ends_targets_with_eos) {
    const auto b = nn::seq2seq_batch::make(sources, targets);
    BOOST_TEST(b.batch == 3u);
    BOOST_TEST(b.source_steps == 4u);
    BOOST_TEST(b.target_steps == 5u);  // longest target 4, plus EOS
    BOOST_TEST(b.target_tokens == 3u + 5u + 1u);
    BOOST_TEST(b.source_lengths == (std::vector<std::size_t>{4, 2, 3}), boost::test_tools::per_element());
    // Time-major sources: step 1 is {3, 2, 4}; step 3 {5, pad, pad}.
    BOOST_TEST(b.source_ids[3] == 3);
    BOOST_TEST(b.source_ids[4] == 2);
    BOOST_TEST(b.source_ids[5] == 4);
    BOOST_TEST(b.source_ids[9] == 5);
    BOOST_TEST(b.source_ids[10] == 0);
    // Decoder inputs start with EOS; targets are batch-major and end with EOS, then -1.
    BOOST_TEST(b.decoder_inputs[0] == 1);
    BOOST_TEST(b.decoder_inputs[1 * 3 + 1] == 4);
    const std::vector<int> row1 = {4, 4, 2, 3, 1}, row2 = {1, -1, -1, -1, -1};
    for (std::size_t k = 0; k < 5; ++k) {
        BOOST_TEST(b.decoder_targets[5 + k] == row1[k]);
        BOOST_TEST(b.decoder_targets[10 + k] == row2[k]);
    }
    BOOST_CHECK_THROW(nn::seq2seq_batch::make(seqs{{}}, seqs{{2}}), sg::value_error);
    BOOST_CHECK_THROW(nn::seq2seq_batch::make(seqs{{2}}, seqs{}), sg::value_error);
    sg::parameter_store ps;
    BOOST_CHECK_THROW(nn::seq2seq<nn::gru_cell>(sg::parameter_scope(ps, "m"), {.source_vocab = 1, .target_vocab = 5}),
                      sg::value_error);
}

BOOST_AUTO_TEST_CASE(ids_outside_the_vocabularies_name_the_sequence_and_the_position) {
    // The embeddings look ids up one step at a time, so their error gave an id's row within the step
    // as its "position": source {2, 6} said "id 6 at position 0", source 1's last id "position 1".
    using seqgrad_test::expect_error;
    sg::parameter_store ps(sg::dtype::f64);
    nn::seq2seq<nn::lstm_cell> m(sg::parameter_scope(ps, "m"), small_options(true, true));  // vocabs 6 and 5
    sg::tape t(sg::dtype::f64);
    expect_error<sg::value_error>(
        [&] {
            m.forward(t, seqs{{2, 3}, {4, 3, 9}}, seqs{{2}, {3}});
        },
        "nn::seq2seq::forward: source 1, position 2: id 9 (expected ids in [0, 6))");
    expect_error<sg::value_error>(
        [&] {
            m.forward(t, seqs{{2}, {3}}, seqs{{2}, {3, -1, 4}});
        },
        "nn::seq2seq::forward: target 1, position 1: id -1 (expected ids in [0, 5))");
    expect_error<sg::value_error>(
        [&] {
            m.decoder({2, 6});
        },
        "nn::seq2seq::decoder: source 0, position 1: id 6 (expected ids in [0, 6))");
}

BOOST_AUTO_TEST_CASE(a_ragged_batch_scores_every_pair_as_if_it_were_alone) {
    for (bool feeding : {true, false})
        for (bool bi : {true, false}) BOOST_TEST_CONTEXT("input feeding " << feeding << ", bidirectional " << bi) {
                sg::parameter_store ps(sg::dtype::f64);
                nn::seq2seq<nn::lstm_cell> m(sg::parameter_scope(ps, "m"), small_options(feeding, bi));
                sg::tape t(sg::dtype::f64);
                const auto all = m.forward(t, sources, targets);
                const auto per_row = t.value(sg::cross_entropy(all.logits, all.targets, sg::reduction::none));
                double total = 0;
                for (std::size_t r = 0; r < sources.size(); ++r) {
                    sg::tape one(sg::dtype::f64);
                    const auto o = m.forward(one, seqs{sources[r]}, seqs{targets[r]});
                    double mine = 0;
                    for (std::size_t k = 0; k < all.target_steps; ++k) mine += per_row(r * all.target_steps + k);
                    BOOST_TEST(mine == one.item(o.loss), boost::test_tools::tolerance(1e-12));
                    total += one.item(o.loss);
                    // The alignment of the row matches too, on the row's own source positions.
                    const auto wa = all.alignment(t, r), wo = o.alignment(one, 0);
                    for (std::size_t k = 0; k < wo.shape()[0]; ++k)
                        for (std::size_t s = 0; s < wa.shape()[1]; ++s)
                            BOOST_TEST(std::abs(wa(k, s) - (s < wo.shape()[1] ? wo(k, s) : 0.0)) < 1e-12);
                }
                BOOST_TEST(t.item(all.loss) == total, boost::test_tools::tolerance(1e-12));
                BOOST_TEST(all.tokens == 9u);
            }
}

BOOST_AUTO_TEST_CASE(attention_weights_are_readable_after_the_forward_pass) {
    sg::parameter_store ps;
    nn::seq2seq<nn::gru_cell> m(sg::parameter_scope(ps, "m"), small_options(true, true));
    sg::tape t;
    const auto o = m.forward(t, sources, targets);
    BOOST_TEST(o.step_weights.size() == 5u);
    const auto w = o.alignment(t, 1);  // source length 2, target 4 + EOS
    BOOST_TEST((w.shape() == std::vector<std::size_t>{5, 4}));
    for (std::size_t k = 0; k < 5; ++k) {
        BOOST_TEST(w(k, 0) + w(k, 1) == 1.0, boost::test_tools::tolerance(1e-5));
        BOOST_TEST(w(k, 2) == 0.0);
        BOOST_TEST(w(k, 3) == 0.0);
    }
    sg::parameter_store ps2;
    nn::seq2seq<nn::gru_cell> m2(sg::parameter_scope(ps2, "m"), small_options(false, true));
    sg::tape t2;
    const auto o2 = m2.forward(t2, sources, targets);
    BOOST_TEST(o2.step_weights.empty());
    BOOST_TEST((o2.all_weights.shape() == sg::shape{3, 5, 4}));
    BOOST_TEST(o2.alignment(t2, 2)(0, 3) == 0.0);
}

BOOST_AUTO_TEST_CASE(teacher_forcing_and_the_step_by_step_decoder_give_the_same_log_probabilities) {
    for (bool feeding : {true, false})
        for (auto score : {nn::attention_score::additive, nn::attention_score::general})
            BOOST_TEST_CONTEXT("input feeding " << feeding << ", " << nn::to_string(score)) {
                sg::parameter_store ps(sg::dtype::f64);
                nn::seq2seq<nn::gru_cell, nn::lstm_cell> m(sg::parameter_scope(ps, "m"),
                                                           small_options(feeding, true, score));
                const std::vector<int> src = {2, 5, 3}, tgt = {4, 2, 3};
                sg::tape t(sg::dtype::f64);
                const auto o = m.forward(t, seqs{src}, seqs{tgt});
                const auto lp = t.value(sg::log_softmax(o.logits));  // [T, V]
                auto dec = m.decoder(src);
                dec->begin(2);  // two rows: the target's prefix, then another token sequence
                std::vector<int> prev = {1, 1};
                for (std::size_t k = 0; k <= tgt.size(); ++k) {
                    const auto step = dec->step(prev);
                    for (std::size_t v = 0; v < 5; ++v) BOOST_TEST(std::abs(step(0, v) - lp(k, v)) < 1e-12);
                    if (k < tgt.size()) prev = {tgt[k], 2};
                }
                // reorder: three copies of the one row; the third is fed another token.
                dec->begin(1);
                prev = {1};
                for (std::size_t k = 0; k < 2; ++k) {
                    const auto step = dec->step(prev);
                    BOOST_TEST(std::abs(step(0, 3) - lp(k, 3)) < 1e-12);
                    prev = {tgt[k]};
                }
                const std::size_t dup[] = {0, 0, 0};
                dec->reorder(dup);
                const auto step = dec->step(std::vector<int>{tgt[1], tgt[1], 4});
                for (std::size_t v = 0; v < 5; ++v) {
                    BOOST_TEST(std::abs(step(0, v) - lp(2, v)) < 1e-12);
                    BOOST_TEST(step(1, v) == step(0, v));
                }
                // A token count that is not the rows': named by the decoder (it failed inside concat, or the cell).
                try {
                    dec->step(std::vector<int>{1, 2});
                    BOOST_ERROR("expected value_error");
                } catch (const sg::value_error& e) {
                    BOOST_TEST(std::string(e.what()) ==
                               "nn::seq2seq decoder: step got 2 previous tokens for 3 rows "
                               "(expected one per row, as set by begin or reorder)");
                }
            }
}

BOOST_AUTO_TEST_CASE(whole_models_pass_gradcheck_in_double) {
    struct variant {
        const char* name;
        bool feeding, bi;
        nn::attention_score score;
        std::size_t layers;
    };
    const variant variants[] = {{"lstm feeding bi general", true, true, nn::attention_score::general, 1},
                                {"lstm batched uni additive, 2 layers", false, false, nn::attention_score::additive, 2},
                                {"lstm feeding bi concat", true, true, nn::attention_score::concat, 1}};
    for (const auto& v : variants) BOOST_TEST_CONTEXT(v.name) {
            sg::parameter_store ps(sg::dtype::f64);
            auto o = small_options(v.feeding, v.bi, v.score);
            o.encoder_layers = o.decoder_layers = v.layers;
            nn::seq2seq<nn::lstm_cell> m(sg::parameter_scope(ps, "m"), o);
            sg::gradcheck_options opts;
            opts.max_entries_per_tensor = 6;
            const auto report = sg::gradcheck(
                ps, [&](sg::tape& t) { return m.forward(t, sources, targets).loss; }, opts);
            BOOST_TEST(report.passed, report);
            BOOST_TEST(report.deterministic);
            BOOST_TEST(report.global_rel_err < 1e-6);
        }
    // A GRU encoder and an RNN decoder, every entry.
    sg::parameter_store ps(sg::dtype::f64);
    auto o = small_options(true, true, nn::attention_score::dot);
    o.decoder_size = o.memory_size();  // dot scores need equal sizes
    nn::seq2seq<nn::gru_cell, nn::rnn_cell> m(sg::parameter_scope(ps, "m"), o);
    const auto report = sg::gradcheck(ps, [&](sg::tape& t) { return m.forward(t, sources, targets).loss; });
    BOOST_TEST(report.passed, report);
}

BOOST_AUTO_TEST_CASE(decoding_a_small_model_beam_equals_greedy_at_width_one_and_exhaustive_when_wide) {
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
        sg::parameter_store ps(sg::dtype::f64);  // the decoders run in double: no near-ties from rounding
        nn::seq2seq_options o = small_options(seed != 2, true);
        o.target_vocab = 4;
        nn::seq2seq<nn::lstm_cell> m(sg::parameter_scope(ps, "m"), o);
        std::mt19937_64 rng(seed);
        m.reset_parameters(rng);
        for (const auto& p : ps.parameters()) p.assign(p.value_as_double() * 3.0);  // sharper distributions
        auto dec = m.decoder({2, 3, 4});
        const std::size_t L = 4;
        const auto all = nn::exhaustive_search(*dec, {.max_length = L});
        BOOST_TEST(all.size() == 1u + 3u + 9u + 27u + 81u);
        const auto wide = nn::beam_search(*dec, {.width = all.size(), .max_length = L});
        BOOST_REQUIRE_EQUAL(wide.size(), all.size());
        BOOST_TEST_CONTEXT("seed " << seed) {
            BOOST_TEST(wide.front().tokens == all.front().tokens, boost::test_tools::per_element());
            for (std::size_t i = 0; i < all.size(); ++i) BOOST_TEST(std::abs(wide[i].score - all[i].score) < 1e-10);
            BOOST_TEST(all[0].score - all[1].score > 1e-6);  // a clear winner
            const auto g = nn::greedy(*dec, {.max_length = L});
            const auto b1 = nn::beam_search(*dec, {.width = 1, .max_length = L});
            BOOST_TEST(b1.front().tokens == g.tokens, boost::test_tools::per_element());
            BOOST_TEST(std::abs(b1.front().log_prob - g.log_prob) < 1e-12);
            for (int i = 0; i < 5; ++i) {
                const auto s = nn::sample(*dec, {.temperature = 1e-4, .max_length = L}, rng);
                BOOST_TEST(s.tokens == g.tokens, boost::test_tools::per_element());
            }
            BOOST_TEST(wide.front().score >= g.log_prob - 1e-6);
        }
    }
}

BOOST_AUTO_TEST_CASE(every_beam_hypothesis_scores_as_the_teacher_forced_model_scores_it_in_float32) {
    // The decoder session (tiled memory, rows reordered between steps) against the training
    // forward pass, in the example's scalar type: a beam's log-probability of each hypothesis
    // (finished or cut at max_length) must be the sum of the teacher-forced log-probabilities of
    // its tokens.
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
        sg::parameter_store ps;  // f32, as the examples train
        nn::seq2seq_options o = small_options(true, true);
        nn::seq2seq<nn::lstm_cell> m(sg::parameter_scope(ps, "m"), o);
        std::mt19937_64 rng(seed);
        m.reset_parameters(rng);
        for (const auto& p : ps.parameters()) p.assign(p.value_as_double() * 3.0);
        const std::vector<int> src = {2, 3, 4, 5, 3};
        auto dec = m.decoder(src);
        const auto beam = nn::beam_search(*dec, {.width = 4, .max_length = 5});
        BOOST_REQUIRE_GE(beam.size(), 4u);
        for (const auto& h : beam)
            BOOST_TEST_CONTEXT("seed " << seed << ", hypothesis of " << h.tokens.size() << " tokens") {
                sg::tape t;
                const auto out = m.forward(t, seqs{src}, seqs{h.output()});
                const auto lp = t.value(sg::log_softmax(out.logits));  // [T, V]
                double sum = 0;
                for (std::size_t k = 0; k < h.tokens.size(); ++k) sum += lp(k, h.tokens[k]);
                BOOST_TEST(std::abs(h.log_prob - sum) < 1e-5 * (1 + std::abs(sum)));
            }
    }
}

BOOST_AUTO_TEST_CASE(learns_to_reverse_short_sequences) {
    // Reverse 2-5 tokens of 6 symbols; held-out exact match with greedy and beam decoding.
    sg::parameter_store ps;
    nn::seq2seq<nn::gru_cell> m(sg::parameter_scope(ps, "m"), {.source_vocab = 8,
                                                               .target_vocab = 8,
                                                               .embedding_size = 16,
                                                               .encoder_size = 24,
                                                               .decoder_size = 32,
                                                               .score = nn::attention_score::general,
                                                               .input_feeding = false});
    std::mt19937_64 rng(5);
    m.reset_parameters(rng);
    auto draw = [&](std::size_t n) {
        seqs src, tgt;
        std::uniform_int_distribution<int> len(2, 5), tok(2, 7);
        for (std::size_t i = 0; i < n; ++i) {
            std::vector<int> s(static_cast<std::size_t>(len(rng)));
            for (int& x : s) x = tok(rng);
            src.push_back(s);
            tgt.emplace_back(s.rbegin(), s.rend());
        }
        return std::pair{src, tgt};
    };
    sg::optim::adam opt(ps, 1e-2);
    double loss = 0;
    for (int step = 0; step < 300; ++step) {
        // Annealed for the last third: at 1e-2 to the end, Adam on a nearly solved task spiked (loss
        // 0.005 -> 0.9 around step 285 in a Debug build, a rounding difference away from not
        // spiking), and the measurement below landed on the spike.
        if (step == 200) opt.set_learning_rate(3e-3);
        const auto [src, tgt] = draw(32);
        sg::tape t;
        const auto o = m.forward(t, src, tgt);
        const sg::expr mean = o.loss * (1.0 / double(o.tokens));
        t.backward(mean);
        sg::optim::clip_global_norm(ps, 5.0);
        opt.step();
        loss = step == 0 ? t.item(mean) : 0.9 * loss + 0.1 * t.item(mean);
    }
    BOOST_TEST(loss < 0.1);
    const auto [src, tgt] = draw(50);
    int greedy_ok = 0, beam_ok = 0;
    for (std::size_t i = 0; i < src.size(); ++i) {
        auto dec = m.decoder(src[i]);
        greedy_ok += nn::greedy(*dec, {.max_length = 10}).output() == tgt[i];
        beam_ok += nn::beam_search(*dec, {.width = 3, .max_length = 10}).front().output() == tgt[i];
    }
    BOOST_TEST(greedy_ok >= 45);
    BOOST_TEST(beam_ok >= 45);
}

BOOST_AUTO_TEST_CASE(gradient_flow_covers_the_decoder_with_and_without_input_feeding) {
    // Steps 0 .. S-1 are the encoder's, S .. S+T-1 the decoder's (S = 4, T = 5 here). The
    // input-feeding decoder ran its own loop and marked no state: the record stopped at the encoder
    // (4 entries instead of 9), as if no gradient reached the decoder.
    for (bool feeding : {true, false})
        for (bool bi : {true, false}) BOOST_TEST_CONTEXT("input feeding " << feeding << ", bidirectional " << bi) {
                sg::parameter_store ps(sg::dtype::f64);
                nn::seq2seq<nn::lstm_cell> m(sg::parameter_scope(ps, "m"), small_options(feeding, bi));
                sg::tape t(sg::dtype::f64);
                const auto out = m.forward(t, sources, targets);
                sg::gradient_flow flow;
                t.backward(out.loss, sg::record_gradient_flow(flow));
                BOOST_TEST_REQUIRE(flow.norm.size() == 9u);
                for (std::size_t k = 0; k < 9; ++k) BOOST_TEST(flow.norm[k] > 1e-3, "step " << k);
            }
}

BOOST_AUTO_TEST_SUITE_END()
