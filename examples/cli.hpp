#pragma once
// Command-line helpers shared by the examples: option values parsed strictly, with messages that
// name the option, the expected range and what was given, and the main() they all share.
//
//     options parse_args(int argc, char** argv) {
//         options o;
//         cli::parse_options(argc, argv, {{"--hidden", cli::number(o.hidden, std::size_t{1})},
//                                         {"--cell", cli::one_of(o.cell, {"lstm", "gru"})}}, usage);
//         return o;
//     }
//     int main(int argc, char** argv) { return cli::main("example", argc, argv, parse_args, run); }
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <limits>
#include <map>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace seqgrad::cli {

/// A bad command line: the example prints the message and exits with status 2.
struct usage_error {
    std::string message;
};

/// text as a T of at least `min` (more than `min` when `above`); usage_error naming the option
/// otherwise ("--hidden: expected an integer >= 1, got 'abc'"; "--seed: out of range: expected an integer
/// <= 18446744073709551615, got '18446744073709551616'" past T's range).
template <class T>
T parse_number(const std::string& name, const std::string& text, T min, bool above = false) {
    T v{};
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, v);
    // A whole number past T's range is not a bad form: name the bound it passed, not "expected >= min".
    if constexpr (std::is_integral_v<T>) {
        if (ec == std::errc::result_out_of_range && p == end) {
            const bool low = text.front() == '-';
            std::ostringstream msg;
            msg << name << ": out of range: expected an integer " << (low ? ">= " : "<= ")
                << +(low ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max()) << ", got '" << text
                << "'";
            throw usage_error{msg.str()};
        }
    }
    if (ec != std::errc() || p != end || !(above ? v > min : v >= min) || !std::isfinite(static_cast<double>(v))) {
        std::ostringstream msg;
        msg << name << ": expected " << (std::is_integral_v<T> ? "an integer " : "a number ") << (above ? "> " : ">= ")
            << min << ", got '" << text << "'";
        throw usage_error{msg.str()};
    }
    return v;
}

/// Sets one option from its name and value text; throws usage_error for a bad value.
using setter = std::function<void(const std::string& name, const std::string& value)>;

/// Applies `--name VALUE` and `--name=VALUE` arguments through table, and flags (options without a
/// value, e.g. `--quick`) through flags, in command-line order. `--help` or `-h` prints usage and
/// exits 0; an unknown option or a missing value throws usage_error naming it.
inline void parse_options(int argc, char** argv, const std::map<std::string, setter>& table, const char* usage,
                          const std::map<std::string, std::function<void()>>& flags = {}) {
    for (int i = 1; i < argc; ++i) {
        std::string name = argv[i], value;
        if (const auto flag = flags.find(name); flag != flags.end()) {
            flag->second();
            continue;
        }
        bool inline_value = false;
        if (const auto eq = name.find('='); name.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = name.substr(eq + 1);
            name.resize(eq);
            inline_value = true;
        }
        if (name == "--help" || name == "-h") {
            std::cout << usage;
            std::exit(0);
        }
        const auto it = table.find(name);
        if (it == table.end()) throw usage_error{"unknown option '" + name + "'"};
        if (!inline_value) {
            if (i + 1 >= argc) throw usage_error{name + ": missing value"};
            value = argv[++i];
        }
        it->second(name, value);
    }
}

// ---- setters for the usual kinds of option ---------------------------------------------------

/// A number of at least `min` (more than `min` when `above`).
template <class T>
setter number(T& field, T min, bool above = false) {
    return [&field, min, above](const std::string& n, const std::string& v) { field = parse_number(n, v, min, above); };
}

/// A probability in [0, 1).
inline setter probability(double& field) {
    return [&field](const std::string& n, const std::string& v) {
        field = parse_number(n, v, 0.0);
        if (field >= 1) throw usage_error{n + ": expected a probability in [0, 1), got " + v};
    };
}

/// Any text.
inline setter text(std::string& field) {
    return [&field](const std::string&, const std::string& v) { field = v; };
}

