#pragma once
// Text utilities for language models and seq2seq: a token <-> id vocabulary, UTF-8 character and
// word tokenisers, the classic language-model batcher and a train/validation split.
//
// Nothing here touches the tape: these are plain containers of strings and ints, so data
// preparation can be tested and reused on its own. Ids are `int` because that is what embedding
// lookups and `pick`/cross-entropy targets take.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core/errors.hpp"

namespace seqgrad {
namespace detail {
/// Hash that accepts std::string and std::string_view alike, so lookups need no allocation.
struct text_string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
}  // namespace detail

namespace nn {

/// A bijection between tokens (UTF-8 strings: characters, words, sub-words) and ids 0..size()-1.
///
/// Two special tokens are always present, at fixed ids, so that every model and every saved
/// vocabulary agree on them:
///   - id 0 = "<unk>" (`unk_id`): what `id()` and `encode()` return for a token not in the
///     vocabulary, so rare or unseen words never throw at training or inference time;
///   - id 1 = "<eos>" (`eos_id`): end of sequence; language models append it after each
///     sentence or line and decoders stop when they produce it.
/// There is deliberately no "<pad>": batches of unequal length are handled with masks, not with
/// a padding token the model would have to learn to ignore.
/// If the training text itself contains the strings "<unk>" or "<eos>" (as the Penn Treebank
/// does), they map to these special ids rather than getting ids of their own.
/// A built vocabulary is immutable: its const members may be used from several threads at once.
class vocab {
public:
    static constexpr int unk_id = 0;
    static constexpr int eos_id = 1;
    static constexpr std::string_view unk_token = "<unk>";
    static constexpr std::string_view eos_token = "<eos>";

    /// A vocabulary holding only the two special tokens.
    vocab();

    /// Build from a token stream (e.g. `utf8_chars(text)` for a character-level model or
    /// `words(text)` for a word-level one).
    /// - `min_count`: tokens seen fewer times are left out (they will encode as `unk_id`);
    ///   1 keeps everything.
    /// - `max_size`: upper bound on `size()`, the two special tokens included (so it bounds the
    ///   model's output layer); 0 means unlimited. Must be 0 or >= 2.
    /// Ids are given by count, most frequent first; ties go to the token seen first in the
    /// stream, so the same input always yields the same ids.
    /// Throws value_error for an empty token, a token that is not valid UTF-8 (`save` writes
    /// UTF-8 and `load` checks it), or a bad `max_size`.
    static vocab build(const std::vector<std::string>& tokens, std::size_t min_count = 1, std::size_t max_size = 0);

    std::size_t size() const { return tokens_.size(); }
    /// The id of `token`, or `unk_id` if it is not in the vocabulary.
    int id(std::string_view token) const;
    /// The token with id `id`; throws value_error naming the id and the size if out of range.
    const std::string& token(int id) const;
    bool contains(std::string_view token) const;
    /// All tokens in id order (`tokens()[0] == "<unk>"`, `tokens()[1] == "<eos>"`).
    const std::vector<std::string>& tokens() const { return tokens_; }

    /// Token by token `id()`: unknown tokens become `unk_id`.
    std::vector<int> encode(const std::vector<std::string>& tokens) const;
    /// Token by token `token()`: throws value_error on an id out of range.
    std::vector<std::string> decode(const std::vector<int>& ids) const;

    /// Write to a UTF-8 text file: a header line "seqgrad-vocab 1 <size>", then one token per
    /// line in id order. A backslash is written "\\", a newline "\n" and a carriage return
    /// "\r", so character vocabularies (which contain "\n") survive. The write is atomic: a
    /// temporary file in the same directory is renamed over `path`, so a crash never leaves a
    /// half-written vocabulary; a symbolic link at `path` is written through, as save_npz does.
    /// Throws io_error if the file cannot be written.
    void save(const std::filesystem::path& path) const;
    /// Read a file written by `save`. Checks everything (header, count, escapes, UTF-8, the two
    /// special tokens at ids 0 and 1, no duplicates, no truncation) and throws io_error naming
    /// the file, the line and the problem on a missing, empty or corrupt file (or a directory).
    static vocab load(const std::filesystem::path& path);

    bool operator==(const vocab& other) const { return tokens_ == other.tokens_; }

private:
    explicit vocab(std::vector<std::string> tokens);  // tokens in id order, specials first

