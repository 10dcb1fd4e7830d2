#include "text.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>
#include <system_error>

#include "../core/io.hpp"

namespace seqgrad::nn {

namespace {

// Length of the well-formed UTF-8 sequence starting at s[i], or minus the length of the maximal
// ill-formed subpart there (Unicode 15, table 3-7: the valid second-byte ranges exclude
// overlongs, surrogates and values above U+10FFFF).
int utf8_step(std::string_view s, std::size_t i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) return 1;
    int n = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
        n = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        return -1;
    }
    for (int k = 1; k < n; ++k) {
        if (i + k >= s.size()) return -k;
        const auto c = static_cast<unsigned char>(s[i + k]);
        if (c < lo || c > hi) return -k;
        lo = 0x80;
        hi = 0xBF;
    }
    return n;
}

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const int n = utf8_step(s, i);
        if (n < 0) return false;
        i += static_cast<std::size_t>(n);
    }
    return true;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_punct(char c) { return std::string_view(".,!?;:\"()").find(c) != std::string_view::npos; }
bool is_closing(std::string_view w) {
    return w.size() == 1 && std::string_view(".,!?;:)").find(w[0]) != std::string_view::npos;
}

std::string escape(std::string_view tok) {
    std::string out;
    for (char c : tok) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else out += c;
    }
    return out;
}

constexpr std::string_view vocab_magic = "seqgrad-vocab";

}  // namespace

// ---- vocab ------------------------------------------------------------------------------------

vocab::vocab() : vocab(std::vector<std::string>{std::string(unk_token), std::string(eos_token)}) {}

vocab::vocab(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {
    ids_.reserve(tokens_.size());
    for (std::size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], static_cast<int>(i));
}

vocab vocab::build(const std::vector<std::string>& tokens, std::size_t min_count, std::size_t max_size) {
    if (max_size == 1)
        throw value_error(
            "vocab::build: max_size 1 is too small; expected 0 (unlimited) or >= 2 "
            "(the two special tokens <unk> and <eos> always take ids 0 and 1)");
    struct seen_token {
        std::string_view text;
        std::size_t count;
    };
    std::vector<seen_token> order;  // distinct tokens in order of first occurrence
    std::unordered_map<std::string_view, std::size_t> index;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const std::string_view t = tokens[i];
        if (t.empty())
            throw value_error("vocab::build: token " + std::to_string(i) + " of " + std::to_string(tokens.size()) +
                              " is empty; expected non-empty tokens");
        // save writes tokens as they are and load checks UTF-8: refused here, a vocabulary could
        // be saved and then not read back.
        if (!valid_utf8(t))
            throw value_error("vocab::build: token " + std::to_string(i) + " of " + std::to_string(tokens.size()) +
                              " is not valid UTF-8; expected UTF-8 tokens (utf8_chars and words replace invalid "
                              "bytes with U+FFFD)");
        if (t == unk_token || t == eos_token) continue;
        auto [it, fresh] = index.try_emplace(t, order.size());
        if (fresh) order.push_back({t, 0});
        ++order[it->second].count;
    }
    std::erase_if(order, [&](const seen_token& s) { return s.count < min_count; });
    std::stable_sort(order.begin(), order.end(),
                     [](const seen_token& a, const seen_token& b) { return a.count > b.count; });
    if (max_size != 0 && order.size() > max_size - 2) order.resize(max_size - 2);
    std::vector<std::string> all{std::string(unk_token), std::string(eos_token)};
    all.reserve(order.size() + 2);
    for (const auto& s : order) all.emplace_back(s.text);
    return vocab(std::move(all));
}

int vocab::id(std::string_view token) const {
    auto it = ids_.find(token);
    return it == ids_.end() ? unk_id : it->second;
}

const std::string& vocab::token(int id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= tokens_.size())
        throw value_error("vocab::token: id " + std::to_string(id) +
                          " out of range for a "
                          "vocabulary of size " +
                          std::to_string(tokens_.size()) + "; expected 0.." + std::to_string(tokens_.size() - 1));
    return tokens_[static_cast<std::size_t>(id)];
}

bool vocab::contains(std::string_view token) const { return ids_.find(token) != ids_.end(); }

std::vector<int> vocab::encode(const std::vector<std::string>& tokens) const {
    std::vector<int> out;
    out.reserve(tokens.size());
    for (const auto& t : tokens) out.push_back(id(t));
    return out;
}

