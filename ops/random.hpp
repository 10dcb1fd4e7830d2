#pragma once
// Random masks: the one op behind the dropout family of nn/dropout.hpp (use those functions; they
// know the tape's training mode and seed).
#include <cstdint>

#include "../core/tape.hpp"

namespace seqgrad {

/// Where one mask entry applies and how it is drawn.
struct mask_spec {
    std::uint64_t seed = 0, draw = 0;  ///< the mask is a function of these alone (and of j)
    double drop = 0.5;                 ///< probability that an entry is dropped
    double scale = 2.0;                ///< value of a kept entry (1 / (1 - drop) for inverted dropout)
    std::size_t inner = 1;             ///< consecutive entries sharing one mask entry (a row of a table)
    std::size_t period = 0;            ///< mask entries before the mask repeats (0: never)
};

/// x * m, with m[i] = keep(seed, draw, (i / inner) % period) ? scale : 0: a stateless
/// counter-based draw, so the same spec gives the same mask on any thread, and backward redraws
/// it instead of storing it.
expr random_mask(const expr& x, const mask_spec& spec);
/// Whether entry j of the mask (seed, draw) with drop probability p is kept.
bool mask_keeps(std::uint64_t seed, std::uint64_t draw, std::uint64_t j, double p);

}  // namespace seqgrad
