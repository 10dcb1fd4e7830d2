// Distributed data-parallel training (core/distributed.hpp). CTest runs this under
// mpirun -np 2 and -np 3 (uneven shards of 7 streams) when MPI is found, and once as a single
// process (which also covers a build without MPI). Every rank runs every case in the same order.
//
// The model is char_lm's in small (embedding -> LSTM -> linear, in double), trained on streams of
// an nn::lm_batcher sharded by dist::sampler with the state carried per stream; the reference is
// the same training in this process over the whole global batch.
//
// test_mpi --fail-rank R: rank R throws while the others wait in a collective (tests/mpi/fail_rank.sh).
#define BOOST_TEST_NO_MAIN
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include <xtensor/xview.hpp>

#include <seqgrad/core/distributed.hpp>
#include <seqgrad/nn/linear.hpp>
#include <seqgrad/nn/lstm_layer.hpp>
#include <seqgrad/nn/text.hpp>
#include <seqgrad/optim/optim.hpp>
#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
namespace dist = seqgrad::dist;

namespace {

constexpr std::size_t V = 11, E = 6, H = 7, B = 7, T = 5;

struct model {
    sg::parameter_store ps{sg::dtype::f64};
    nn::embedding emb;
    nn::lstm_cell cell;
    nn::linear out;
    explicit model(std::mt19937_64&& rng)
        : emb(sg::parameter_scope(ps, "emb"), V, E, rng),
          cell(sg::parameter_scope(ps, "lstm0"), E, H, rng),
          out(sg::parameter_scope(ps, "out"), H, V, true, rng) {}

