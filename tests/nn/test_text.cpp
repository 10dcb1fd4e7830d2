#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "core/errors.hpp"
#include "nn/text.hpp"

namespace fs = std::filesystem;
using seqgrad::io_error;
using seqgrad::value_error;
using seqgrad::nn::vocab;
using strings = std::vector<std::string>;
using ints = std::vector<int>;

namespace {

// A predicate for BOOST_CHECK_EXCEPTION: the message contains every one of `parts`.
auto says(std::initializer_list<std::string> parts) {
    return [wanted = std::vector<std::string>(parts)](const std::exception& e) {
        const std::string what = e.what();
        for (const auto& p : wanted)
            if (what.find(p) == std::string::npos) {
                BOOST_TEST_MESSAGE("message '" << what << "' lacks '" << p << "'");
                return false;
            }
        return true;
    };
}

// A fresh directory under the system temp directory, removed with everything in it.
struct temp_dir {
    fs::path path;
    temp_dir() {
        path = fs::temp_directory_path() /
               ("seqgrad_test_text_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::size_t files() const { return static_cast<std::size_t>(std::distance(fs::directory_iterator(path), {})); }
};

void write_file(const fs::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << bytes;
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const std::string fffd(seqgrad::nn::utf8_replacement);

}  // namespace

BOOST_AUTO_TEST_SUITE(text)

// ---- vocab ------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(vocab_special_tokens) {
    BOOST_TEST(vocab::unk_id == 0);
    BOOST_TEST(vocab::eos_id == 1);
    const vocab v;
    BOOST_TEST(v.size() == 2u);
    BOOST_TEST(v.token(0) == "<unk>");
    BOOST_TEST(v.token(1) == "<eos>");
    BOOST_TEST(v.id("<eos>") == vocab::eos_id);
    BOOST_TEST(v.id("<unk>") == vocab::unk_id);
    BOOST_TEST(v.id("anything") == vocab::unk_id);
}

BOOST_AUTO_TEST_CASE(vocab_build_orders_by_count_then_first_occurrence) {
    // Counts: a 3, b 2, c 2, d 1, e 1. First seen: b, a, c, d, e. "<eos>"/"<unk>" in the text
    // map to the special ids and take no new id.
    const strings toks{"b", "a", "c", "a", "<eos>", "b", "d", "a", "e", "<unk>", "c"};
    const auto v = vocab::build(toks);
    BOOST_TEST(v.size() == 7u);
    BOOST_TEST(v.tokens() == (strings{"<unk>", "<eos>", "a", "b", "c", "d", "e"}), boost::test_tools::per_element());
    BOOST_TEST(v.id("a") == 2);
    BOOST_TEST(v.id("b") == 3);  // tie with c: b was seen first
    BOOST_TEST(v.id("c") == 4);
    BOOST_TEST(v.id("d") == 5);  // tie with e: d was seen first
    BOOST_TEST(v.id("e") == 6);
    BOOST_TEST(v.encode(toks) == (ints{3, 2, 4, 2, 1, 3, 5, 2, 6, 0, 4}), boost::test_tools::per_element());

    // Frequency cut-off: d and e (seen once) become <unk>.
    const auto v2 = vocab::build(toks, 2);
    BOOST_TEST(v2.size() == 5u);
    BOOST_TEST(v2.id("c") == 4);
    BOOST_TEST(v2.id("d") == vocab::unk_id);
    BOOST_TEST(!v2.contains("e"));
    BOOST_TEST(v2.contains("a"));
    BOOST_TEST(v2.encode({"a", "d", "zebra", "<eos>"}) == (ints{2, 0, 0, 1}), boost::test_tools::per_element());

    // Size cap, the two specials included: keeps a and b, cuts c although it ties with b.
    const auto v3 = vocab::build(toks, 1, 4);
    BOOST_TEST(v3.tokens() == (strings{"<unk>", "<eos>", "a", "b"}), boost::test_tools::per_element());
    BOOST_TEST(v3.id("c") == vocab::unk_id);
    BOOST_TEST(vocab::build(toks, 1, 2).size() == 2u);
    BOOST_TEST(vocab::build({}).size() == 2u);

    BOOST_CHECK_EXCEPTION(vocab::build(toks, 1, 1), value_error, says({"vocab::build", "1"}));
    BOOST_CHECK_EXCEPTION(vocab::build({"a", ""}), value_error, says({"vocab::build", "token 1"}));
    // save writes tokens as they are and load checks UTF-8, so build refuses what load would.
    BOOST_CHECK_EXCEPTION(vocab::build({"ok", "caf\xE9"}), value_error,
                          says({"vocab::build", "token 1 of 2", "UTF-8"}));
    BOOST_CHECK_EXCEPTION(vocab::build({"\xFF"}), value_error, says({"token 0", "UTF-8"}));
}

BOOST_AUTO_TEST_CASE(vocab_token_and_decode) {
    const auto v = vocab::build({"the", "cat", "the"});
    BOOST_TEST(v.token(2) == "the");
    BOOST_TEST(v.token(3) == "cat");
    BOOST_TEST(v.decode({3, 2, 0, 1}) == (strings{"cat", "the", "<unk>", "<eos>"}), boost::test_tools::per_element());
    BOOST_CHECK_EXCEPTION(v.token(4), value_error, says({"vocab::token", "id 4", "size 4"}));
    BOOST_CHECK_EXCEPTION(v.token(-1), value_error, says({"id -1", "size 4"}));
    BOOST_CHECK_EXCEPTION(v.decode({2, 9}), value_error, says({"id 9"}));
}

// ---- save / load ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(vocab_save_load_round_trip) {
    temp_dir dir;
    const auto file = dir.path / "chars.vocab";
    // A character vocabulary with the characters the file format must escape, and non-ASCII.
    const auto chars = seqgrad::nn::utf8_chars("a\\b\nc\r\nd \xC3\xA9t\xC3\xA9 \\n");
    const auto v = vocab::build(chars);
    BOOST_TEST(v.contains("\n"));
    BOOST_TEST(v.contains("\\"));
    BOOST_TEST(v.contains("\r"));
    BOOST_TEST(v.contains("\xC3\xA9"));
    v.save(file);
    BOOST_TEST(dir.files() == 1u);  // no temporary left behind
    const std::string bytes = read_file(file);
    BOOST_TEST(bytes.substr(0, bytes.find('\n')) == "seqgrad-vocab 1 " + std::to_string(v.size()));
    const auto w = vocab::load(file);
    BOOST_TEST(w.tokens() == v.tokens(), boost::test_tools::per_element());
    BOOST_TEST((w == v));
    BOOST_TEST(w.encode(chars) == v.encode(chars), boost::test_tools::per_element());

