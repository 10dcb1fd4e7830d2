#pragma once
// Graph transforms: what backward does to the recorded, unrolled graph besides plain
// backpropagation (the independent work they expose runs on the executor, executor.hpp).
//
//   t.backward(loss, sg::truncate_bptt(35) | sg::clip_state_gradient(1.0) | sg::clip_global_norm(5.0));
//
// A transform is a value implementing the small `transform` interface below; a backward_plan is an
// ordered pipeline of them, built with `|`. The built-ins (truncate_bptt, the clipping family,
// record_gradient_flow) are written against the same public interface a user's transform uses:
//
//   struct scale_state_edges : sg::transform {            // e.g. damp what flows back in time
//       double s;
//       explicit scale_state_edges(double s) : s(s) {}
//       std::string name() const override { return "scale_state_edges"; }
//       bool edits_state_edges() const override { return true; }
//       void on_state_edge(const sg::state_edge&, sg::gradient_ref g) const override {
//           g.visit([&](auto span) { for (auto& v : span) v *= s; });
//       }
//   };
//   t.backward(loss, sg::make_transform<scale_state_edges>(0.9) | sg::clip_global_norm(5.0));
//
// State edges are recorded explicitly while the graph is built: nn::unroll (and everything built
// on it: stacked, bidirectional, encode_decode, generate) opens each step with
// step_scope(t, step, state_from), saying that values of step `state_from` read in this step are
// the recurrent state passed on. So the edges of a reverse-direction run (k + 1 -> k) and of every
// layer of a stack are known as such, not guessed from step order.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "errors.hpp"
#include "executor.hpp"
#include "shape.hpp"

