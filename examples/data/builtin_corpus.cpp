// The built-in corpus of examples/char_lm: about 55 KB of English prose and verse, so that the
// character-level language-model example trains on real text without downloading anything.
//
// Contents, all in the public domain (transcribed from memory, so small departures from the
// printed editions are possible; spelling modernised in places; ASCII only):
//   - the King James Bible (1611): Genesis 1-3, Psalms 1, 23, 100 and 121, Ecclesiastes 1-3
//     (selected verses of chapter 2), Matthew 5:3-16 and 6 (selected verses),
//     1 Corinthians 13;
//   - twenty sonnets of William Shakespeare (1609);
//   - the United States Declaration of Independence (1776), one passage left out;
//   - Abraham Lincoln's Gettysburg Address (1863) and the close of his Second Inaugural (1865);
//   - thirteen of Aesop's fables, retold in plain words for seqgrad; this retelling is dedicated to
//     the public domain.
// Each work is one raw string literal, in a file per family (scripture, sonnets, prose), joined
// once on first use.
#include "builtin_corpus.hpp"

#include <string>

namespace seqgrad::examples {

std::string_view builtin_corpus() {
    static const std::string text = [] {
        std::string all;
        for (auto family : {detail::corpus_scripture(), detail::corpus_sonnets(), detail::corpus_prose()})
            for (auto p : family) all += p;
        return all;
    }();
    return text;
}

}  // namespace seqgrad::examples
