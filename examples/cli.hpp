#pragma once
// Command-line helpers shared by the examples: option values parsed strictly, with messages that
// name the option, the expected range and what was given.
#include <charconv>
#include <cmath>
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

}  // namespace seqgrad::cli
