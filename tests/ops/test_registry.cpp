// Every registered op, checked from its own samples: central differences in double against the
// tape's gradients. Adding an op to the registry adds it here; an op without samples fails.
#include <boost/test/unit_test.hpp>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;

BOOST_AUTO_TEST_SUITE(registry)

BOOST_AUTO_TEST_CASE(every_op_passes_gradcheck_on_its_samples) {
    std::size_t checked_ops = 0;
    for (const sg::op_def* op : sg::op_registry::instance().all()) {
        const sg::op_check c = sg::gradcheck_op(*op);
        BOOST_TEST_CONTEXT("op " << op->name << " (" << c.how << ")") {
            BOOST_TEST(c.passed);
            BOOST_TEST(c.samples > 0u);
            for (const auto& r : c.reports)
                if (!r.passed) BOOST_TEST_MESSAGE(r);
        }
        ++checked_ops;
    }
    BOOST_TEST(checked_ops >=
               54u);  // 34 before, masked_softmax, 16 in ops/math.cpp, layer_norm, conv1d_causal, random_mask
}

BOOST_AUTO_TEST_CASE(an_op_without_samples_fails_the_check) {
    static const sg::op_def& bare = sg::register_op(
        sg::op_builder("test_no_samples").shape(sg::same_shape).forward([](auto&) {}).no_gradient());
    const sg::op_check c = sg::gradcheck_op(bare);
    BOOST_TEST(!c.passed);
    BOOST_TEST(c.how.find("no samples") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