std::vector<std::string> vocab::decode(const std::vector<int>& ids) const {
    std::vector<std::string> out;
    out.reserve(ids.size());
    for (int i : ids) out.push_back(token(i));
    return out;
}

void vocab::save(const std::filesystem::path& path) const {
    // The save of every file format, so a vocabulary is written as atomically as a checkpoint
    // and through a symbolic link as they are.
    seqgrad::detail::atomic_write(path.string(), "vocab::save", [&](std::ostream& out) {
        out << vocab_magic << " 1 " << tokens_.size() << '\n';
        for (const auto& t : tokens_) out << escape(t) << '\n';
    });
}

vocab vocab::load(const std::filesystem::path& path) {
    const std::string where = "vocab::load: '" + path.string() + "'";
    // A directory opens as a stream and throws std::ios_base::failure on the first read.
    std::error_code dir_ec;
    if (std::filesystem::is_directory(path, dir_ec))
        throw io_error(where + ": is a directory; expected a vocabulary file written by vocab::save");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error(where + ": cannot open file");
    std::string text;
    try {
        text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } catch (const std::exception& e) {
        throw io_error(where + ": read error (" + e.what() + ")");
    }
    if (in.bad()) throw io_error(where + ": read error");
    if (text.empty()) throw io_error(where + ": file is empty; expected a vocabulary written by vocab::save");
    if (text.back() != '\n') throw io_error(where + ": file does not end with a newline (truncated?)");

    std::vector<std::string_view> lines;
    for (std::size_t pos = 0; pos < text.size();) {
        const auto nl = text.find('\n', pos);
        lines.emplace_back(text.data() + pos, nl - pos);
        pos = nl + 1;
    }
    const auto bad = [&](std::size_t line, const std::string& what) {
        return io_error(where + " line " + std::to_string(line + 1) + ": " + what);
    };

    // Header: "seqgrad-vocab 1 <size>".
    const std::string_view head = lines[0];
    if (head.ends_with('\r')) throw bad(0, "raw carriage return (file converted to CRLF?)");  // not "bad size '3\r'"
    if (head.starts_with("\xEF\xBB\xBF"))  // else "bad header" quoting an invisible U+FEFF
        throw bad(0, "byte-order mark (U+FEFF) before the header (file saved as UTF-8 with BOM?)");
    const std::string prefix = std::string(vocab_magic) + " 1 ";
    if (!head.starts_with(prefix))
        throw bad(0, "bad header '" + std::string(head.substr(0, 40)) + "'; expected '" + prefix +
                         "<size>' (not a seqgrad vocabulary, or an unsupported version)");
    std::size_t n = 0;
    const auto digits = head.substr(prefix.size());
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty())
        throw bad(0, "bad size '" + std::string(digits.substr(0, 40)) + "' in header");
    if (n < 2) throw bad(0, "size " + std::to_string(n) + " in header; expected >= 2");
    if (lines.size() - 1 != n)
        throw io_error(where + ": header announces " + std::to_string(n) +
                       " tokens but the file "
                       "holds " +
                       std::to_string(lines.size() - 1) + " (truncated or edited?)");

    std::vector<std::string> tokens;
    tokens.reserve(n);
    std::unordered_map<std::string_view, std::size_t> seen;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        std::string tok;
        const auto raw = lines[i];
        for (std::size_t k = 0; k < raw.size(); ++k) {
            if (raw[k] == '\r') throw bad(i, "raw carriage return (file converted to CRLF?)");
            if (raw[k] != '\\') {
                tok += raw[k];
                continue;
            }
            const char e = k + 1 < raw.size() ? raw[++k] : '\0';
            if (e == '\\') tok += '\\';
            else if (e == 'n') tok += '\n';
            else if (e == 'r') tok += '\r';
            else throw bad(i, "bad escape; expected \\\\, \\n or \\r after a backslash");
        }
        if (tok.empty()) throw bad(i, "empty token");
        if (!valid_utf8(tok)) throw bad(i, "token is not valid UTF-8");
        tokens.push_back(std::move(tok));
    }
    if (tokens[0] != unk_token || tokens[1] != eos_token)
        throw io_error(where + ": the first two tokens are '" + tokens[0] + "' and '" + tokens[1] +
                       "'; expected '<unk>' and '<eos>'");
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        auto [it, fresh] = seen.emplace(tokens[i], i);
        if (!fresh)
            throw bad(i + 1,
                      "duplicate token '" + tokens[i] + "' (also on line " + std::to_string(it->second + 2) + ")");
    }
    return vocab(std::move(tokens));
}

