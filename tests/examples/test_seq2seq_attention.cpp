// seq2seq_attention's output files (--save, --hyps, --batches): refused before training when one
// is a directory or the --data file itself, not written over the data or failing after training.
// Skipped when the examples are not built.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "example_run.hpp"

namespace fs = std::filesystem;

namespace {

// The exit status, and what it printed in out.
int run(const std::string& args, std::string* out) {
    const auto r = seqgrad_example::run("seq2seq_attention", args);
    *out = r.out;
    return r.status;
}

}  // namespace

BOOST_AUTO_TEST_CASE(seq2seq_attention_outputs_are_checked_before_training) {
    if (!seqgrad_example::built("seq2seq_attention")) return;
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_s2s_" + std::to_string(::getpid()));
    fs::create_directories(dir / "weights.npz");
    const fs::path data = dir / "pairs.tsv";
    {
        std::ofstream f(data);
        for (int i = 0; i < 40; ++i) f << "go " << i << ".\tva " << i << ".\tattribution\n";
    }
    const auto size = fs::file_size(data);
    const std::string small = " --epochs 1 --hidden 4 --embedding 4 --out " + (dir / "out").string();
    std::string out;
    // The data under another spelling as --save: refused, the data kept.
    BOOST_TEST(run("--data " + data.string() + " --save " + (dir / "." / "pairs.tsv").string() + small, &out) == 2);
    BOOST_TEST(out.find("would overwrite --data") != std::string::npos, out);
    BOOST_TEST(fs::file_size(data) == size);
    for (const char* option : {"--save", "--hyps"}) {  // a directory: refused before any training
        BOOST_TEST(run("--data " + data.string() + " " + option + " " + (dir / "weights.npz").string() + small, &out) ==
                   2);
        BOOST_TEST(out.find("is a directory") != std::string::npos, out);
        BOOST_TEST(out.find("epoch 1") == std::string::npos, out);
        // In a folder that does not exist: it failed only after training (the weights lost).
        BOOST_TEST(
            run("--data " + data.string() + " " + option + " " + (dir / "no" / "m.npz").string() + small, &out) == 2);
        BOOST_TEST(out.find("the folder '" + (dir / "no").string() + "' does not exist") != std::string::npos, out);
        BOOST_TEST(out.find("epoch 1") == std::string::npos, out);
    }
    // A --batch whose 16 * batch wraps around (2^60) sorted the pool with a stride of 0, forever:
    // one batch of all 40 pairs.
    BOOST_TEST(run("--data " + data.string() + " --batch 1152921504606846976" + small, &out) == 0, out);
    fs::remove_all(dir);
}

// --clip 0 turns clipping off, as in the other examples; it passed 0 to optim::clip_global_norm,
// which refuses a threshold of 0, so the first training step failed (exit 1).
BOOST_AUTO_TEST_CASE(seq2seq_attention_clip_0_trains_without_clipping) {
    if (!seqgrad_example::built("seq2seq_attention")) return;
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_s2s_clip_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path data = dir / "pairs.tsv";
    {
        std::ofstream f(data);
        for (int i = 0; i < 40; ++i) f << "go " << i << ".\tva " << i << ".\tattribution\n";
    }
    std::string out;
    const int status = run("--data " + data.string() + " --clip 0 --epochs 1 --hidden 4 --embedding 4 --out " +
                               (dir / "out").string(),
                           &out);
    BOOST_TEST(status == 0, out);
    BOOST_TEST(out.find("epoch 1") != std::string::npos, out);
    BOOST_TEST(out.find("result engfra.bleu ") != std::string::npos, out);
    fs::remove_all(dir);
}

// A write error of --hyps or --batches shows only when the stream's buffer goes out: the example
// checked the stream before that (at the latest, on closing), so a full disk left a short file
// and exit 0. /dev/full fails every write.
BOOST_AUTO_TEST_CASE(seq2seq_attention_write_errors_of_hyps_and_batches_are_reported) {
    if (!seqgrad_example::built("seq2seq_attention") || !fs::is_character_file("/dev/full")) return;
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_s2s_full_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path data = dir / "pairs.tsv";
    {
        std::ofstream f(data);
        for (int i = 0; i < 40; ++i) f << "go " << i << ".\tva " << i << ".\tattribution\n";
    }
    for (const char* option : {"--hyps", "--batches"}) {
        std::string out;
        const int status = run("--data " + data.string() + " " + option +
                                   " /dev/full --epochs 1 --hidden 4 --embedding 4 --out " + (dir / "out").string(),
                               &out);
        BOOST_TEST(status == 1, option << ": " << out);
        BOOST_TEST(out.find("seq2seq_attention: cannot write '/dev/full'") != std::string::npos, out);
    }
    fs::remove_all(dir);
}

