// seq2seq_attention's output files (--save, --hyps, --batches): refused before training when one
// is a directory or the --data file itself, not written over the data or failing after training.
// Skipped when the examples are not built.
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;

namespace {

const fs::path binary = fs::path(SEQGRAD_BINARY_DIR) / "seq2seq_attention";

int run(const std::string& args, std::string* out) {
    FILE* p = popen((binary.string() + " " + args + " 2>&1").c_str(), "r");
    if (!p) return -1;
    std::array<char, 4096> buf{};
    out->clear();
    for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;) out->append(buf.data(), n);
    const int s = pclose(p);
    return WIFEXITED(s) ? WEXITSTATUS(s) : -1;
}

}  // namespace

BOOST_AUTO_TEST_CASE(seq2seq_attention_outputs_are_checked_before_training) {
    if (!fs::exists(binary)) {
        BOOST_TEST_MESSAGE("skipped: " << binary << " not built");
        return;
    }
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
    }
    fs::remove_all(dir);
}