    // Mean cross-entropy over ids/targets ([T, b] time-major, b the rows of h); h, c carried.
    sg::expr loss(sg::tape& t, const std::vector<int>& ids, const std::vector<int>& targets, xt::xarray<double>& h,
                  xt::xarray<double>& c) const {
        const nn::lstm_state s0{t.input(h), t.input(c)};
        const nn::detail::lstm_sequence seq = nn::detail::lstm_layer(cell)(emb(t, ids), s0);
        h = t.value(seq.final_state().h);
        c = t.value(seq.final_state().c);
        const sg::expr logits = sg::matmul_add(out.bias, seq.hidden_all(), sg::T(out.weight));
        return sg::cross_entropy(logits, targets, sg::reduction::mean);
    }
};

nn::lm_batcher data() {
    std::mt19937_64 rng(7);
    std::vector<int> ids(B * 12 + 1);  // 12 steps per stream: 3 batches of T = 5 (the last one short)
    for (int& i : ids) i = static_cast<int>(rng() % V);
    return nn::lm_batcher(ids, B, T);
}

// overlapped: reducer attached to the tape; store: one tape into the store, then reduce_store;
// threads: two tapes per rank on the executor's threads (seqgrad::data_parallel), then reduce_store.
enum class mode { overlapped, store, threads };

// The rank's step as two parts through data_parallel, each with its half of the streams and of the
// carried state; the parts' losses are weighted to add up to the mean over the rank's streams.
void two_part_backward(const model& m, const std::vector<int>& ids, const std::vector<int>& targets,
                       xt::xarray<double>& h, xt::xarray<double>& c) {
    const std::size_t n = h.shape()[0], cut = n / 2;
    std::vector<std::size_t> cols[2];
    for (std::size_t b = 0; b < n; ++b) cols[b < cut ? 0 : 1].push_back(b);
    xt::xarray<double> hp[2], cp[2];
    for (int k = 0; k < 2; ++k) {
        hp[k] = xt::view(h, xt::range(k ? cut : 0, k ? n : cut), xt::all());
        cp[k] = xt::view(c, xt::range(k ? cut : 0, k ? n : cut), xt::all());
    }
    sg::data_parallel(
        2,
        [&](sg::tape& t, std::size_t k) {
            const double share = static_cast<double>(cols[k].size()) / static_cast<double>(n);
            return m.loss(t, dist::select_streams(ids, n, cols[k]), dist::select_streams(targets, n, cols[k]), hp[k],
                          cp[k]) *
                   share;
        },
        sg::dtype::f64);
    for (int k = 0; k < 2; ++k) {
        xt::view(h, xt::range(k ? cut : 0, k ? n : cut), xt::all()) = hp[k];
        xt::view(c, xt::range(k ? cut : 0, k ? n : cut), xt::all()) = cp[k];
    }
}

// Steps [from, to) on the ranks of c; at each epoch's start the streams are dealt out anew and the
// carried state restarts from zeros (as char_lm does when its batches wrap around).
void train(model& m, const dist::comm& c, std::size_t from, std::size_t to, bool use_adam, mode md) {
    const nn::lm_batcher d = data();
    const dist::sampler smp(B, c, 5);
    dist::reducer red(m.ps, c, 256);  // small buckets: several per step
    sg::optim::sgd sgd(m.ps, 0.5);
    sg::optim::adam adam(m.ps, 0.01);
    std::vector<std::size_t> mine;
    xt::xarray<double> h, cc;
    for (std::size_t step = from; step < to; ++step) {
        const std::size_t k = step % d.num_batches();
        if (k == 0 || step == from) {
            mine = smp.indices(step / d.num_batches());
            h = xt::zeros<double>({mine.size(), H});
            cc = h;
        }
        const nn::lm_batch b = d.get(k);
        const auto ids = dist::select_streams(b.inputs, b.batch, mine);
        const auto targets = dist::select_streams(b.targets, b.batch, mine);
        sg::tape t(sg::dtype::f64);
        red.set_weight(static_cast<double>(mine.size()) / B);
        if (md == mode::overlapped) red.attach(t);
        if (md == mode::threads) two_part_backward(m, ids, targets, h, cc);
        else t.backward(m.loss(t, ids, targets, h, cc));
        if (md == mode::overlapped) red.finish();
        else red.reduce_store();
        if (use_adam) adam.step();
        else sgd.step();
    }
    BOOST_TEST(red.statistics().buckets > 2u);
}

// The same steps in one process over all B streams in order.
void train_reference(model& m, std::size_t steps, bool use_adam) {
    const nn::lm_batcher d = data();
    sg::optim::sgd sgd(m.ps, 0.5);
    sg::optim::adam adam(m.ps, 0.01);
    xt::xarray<double> h, c;
    for (std::size_t step = 0; step < steps; ++step) {
        const std::size_t k = step % d.num_batches();
        if (k == 0) h = c = xt::zeros<double>({B, H});
        const nn::lm_batch b = d.get(k);
        sg::tape t(sg::dtype::f64);
        t.backward(m.loss(t, b.inputs, b.targets, h, c));
        if (use_adam) adam.step();
        else sgd.step();
    }
}

double max_difference(const model& a, const model& b) {
    double worst = 0;
    for (std::size_t i = 0; i < a.ps.size(); ++i)
        worst = std::max(worst, double(xt::amax(xt::abs(a.ps[i].value<double>() - b.ps[i].value<double>()))()));
    return worst;
}

// Each rank starts from different weights: broadcast must make rank 0's everyone's.
model start(const dist::comm& c) {
    model m(std::mt19937_64(1 + static_cast<unsigned>(c.rank())));
    dist::broadcast(m.ps, c);
    return m;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(distributed)

BOOST_AUTO_TEST_CASE(shards_and_sampler) {
    const dist::comm w = dist::comm::world();
    BOOST_TEST(dist::shard(7, 0, 3).begin == 0u);
    BOOST_TEST(dist::shard(7, 0, 3).end == 3u);
    BOOST_TEST(dist::shard(7, 1, 3).begin == 3u);
    BOOST_TEST(dist::shard(7, 2, 3).end == 7u);
    BOOST_TEST(dist::shard(7, 2, 3).size() == 2u);
    BOOST_CHECK_THROW(dist::shard(7, 3, 3), sg::value_error);
    const dist::sampler s(B, w, 5);
    const auto e0 = s.order(0), e1 = s.order(1);
    BOOST_TEST(e0 != e1);  // reshuffled per epoch
    auto sorted = e1;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < B; ++i) BOOST_TEST(sorted[i] == i);
    // The shards of all ranks put together are the epoch's order, each item once.
    std::vector<std::size_t> all;
    for (int r = 0; r < w.size(); ++r) {
        const auto part = dist::shard(B, r, w.size());
        all.insert(all.end(), e1.begin() + static_cast<long>(part.begin), e1.begin() + static_cast<long>(part.end));
    }
    BOOST_TEST(all == e1);
    BOOST_TEST(s.indices(1).size() == s.local_size());
    const std::vector<int> block = {0, 1, 2, 10, 11, 12};  // [2, 3]
    const std::vector<std::size_t> cols = {2, 0};
    BOOST_TEST(dist::select_streams(block, 3, cols) == (std::vector<int>{2, 0, 12, 10}));
    BOOST_TEST(dist::sum(1.5, w) == 1.5 * w.size());
}

BOOST_AUTO_TEST_CASE(overlapped_sgd_equals_one_process) {
    const dist::comm w = dist::comm::world();
    model m = start(w);
    BOOST_TEST(dist::identical(m.ps, w));
    model ref(std::mt19937_64(1));
    train(m, w, 0, 7, false, mode::overlapped);  // 7 steps: three epochs of 3 batches, reshuffled
    train_reference(ref, 7, false);
    BOOST_TEST(dist::identical(m.ps, w));
    const double diff = max_difference(m, ref);
    BOOST_TEST(diff < 1e-12);
    BOOST_TEST(max_difference(m, model(std::mt19937_64(1))) > 1e-3);  // it trained
}

BOOST_AUTO_TEST_CASE(store_reduction_adam_equals_one_process) {
    const dist::comm w = dist::comm::world();
    model m = start(w);
    model ref(std::mt19937_64(1));
    train(m, w, 0, 5, true, mode::store);
    train_reference(ref, 5, true);
    BOOST_TEST(dist::identical(m.ps, w));
    BOOST_TEST(max_difference(m, ref) < 1e-12);
}

BOOST_AUTO_TEST_CASE(two_tapes_per_rank_on_threads_equal_one_process) {
    const dist::comm w = dist::comm::world();
    model m = start(w);
    model ref(std::mt19937_64(1));
    train(m, w, 0, 5, true, mode::threads);
    train_reference(ref, 5, true);
    BOOST_TEST(dist::identical(m.ps, w));
    BOOST_TEST(max_difference(m, ref) < 1e-12);
}

BOOST_AUTO_TEST_CASE(resume_on_another_rank_count) {
    // Steps 0-2 on all ranks but the last (one rank when there is one), checkpoint by the first
    // group's rank 0, then steps 3-6 on every rank from the checkpoint.
    const dist::comm w = dist::comm::world();
    const bool first_group = w.size() == 1 || w.rank() < w.size() - 1;
    const dist::comm part = w.size() == 1 ? w : w.split(first_group ? 0 : -1);
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("seqgrad_resume_" + std::to_string(w.size()) + "_" +
                               std::to_string(static_cast<long>(dist::sum(getpid(), dist::comm::world()))) + ".npz"))
                                 .string();
    if (first_group) {
        BOOST_TEST(part.size() == std::max(1, w.size() - 1));
        model m = start(part);
        train(m, part, 0, 3, false, mode::overlapped);
        if (part.rank() == 0) sg::save_npz(m.ps, path);
    }
    w.barrier();
    model resumed(std::mt19937_64(99));
    sg::load_npz(resumed.ps, path);
    train(resumed, w, 3, 7, false, mode::overlapped);
    w.barrier();
    if (w.rank() == 0) std::filesystem::remove(path);
    model ref(std::mt19937_64(1));
    train_reference(ref, 7, false);
    BOOST_TEST(dist::identical(resumed.ps, w));
    BOOST_TEST(max_difference(resumed, ref) < 1e-12);
}

