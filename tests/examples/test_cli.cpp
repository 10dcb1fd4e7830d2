// The examples' shared command line (examples/cli.hpp): values parsed strictly, errors that name
// the option, flags in command-line order, and the exit codes of the shared main().
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../examples/cli.hpp"

namespace cli = seqgrad::cli;

namespace {

struct argv_of {
    std::vector<std::string> words;
    std::vector<char*> ptrs;
    explicit argv_of(std::vector<std::string> w) : words(std::move(w)) {
        words.insert(words.begin(), "example");
        for (auto& s : words) ptrs.push_back(s.data());
    }
    int argc() const { return static_cast<int>(ptrs.size()); }
    char** argv() { return ptrs.data(); }
};

struct opts {
    std::size_t hidden = 8;
    double lr = 1, p = 0;
    std::uint64_t seed = 0;
    std::string cell = "lstm", out;
    bool tie = false, quick = false;
};

opts parse(std::vector<std::string> words) {
    opts o;
    argv_of a(std::move(words));
    cli::parse_options(a.argc(), a.argv(),
                       {{"--hidden", cli::number(o.hidden, std::size_t{1})},
                        {"--lr", cli::number(o.lr, 0.0, true)},
                        {"--seed", cli::number(o.seed, std::uint64_t{0})},
                        {"--dropout", cli::probability(o.p)},
                        {"--cell", cli::one_of(o.cell, {"lstm", "rnn", "gru"})},
                        {"--tie", cli::yes_no(o.tie)},
                        {"--out", cli::text(o.out)}},
                       "usage\n", {{"--quick", [&] { o.quick = true, o.hidden = 2; }}});
    return o;
}

std::string error_of(std::vector<std::string> words) {
    try {
        parse(std::move(words));
    } catch (const cli::usage_error& e) {
        return e.message;
    }
    return "";
}

}  // namespace

BOOST_AUTO_TEST_CASE(options_set_their_fields) {
    const opts o = parse({"--hidden", "32", "--lr=0.5", "--seed", "7", "--dropout", "0.25", "--cell", "gru", "--tie",
                          "yes", "--out", "x/y"});
    BOOST_TEST(o.hidden == 32u);
    BOOST_TEST(o.lr == 0.5);
    BOOST_TEST(o.seed == 7u);
    BOOST_TEST(o.p == 0.25);
    BOOST_TEST(o.cell == "gru");
    BOOST_TEST(o.tie);
    BOOST_TEST(o.out == "x/y");
    // Flags apply in order: a later option wins over what a flag set, and the other way round.
    BOOST_TEST(parse({"--quick", "--hidden", "5"}).hidden == 5u);
    BOOST_TEST(parse({"--hidden", "5", "--quick"}).hidden == 2u);
    BOOST_TEST(parse({"--quick"}).quick);
}

BOOST_AUTO_TEST_CASE(bad_values_name_the_option_and_the_expectation) {
    BOOST_TEST(error_of({"--hidden", "0"}) == "--hidden: expected an integer >= 1, got '0'");
    BOOST_TEST(error_of({"--hidden", "3x"}) == "--hidden: expected an integer >= 1, got '3x'");
    BOOST_TEST(error_of({"--lr", "0"}) == "--lr: expected a number > 0, got '0'");
    BOOST_TEST(error_of({"--lr", "nan"}) == "--lr: expected a number > 0, got 'nan'");
    BOOST_TEST(error_of({"--dropout", "1"}) == "--dropout: expected a probability in [0, 1), got 1");
    BOOST_TEST(error_of({"--cell", "lstn"}) == "--cell: expected lstm, rnn or gru, got 'lstn'");
    BOOST_TEST(error_of({"--tie", "true"}) == "--tie: expected yes or no, got 'true'");
    BOOST_TEST(error_of({"--hidden"}) == "--hidden: missing value");
    BOOST_TEST(error_of({"--hiden", "3"}) == "unknown option '--hiden'");
    BOOST_TEST(error_of({"--quick=1"}) == "unknown option '--quick'");
}

// A whole number past the type's range is named as such, with the bound, not as a bad form.
BOOST_AUTO_TEST_CASE(values_past_the_type_say_out_of_range) {
    BOOST_TEST(error_of({"--seed", "18446744073709551616"}) ==
               "--seed: out of range: expected an integer <= 18446744073709551615, got '18446744073709551616'");
    BOOST_TEST(error_of({"--hidden=99999999999999999999999"}) ==
               "--hidden: out of range: expected an integer <= " + std::to_string(SIZE_MAX) +
                   ", got '99999999999999999999999'");
    BOOST_TEST(parse({"--seed", "18446744073709551615"}).seed == UINT64_MAX);
    BOOST_TEST(error_of({"--seed", "-1"}) == "--seed: expected an integer >= 0, got '-1'");  // a form, not a range
}