    // Saving over an existing file replaces it.
    const auto small = vocab::build({"x"});
    small.save(file);
    BOOST_TEST(dir.files() == 1u);
    BOOST_TEST(vocab::load(file).tokens() == (strings{"<unk>", "<eos>", "x"}), boost::test_tools::per_element());

    // Saving through a symbolic link writes the file it names (the link was replaced by a file).
    const auto link = dir.path / "link.vocab";
    fs::create_symlink("chars.vocab", link);
    v.save(link);
    BOOST_TEST(fs::is_symlink(link));
    BOOST_TEST((vocab::load(file) == v));

    // A directory that does not exist: io_error, not a crash.
    BOOST_CHECK_EXCEPTION(v.save(dir.path / "no" / "such" / "dir.vocab"), io_error, says({"vocab::save"}));
}

BOOST_AUTO_TEST_CASE(vocab_load_rejects_corrupt_files) {
    temp_dir dir;
    const auto file = dir.path / "bad.vocab";
    const auto load_bytes = [&](const std::string& bytes) {
        write_file(file, bytes);
        return vocab::load(file);
    };
    const std::string good = "seqgrad-vocab 1 4\n<unk>\n<eos>\nthe\na\\nb\n";
    BOOST_TEST(load_bytes(good).token(3) == "a\nb");

    BOOST_CHECK_EXCEPTION(vocab::load(dir.path / "missing.vocab"), io_error,
                          says({"vocab::load", "missing.vocab", "cannot open"}));
    BOOST_CHECK_EXCEPTION(load_bytes(""), io_error, says({"bad.vocab", "empty"}));
    BOOST_CHECK_EXCEPTION(load_bytes("hello\nworld\n"), io_error, says({"line 1", "header"}));
    BOOST_CHECK_EXCEPTION(load_bytes("seqgrad-vocab 2 2\n<unk>\n<eos>\n"), io_error, says({"header"}));
    BOOST_CHECK_EXCEPTION(load_bytes("seqgrad-vocab 1 x\n<unk>\n<eos>\n"), io_error, says({"bad size"}));
    // Truncated: a line missing, or the last line cut short of its newline.
    BOOST_CHECK_EXCEPTION(load_bytes("seqgrad-vocab 1 4\n<unk>\n<eos>\nthe\n"), io_error,
                          says({"4 tokens", "holds 3"}));
    BOOST_CHECK_EXCEPTION(load_bytes(good.substr(0, good.size() - 1)), io_error, says({"newline"}));
    BOOST_CHECK_EXCEPTION(load_bytes("seqgrad-vocab 1 3\n<eos>\n<unk>\nthe\n"), io_error, says({"<unk>", "<eos>"}));
    BOOST_CHECK_EXCEPTION(load_bytes("seqgrad-vocab 1 4\n<unk>\n<eos>\nthe\nthe\n"), io_error,
                          says({"line 5", "duplicate", "line 4"}));
    BOOST_CHECK_EXCEPTION(load_bytes("seqgrad-vocab 1 3\n<unk>\n<eos>\n\n"), io_error, says({"line 4", "empty token"}));
    BOOST_CHECK_EXCEPTION(load_bytes("seqgrad-vocab 1 3\n<unk>\n<eos>\na\\q\n"), io_error, says({"line 4", "escape"}));
    BOOST_CHECK_EXCEPTION(load_bytes("seqgrad-vocab 1 3\n<unk>\n<eos>\n\xC3\n"), io_error, says({"UTF-8"}));
    BOOST_CHECK_EXCEPTION(load_bytes("seqgrad-vocab 1 3\r\n<unk>\r\n<eos>\r\nthe\r\n"), io_error,
                          says({"vocab::load", "line 1", "raw carriage return (file converted to CRLF?)"}));
    // A byte-order mark printed invisibly: "bad header 'seqgrad-vocab 1 3'; expected 'seqgrad-vocab 1 <size>'".
    BOOST_CHECK_EXCEPTION(load_bytes("\xEF\xBB\xBFseqgrad-vocab 1 3\n<unk>\n<eos>\nthe\n"), io_error,
                          says({"vocab::load", "line 1", "byte-order mark"}));
    // A directory opened fine and then failed to read: std::ios_base::failure "basic_filebuf::underflow
    // error reading the file: Is a directory", naming neither vocab::load nor the path.
    BOOST_CHECK_EXCEPTION(vocab::load(dir.path), io_error, says({"vocab::load", dir.path.string(), "directory"}));
}

// ---- tokenisers -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(utf8_chars_splits_code_points) {
    using seqgrad::nn::utf8_chars;
    const std::string text = "na\xC3\xAFve caf\xC3\xA9";  // "naïve café": 12 bytes, 10 chars
    BOOST_TEST(text.size() == 12u);
    const auto c = utf8_chars(text);
    BOOST_TEST(c == (strings{"n", "a", "\xC3\xAF", "v", "e", " ", "c", "a", "f", "\xC3\xA9"}),
               boost::test_tools::per_element());
    BOOST_TEST(seqgrad::nn::join_chars(c) == text);