BOOST_AUTO_TEST_CASE(bad_use_is_an_error) {
    const dist::comm w = dist::comm::world();
    model m = start(w);
    dist::reducer red(m.ps, w);
    BOOST_CHECK_THROW(red.finish(), sg::value_error);  // no step in progress
    sg::parameter_store other(sg::dtype::f64);
    const sg::parameter stray = other.add("stray", sg::shape{2});
    sg::tape t(sg::dtype::f64);
    red.attach(t);
    BOOST_CHECK_THROW(red.attach(t), sg::value_error);  // the step was not finished
    BOOST_CHECK_THROW(t.backward(sg::sum(t.param(stray))), sg::value_error);
    BOOST_CHECK_THROW(red.set_weight(std::nan("")), sg::value_error);
    red.finish();  // every rank's step ends (with nothing sent) before the next collective
    // A root that is no rank of the comm: an error naming broadcast, not an MPI abort.
    BOOST_CHECK_EXCEPTION(dist::broadcast(m.ps, w, w.size()), sg::value_error, [&](const sg::value_error& e) {
        return std::string(e.what()) == "dist::broadcast: root " + std::to_string(w.size()) + " of " +
                                            std::to_string(w.size()) + " ranks (expected 0 <= root < ranks)";
    });
    BOOST_CHECK_THROW(dist::broadcast(m.ps, w, -1), sg::value_error);
    // A gradient the user replaced by one of another size: an error naming it, as optimizer::step
    // gives, not a read and a write of 1000 entries in a buffer of 2.
    sg::parameter_store small(sg::dtype::f64);
    const sg::parameter q = small.add("q", sg::shape{1000});
    dist::reducer red_small(small, w);
    q.grad<double>() = xt::zeros<double>({2});
    BOOST_CHECK_EXCEPTION(red_small.reduce_store(), sg::shape_error, [](const sg::shape_error& e) {
        return std::string(e.what()) ==
               "dist::reducer::reduce_store: parameter 'q' has a gradient of 2 entries for a value of 1000";
    });
    sg::tape t2(sg::dtype::f64);
    BOOST_CHECK_THROW(red_small.attach(t2), sg::shape_error);
    BOOST_TEST(q.grad<double>().size() == 2u);
}

