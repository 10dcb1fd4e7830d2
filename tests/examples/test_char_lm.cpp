// char_lm end to end, as a user runs it: it must learn the built-in corpus well past the
// character frequencies (about 2.9 nats), sample exactly the characters asked for, and map bad
// input to its exit codes. Skipped when the examples are not built (SEQGRAD_BUILD_EXAMPLES=OFF).
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include <seqgrad/core/io.hpp>
#include <seqgrad/optim/adam.hpp>

#include "../../examples/lm_checkpoint.hpp"

#include "example_run.hpp"

namespace fs = std::filesystem;

namespace {

using seqgrad_example::outcome;

outcome run(const std::string& args) { return seqgrad_example::run("char_lm", args, false); }

double result(const outcome& r, const std::string& name) {
    const auto at = r.out.find("result " + name + " ");
    return at == std::string::npos ? -1 : std::stod(r.out.substr(at + name.size() + 8));
}

bool built() { return seqgrad_example::built("char_lm"); }

const std::string small = " --steps 200 --hidden 64 --embed 16 --seq 32 --batch 16 --lr 0.005 --eval-every 0";

}  // namespace

BOOST_AUTO_TEST_CASE(char_lm_learns_and_samples) {
    if (!built()) return;
    const outcome lstm = run(small + " --dropout 0 --sample 40 --prime 'The '");
    BOOST_TEST(lstm.status == 0);
    BOOST_TEST(result(lstm, "val_loss_nats") > 0);
    BOOST_TEST(result(lstm, "val_loss_nats") < 2.5);  // 2.31 when written
    // The sample: the prime, then exactly 40 characters (the corpus is ASCII), then a line break.
    const std::string header = "characters after \"The \", temperature 0.8 ---\n";
    const auto at = lstm.out.find(header);
    BOOST_REQUIRE(at != std::string::npos);
    const std::string sample = lstm.out.substr(at + header.size());
    BOOST_TEST(sample.size() == 4u + 40u + 1u);
    BOOST_TEST(sample.starts_with("The "));

    // Two GRU layers, per-character dropout between them: the stack and its dropout train too.
    const outcome gru = run(small + " --cell gru --layers 2 --dropout 0.1 --dropout-kind standard --sample 0");
    BOOST_TEST(gru.status == 0);
    BOOST_TEST(result(gru, "val_loss_nats") > 0);
    BOOST_TEST(result(gru, "val_loss_nats") < 2.5);  // 2.29 when written
}

BOOST_AUTO_TEST_CASE(char_lm_exit_codes) {
    if (!built()) return;
    BOOST_TEST(run("--cell lstn").status == 2);
    BOOST_TEST(run("--hidden 0").status == 2);
    BOOST_TEST(run("--weight-drop 0.2 --cell gru").status == 2);
    BOOST_TEST(run("--data /nonexistent/text.txt").status == 1);
    BOOST_TEST(run("--resume /nonexistent/lm.npz --steps 1").status == 1);
}