    std::vector<std::string> tokens_;
    std::unordered_map<std::string, int, seqgrad::detail::text_string_hash, std::equal_to<>> ids_;
};

/// The replacement character U+FFFD, as UTF-8: what `utf8_chars` yields for invalid bytes.
inline constexpr std::string_view utf8_replacement = "\xEF\xBF\xBD";

/// Split UTF-8 text into code points, each a string of 1 to 4 bytes ("naïve" -> n a ï v e).
/// Invalid input never throws and never crashes: each maximal ill-formed subsequence (a stray
/// continuation byte, a truncated sequence, an overlong form, a surrogate, a value above
/// U+10FFFF) becomes one `utf8_replacement` token, as the Unicode standard recommends (the
/// same rule browsers use). Characters are not normalised: "e" + combining accent stays two.
std::vector<std::string> utf8_chars(std::string_view text);

/// Split text into words: runs of non-whitespace separated by ASCII whitespace, with each of
/// the punctuation characters . , ! ? ; : " ( ) made a token of its own, so
/// "Hello, world!" -> Hello , world !  Apostrophes and hyphens stay inside words ("don't",
/// "well-known"). With `lowercase`, ASCII letters are lowered (other letters are kept as they
/// are, since case mapping beyond ASCII needs locale data this library does not carry). Invalid
/// UTF-8 inside a word is replaced as `utf8_chars` does ("caf\xE9" -> "caf" U+FFFD).
std::vector<std::string> words(std::string_view text, bool lowercase = false);

/// Concatenate characters back into text: the inverse of `utf8_chars` on valid UTF-8.
std::string join_chars(const std::vector<std::string>& chars);

/// Join words with single spaces, but with no space before . , ! ? ; : ) or a closing quote
/// and none after ( or an opening quote (quotes alternate: opening, closing, ...). Undoes
/// `words` on ordinarily spaced text: join_words(words("Hi, (you)!")) == "Hi, (you)!".
std::string join_words(const std::vector<std::string>& words);

/// One batch of `lm_batcher`: time-major, `steps` x `batch` ids with entry (t, b) at
/// index t*batch + b. `targets` is `inputs` shifted one token along each stream.
struct lm_batch {
    std::vector<int> inputs, targets;
    std::size_t steps = 0, batch = 0;

    int input(std::size_t t, std::size_t b) const { return inputs[t * batch + b]; }
    int target(std::size_t t, std::size_t b) const { return targets[t * batch + b]; }
};

/// Cuts one token-id stream into `batch` parallel streams and yields batches of `seq` steps,
/// the classic way (PyTorch word_language_model, char-rnn), for training with state carried
/// from one batch to the next (truncated BPTT).
///
/// With N ids and B streams, each stream gets L = (N-1)/B input positions: stream b reads
/// ids[b*L + j] for j = 0..L-1 and predicts ids[b*L + j + 1]. The tokens after ids[B*L] are
/// dropped. Batch k holds positions j = k*T .. k*T + steps - 1, where steps is T except that
/// the last batch may be shorter. Row b of batch k+1 continues row b of batch k, so the final
/// hidden state of batch k is the right initial state for batch k+1 (and the first input of
/// batch k+1 equals the last target of batch k, row by row).
class lm_batcher {
public:
    /// Throws value_error if `batch` or `seq` is 0 or if there are fewer than B+1 ids (not
    /// even one step per stream); the message names N, B and T.
    lm_batcher(std::vector<int> ids, std::size_t batch, std::size_t seq);

    /// ceil(L / T).
    std::size_t num_batches() const;
    /// Batch k, for k < num_batches(); throws value_error naming k and num_batches() otherwise.
    lm_batch get(std::size_t k) const;

    std::size_t batch_size() const { return batch_; }
    std::size_t seq_len() const { return seq_; }
    /// L, the number of steps in each stream (B*L steps in all, over every batch).
    std::size_t stream_length() const { return len_; }

private:
    std::vector<int> ids_;
    std::size_t batch_, seq_, len_;
};

/// Split an id stream in two: the first round(train_fraction * N) ids for training, the rest
/// for validation. `train_fraction` must be in [0, 1] (value_error otherwise).
std::pair<std::vector<int>, std::vector<int>> split_ids(const std::vector<int>& ids, double train_fraction);

}  // namespace nn
}  // namespace seqgrad