// A clipping plan on a tape whose gradients the reducer sends during the sweep would clip only the
// tape's copy, after the unclipped ones were summed: refused, naming the transform and the fix.
// Clipping the sum after finish() gives rank count * (3, 4) clipped to norm 1: (0.6, 0.8).
BOOST_AUTO_TEST_CASE(clipping_plan_on_a_reduced_tape_is_refused) {
    const dist::comm w = dist::comm::world();
    sg::parameter_store ps(sg::dtype::f64);
    const sg::parameter p = ps.add("p", xt::xarray<double>{1.0, 1.0});
    dist::reducer red(ps, w);
    red.set_weight(1);
    auto loss = [&](sg::tape& t) { return sg::sum(t.param(p) * t.input(xt::xarray<double>{3.0, 4.0})); };
    sg::tape t(sg::dtype::f64);
    red.attach(t);
    BOOST_CHECK_EXCEPTION(t.backward(loss(t), sg::clip_global_norm(1.0)), sg::graph_error,
                          [](const sg::graph_error& e) {
                              const std::string what = e.what();
                              BOOST_TEST_INFO(what);
                              return what.find("clip_global_norm(1)") != std::string::npos &&
                                     what.find("reducer::finish()") != std::string::npos;
                          });
    red.finish();  // nothing was sent: every rank refused the same plan
    BOOST_TEST(p.grad<double>() == (xt::xarray<double>{0.0, 0.0}));
    sg::tape t2(sg::dtype::f64);
    red.attach(t2);
    BOOST_CHECK_THROW(t2.backward(loss(t2), sg::clip_value(0.5)), sg::graph_error);
    t2.backward(loss(t2));
    red.finish();
    BOOST_TEST(sg::optim::clip_global_norm(ps, 1.0) == 5.0 * w.size(), boost::test_tools::tolerance(1e-12));
    const auto g = p.grad<double>();
    BOOST_TEST(g(0) == 0.6, boost::test_tools::tolerance(1e-5));
    BOOST_TEST(g(1) == 0.8, boost::test_tools::tolerance(1e-5));
}

