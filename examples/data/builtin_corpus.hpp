#pragma once
// A small corpus of real English text, compiled into the char_lm example (not into the library).
#include <span>
#include <string_view>

namespace seqgrad::examples {

/// About 55 KB of public-domain English prose and verse (King James Bible passages, Shakespeare
/// sonnets, the Declaration of Independence, Lincoln's Gettysburg Address, Aesop's fables),
/// ASCII only, lines ending in "\n", works separated by a blank line.
///
/// It exists so that char_lm, the README's first command, trains on real text on any machine with
/// no download and no data file to find: about 70 distinct characters (a small softmax) and enough
/// structure (words, verse, punctuation) for a model to show it learns. It is far too small to
/// learn English well; for that, read a larger corpus from disk (char_lm --data).
///
/// The view points into static storage built on the first call (thread-safe) and stays valid
/// until the program ends.
std::string_view builtin_corpus();

namespace detail {
/// The works of each family, in order (builtin_corpus_<family>.cpp).
std::span<const std::string_view> corpus_scripture();
std::span<const std::string_view> corpus_sonnets();
std::span<const std::string_view> corpus_prose();
}  // namespace detail

}  // namespace seqgrad::examples