    // Three- and four-byte sequences: euro sign U+20AC and U+1F600.
    BOOST_TEST(utf8_chars("1\xE2\x82\xAC=\xF0\x9F\x98\x80") == (strings{"1", "\xE2\x82\xAC", "=", "\xF0\x9F\x98\x80"}),
               boost::test_tools::per_element());
    BOOST_TEST(utf8_chars("").empty());

    // A character vocabulary: <unk>, <eos>, then the 9 distinct characters of the text, "a"
    // (the only one seen twice) first, then the others in order of appearance.
    const auto v = vocab::build(c);
    BOOST_TEST(v.size() == 11u);
    BOOST_TEST(v.id("a") == 2);
    BOOST_TEST(v.id("n") == 3);
    BOOST_TEST(v.id("\xC3\xAF") == 4);
    BOOST_TEST(v.id("\xC3\xA9") == 10);
}

BOOST_AUTO_TEST_CASE(utf8_chars_replaces_invalid_bytes) {
    using seqgrad::nn::utf8_chars;
    // A stray 0xFF between ASCII letters.
    BOOST_TEST(utf8_chars("a\xFF"
                          "b") == (strings{"a", fffd, "b"}),
               boost::test_tools::per_element());
    // A two-byte lead followed by ASCII, a lone continuation byte, a truncated three-byte
    // sequence at the end (one replacement for both bytes).
    BOOST_TEST(utf8_chars("\xC3"
                          "b\x80"
                          "c\xE2\x82") == (strings{fffd, "b", fffd, "c", fffd}),
               boost::test_tools::per_element());
    // Overlong "/" (C0 AF), a surrogate (ED A0 80) and a value above U+10FFFF (F4 90 80 80):
    // forbidden second bytes, so every byte is replaced on its own.
    BOOST_TEST(utf8_chars("\xC0\xAF").size() == 2u);
    BOOST_TEST(utf8_chars("\xED\xA0\x80") == (strings{fffd, fffd, fffd}), boost::test_tools::per_element());
    BOOST_TEST(utf8_chars("\xF4\x90\x80\x80").size() == 4u);
    // The largest valid code point and the last one before the surrogates stay whole.
    BOOST_TEST(utf8_chars("\xF4\x8F\xBF\xBF\xED\x9F\xBF") == (strings{"\xF4\x8F\xBF\xBF", "\xED\x9F\xBF"}),
               boost::test_tools::per_element());
    // Garbage of every byte value: no crash, and every token is one valid code point.
    std::string all;
    for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
    const auto c = utf8_chars(all);
    BOOST_TEST(c.size() == 256u);  // 128 ASCII + 128 lone non-ASCII bytes, each replaced
    BOOST_TEST(c[200] == fffd);
}

