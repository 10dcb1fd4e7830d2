// word_lm end to end on small hostile inputs, as a user runs it: an empty file, one word, only line
// breaks, invalid UTF-8, a frequency cut-off above every count, and --steps 0. Skipped when the
// examples are not built (SEQGRAD_BUILD_EXAMPLES=OFF).
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <seqgrad/core/io.hpp>

#include "example_run.hpp"

namespace fs = std::filesystem;

namespace {

using seqgrad_example::outcome;

const std::string tiny = " --hidden 8 --embed 8 --batch 2 --seq 4 --eval-every 0";

outcome run(const std::string& args) { return seqgrad_example::run("word_lm", args + tiny); }

std::string result(const outcome& r, const std::string& name) {
    const auto at = r.out.find("result " + name + " ");
    if (at == std::string::npos) return "(none)";
    const auto begin = at + name.size() + 8;
    return r.out.substr(begin, r.out.find(' ', begin) - begin);
}

// A text file in a fresh folder, removed with it.
struct text_file {
    fs::path dir = fs::temp_directory_path() / ("seqgrad_word_lm_" + std::to_string(::getpid()));
    std::string path;
    explicit text_file(const std::string& bytes) {
        fs::create_directories(dir);
        path = (dir / "text.txt").string();
        std::ofstream(path, std::ios::binary) << bytes;
    }
    ~text_file() { fs::remove_all(dir); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(word_lm_before_any_step_reports_no_nan) {
    // --steps 0 evaluated the untrained model and printed "train ppl 1.0" (exp of 0 / 1) and
    // "result tokens_per_s -nan" (0 tokens in 0 seconds).
    if (!seqgrad_example::built("word_lm")) return;
    const outcome r = run("--steps 0");
    BOOST_TEST(r.status == 0);
    BOOST_TEST(result(r, "steps") == "0");
    BOOST_TEST(result(r, "tokens_per_s") == "0");
    BOOST_TEST(r.out.find("nan") == std::string::npos, r.out);
    BOOST_TEST(r.out.find("train ppl") == std::string::npos, r.out);
    BOOST_TEST(std::stod(result(r, "val_loss_nats")) > 1.0);  // an untrained model over ~950 words
    // With evaluations on (step 0 is a multiple of any --eval-every), the final report was skipped
    // as if step 0 had reported: "result val_ppl 1", "best_val_ppl inf".
    const outcome e = seqgrad_example::run("word_lm",
                                           "--steps 0 --hidden 8 --embed 8 --batch 2 --seq 4 --eval-every 5");
    BOOST_TEST(e.status == 0);
    BOOST_TEST(result(e, "val_loss_nats") == result(r, "val_loss_nats"), e.out);
    BOOST_TEST(result(e, "best_val_loss_nats") == result(r, "val_loss_nats"), e.out);
}

BOOST_AUTO_TEST_CASE(word_lm_on_hostile_text) {
    if (!seqgrad_example::built("word_lm")) return;
    for (const std::string text : {"", "hello\n", "\n\n\n\n"}) {
        const text_file f(text);
        const outcome r = run("--steps 2 --data " + f.path);
        BOOST_TEST(r.status == 1, "'" << text << "'");
        BOOST_TEST(r.out.find("too short") != std::string::npos, r.out);
    }
    // Enough words to train at batch 1, too few to validate: the message says so (it blamed
    // --batch, already 1).
    const text_file twelve("a b c d e f g h i j k l\n");
    const outcome v = run("--steps 2 --batch 1 --min-count 1 --data " + twelve.path);
    BOOST_TEST(v.status == 1, v.out);
    BOOST_TEST(v.out.find("too short to validate (13 words: the last 10%, 1 word(s)") != std::string::npos, v.out);
    BOOST_TEST(v.out.find("--batch") == std::string::npos, v.out);
    // Invalid bytes become U+FFFD ("\xff\xfe" and "\x80\x80" the same two-character word), so with
    // min count 2 the vocabulary is <unk>, <eos>, a, b, c and that word: 24 words with the <eos>s.
    const text_file bad("\xff\xfe caf\xe9 \x80\x80 a b c d e f g h i j k l m n o p\n a b c\n");
    const outcome r = run("--steps 2 --data " + bad.path);
    BOOST_TEST(r.status == 0, r.out);
    BOOST_TEST(r.out.find("24 words (with <eos>), vocabulary 6 (min count 2)") != std::string::npos, r.out);
    // A cut-off above every count leaves only <unk> and <eos>, for either softmax.
    for (const std::string softmax : {"full", "adaptive"}) {
        const outcome u = run("--steps 2 --min-count 100 --softmax " + softmax + " --data " + bad.path);
        BOOST_TEST(u.status == 0, u.out);
        BOOST_TEST(u.out.find("vocabulary 2 (min count 100), train 22 (95.5% <unk>)") != std::string::npos, u.out);
        BOOST_TEST(std::stod(result(u, "val_loss_nats")) < std::log(2.0) + 0.5);
    }
}

BOOST_AUTO_TEST_CASE(word_lm_resumed_run_equals_uninterrupted_run) {
    // Stopped after 2 steps (mid-epoch) and resumed, word_lm must take the uninterrupted run's steps bit
    // for bit: parameters, Adam's state and the LSTM state carried between batches all come back.
    if (!seqgrad_example::built("word_lm")) return;
    const text_file f("");  // for its folder
    const std::string whole = (f.dir / "whole.npz").string(), half = (f.dir / "half.npz").string();
    const outcome w = run("--steps 4 --checkpoint " + whole);
    BOOST_TEST_REQUIRE(w.status == 0, w.out);
    BOOST_TEST_REQUIRE(run("--steps 2 --checkpoint " + half).status == 0);
    const outcome r = run("--steps 4 --resume " + half + " --checkpoint " + half);
    BOOST_TEST_REQUIRE(r.status == 0, r.out);
    BOOST_TEST(r.out.find("resumed from " + half + " at step 2") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("note:") == std::string::npos, r.out);
    BOOST_TEST(result(r, "val_loss_nats") == result(w, "val_loss_nats"));
    for (const std::string ext : {"", ".optim", ".carry"}) {
        const auto a = seqgrad::read_npz(whole + ext), b = seqgrad::read_npz(half + ext);
        BOOST_TEST(a.size() == b.size(), ext);
        for (const auto& [key, v] : a) BOOST_TEST((b.count(key) && b.at(key) == v), ext << " " << key);
    }
}