/// One of a few words ("--cell: expected lstm, rnn or gru, got 'x'").
inline setter one_of(std::string& field, std::initializer_list<const char*> choices) {
    return [&field, words = std::vector<std::string>(choices.begin(), choices.end())](const std::string& n,
                                                                                      const std::string& v) {
        for (const auto& w : words)
            if (v == w) {
                field = v;
                return;
            }
        std::string list;
        for (std::size_t i = 0; i < words.size(); ++i)
            list += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + words[i];
        throw usage_error{n + ": expected " + list + ", got '" + v + "'"};
    };
}

/// The comma-separated items of text ("1,,2" has three, the second empty).
inline std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> items;
    for (std::size_t start = 0;;) {
        const auto comma = text.find(',', start);
        items.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) return items;
        start = comma + 1;
    }
}

/// A comma-separated list of numbers, each at least `min` (more than `min` when `above`), none
/// empty ("--threads: expected a comma-separated list of integers >= 1, got '1,,2'").
template <class T>
setter number_list(std::vector<T>& field, T min, bool above = false) {
    return [&field, min, above](const std::string& n, const std::string& v) {
        std::vector<T> values;
        try {
            for (const auto& item : split_commas(v)) values.push_back(parse_number(n, item, min, above));
        } catch (const usage_error&) {
            std::ostringstream msg;
            msg << n << ": expected a comma-separated list of " << (std::is_integral_v<T> ? "integers " : "numbers ")
                << (above ? "> " : ">= ") << min << ", got '" << v << "'";
            throw usage_error{msg.str()};
        }
        field = std::move(values);
    };
}

/// A comma-separated list of words, each one of `choices`, none repeated ("--config: 'char_b2' is
/// not one of char_b1, char_b32 or word_b20, in 'char_b1,char_b2'").
inline setter list_of(std::vector<std::string>& field, std::vector<std::string> choices) {
    return [&field, words = std::move(choices)](const std::string& n, const std::string& v) {
        std::vector<std::string> picked;
        for (const auto& item : split_commas(v)) {
            bool known = false;
            for (const auto& w : words) known = known || item == w;
            if (!known) {
                std::string list;
                for (std::size_t i = 0; i < words.size(); ++i)
                    list += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + words[i];
                throw usage_error{n + ": '" + item + "' is not one of " + list + ", in '" + v + "'"};
            }
            for (const auto& p : picked)
                if (p == item) throw usage_error{n + ": '" + item + "' given twice, in '" + v + "'"};
            picked.push_back(item);
        }
        field = std::move(picked);
    };
}

/// yes or no.
inline setter yes_no(bool& field) {
    return [&field](const std::string& n, const std::string& v) {
        if (v != "yes" && v != "no") throw usage_error{n + ": expected yes or no, got '" + v + "'"};
        field = v == "yes";
    };
}

/// Checks, before any work, that `count` (the value of `option`) items of `per_item` values each fit
/// in one array of floats, e.g. --batch sequences of --seq values: usage_error naming the option and
/// the largest count otherwise ("--batch: expected an integer <= 576460752303423487 with --seq 4,
/// got '4611686018427387904'"), where their product would wrap around to a small allocation that the
/// example then writes past.
inline void check_count(const std::string& option, std::size_t count, std::size_t per_item, const std::string& with) {
    const std::size_t most = std::vector<float>().max_size() / std::max<std::size_t>(per_item, 1);
    if (count > most)
        throw usage_error{option + ": expected an integer <= " + std::to_string(most) + " with " + with + ", got '" +
                          std::to_string(count) + "'"};
}

/// Why no file can be written in `folder` (read-only, /proc: the folder exists but takes none), or
/// "" when one can: a file is tried, as the example's own writes will, and removed.
inline std::string cannot_write_in(const std::filesystem::path& folder) {
    const std::filesystem::path probe = folder / (".write_test.tmp." + std::to_string(::getpid()));
    std::FILE* f = std::fopen(probe.c_str(), "wb");
    if (!f) return std::generic_category().message(errno);
    std::fclose(f);
    std::error_code ec;
    std::filesystem::remove(probe, ec);
    return {};
}