BOOST_AUTO_TEST_CASE(char_lm_checkpoint_never_overwrites_the_data_nor_trains_for_nothing) {
    if (!built()) return;
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_char_lm_out_" + std::to_string(::getpid()));
    fs::create_directories(dir / "lm.npz");
    const std::string text = (dir / "t.txt").string();
    {
        std::FILE* f = std::fopen(text.c_str(), "w");
        for (int i = 0; i < 200; ++i) std::fputs("the quick brown fox. ", f);
        std::fclose(f);
    }
    const auto size = fs::file_size(text);
    const std::string tiny = " --steps 1 --hidden 4 --embed 4 --seq 4 --batch 2 --sample 0 --eval-every 0";
    // The data under another spelling, or as the checkpoint's vocabulary: a bad command line.
    const std::string other = (dir / "." / "t.txt").string();
    BOOST_TEST(run("--data " + text + " --checkpoint " + other + tiny).status == 2);
    BOOST_TEST(run("--data " + text + " --checkpoint " + (dir / "t").string() + tiny).status == 0);
    BOOST_TEST(run("--data " + (dir / "t.vocab").string() + " --checkpoint " + (dir / "t").string() + tiny).status ==
               2);
    BOOST_TEST(fs::file_size(text) == size);
    // A directory as the checkpoint: refused before training, not after it.
    const outcome d = run("--data " + text + " --checkpoint " + (dir / "lm.npz").string() + tiny);
    BOOST_TEST(d.status == 2);
    BOOST_TEST(d.out.find("step 1/1") == std::string::npos);
    fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(char_lm_resume_refuses_a_step_count_that_is_not_one) {
    // train.step is a float32 in the checkpoint: an edited -1, 2.5 or NaN was rounded and cast to an
    // unsigned count, and NaN or -1 "resumed at step 9223372036854775808", trained nothing and saved that.
    if (!built()) return;
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_char_lm_step_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::string ckpt = (dir / "lm.npz").string();
    const std::string tiny = " --hidden 4 --embed 4 --seq 4 --batch 2 --sample 0 --eval-every 0";
    BOOST_TEST_REQUIRE(run("--steps 2 --checkpoint " + ckpt + tiny).status == 0);
    auto arrays = seqgrad::read_npz(ckpt);
    BOOST_TEST(arrays.at("train.step")(0) == 2.0);
    const outcome ok = run("--steps 3 --resume " + ckpt + tiny);
    BOOST_TEST(ok.status == 0);
    BOOST_TEST(ok.out.find("resumed from " + ckpt + " at step 2") != std::string::npos, ok.out);
    for (const double bad : {-1.0, 2.5, std::nan(""), 1e30}) {
        arrays.at("train.step")(0) = bad;
        seqgrad::write_npz(ckpt, arrays, seqgrad::dtype::f32);
        const outcome r = seqgrad_example::run("char_lm", "--steps 3 --resume " + ckpt + tiny);
        BOOST_TEST(r.status == 1, "train.step " << bad << ": " << r.out);
        BOOST_TEST(r.out.find("train.step") != std::string::npos, r.out);
        BOOST_TEST(r.out.find("is not a count in [0, 2^24]") != std::string::npos, r.out);
    }
    fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(char_lm_largest_batch_is_too_short_data_not_a_wrapped_bound) {
    if (!built()) return;
    // --batch 2^64 - 1: --batch + 1 wrapped to 0, so the data passed char_lm's length check.
    const std::string out = seqgrad_example::run("char_lm", "--batch 18446744073709551615 --steps 1").out;
    BOOST_TEST(out.find("too short for --batch 18446744073709551615") != std::string::npos, out);
    BOOST_TEST(out.find("= 0") == std::string::npos, out);
    // --seq 2^64 - 1: the batcher's count of batches, (L + T - 1) / T, wrapped to 0 and char_lm divided by it
    // (SIGFPE): one batch of the whole stream.
    const auto r = seqgrad_example::run("char_lm",
                                        "--seq 18446744073709551615 --steps 1 --hidden 4 --embed 4 --batch 2");
    BOOST_TEST(r.status == 0, r.out);
}

BOOST_AUTO_TEST_CASE(char_lm_resumed_run_equals_uninterrupted_run) {
    // Resumed mid-epoch (6 batches of 20 characters per stream), char_lm must take the uninterrupted
    // run's steps bit for bit: parameters, Adam's state (PATH.optim) and the carried state (PATH.carry)
    // all come back. Before PATH.optim and PATH.carry, moments and state restarted from zeros.
    if (!built()) return;
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_char_lm_resume_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::string text = (dir / "t.txt").string();
    {
        std::FILE* f = std::fopen(text.c_str(), "w");
        for (int i = 0; i < 200; ++i) std::fputs("the quick brown fox. ", f);
        std::fclose(f);
    }
    const std::string opts = " --data " + text +
                             " --hidden 8 --embed 4 --seq 20 --batch 32 --sample 0 --eval-every 0 --keep-best no";
    const std::string whole = (dir / "whole.npz").string(), half = (dir / "half.npz").string();
    const outcome w = run("--steps 4 --checkpoint " + whole + opts);
    BOOST_TEST_REQUIRE(w.status == 0, w.out);
    BOOST_TEST_REQUIRE(run("--steps 2 --checkpoint " + half + opts).status == 0);
    BOOST_TEST(fs::is_regular_file(half + ".optim"));
    const std::string old = (dir / "old.npz").string();
    for (const std::string ext : {"", ".vocab"}) fs::copy_file(half + ext, old + ext);
    const outcome r = run("--steps 4 --resume " + half + " --checkpoint " + half + opts);
    BOOST_TEST_REQUIRE(r.status == 0, r.out);
    BOOST_TEST(r.out.find("resumed from " + half + " at step 2") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("note:") == std::string::npos, r.out);
    BOOST_TEST(result(r, "val_loss_nats") == result(w, "val_loss_nats"));
    const auto same = [](const std::string& a, const std::string& b) {
        const auto x = seqgrad::read_npz(a), y = seqgrad::read_npz(b);
        bool all = x.size() == y.size() && !x.empty();
        for (const auto& [key, v] : x) all = all && y.count(key) && y.at(key) == v;
        return all;
    };
    BOOST_TEST(same(whole, half));
    BOOST_TEST(same(whole + ".optim", half + ".optim"));
    BOOST_TEST(same(whole + ".carry", half + ".carry"));

    // A checkpoint of an older char_lm (no PATH.optim, PATH.carry) resumes from zeros, and says so.
    const outcome o = run("--steps 4 --resume " + old + " --checkpoint " + old + opts);
    BOOST_TEST(o.status == 0, o.out);
    BOOST_TEST(o.out.find("note: no " + old + ".optim") != std::string::npos, o.out);
    BOOST_TEST(o.out.find("note: no " + old + ".carry: the state carried between batches restarts from zeros") !=
                   std::string::npos,
               o.out);
    BOOST_TEST(!same(whole, old));
    // A PATH.optim of another step (a save cut short between the files) is refused: checked in this
    // process, on a store named as the checkpoint, since each char_lm run spends ~0.3 s starting MPI.
    seqgrad::parameter_store ps;
    for (const auto& [key, v] : seqgrad::read_npz(half)) ps.add(key, v).set_trainable(key != "train.step");
    seqgrad::optim::adam opt(ps);
    fs::copy_file(whole + ".optim", half + ".optim", fs::copy_options::overwrite_existing);
    try {
        seqgrad::examples::load_optimizer_state(opt, half, 2, 0.002, "char_lm");
        BOOST_ERROR("a PATH.optim of step 4 was loaded for a checkpoint of step 2");
    } catch (const seqgrad::io_error& e) {
        const std::string m = e.what();
        BOOST_TEST(m.find("holds the optimiser's state after 4 steps, '" + half + "' is at step 2") != m.npos, m);
    }
    fs::remove_all(dir);
}