BOOST_AUTO_TEST_CASE(main_maps_errors_to_exit_codes) {
    argv_of a({"--hidden", "0"});
    const auto run = [](const opts& o) { return o.hidden == 8 ? 0 : 3; };
    const auto parse_args = [](int argc, char** argv) {
        opts o;
        cli::parse_options(argc, argv, {{"--hidden", cli::number(o.hidden, std::size_t{1})}}, "usage\n");
        return o;
    };
    BOOST_TEST(cli::main("example", a.argc(), a.argv(), parse_args, run) == 2);  // bad command line
    argv_of b({"--hidden", "4"});
    BOOST_TEST(cli::main("example", b.argc(), b.argv(), parse_args, run) == 3);  // run's own status
    argv_of c({});
    BOOST_TEST(cli::main("example", c.argc(), c.argv(), parse_args, run) == 0);
    const auto fails = [](const opts&) -> int { throw std::runtime_error("cannot read data"); };
    BOOST_TEST(cli::main("example", c.argc(), c.argv(), parse_args, fails) == 1);  // any other error
}

BOOST_AUTO_TEST_CASE(an_output_folder_that_cannot_be_made_is_named) {
    try {
        cli::make_output_folder("/dev/null/plots");  // under a file: cannot exist
        BOOST_FAIL("no error");
    } catch (const std::runtime_error& e) {
        BOOST_TEST(std::string(e.what()).starts_with("cannot create the output folder '/dev/null/plots': "));
    }
}

// Lists (the bench programs' --threads 1,2 and --config a,b): every item checked, none empty.
BOOST_AUTO_TEST_CASE(lists_check_every_item) {
    std::vector<int> threads{1, 2};
    std::vector<std::string> configs;
    const auto parse_lists = [&](std::vector<std::string> words) {
        argv_of a(std::move(words));
        cli::parse_options(a.argc(), a.argv(),
                           {{"--threads", cli::number_list(threads, 1)},
                            {"--config", cli::list_of(configs, {"char_b1", "char_b32", "word_b20"})}},
                           "usage\n");
    };
    const auto list_error = [&](std::vector<std::string> words) -> std::string {
        try {
            parse_lists(std::move(words));
        } catch (const cli::usage_error& e) {
            return e.message;
        }
        return "";
    };
    parse_lists({"--threads", "4,1", "--config=word_b20,char_b1"});
    BOOST_TEST(threads == (std::vector<int>{4, 1}));
    BOOST_TEST(configs == (std::vector<std::string>{"word_b20", "char_b1"}));
    for (const char* bad : {"1,,2", "", "1,", "x", "0,1", "1.5", "-1"})
        BOOST_TEST(list_error({"--threads", bad}) ==
                   "--threads: expected a comma-separated list of integers >= 1, got '" + std::string(bad) + "'");
    BOOST_TEST(list_error({"--config", "char_b1,char_b2"}) ==
               "--config: 'char_b2' is not one of char_b1, char_b32 or word_b20, in 'char_b1,char_b2'");
    BOOST_TEST(list_error({"--config", ""}) == "--config: '' is not one of char_b1, char_b32 or word_b20, in ''");
    BOOST_TEST(list_error({"--config", "word_b20,word_b20"}) ==
               "--config: 'word_b20' given twice, in 'word_b20,word_b20'");
    BOOST_TEST(threads == (std::vector<int>{4, 1}));  // a refused list leaves the field as it was
}

BOOST_AUTO_TEST_CASE(an_output_folder_that_takes_no_files_is_named_before_any_work) {
    namespace fs = std::filesystem;
    auto error_of = [](const std::string& path, const std::vector<std::string>& files) -> std::string {
        try {
            cli::make_output_folder(path, files);
        } catch (const std::runtime_error& e) {
            return e.what();
        }
        return "";
    };
    // A folder that exists but takes no files: the plots at the end of a run would fail there.
    if (fs::is_directory("/proc"))
        BOOST_TEST(error_of("/proc", {}).starts_with("cannot write in the output folder '/proc': "),
                   error_of("/proc", {}));
    // A file the example writes that is a folder: the first plots would be written, then this one fail.
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_out_" + std::to_string(::getpid()));
    fs::create_directories(dir / "b.csv");
    BOOST_TEST(error_of(dir.string(), {"a.svg", "b.csv"}) ==
               "cannot write '" + (dir / "b.csv").string() + "': it is a directory");
    BOOST_TEST(error_of(dir.string(), {"a.svg"}) == "");
    BOOST_TEST(error_of((dir / "new" / "sub").string(), {"a.svg"}) == "");
    // A numbered series of files (seq2seq_attention's maps): each is checked.
    fs::create_directories(dir / "new" / "m_2.csv");
    BOOST_TEST(cli::numbered("m", 2, {".svg", ".csv"}) ==
               (std::vector<std::string>{"m_1.svg", "m_1.csv", "m_2.svg", "m_2.csv"}));
    BOOST_TEST(error_of((dir / "new").string(), cli::numbered("m", 2, {".svg", ".csv"})) ==
               "cannot write '" + (dir / "new" / "m_2.csv").string() + "': it is a directory");
    // b.csv and new: no probe file left behind.
    BOOST_TEST(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 2);
    fs::remove_all(dir);
}