BOOST_AUTO_TEST_CASE(words_separates_punctuation) {
    using seqgrad::nn::join_words;
    using seqgrad::nn::words;
    BOOST_TEST(words("Hello, world!") == (strings{"Hello", ",", "world", "!"}), boost::test_tools::per_element());
    BOOST_TEST(words("  He said: \"Go (now)?\"\n\tdon't;stop.  ") ==
                   (strings{"He", "said", ":", "\"", "Go", "(", "now", ")", "?", "\"", "don't", ";", "stop", "."}),
               boost::test_tools::per_element());
    BOOST_TEST(words("The Cat, CAFE\xC3\x89", true) == (strings{"the", "cat", ",", "cafe\xC3\x89"}),
               boost::test_tools::per_element());
    BOOST_TEST(words(" \n ").empty());
    // Latin-1 bytes in the text: replaced as utf8_chars does, so the vocabulary saves and loads.
    BOOST_TEST(words("caf\xE9 ok \xE2\x82, \xC3\xA9t\xC3\xA9") ==
                   (strings{"caf\xEF\xBF\xBD", "ok", "\xEF\xBF\xBD", ",", "\xC3\xA9t\xC3\xA9"}),
               boost::test_tools::per_element());
    {
        temp_dir dir;
        const auto v = vocab::build(words("caf\xE9 ok caf\xE9"));
        v.save(dir.path / "w.vocab");
        BOOST_TEST((vocab::load(dir.path / "w.vocab") == v));
        BOOST_TEST(v.id("caf\xEF\xBF\xBD") == 2);
    }

    BOOST_TEST(join_words({"Hello", ",", "world", "!"}) == "Hello, world!");
    for (const std::string s : {"He said: \"Go (now)?\" And left.", "Hi, (you)!", "well-known; don't \"quote\" me."})
        BOOST_TEST(join_words(words(s)) == s);
    BOOST_TEST(join_words({}) == "");
}