// The collectives move runs of entries: a rank whose store differs from rank 0's must be an error on
// every rank, naming the parameter, not a sum of unrelated entries or an MPI abort.
BOOST_AUTO_TEST_CASE(stores_that_differ_across_ranks_are_an_error) {
    const dist::comm w = dist::comm::world();
    const bool odd = w.size() > 1 && w.rank() == w.size() - 1;  // the last rank, when there are several
    auto make = [&](std::size_t a, std::size_t b, sg::dtype dt) {
        auto ps = std::make_unique<sg::parameter_store>(dt);
        ps->add("a", sg::shape{a});
        ps->add("b", sg::shape{b});
        return ps;
    };
    auto says = [](const std::string& part) {
        return [part](const sg::value_error& e) {
            const std::string what = e.what();
            BOOST_TEST_INFO(what);
            BOOST_TEST(what.find(part) != std::string::npos);
            return true;
        };
    };
    // Matching stores: rank r's gradients r + 1, summed with weight 1.
    const auto same = make(2, 3, sg::dtype::f64);
    for (std::size_t i = 0; i < 2; ++i) {
        auto& g = (*same)[i].grad<double>();
        std::fill(g.begin(), g.end(), w.rank() + 1.0);
    }
    dist::reducer red(*same, w);
    red.set_weight(1);
    red.reduce_store();
    BOOST_TEST((*same)[1].grad<double>()(2) == w.size() * (w.size() + 1) / 2.0);
    dist::broadcast(*same, w);
    if (w.size() == 1) return;
    // The same 5 entries cut [3] + [2] on the last rank, [2] + [3] elsewhere.
    const auto cut = make(odd ? 3 : 2, odd ? 2 : 3, sg::dtype::f64);
    const std::string where = odd ? "parameter 'a' (0 of the trainable parameters) is [3] here, [2] on rank 0"
                                  : "parameter 'a' (0 of the trainable parameters) differs from rank 0's on 1 rank(s)";
    BOOST_CHECK_EXCEPTION(dist::reducer(*cut, w), sg::value_error,
                          says("dist::reducer: rank " + std::to_string(w.rank())));
    BOOST_CHECK_EXCEPTION(dist::reducer(*cut, w), sg::value_error, says(where));
    BOOST_CHECK_EXCEPTION(dist::broadcast(*cut, w), sg::value_error, says("dist::broadcast"));
    BOOST_TEST((*cut)[0].value<double>()(0) == 0.0);  // nothing copied
    // Another scalar type on the last rank.
    const auto f32 = make(2, 3, odd ? sg::dtype::f32 : sg::dtype::f64);
    BOOST_CHECK_EXCEPTION(dist::reducer(*f32, w), sg::value_error,
                          says(odd ? "a float32 store here, a float64 one on rank 0" : "differs from rank 0's"));
    // 'b' frozen on the last rank: a different set to sum, the same values to broadcast.
    const auto frozen = make(2, 3, sg::dtype::f64);
    (*frozen)[1].set_trainable(!odd);
    BOOST_CHECK_EXCEPTION(dist::reducer(*frozen, w), sg::value_error,
                          says(odd ? "1 trainable parameters here, 2 on rank 0" : "differs from rank 0's"));
    BOOST_CHECK_NO_THROW(dist::broadcast(*frozen, w));
    // Two [3] parameters in the other order on the last rank: broadcast copied rank 0's 'a' into
    // its 'b', and the reducer summed unrelated gradients.
    auto named = [&](const char* first, const char* second) {
        auto ps = std::make_unique<sg::parameter_store>(sg::dtype::f64);
        ps->add(first, sg::shape{3});
        ps->add(second, sg::shape{3});
        return ps;
    };
    const auto swapped = odd ? named("b", "a") : named("a", "b");
    BOOST_CHECK_EXCEPTION(dist::broadcast(*swapped, w), sg::value_error,
                          says(odd ? "parameter 0 of the parameters is 'b' here, 'a' on rank 0"
                                   : "parameter 'a' (0 of the parameters) differs from rank 0's on 1 rank(s)"));
    BOOST_CHECK_EXCEPTION(dist::reducer(*swapped, w), sg::value_error, says("the same names"));
    // Buckets cut differently on the last rank: their reduces would not match (MPI_ERR_TRUNCATE,
    // an abort without a word from seqgrad).
    BOOST_CHECK_EXCEPTION(dist::reducer(*same, w, odd ? 64 : 32), sg::value_error,
                          says(odd ? "bucket_bytes 64 here, 32 on rank 0" : "the scalar type or bucket_bytes differs"));
}

