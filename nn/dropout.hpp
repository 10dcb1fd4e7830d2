#pragma once
// Dropout for recurrent nets. Every function here reads the tape's mode (tape::set_training): in
// training it draws a mask, in evaluation (the default) it returns its input unchanged (the same
// expr, no node), except zoneout, which returns its expectation. Masks are drawn from the tape's
// seed and a per-tape draw counter (tape::set_seed), never from a global generator: a run is
// reproducible under its seeds and gives the same masks on any number of threads.
//
//     t.set_training(true);
//     t.set_seed(step);                                       // new masks every training step
//     nn::locked_dropout drop_in(t, 0.25, {B, E});            // one mask for the whole sequence
//     for (k ...) s = cell(drop_in(xs[k]), s);                // reused at every step
//
// What each one drops:
//   dropout             entries of any expr, a fresh mask per call (Srivastava et al. 2014)
//   locked_dropout      one mask per sequence reused at every step: variational dropout on inputs,
//                       outputs and the recurrent state (Gal & Ghahramani 2016)
//   embedding_dropout   whole rows of an embedding table: every occurrence of a word (ibid.)
//   drop_connect        entries of a weight matrix, once per sequence: on w_hh this is the
//                       weight-dropped LSTM of AWD-LSTM (Merity et al. 2017); weight_dropped_lstm
//                       wires it in
//   zoneout             state units keep their previous value (Krueger et al. 2017)
// Stacked nets take dropout between layers through stacked::dropout, bidirectional layers on
// their outputs through bidirectional::dropout (PyTorch's nn.LSTM(dropout=)).
#include <cstdint>

#include "../core/tape.hpp"
#include "cells.hpp"

namespace seqgrad::nn {

/// Inverted dropout: in training each entry is zeroed with probability p and the others scaled by
/// 1 / (1 - p), so the expectation is x; a fresh mask per call. p in [0, 1) (value_error else).
expr dropout(const expr& x, double p);

/// Variational (locked) dropout: one mask of mask_shape (e.g. [B, H]) drawn at construction and
/// applied to every x it is called on: per step x [B, H], or all steps at once x [T*B, H] (the mask
/// repeats over the leading rows). Default-constructed, or with p = 0 or in evaluation, it is the
/// identity.
class locked_dropout {
public:
    locked_dropout() = default;
    locked_dropout(tape& t, double p, const shape& mask_shape);
    /// x * mask / (1 - p); shape_error unless x's trailing dims are mask_shape's, the first of them
    /// possibly a multiple of mask_shape's first (leading dims and stacked rows repeat the mask, so
    /// every entry of x meets one mask entry at every step).
    expr operator()(const expr& x) const;
    bool active() const { return active_; }

private:
    double p_ = 0;
    shape mask_;
    std::uint64_t seed_ = 0, draw_ = 0;
    bool active_ = false;
};

/// Drops whole rows of an embedding table [V, E] (words) with probability p, the rest scaled by
/// 1 / (1 - p). Apply once per sequence, then gather (gather_rows or nn::embedding).
expr embedding_dropout(const expr& table, double p);

/// DropConnect on a weight (Wan et al. 2013): dropout of its entries with one mask per call. Call
/// it once per sequence and use the result at every step.
expr drop_connect(const expr& w, double p);

/// An lstm_cell whose recurrent weights w_hh are dropped with one mask for the whole sequence
/// (AWD-LSTM). Build one per sequence (per tape); it then works with unroll like the cell.
struct weight_dropped_lstm {
    lstm_cell cell;
    expr w_hh;  ///< drop_connect(t.param(cell.w_hh), p)

    weight_dropped_lstm(tape& t, const lstm_cell& c, double p);
    lstm_state initial_state(tape& t, std::size_t batch) const { return cell.initial_state(t, batch); }
    lstm_state operator()(const expr& x, const lstm_state& s) const;
};

/// Zoneout: in training each unit of the result is prev with probability z and next otherwise, a
/// fresh mask per call; in evaluation z * prev + (1 - z) * next. z in [0, 1).
expr zoneout(const expr& prev, const expr& next, double z);
/// Separate rates for h and c, as Krueger et al. use for LSTMs (0.05 on h and 0.5 on c for char LMs).
lstm_state zoneout(const lstm_state& prev, const lstm_state& next, double z_h, double z_c);

/// A cell with zoneout on its state: works with unroll, stacked and the rest like the cell.
template <class Cell>
struct zoneout_cell {
    Cell cell;
    double z_h = 0, z_c = 0;  ///< z_c is used by LSTM states only

    template <class State>
    State operator()(const expr& x, const State& s) const {
        if constexpr (std::is_same_v<State, lstm_state>) return zoneout(s, cell(x, s), z_h, z_c);
        else return zoneout(s, cell(x, s), z_h);
    }
    auto initial_state(tape& t, std::size_t batch) const { return cell.initial_state(t, batch); }
};
template <class Cell>
zoneout_cell(Cell, double, double) -> zoneout_cell<Cell>;

}  // namespace seqgrad::nn