// ---- lm_batcher -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(lm_batcher_cuts_streams) {
    // N = 23, B = 3: L = (23-1)/3 = 7. Row b reads 7b .. 7b+6 and predicts 7b+1 .. 7b+7;
    // id 22 is dropped. T = 3 gives batches of 3, 3 and 1 steps.
    ints ids(23);
    for (int i = 0; i < 23; ++i) ids[static_cast<std::size_t>(i)] = i;
    const seqgrad::nn::lm_batcher lb(ids, 3, 3);
    BOOST_TEST(lb.stream_length() == 7u);
    BOOST_TEST(lb.num_batches() == 3u);

    const auto b0 = lb.get(0);
    BOOST_TEST(b0.steps == 3u);
    BOOST_TEST(b0.batch == 3u);
    BOOST_TEST(b0.inputs == (ints{0, 7, 14, 1, 8, 15, 2, 9, 16}), boost::test_tools::per_element());
    BOOST_TEST(b0.targets == (ints{1, 8, 15, 2, 9, 16, 3, 10, 17}), boost::test_tools::per_element());
    BOOST_TEST(b0.input(2, 1) == 9);
    BOOST_TEST(b0.target(2, 1) == 10);

    const auto b1 = lb.get(1);
    BOOST_TEST(b1.steps == 3u);
    BOOST_TEST(b1.inputs == (ints{3, 10, 17, 4, 11, 18, 5, 12, 19}), boost::test_tools::per_element());
    BOOST_TEST(b1.targets == (ints{4, 11, 18, 5, 12, 19, 6, 13, 20}), boost::test_tools::per_element());

    const auto b2 = lb.get(2);
    BOOST_TEST(b2.steps == 1u);
    BOOST_TEST(b2.inputs == (ints{6, 13, 20}), boost::test_tools::per_element());
    BOOST_TEST(b2.targets == (ints{7, 14, 21}), boost::test_tools::per_element());

    // Row b of batch k+1 continues row b of batch k, so state can be carried across batches.
    for (std::size_t k = 0; k + 1 < lb.num_batches(); ++k) {
        const auto cur = lb.get(k), next = lb.get(k + 1);
        for (std::size_t b = 0; b < 3; ++b) BOOST_TEST(next.input(0, b) == cur.target(cur.steps - 1, b));
    }
    BOOST_CHECK_EXCEPTION(lb.get(3), value_error, says({"lm_batcher::get", "3"}));
}

