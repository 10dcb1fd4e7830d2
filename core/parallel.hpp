#pragma once
// Execution helpers built on the executor: data-parallel training within one process, and
// streaming truncated BPTT over long sequences.
#include <functional>
#include <utility>
#include <vector>

#include "tape.hpp"

namespace seqgrad {

/// Data parallelism: f(t, i) builds the loss of part i (e.g. a slice of the minibatch) on its own
/// tape t. Forward and backward of the parts run concurrently on the executor's threads; their
/// parameter gradients are then added into the stores in part order, so the result does not depend
/// on the thread count or the schedule. Returns the sum of the parts' losses.
/// Clipping belongs to the summed gradient: apply optim::clip_global_norm afterwards (a plan
/// with clipping is rejected here). A plan that reads the steps' gradients after the sweep
/// (record_gradient_flow) is rejected too: it describes one tape, and each part has its own.
double data_parallel(std::size_t parts, const std::function<expr(tape&, std::size_t)>& f, dtype dt = dtype::f32,
                     const backward_plan& plan = {});

/// Streaming (stateful) truncated BPTT over a long stream: one tape, reused chunk after chunk.
///
///   sg::tbptt_stream stream;
///   for (auto& chunk : chunks) {
///       auto carried = stream.begin();   // clears the tape; the last chunk's state as inputs
///       sg::tape& t = stream.tape();
///       ... forward k1 steps from carried (or a zero state on the first chunk) ...
///       t.backward(loss);  opt.step();
///       stream.carry({h, c});            // values only: no gradient flows into the old chunk
///   }
///
/// begin() clears the tape, so every expr of the previous chunk becomes stale: using one, or
/// backpropagating into it, throws graph_error instead of keeping old chunks alive. Memory stays
/// flat however long the stream.
class tbptt_stream {
public:
    explicit tbptt_stream(dtype dt = dtype::f32) : tape_(dt) {}
    /// Start a chunk; returns the carried state as fresh inputs (empty before the first carry).
    std::vector<expr> begin();
    /// Record the values of the state at the end of the current chunk.
    void carry(std::span<const expr> state);
    void carry(std::initializer_list<expr> state) { carry(std::span<const expr>(state.begin(), state.size())); }
    /// Drop the carried state (e.g. at a document boundary).
    void reset() { carried_.clear(); }
    /// The carried state's values, as the next begin() will input them (empty before the first
    /// carry and after reset()): what a checkpoint saves so that a resumed stream goes on from the
    /// same state rather than from zeros.
    const std::vector<xt::xarray<double>>& carried() const { return carried_; }
    /// Replace the carried state with values carried() gave (e.g. loaded from a checkpoint).
    void set_carried(std::vector<xt::xarray<double>> state) { carried_ = std::move(state); }
    seqgrad::tape& tape() { return tape_; }
    std::size_t chunks() const { return chunks_; }

private:
    seqgrad::tape tape_;
    std::vector<xt::xarray<double>> carried_;
    std::size_t chunks_ = 0;
};

}  // namespace seqgrad