/// Checks, before any work, that the files an option writes (its value `path` plus each of
/// `suffixes`; none when empty) are not directories, go in a folder that exists and takes a file, and
/// are not the input file `input` under another spelling ("./t.txt" and "t.txt", or a link):
/// usage_error naming the option otherwise (a save that can only fail must not wait for training).
inline void check_outputs(const std::string& option, const std::string& path,
                          std::initializer_list<const char*> suffixes, const std::string& input_option,
                          const std::string& input) {
    namespace fs = std::filesystem;
    if (path.empty()) return;
    for (const char* suffix : suffixes) {
        const std::string out = path + suffix;
        if (fs::is_directory(out)) throw usage_error{option + ": '" + out + "' is a directory"};
        const fs::path folder = fs::path(out).parent_path().empty() ? fs::path(".") : fs::path(out).parent_path();
        if (!fs::is_directory(folder))
            throw usage_error{option + ": '" + out + "': the folder '" + folder.string() + "' does not exist"};
        if (const std::string why = cannot_write_in(folder); !why.empty())
            throw usage_error{option + ": '" + out + "': cannot write in the folder '" + folder.string() + "': " + why};
        std::error_code ec;
        if (!input.empty() && (input == out || std::filesystem::equivalent(input, out, ec)))
            throw usage_error{option + ": '" + out + "' would overwrite " + input_option + " '" + input + "'"};
    }
}

/// check_outputs for options that each write the one file they name (none when empty).
inline void check_outputs(std::initializer_list<std::pair<const char*, std::string>> outputs,
                          const std::string& input_option, const std::string& input) {
    for (const auto& [option, path] : outputs) check_outputs(option, path, {""}, input_option, input);
}

// ---- the shared main() ------------------------------------------------------------------------

/// Creates the folder for an example's output files (and its parents), and checks that a file can
/// be written in it and that none of `files` (the names the example writes there) is a directory,
/// so that a bad path fails before any training; std::runtime_error naming the folder or the file
/// otherwise.
inline void make_output_folder(const std::string& path, const std::vector<std::string>& files = {}) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::create_directories(path, ec) && ec)
        throw std::runtime_error("cannot create the output folder '" + path + "': " + ec.message());
    if (const std::string why = cannot_write_in(path); !why.empty())
        throw std::runtime_error("cannot write in the output folder '" + path + "': " + why);
    for (const auto& name : files)
        if (const fs::path file = fs::path(path) / name; fs::is_directory(file, ec))
            throw std::runtime_error("cannot write '" + file.string() + "': it is a directory");
}

/// The names <stem>_1<suffix> .. <stem>_n<suffix>, each suffix in turn: the numbered files an example
/// writes, for make_output_folder to check before training (numbered("map", 2, {".svg"}) is map_1.svg, map_2.svg).
inline std::vector<std::string> numbered(const std::string& stem, int n, std::initializer_list<const char*> suffixes) {
    std::vector<std::string> names;
    for (int k = 1; k <= n; ++k)
        for (const char* suffix : suffixes) names.push_back(stem + "_" + std::to_string(k) + suffix);
    return names;
}

/// The main() of every example: run(parse(argc, argv)). A usage_error prints "<name>: <message>
/// (see --help)" and returns 2; any other exception (unreadable data, an unwritable output file,
/// a diverged training) prints "<name>: <what>" and returns 1, std::bad_alloc as "<name>: out of
/// memory (...)"; otherwise run's status.
template <class Parse, class Run>
int main(const char* name, int argc, char** argv, Parse&& parse, Run&& run) {
    try {
        return run(parse(argc, argv));
    } catch (const usage_error& e) {
        std::cout << std::flush;
        std::fflush(stdout);  // what was printed so far comes before the message
        std::cerr << name << ": " << e.message << " (see --help)\n";
        return 2;
    } catch (const std::bad_alloc& e) {  // std::bad_array_new_length too: "std::bad_alloc" alone says little
        std::cout << std::flush;
        std::fflush(stdout);
        std::cerr << name << ": out of memory (" << e.what()
                  << "): the sizes on the command line need more memory than there is\n";
        return 1;
    } catch (const std::exception& e) {
        std::cout << std::flush;
        std::fflush(stdout);  // what was printed so far comes before the message
        std::cerr << name << ": " << e.what() << "\n";
        return 1;
    }
}

}  // namespace seqgrad::cli