// A collective between attach() and finish() on the same comm is refused on every rank: a rank
// whose backward did not reach every parameter (no rows of its own) sends its buckets only in
// finish(), so its sum met another rank's bucket and the job hung.
BOOST_AUTO_TEST_CASE(collectives_inside_a_reducer_step_are_an_error) {
    const dist::comm w = dist::comm::world();
    sg::parameter_store ps(sg::dtype::f64);
    const sg::parameter p = ps.add("p", xt::xarray<double>{1.0, 1.0});
    dist::reducer red(ps, w);
    red.set_weight(1);
    sg::tape t(sg::dtype::f64);
    red.attach(t);
    if (w.rank() == 0) t.backward(sg::sum(t.param(p) * t.input(xt::xarray<double>{3.0, 4.0})));
    auto names = [](const std::string& who) {
        return [who](const sg::value_error& e) {
            const std::string what = e.what();
            BOOST_TEST_INFO(what);
            return what.find("dist::" + who + ": called between a reducer's attach() and finish()") !=
                   std::string::npos;
        };
    };
    BOOST_CHECK_EXCEPTION(dist::sum(1.0, w), sg::value_error, names("sum"));
    BOOST_CHECK_EXCEPTION(dist::broadcast(ps, w), sg::value_error, names("broadcast"));
    BOOST_CHECK_EXCEPTION(dist::identical(ps, w), sg::value_error, names("identical"));
    BOOST_CHECK_EXCEPTION(w.barrier(), sg::value_error, names("comm::barrier"));
    red.finish();
    BOOST_TEST(p.grad<double>()(1) == 4.0);             // rank 0's gradient, the others' none
    BOOST_TEST(dist::sum(1.0, w) == double(w.size()));  // after finish(), as before
    {  // a reducer destroyed mid-step (backward threw) no longer holds the comm
        dist::reducer gone(ps, w);
        sg::tape u(sg::dtype::f64);
        gone.attach(u);
    }
    BOOST_TEST(dist::sum(1.0, w) == double(w.size()));
}

// How many ranks share the machine is no collective: rank 0 may ask alone (to print it) while the
// others go on to the next collective. (CTest starts every rank on this machine.)
BOOST_AUTO_TEST_CASE(local_size_asked_by_one_rank) {
    const dist::comm w = dist::comm::world();
    int local = -1, index = -1;
    std::size_t threads = 0;
    if (w.rank() == 0) {
        local = w.local_size();
        index = w.local_rank();
        threads = dist::threads_per_rank();
    }
    BOOST_TEST(dist::sum(1.0, w) == w.size());
    if (w.rank() == 0) {
        BOOST_TEST(local == w.size());
        BOOST_TEST(index == 0);
        const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
        BOOST_TEST(threads == std::max<std::size_t>(1, cores / static_cast<std::size_t>(w.size())));
    }
    const dist::comm part = w.split(w.rank() % 2);  // even and odd ranks; the last of each asks alone
    if (part.rank() == part.size() - 1) {
        BOOST_TEST(part.local_size() == part.size());
        BOOST_TEST(part.local_rank() == part.size() - 1);
    }
    BOOST_TEST(dist::sum(1.0, part) == part.size());
}

BOOST_AUTO_TEST_SUITE_END()

namespace {
bool init_tests() { return true; }
}  // namespace

int main(int argc, char** argv) {
    dist::environment env(argc, argv);
    if (argc == 3 && std::strcmp(argv[1], "--fail-rank") == 0) {
        const int bad = std::atoi(argv[2]);
        return dist::guard([&] {
            const dist::comm w = dist::comm::world();
            if (w.rank() == bad) throw sg::value_error("injected failure on rank " + std::to_string(bad));
            dist::sum(1.0, w);  // waits for the failed rank forever, unless it stops the job
            return 0;
        });
    }
    return boost::unit_test::unit_test_main(&init_tests, argc, argv);
}