// ---- tokenisers -------------------------------------------------------------------------------

std::vector<std::string> utf8_chars(std::string_view text) {
    std::vector<std::string> out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const int n = utf8_step(text, i);
        if (n > 0) out.emplace_back(text.substr(i, static_cast<std::size_t>(n)));
        else out.emplace_back(utf8_replacement);
        i += static_cast<std::size_t>(n > 0 ? n : -n);
    }
    return out;
}

std::vector<std::string> words(std::string_view text, bool lowercase) {
    std::vector<std::string> out;
    std::string cur;
    const auto flush = [&] {
        // The separators are ASCII, which never occurs inside a UTF-8 sequence: a word is invalid
        // only where the text is, and gets utf8_chars' replacements there.
        if (!cur.empty()) out.push_back(valid_utf8(cur) ? std::move(cur) : join_chars(utf8_chars(cur)));
        cur.clear();
    };
    for (char c : text) {
        if (is_space(c)) {
            flush();
        } else if (is_punct(c)) {
            flush();
            out.emplace_back(1, c);
        } else {
            cur += (lowercase && c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        }
    }
    flush();
    return out;
}

std::string join_chars(const std::vector<std::string>& chars) {
    std::string out;
    for (const auto& c : chars) out += c;
    return out;
}

std::string join_words(const std::vector<std::string>& words) {
    std::string out;
    bool in_quote = false, glue_next = false;
    for (const auto& w : words) {
        const bool quote = w == "\"";
        const bool glue = is_closing(w) || (quote && in_quote);
        if (!out.empty() && !glue && !glue_next) out += ' ';
        out += w;
        glue_next = w == "(" || (quote && !in_quote);
        if (quote) in_quote = !in_quote;
    }
    return out;
}

// ---- batching ---------------------------------------------------------------------------------

lm_batcher::lm_batcher(std::vector<int> ids, std::size_t batch, std::size_t seq)
    : ids_(std::move(ids)), batch_(batch), seq_(seq), len_(0) {
    const auto sizes = "N = " + std::to_string(ids_.size()) + " ids, B = " + std::to_string(batch) +
                       " streams, T = " + std::to_string(seq) + " steps";
    if (batch == 0 || seq == 0) throw value_error("lm_batcher: " + sizes + "; expected B >= 1 and T >= 1");
    len_ = ids_.empty() ? 0 : (ids_.size() - 1) / batch;
    if (len_ == 0)
        throw value_error("lm_batcher: stream too short for one batch: " + sizes +
                          "; expected N > B (one id more than the streams)");
    ids_.resize(batch * len_ + 1);
}

std::size_t lm_batcher::num_batches() const { return len_ / seq_ + (len_ % seq_ != 0); }  // L + T - 1 can wrap

lm_batch lm_batcher::get(std::size_t k) const {
    if (k >= num_batches())
        throw value_error("lm_batcher::get: batch " + std::to_string(k) +
                          " out of range; expected k < num_batches() = " + std::to_string(num_batches()));
    lm_batch out;
    const std::size_t start = k * seq_;
    out.steps = std::min(seq_, len_ - start);
    out.batch = batch_;
    out.inputs.resize(out.steps * batch_);
    out.targets.resize(out.steps * batch_);
    for (std::size_t t = 0; t < out.steps; ++t)
        for (std::size_t b = 0; b < batch_; ++b) {
            const std::size_t j = b * len_ + start + t;
            out.inputs[t * batch_ + b] = ids_[j];
            out.targets[t * batch_ + b] = ids_[j + 1];
        }
    return out;
}

std::pair<std::vector<int>, std::vector<int>> split_ids(const std::vector<int>& ids, double train_fraction) {
    if (!(train_fraction >= 0.0 && train_fraction <= 1.0))
        throw value_error("split_ids: train_fraction " + std::to_string(train_fraction) +
                          "; expected a value in [0, 1]");
    const auto n = std::min(ids.size(),
                            static_cast<std::size_t>(std::llround(train_fraction * static_cast<double>(ids.size()))));
    const auto mid = ids.begin() + static_cast<std::ptrdiff_t>(n);
    return {std::vector<int>(ids.begin(), mid), std::vector<int>(mid, ids.end())};
}

}  // namespace seqgrad::nn
