#pragma once
// Command-line helpers shared by the examples: option values parsed strictly, with messages that
// name the option, the expected range and what was given.
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <type_traits>

namespace seqgrad::cli {

/// A bad command line: the example prints the message and exits with status 2.
struct usage_error {
    std::string message;
};

/// text as a T of at least `min` (more than `min` when `above`); usage_error naming the option
/// otherwise ("--hidden: expected an integer >= 1, got 'abc'").
template <class T>
T parse_number(const std::string& name, const std::string& text, T min, bool above = false) {
    T v{};
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, v);
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

/// Applies `--name VALUE` and `--name=VALUE` arguments through table. `--help` or `-h` prints usage
/// and exits 0; an unknown option or a missing value throws usage_error naming it.
inline void parse_options(int argc, char** argv, const std::map<std::string, setter>& table, const char* usage) {
    for (int i = 1; i < argc; ++i) {
        std::string name = argv[i], value;
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

}  // namespace seqgrad::cli