BOOST_AUTO_TEST_CASE(lm_batcher_even_split_and_errors) {
    using seqgrad::nn::lm_batcher;
    // N = 13, B = 2, T = 3: L = 6, two full batches, every input/target pair one apart.
    ints ids(13);
    for (int i = 0; i < 13; ++i) ids[static_cast<std::size_t>(i)] = 100 + i;
    const lm_batcher lb(ids, 2, 3);
    BOOST_TEST(lb.num_batches() == 2u);
    BOOST_TEST(lb.get(1).steps == 3u);
    BOOST_TEST(lb.get(1).inputs == (ints{103, 109, 104, 110, 105, 111}), boost::test_tools::per_element());
    for (std::size_t k = 0; k < 2; ++k) {
        const auto b = lb.get(k);
        for (std::size_t i = 0; i < b.inputs.size(); ++i) BOOST_TEST(b.targets[i] == b.inputs[i] + 1);
    }
    // T near 2^64: one batch of all L steps (L + T - 1 wrapped to 0 batches: char_lm divided by it).
    for (std::size_t T : {std::numeric_limits<std::size_t>::max(), std::numeric_limits<std::size_t>::max() - 1}) {
        const lm_batcher one(ids, 2, T);
        BOOST_TEST(one.num_batches() == 1u);
        BOOST_TEST(one.get(0).steps == 6u);
    }
    // A stream shorter than one step per row, a zero batch, a zero length.
    BOOST_CHECK_EXCEPTION(lm_batcher(ints{1, 2, 3}, 3, 5), value_error,
                          says({"lm_batcher", "N = 3", "B = 3", "T = 5"}));
    BOOST_CHECK_EXCEPTION(lm_batcher(ints{}, 1, 1), value_error, says({"N = 0"}));
    BOOST_CHECK_EXCEPTION(lm_batcher(ids, 0, 3), value_error, says({"B = 0"}));
    BOOST_CHECK_EXCEPTION(lm_batcher(ids, 2, 0), value_error, says({"T = 0"}));
    // The largest B: the bound is stated without computing B + 1, which wrapped to 0.
    const std::size_t huge = std::numeric_limits<std::size_t>::max();
    BOOST_CHECK_EXCEPTION(lm_batcher(ids, huge, 3), value_error, says({"expected N > B"}));
    // Just long enough: one step per row.
    BOOST_TEST(lm_batcher(ints{1, 2, 3, 4}, 3, 5).get(0).targets == (ints{2, 3, 4}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(split_ids_fractions) {
    using seqgrad::nn::split_ids;
    const ints ids{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    const auto [train, valid] = split_ids(ids, 0.8);
    BOOST_TEST(train == (ints{0, 1, 2, 3, 4, 5, 6, 7}), boost::test_tools::per_element());
    BOOST_TEST(valid == (ints{8, 9}), boost::test_tools::per_element());
    BOOST_TEST(split_ids(ids, 0.29).first.size() == 3u);  // rounds to nearest, 2.9 -> 3
    BOOST_TEST(split_ids(ids, 0.0).second.size() == 10u);
    BOOST_TEST(split_ids(ids, 1.0).first.size() == 10u);
    BOOST_CHECK_EXCEPTION(split_ids(ids, 1.5), value_error, says({"split_ids", "1.5"}));
    BOOST_CHECK_THROW(split_ids(ids, std::numeric_limits<double>::quiet_NaN()), value_error);
}

// ---- data -------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(vocab_of_english_text) {
    // The opening of Shakespeare's sonnet 18, as a character model and a word model see it.
    const std::string text =
        "Shall I compare thee to a summer's day?\n"
        "Thou art more lovely and more temperate:\n"
        "Rough winds do shake the darling buds of May,\n"
        "And summer's lease hath all too short a date;\n"
        "Sometime too hot the eye of heaven shines,\n"
        "And often is his gold complexion dimm'd;\n"
        "And every fair from fair sometime declines,\n"
        "By chance or nature's changing course untrimm'd;\n";
    const auto chars = seqgrad::nn::utf8_chars(text);
    BOOST_TEST(chars.size() == 350u);
    const auto v = vocab::build(chars);
    BOOST_TEST(v.size() == 39u);       // 37 distinct characters, <unk> and <eos>
    BOOST_TEST(v.token(2) == " ");     // 54 of them
    BOOST_TEST(v.tokens()[3] == "e");  // 35
    BOOST_TEST(v.token(4) == "o");     // 25
    BOOST_TEST(v.token(6) == "m");     // 18, seen before "t" (18 too)
    BOOST_TEST(v.token(7) == "t");
    const auto w = vocab::build(seqgrad::nn::words(text, true));
    BOOST_TEST(w.token(2) == "and");  // 4 (3 of them "And": lowercased)
    BOOST_TEST(w.token(3) == ",");    // 3, seen before ";" (3 too)
    BOOST_TEST(w.token(4) == ";");
    BOOST_TEST(w.contains("summer's"));  // the apostrophe stays inside the word
}

BOOST_AUTO_TEST_CASE(utf8_chars_on_names_data) {
    const fs::path dir = fs::path(SEQGRAD_SHARED_DATA) / "names";
    if (!fs::exists(dir / "French.txt") || !fs::exists(dir / "Polish.txt")) {
        BOOST_TEST_MESSAGE("skipped: " << (dir / "French.txt") << " or Polish.txt not found");
        return;
    }
    std::set<std::string> seen;
    std::size_t accented = 0;
    for (const char* lang : {"French.txt", "Polish.txt"}) {
        std::ifstream in(dir / lang, std::ios::binary);
        for (std::string line; std::getline(in, line);) {
            const auto c = seqgrad::nn::utf8_chars(line);
            std::size_t continuation = 0;
            for (char b : line) continuation += (static_cast<unsigned char>(b) & 0xC0) == 0x80;
            BOOST_TEST(c.size() == line.size() - continuation);
            BOOST_TEST(seqgrad::nn::join_chars(c) == line);
            if (continuation > 0) ++accented;
            seen.insert(line);
        }
    }
    BOOST_TEST(accented >= 5u);
    // Known entries: "Émile" and "Bélanger" in French, "Kamiński" in Polish.
    BOOST_REQUIRE(seen.count("\xC3\x89mile") == 1u);
    BOOST_TEST(seqgrad::nn::utf8_chars("\xC3\x89mile") == (strings{"\xC3\x89", "m", "i", "l", "e"}),
               boost::test_tools::per_element());
    BOOST_REQUIRE(seen.count("B\xC3\xA9langer") == 1u);
    BOOST_TEST(seqgrad::nn::utf8_chars("B\xC3\xA9langer").size() == 8u);
    BOOST_REQUIRE(seen.count("Kami\xC5\x84ski") == 1u);
    const auto k = seqgrad::nn::utf8_chars("Kami\xC5\x84ski");
    BOOST_TEST(k.size() == 8u);
    BOOST_TEST(k[4] == "\xC5\x84");
}

BOOST_AUTO_TEST_SUITE_END()
