// nn defects found by probing, kept as tests.
#include <boost/test/unit_test.hpp>

#include <string>

#include <seqgrad/nn/lstm_layer.hpp>
#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
namespace nn = seqgrad::nn;

BOOST_AUTO_TEST_SUITE(probes_nn)

BOOST_AUTO_TEST_CASE(lstm_sequence_step_out_of_range_is_a_value_error_with_the_range) {
    sg::parameter_store ps;
    nn::lstm_cell cell(sg::parameter_scope(ps, "lstm"), 2, 3);
    nn::detail::lstm_layer layer(cell);
    sg::tape t;
    auto seq = layer(t.constant(0.5, {4 * 2, 2}), 2);  // T = 4, B = 2
    BOOST_TEST(seq.steps() == 4u);
    BOOST_TEST(seq.h(3).shape().str() == "[2, 3]");
    for (auto f : {&nn::detail::lstm_sequence::h, &nn::detail::lstm_sequence::c}) {
        try {
            (seq.*f)(4);
            BOOST_FAIL("expected value_error");
        } catch (const sg::value_error& e) {
            const std::string msg = e.what();
            BOOST_TEST_INFO(msg);
            BOOST_TEST(msg.find("(4): step out of range (the sequence has 4 steps: 0 .. 3)") != std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
