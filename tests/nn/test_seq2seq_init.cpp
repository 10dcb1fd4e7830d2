// The English-to-French model of examples/seq2seq_attention.cpp is compared with a PyTorch twin
// (bench/torch_seq2seq.py) that starts from PyTorch's default initialisation. This checks every
// parameter of such a model after reset_parameters against PyTorch's rule for the module that
// owns it: embeddings N(0, 1); LSTM weights and biases U(-1/sqrt(H), 1/sqrt(H)) with H the cell's
// hidden size (encoder directions and decoder differ); nn.Linear weight and bias
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (attention's general score W [Dq, Dm]: fan_in Dm; combine
// [Dq, Dm + Dq]; out [V, Dq]). Mean, standard deviation and range are asserted per parameter.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>

#include <seqgrad/nn/seq2seq.hpp>
#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
namespace nn = seqgrad::nn;

BOOST_AUTO_TEST_SUITE(seq2seq)

BOOST_AUTO_TEST_CASE(every_parameter_starts_from_pytorchs_default_distribution) {
    // The example's word-level sizes: E 128, H 128 per direction, Dq = Dm = 256 (smaller vocabularies).
    const nn::seq2seq_options o{.source_vocab = 300,
                                .target_vocab = 700,
                                .embedding_size = 128,
                                .encoder_size = 128,
                                .decoder_size = 256,
                                .score = nn::attention_score::general,
                                .input_feeding = true};
    for (const sg::dtype dt : {sg::dtype::f32, sg::dtype::f64}) {
        sg::parameter_store ps(dt);
        nn::seq2seq<nn::lstm_cell> model(sg::parameter_scope(ps, "s2s"), o);
        std::mt19937_64 rng(1);
        model.reset_parameters(rng);
        // Name -> bound of U(-b, b), or 0 for N(0, 1).
        const double enc = 1 / std::sqrt(128.0), dec = 1 / std::sqrt(256.0);
        std::map<std::string, double> rule = {{"s2s.source_embedding.weight", 0},
                                              {"s2s.target_embedding.weight", 0},
                                              {"s2s.attention.w", 1 / std::sqrt(256.0)},
                                              {"s2s.combine.weight", 1 / std::sqrt(512.0)},
                                              {"s2s.out.weight", 1 / std::sqrt(256.0)},
                                              {"s2s.out.bias", 1 / std::sqrt(256.0)}};
        for (const char* p : {"w_ih", "w_hh", "b_ih", "b_hh"}) {
            rule[std::string("s2s.encoder.l0.fwd.") + p] = enc;
            rule[std::string("s2s.encoder.l0.bwd.") + p] = enc;
            rule[std::string("s2s.decoder.l0.") + p] = dec;
        }
        BOOST_TEST(ps.size() == rule.size());
        for (const sg::parameter& p : ps.parameters()) {
            BOOST_TEST_CONTEXT(p.name()) {
                BOOST_TEST_REQUIRE(rule.count(p.name()) == 1u);
                const double b = rule[p.name()];
                const xt::xarray<double> v = p.value_as_double();
                const double n = double(v.size());
                double sum = 0, sq = 0, top = 0;
                for (double x : v) sum += x, top = std::max(top, std::abs(x));
                const double mean = sum / n;
                for (double x : v) sq += (x - mean) * (x - mean);
                const double sd = std::sqrt(sq / n), want = b == 0 ? 1.0 : b / std::sqrt(3.0);
                // Sampling error of the sd: 0.71/sqrt(n) relative for a normal, 0.45/sqrt(n) for a uniform.
                BOOST_TEST(std::abs(sd / want - 1) < 5 * 0.71 / std::sqrt(n));
                BOOST_TEST(std::abs(mean) < 5 * want / std::sqrt(n));
                if (b > 0) {
                    BOOST_TEST(top <= b);
                    BOOST_TEST(top > b * (1 - 20 / n));  // the draws fill the interval
                } else {
                    BOOST_TEST(top > 3.0);  // tails of N(0, 1), not a uniform of the same variance (max 1.73)
                }
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