namespace seqgrad {

class tape;

/// Filled by record_gradient_flow: ||dL/dh_t|| for every time step t, over the nodes marked as
/// recurrent states with tape::mark_state (nn::unroll and nn::generate mark each step's
/// nn::flow_state: its hidden state, a stack's top layer's; both directions of a bidirectional
/// layer count at the position they read). Steps without a marked state, or that the gradient did
/// not reach, read 0.
struct gradient_flow {
    std::vector<double> norm;
};

/// What a backward pass did.
struct backward_stats {
    /// Global L2 norm of this pass's parameter gradients before clipping (computed only when the
    /// plan has clip_global_norm; 0 otherwise).
    double grad_norm = 0;
    bool clipped = false;
    /// Independent pieces the backward was cut into: truncation windows, or groups marked with
    /// group_scope (the directions of a bidirectional layer); 1 otherwise.
    std::size_t windows = 1;
    /// Whether the pieces ran as separate passes (parallel when threads allow).
    bool parallel = false;
};

/// A gradient buffer of a tape's scalar type, handed to a transform to read or change in place.
struct gradient_ref {
    dtype dt = dtype::f32;
    void* data = nullptr;
    std::size_t size = 0;
    /// f(std::span<float>) or f(std::span<double>), by the tape's scalar type.
    template <class F>
    decltype(auto) visit(F&& f) const {
        if (dt == dtype::f32) return f(std::span<float>(static_cast<float*>(data), size));
        return f(std::span<double>(static_cast<double*>(data), size));
    }
};

/// A recorded state edge: `consumer`, a node of step `to_step`, reads `state`, a value of step
/// `from_step` passed on as the recurrent state (node ids on the tape).
struct state_edge {
    std::uint32_t state = 0, consumer = 0;
    int from_step = -1, to_step = -1;
};

/// One parameter's gradient from this backward, before it is added into the parameter.
struct parameter_gradient {
    std::string_view name;
    gradient_ref grad;
};

/// The interface of a backward transform. Every hook has a default that does nothing; a transform
/// overrides the ones it needs. Transforms are immutable values shared by the plans that hold them:
/// hooks are const, and on_state_edge may run concurrently in the passes of different windows or
/// directions (write results through members that are safe for that, as record_gradient_flow's
/// output is written once, after the sweep).
class transform {
public:
    virtual ~transform() = default;
    /// For messages: "truncate_bptt(35)".
    virtual std::string name() const = 0;
    /// Partition: windows of k1 time steps whose losses send gradients back at most k2 steps
    /// ({0, 0}: none). Windows are swept as separate passes. At most one transform of a plan may
    /// partition.
    virtual std::pair<std::size_t, std::size_t> windows() const { return {0, 0}; }
    /// Whether on_state_edge is to be called (contributions along state edges then go through a
    /// scratch buffer first).
    virtual bool edits_state_edges() const { return false; }
    /// A contribution crossing a recorded state edge, before it is added to the state's gradient.
    virtual void on_state_edge(const state_edge&, gradient_ref) const {}
    /// After the sweep: every node's gradient is final and readable (tape::grad, gradient_at),
    /// but for time-stepped nodes' on a checkpointed tape, released during the sweep.
    virtual void after_sweep(const tape&) const {}
    /// Whether after_sweep reads time-stepped nodes' gradients: refused on a checkpointed tape.
    virtual bool reads_step_gradients() const { return false; }
    /// Whether on_parameters changes the gradients (data_parallel refuses such plans: clipping
    /// belongs to the gradient summed over the parts).
    virtual bool edits_parameters() const { return false; }
    /// This backward's parameter gradients (in tape order), before they reach the parameters.
    /// Runs in pipeline order, after after_sweep.
    virtual void on_parameters(std::span<const parameter_gradient>, backward_stats&) const {}
    /// Steps per checkpoint segment (0: none): what the tape keeps while recording. Only a plan
    /// set on the tape before recording (tape::set_plan) can checkpoint.
    virtual std::size_t checkpoint_segment() const { return 0; }
};

/// An ordered pipeline of transforms; empty: plain backpropagation through time.
class backward_plan {
public:
    backward_plan() = default;
    backward_plan(std::shared_ptr<const transform> t) {
        if (!t) throw value_error("backward_plan: null transform");
        steps_.push_back(std::move(t));
    }
    std::span<const std::shared_ptr<const transform>> transforms() const { return steps_; }
    bool empty() const { return steps_.empty(); }
    /// a's transforms, then b's. Throws value_error if both partition (two truncations).
    friend backward_plan operator|(backward_plan a, const backward_plan& b);

private:
    std::vector<std::shared_ptr<const transform>> steps_;
};

/// A plan of one transform of type T built from args.
template <class T, class... Args>
backward_plan make_transform(Args&&... args) {
    return backward_plan(std::make_shared<const T>(std::forward<Args>(args)...));
}

// ---- built-in transforms -------------------------------------------------------------------------

/// Truncated BPTT: every k1 steps, the losses of those k1 steps send gradients back at most k2
/// steps (k1 <= k2; k2 = 0 means k2 = k1): window w, steps [w k1, (w + 1) k1), reaches back to step
/// (w + 1) k1 - k2, k2 - k1 steps before it, a last shorter window too. k2 >= the number of steps
/// rounded up to a multiple of k1 is full BPTT, exactly.
backward_plan truncate_bptt(std::size_t k1, std::size_t k2 = 0);
/// Scale this pass's parameter gradients so their global L2 norm is at most max_norm (see
/// clip_by_global_norm for the rules, shared with optim::clip_global_norm).
backward_plan clip_global_norm(double max_norm);
/// Clamp this pass's parameter gradients to [-c, c] (c > 0; +inf leaves them alone).
backward_plan clip_value(double c);
/// Clamp, elementwise, the gradient flowing back along every recorded state edge (Graves 2013) to
/// [-c, c]: both directions of a bidirectional layer, every layer of a stack. Each reading op's
/// contribution is clamped on its own (a GRU reads h in two: up to 2c crosses its edge).
backward_plan clip_state_gradient(double c);
/// Fill `out` with ||dL/dh_t|| per step (see gradient_flow); refused on a checkpointed tape.
backward_plan record_gradient_flow(gradient_flow& out);
/// Memory-bounded full BPTT (Chen et al. 2016; Gruslys et al. 2016): while recording, the values
/// of time-stepped nodes live in one block per `segment` steps, released once recording is two
/// segments further on; only values read across segments (the recurrent state at segment
/// boundaries, per-step losses summed outside the steps) are kept. Backward recomputes each
/// segment from its kept inputs just before sweeping it. With segment ~ sqrt(T), step memory is
/// O(sqrt T) instead of O(T), for one more forward pass. Set it on the tape before recording:
///
///     sg::tape t;
///     t.set_plan(sg::checkpoint_bptt(100));   // then build the unrolled graph as usual
///     t.backward(loss);
///
/// Values are recomputed bitwise, so the gradients equal plain BPTT's; with graph optimisations
/// on, the weight-gradient products are summed per segment instead of over all steps at once
/// (equal up to rounding; bitwise equal with set_graph_optimizations(false)). Reading a released
/// value (tape::value, or an op recorded later) recomputes its segment. Gradients of time-stepped
/// nodes are released with their segment (tape::grad of one reads zeros): parameters, leaves and
/// untimed nodes keep theirs. It does not combine with truncate_bptt, group_scope passes or
/// record_gradient_flow (refused). Under it a sequence's input products are each step's own (not
/// one GEMM over all steps, whose result would be kept whole). Per-step terms recorded after the
/// whole unroll (losses summed last) are met first by the sweep: their segments are recomputed for
/// them, released again once the sweep has passed them (their gradients kept), and recomputed once
/// more for their own steps: a third forward, for memory that stays that of a few segments plus the
/// states' gradients. Recording each term next to its step saves the third.
backward_plan checkpoint_bptt(std::size_t segment);

// ---- the clipping kernels (one implementation, used by the plans and by optim/clip.hpp) ----------

struct clip_result {
    double norm = 0;  // the global norm before clipping
    bool clipped = false;
};
/// As torch.nn.utils.clip_grad_norm_: the global L2 norm of all the gradients (in double, a fixed
/// summation order: the same bits for any thread count); if it exceeds max_norm, every entry is
/// multiplied by max_norm / (norm + 1e-6). A NaN or infinite norm leaves the gradients as they are
/// (and is returned for the caller to act on); max_norm = +inf only measures. Throws value_error
/// naming `who` unless max_norm > 0.
clip_result clip_by_global_norm(std::span<const gradient_ref> grads, double max_norm,
                                const char* who = "clip_global_norm");
/// Clamp every entry to [-c, c] (NaN entries stay NaN), as torch.nn.utils.clip_grad_value_;
/// returns whether any entry changed. Throws value_error naming `who` unless c > 0.
bool clip_by_value(std::span<const gradient_ref> grads, double c, const char* who = "clip_value");

}  // namespace seqgrad