// --hyps and --batches belong to --data: the dates task ignored them, wrote nothing and exited 0
// after training. They are refused before training.
BOOST_AUTO_TEST_CASE(seq2seq_attention_hyps_and_batches_need_data) {
    if (!seqgrad_example::built("seq2seq_attention")) return;
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_s2s_dates_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    for (const std::string option : {"--hyps", "--batches"}) {
        std::string out;
        const fs::path file = dir / "written.txt";
        const int status = run(option + " " + file.string() + " --steps 1 --hidden 4 --embedding 4 --batch 2 --out " +
                                   (dir / "out").string(),
                               &out);
        BOOST_TEST(status == 2, option << ": " << out);
        BOOST_TEST(out.find(option + ": only with --data") != std::string::npos, out);
        BOOST_TEST(out.find("result dates") == std::string::npos, out);
    }
    fs::remove_all(dir);
}

// A --data file that was read but holds no pair, or no test pair (1 English sentence in 10 is held
// out, by a hash), was reported as unreadable ("cannot read pairs from ..."); now what it lacks.
BOOST_AUTO_TEST_CASE(seq2seq_attention_data_without_pairs_says_what_it_lacks) {
    if (!seqgrad_example::built("seq2seq_attention")) return;
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_s2s_few_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::pair<const char*, const char*> cases[] = {{"go.\tva.\n", "1 training and 0 test pairs"},
                                                         {"no tab here\n", "0 training and 0 test pairs"}};
    for (const auto& c : cases) {
        const fs::path data = dir / "pairs.tsv";
        std::ofstream(data) << c.first;
        std::string out;
        BOOST_TEST(run("--data " + data.string() + " --epochs 1 --hidden 4 --out " + (dir / "out").string(), &out) ==
                   1);
        BOOST_TEST(out.find(c.second) != std::string::npos, out);
        BOOST_TEST(out.find("cannot read") == std::string::npos, out);
    }
    std::string out;  // a file that cannot be read is still reported so
    BOOST_TEST(run("--data " + (dir / "missing.tsv").string(), &out) == 1);
    BOOST_TEST(out.find("cannot read pairs from") != std::string::npos, out);
    fs::remove_all(dir);
}

// The dates task draws 64 batches of fresh dates at a time: --batch 2^58 wrapped that count to 0
// and crashed on an empty list of batches (SIGSEGV), and 10^8 would ask for 6.4e9 dates. Refused.
BOOST_AUTO_TEST_CASE(seq2seq_attention_dates_batch_is_bounded) {
    if (!seqgrad_example::built("seq2seq_attention")) return;
    for (const char* batch : {"288230376151711744", "4097"}) {
        std::string out;
        BOOST_TEST(run(std::string("--steps 1 --hidden 4 --embedding 4 --batch ") + batch, &out) == 2, out);
        BOOST_TEST(out.find("--batch: expected at most 4096 for the dates task") != std::string::npos, out);
    }
}

// --load FILE --epochs 0 decodes only, as --help says; the dates task ignored --epochs and trained
// (until every validation date was right twice, or --minutes), changing the loaded weights.
BOOST_AUTO_TEST_CASE(seq2seq_attention_epochs_0_does_not_train_the_dates) {
    if (!seqgrad_example::built("seq2seq_attention")) return;
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_s2s_e0_" + std::to_string(::getpid()));
    std::string out;
    BOOST_TEST(run("--epochs 0 --steps 3 --hidden 4 --embedding 4 --out " + dir.string(), &out) == 0, out);
    BOOST_TEST(out.find("result dates.train_steps 0 steps") != std::string::npos, out);
    fs::remove_all(dir);
}

// An attention map's name that is a directory in --out fails before training (as --save does), not
// after it when the map is written.
BOOST_AUTO_TEST_CASE(seq2seq_attention_maps_are_checked_before_training) {
    if (!seqgrad_example::built("seq2seq_attention")) return;
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_s2s_maps_" + std::to_string(::getpid()));
    fs::create_directories(dir / "out" / "dates_attention_3.csv");
    std::string out;
    BOOST_TEST(run("--minutes 0.001 --hidden 4 --embedding 4 --out " + (dir / "out").string(), &out) == 1);
    BOOST_TEST(out.find("cannot write '" + (dir / "out" / "dates_attention_3.csv").string() + "': it is a directory") !=
                   std::string::npos,
               out);
    BOOST_TEST(out.find("result dates.") == std::string::npos, out);  // no training, no results
    fs::remove_all(dir);
}
