#pragma once
// The tape (computation graph) and the expr handles that user code holds.
//
// A tape is a flat, append-only vector of nodes in creation order, which is already a topological
// order; backward is one reverse loop over it, never a recursive walk. Values and gradients live
// in arenas owned by the tape: building a node in steady state allocates nothing, and clear()
// (or a new tape, whose blocks come from a process-wide pool) reuses the memory.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <xtensor/xarray.hpp>

#include "op.hpp"
#include "parameter.hpp"
#include "transforms.hpp"

namespace seqgrad {

class tape;

namespace detail {

/// Bump allocator over blocks recycled through a process-wide pool.
class arena {
public:
    arena() = default;
    arena(const arena&) = delete;
    arena& operator=(const arena&) = delete;
    ~arena();
    /// 64-byte aligned, uninitialised.
    void* alloc(std::size_t bytes) {
        bytes = (bytes + 63) / 64 * 64;
        // Inline: a cheap node's value and gradient come from here (bench/overhead).
        if (cur_ < blocks_.size() && off_ + bytes <= blocks_[cur_].size) [[likely]] {
            void* p = blocks_[cur_].p + off_;
            off_ += bytes;
            return p;
        }
        return alloc_slow(bytes);
    }
    template <class T>
    T* alloc_n(std::size_t n) {
        return static_cast<T*>(alloc(n * sizeof(T)));
    }
    /// Forget every allocation but keep the blocks.
    void reset() {
        cur_ = 0;
        off_ = 0;
    }
    std::size_t reserved() const;
    /// Whether p points into one of this arena's blocks.
    bool contains(const void* p) const;

private:
    void* alloc_slow(std::size_t bytes);
    struct block {
        std::byte* p;
        std::size_t size;
    };
    std::vector<block> blocks_;
    std::size_t cur_ = 0, off_ = 0;
};

enum class node_kind : std::uint8_t { op, input, parameter, constant };

struct node {
    const op_def* op = nullptr;  // null for leaves
    void* value = nullptr;       // float* or double*, by the tape's dtype
    void* grad = nullptr;        // allocated during backward, for nodes on a path to the root
    seqgrad::shape shp;
    const attrs* at = &no_attrs;    // on the tape's arena; shared no_attrs for most ops (a smaller node)
    std::uint32_t first_input = 0;  // into tape's input-id vector
    std::uint32_t num_inputs = 0;
    std::int32_t step = -1;        // time step mark (-1: none)
    std::int32_t group = -1;       // independent-part mark (group_scope; -1: none)
    std::int32_t state_from = -1;  // values of this step read by the node are recurrent state (-1: none)
    node_kind kind = node_kind::op;
    bool requires_grad = false;
    bool is_state = false;     // a recurrent state (tape::mark_state), for gradient-flow records
    bool view = false;         // value aliases input 0's memory (op_def::view_offset)
    bool memo_served = false;  // value read from a batched product (tape::batched_product)
    bool evicted = false;      // checkpointing: value released with its segment (recomputable)
    bool kept = false;         // checkpointing: value copied out of its segment (read across segments)
    // A record read by an op that is not a record reader, or a backward's root
    // (op_def::record_reader; set when backward starts, by mark_record_readers).
    bool other_reader = false;
    // saves (op.hpp): read: an op has read the value; saved: a backward will (a consumer that
    // saves inputs, or the node's own op saving its output); aliased: a view points into it;
    // released: its memory went back to the tape's free list (recomputed when read again).
    // shared: read by more than one op (or twice by one), so its gradient sums several parts.
    bool read = false, saved = false, aliased = false, released = false, shared = false;
    param_data* param = nullptr;      // parameter leaves
    std::uint64_t param_version = 0;  // parameter leaves: param->version when the tape read it
};

/// A record (op_def::record_state_rows) whose internal rows' gradient nobody writes.
inline bool internal_unread(const node& m) { return m.op && m.op->record_state_rows > 0 && !m.other_reader; }

template <class T>
class backward_engine;

/// The engine's side of backward_ctx::target (op.hpp): an op that does not accumulate asking for a
/// target that holds an earlier contribution gets scratch, which the engine adds in afterwards.
template <class T>
struct scratch_source {
    tape* t;
    const std::uint32_t* ins;
    tensor_ref<T>* targets;
    bool* acc;
    T** pending;
    arena* mem;
    fold_slot<T>* folds;  // backward_ctx::folds
    std::vector<void*>* g;
    static void swap(void* self, std::size_t j);
    static void unfold(void* self, std::size_t j);
};

/// Folding activations into their readers' backward (core/backward_fold.hpp), on by default under
/// the graph optimisations; a process-wide switch for debugging and for measuring it.
void set_activation_folding(bool on);
bool activation_folding();
/// Runs of a recurrence's step nodes swept as one call (op_builder::chain; lstm_step's rows through
/// all steps in one parallel region), on by default under the graph optimisations.
void set_recurrence_chains(bool on);
bool recurrence_chains();

/// Tape identity: a slot in a never-freed table whose generation changes when the tape is
/// cleared or destroyed, so that a stale expr is detected without touching freed memory.
extern std::atomic<std::uint64_t> slot_gen[];
inline std::uint64_t slot_generation(std::uint32_t slot) noexcept {
    return slot_gen[slot].load(std::memory_order_acquire);
}

}  // namespace detail

/// A handle to a node on a tape. Copyable and cheap; using one whose tape was cleared or destroyed throws graph_error.
class expr {
public:
    expr() = default;
    /// The tape this expr belongs to; throws graph_error if it is gone or was cleared.
    tape& owner() const {
        if (t_ && detail::slot_generation(slot_) == gen_) [[likely]]
            return *t_;
        stale();
    }
    std::uint32_t id() const { return id_; }
    /// By value: a reference into the tape would dangle once more nodes are added.
    seqgrad::shape shape() const;
    bool valid() const noexcept { return t_ && detail::slot_generation(slot_) == gen_; }

private:
    friend class tape;
    [[noreturn]] void stale() const;
    expr(tape* t, std::uint32_t id, std::uint32_t slot, std::uint64_t gen) : gen_(gen) {
#if defined(__GNUC__) && defined(__SSE2__)
        // The first 16 bytes in one store: a caller copies the expr an op returns right away (h =
        // tanh(h + x)), with a 16-byte load, which cannot take its bytes from three narrower
        // stores still in flight and waits for them (store-to-load forwarding: 17% of
        // bench/overhead's time went to two such copies a pair of nodes).
        using pair = std::uint64_t __attribute__((vector_size(16)));
        const pair v{reinterpret_cast<std::uintptr_t>(t), std::uint64_t(id) | std::uint64_t(slot) << 32};
        static_assert(offsetof(expr, t_) == 0 && offsetof(expr, id_) == 8 && offsetof(expr, slot_) == 12);
        std::memcpy(static_cast<void*>(this), &v, sizeof v);
#else
        t_ = t;
        id_ = id;
        slot_ = slot;
#endif
    }
    tape* t_ = nullptr;
    std::uint32_t id_ = 0;
    std::uint32_t slot_ = 0;
    std::uint64_t gen_ = 0;
};

/// The computation graph of one forward pass (one training step).
class tape {
public:
    explicit tape(dtype dt = dtype::f32);
    ~tape();
    tape(const tape&) = delete;
    tape& operator=(const tape&) = delete;

    dtype scalar_type() const { return dt_; }

    // ---- leaves -------------------------------------------------------------------------------
    /// A constant input (copied onto the tape, converted to the tape's scalar type). With
    /// requires_grad its gradient is kept and readable with grad() after backward.
    expr input(const xt::xarray<double>& v, bool requires_grad = false);
    expr input(const xt::xarray<float>& v, bool requires_grad = false);
    /// Raw row-major data of the given shape.
    template <class T>
    expr input(const seqgrad::shape& shp, std::span<const T> data, bool requires_grad = false);
    /// A tensor filled with one value.
    expr constant(double value, const seqgrad::shape& shp = {});
    /// A parameter used on this tape. One leaf per parameter per tape: every use shares it, and
    /// backward adds its total gradient into the parameter's grad once.
    ///
    /// The leaf reads the parameter's storage without a copy and records its version. If the
    /// parameter is written afterwards (assign, an initialiser, load_npz, an optimiser step,
    /// parameter_store::to, or any write followed by parameter::mark_modified) while this tape
    /// still holds it, the values already computed from it are stale: param() again, an op reading
    /// the leaf, reading the leaf's value, and backward() then throw graph_error naming the
    /// parameter. Values of other nodes stay readable (they are what the forward computed). The
    /// usual loop (build, backward, optimiser step, then clear() or a new tape) is unaffected.
    expr param(const parameter& p);

    // ---- ops ----------------------------------------------------------------------------------
    /// Add a node applying op to inputs (all on this tape) and compute its value now.
    expr apply(const op_def& op, std::span<const expr> inputs, const attrs& at = no_attrs);
    expr apply(const op_def& op, std::initializer_list<expr> inputs, const attrs& at = no_attrs) {
        return apply(op, std::span<const expr>(inputs.begin(), inputs.size()), at);
    }

    // ---- backward -----------------------------------------------------------------------------
    /// Reverse-mode sweep from a scalar root: gradients of every node on a path from a leaf that
    /// requires a gradient, parameter gradients accumulated into the store. Calling it again
    /// recomputes from scratch (tape gradients are reset; parameter gradients add up again).
    /// The plan adds transforms (truncation, clipping, records; see transforms.hpp).
    backward_stats backward(const expr& root, const backward_plan& plan = {});
    /// The same from a non-scalar root, with the seed d(loss)/d(root) (float: an f32 tape's, unconverted).
    backward_stats backward(const expr& root, const xt::xarray<double>& seed, const backward_plan& plan = {});
    backward_stats backward(const expr& root, const xt::xarray<float>& seed, const backward_plan& plan = {});
    /// Keep parameter-leaf gradients on the tape instead of adding them to the store (for
    /// reductions in a fixed order across tapes: call accumulate_param_grads() later).
    void set_accumulate_into_parameters(bool on) { accumulate_params_ = on; }
    /// Add this tape's parameter-leaf gradients (from the last backward) into the store.
    void accumulate_param_grads();
    /// Called during backward once per parameter leaf that gets a gradient, as soon as that
    /// gradient is final (the sweep has passed every node reading it), with the leaf's gradient
    /// (parameter-shaped, the tape's scalar type), before the plan's clipping and before the store
    /// gets it: work on finished gradients (dist::reducer sends them) overlaps the rest of the
    /// sweep. With `final` (the hook takes the step's result: dist::reducer), backward refuses a
    /// plan that edits parameter gradients (clipping), whose edit would reach no one.
    using param_grad_hook = std::function<void(const parameter& p, const void* grad)>;
    void set_param_grad_hook(param_grad_hook h, bool final = false);
    /// Mark e as the recurrent state of its time step (nn::unroll does this for every step).
    void mark_state(const expr& e);
    /// A plan of transforms that applies to every backward of this tape (before the one passed to
    /// backward), set before recording when it changes what is recorded: checkpoint_bptt.
    void set_plan(const backward_plan& p);
    const backward_plan& plan() const { return plan_; }
    /// Steps per checkpoint segment of the plan (checkpoint_bptt), 0 when not checkpointing.
    std::size_t checkpoint_segment() const { return ckpt_; }
    /// Gradient of a parameter leaf on this tape after backward (zeros if it had none).
    xt::xarray<double> param_grad(const parameter& p) const;

    // ---- reading ------------------------------------------------------------------------------
    xt::xarray<double> value(const expr& e) const;
    /// Value of a one-element expr.
    double item(const expr& e) const;
    /// The value in place, without a copy (T must be the tape's scalar type).
    template <class T>
    tensor_ref<const T> data(const expr& e) const;
    /// Gradient after backward (zeros for a node the gradient did not reach).
    xt::xarray<double> grad(const expr& e) const;
    /// The gradient of node id in place (null data for a node the gradient did not reach).
    gradient_ref gradient_at(std::uint32_t id) const;
    bool has_grad(const expr& e) const;

    // ---- time steps, checks, inspection -------------------------------------------------------
    /// Nodes added from now on belong to time step s (-1: none); with state_from >= 0, what they
    /// read from step state_from is the recurrent state passed on to them: those reads are the
    /// graph's state edges (see transforms.hpp). nn::unroll sets both for every step. Throws
    /// value_error for a step below -1, or a state_from that is not another step >= 0 of a timed one.
    void set_step(int s, int state_from = -1);
    int step() const { return step_; }
    int state_from() const { return state_from_; }
    /// Nodes added from now on belong to independent part g (-1: none), e.g. the two directions of
    /// a bidirectional layer. When the parts share nothing but untimed inputs and outputs, backward
    /// sweeps each in a pass of its own, concurrently (see transforms.hpp).
    void set_group(int g) { group_ = g; }
    int group() const { return group_; }
    /// Graph optimisations on this tape (see set_graph_optimizations); for debugging and for the
    /// tests that hold the optimised graph equal to the plain one.
    void set_optimize(bool on) { optimize_ = on; }
    bool optimize() const { return optimize_; }
    /// What the graph optimisations did on this tape since clear(): whether a cell of your own got
    /// the fast paths. products_batched: products whose value was served from one GEMM over all
    /// steps' rows; table_products: those served from a lookup table times the weight (an
    /// embedding); gradient_homes: products whose gradients the last backward laid out in one block;
    /// products_transposed: a step's products by a weight's transpose read from one transposed
    /// (and packed) copy; gradients_transposed: a step's products x W whose input-side gradient
    /// G W^T the last backward read from one transposed (and packed) copy of W;
    /// activations_folded: activations whose backward the last backward folded into their
    /// reader's (op_builder::derivative_of_output); steps_chained: step nodes whose backward the
    /// last backward ran as runs of a recurrence (op_builder::chain).
    struct optimization_counts {
        std::size_t products_batched = 0, table_products = 0, gradient_homes = 0, products_transposed = 0,
                    gradients_transposed = 0, activations_folded = 0, steps_chained = 0, handed_over = 0;
    };
    const optimization_counts& optimizations() const { return opt_counts_; }
    /// Training mode. nn::dropout and its kin (nn/dropout.hpp) draw random masks only when on; off
    /// (the default: evaluation, inference) each is the identity (zoneout: its expectation).
    void set_training(bool on) { training_ = on; }
    bool training() const { return training_; }
    /// Seed of the random masks drawn on this tape. The k-th mask drawn after set_seed is a
    /// function of (seed, k) alone, so masks do not depend on threads. Give each training step
    /// its own seed (e.g. the step number), or every step draws the same masks.
    void set_seed(std::uint64_t s) {
        seed_ = s;
        draws_ = 0;
    }
    std::uint64_t seed() const { return seed_; }
    /// The number of the next mask drawn (counts up from 0 after set_seed).
    std::uint64_t next_draw() { return draws_++; }
    /// When on, every forward value and backward gradient is checked for NaN/Inf and the first
    /// node producing one is named in a numeric_error. Leaves (inputs, constants, parameters) are
    /// checked as they enter the tape, so a non-finite one is blamed on itself ("parameter enc.w",
    /// "input n3") and not added.
    void set_check_finite(bool on) { check_finite_ = on; }
    /// "tanh(n12)", "matmul(n3, encoder.w_ih)"; the same printer serves errors and graph dumps.
    std::string describe(std::uint32_t id) const;
    /// Short name of a node: parameter name for parameter leaves, else "n<id>".
    std::string short_name(std::uint32_t id) const;
    std::size_t size() const { return nodes_.size(); }
    const detail::node& node_at(std::uint32_t id) const { return nodes_[id]; }
    /// The node whose memory the view `id` reads (id itself when it is not a view).
    std::uint32_t view_base(std::uint32_t id) const {
        while (nodes_[id].view) id = input_ids_[nodes_[id].first_input];
        return id;
    }
    /// The inputs of node id; input j of e's node as an expr (for rewrites that read a graph).
    std::span<const std::uint32_t> inputs_of(std::uint32_t id) const {
        return {input_ids_.data() + nodes_[id].first_input, nodes_[id].num_inputs};
    }
    expr operand(const expr& e, std::size_t j);
    /// Drop every node (existing exprs become stale) and keep the memory for reuse.
    void clear();
    /// Bytes held by the tape's arenas.
    std::size_t bytes_reserved() const;
    /// Values released because no backward reads them (see saves in op.hpp), and values
    /// recomputed because something read a released one again; both count from the last clear().
    std::size_t values_released() const { return released_count_; }
    std::size_t values_recomputed() const { return recomputed_count_; }
    /// Debugging the saves declarations: released values are also overwritten with NaN before
    /// their memory is reused, and at backward every value no backward reads is poisoned (inputs
    /// included), so an op whose backward reads what it did not declare gives NaN gradients.
    void set_poison_released(bool on) { poison_ = on; }
    /// Releasing by saves is on by default; off keeps every value until clear() (for comparisons).
    void set_release_unsaved(bool on) { release_ = on; }

private:
    template <class T>
    expr push_leaf(const seqgrad::shape& shp, const T* src, detail::node_kind kind, bool requires_grad);
    template <class T>
    // shp: the node's shape where the caller has its own copy (apply: the node's was written just
    // before, and copying it back whole would wait on those stores).
    void run_forward(std::uint32_t id, const seqgrad::shape* shp = nullptr);
    template <class T>
    bool batched_product(std::uint32_t id);
    template <class T>
    bool transposed_product(std::uint32_t id);
    /// Untimed matrix node b's value transposed and packed (detail::pack_panels), laid out on
    /// first use and kept until clear() (transposed_; forward and the serial backward sweep, never
    /// from concurrent passes).
    template <class T>
    const T* packed_transpose(std::uint32_t b);
    template <class T>
    friend class detail::backward_engine;
    template <class T>
    friend struct detail::scratch_source;
    template <class S>
    backward_stats run_backward(std::uint32_t root, const S* seed, const backward_plan& plan);
    std::uint32_t seeded_root(const expr& root, const seqgrad::shape& seed) const;
    template <class T>
    void check_values(std::uint32_t id, const T* p, std::size_t n, const char* what) const;
    expr make_expr(std::uint32_t id) { return expr(this, id, slot_, gen_); }
    /// The gradient of node id from the last backward, or null.
    const void* grad_of(std::uint32_t id) const;
    /// A record's h or c read by a record reader (nn::lstm_layer's states): its block of the
    /// record's gradient (null if none). The next step reads the record, not the state.
    const void* record_block_grad(std::uint32_t id) const;
    /// Backward start, on a tape with records: other_reader for each record that an op other
    /// than a record reader reads, or that is the root. One pass here instead of a flag written
    /// for every input when recording (2 ns a node on bench/overhead).
    void mark_record_readers(std::uint32_t root);
    /// A record's internal rows that no reader wrote (op_def::record_state_rows): zeros, as the
    /// record's backward read them.
    void clear_internal(std::uint32_t id, const void* g) const;
    /// A folded activation's gradient (backward_fold.hpp), recomputed from its reader's backward.
    const void* refold(std::uint32_t id) const;
    template <class T>
    const void* refold(std::uint32_t id);
    static constexpr std::uint32_t not_folded = UINT32_MAX;
    std::vector<std::uint32_t> folded_into_;  // per node: the reader its backward was folded into
    std::vector<char> table_bypassed_;        // per node: a lookup whose products' gradients went to the table
    // ---- checkpointing (checkpoint_bptt): values of timed op nodes live per segment of steps
    int segment_of(std::uint32_t id) const {
        const auto& n = nodes_[id];
        return ckpt_ && n.op && n.step >= 0 ? static_cast<int>(static_cast<std::size_t>(n.step) / ckpt_) : -1;
    }
    detail::arena& segment_arena(int seg, bool grads);
    /// Before node id's value is read: recompute its segment if it was released.
    void ensure_value(std::uint32_t id) const;
    /// Inputs [first, first + k) of a node being recorded at the current step: present, and
    /// copied out of their segment when read from another one; then far segments released.
    void prepare_inputs(std::uint32_t first, std::size_t k);
    void release_segment(int seg, bool with_grads = true);  // values (recomputed when read), gradients
    template <class T>
    void recompute_segment(int seg);
    // ---- saves (core/saves.cpp): a value that has been read and that no backward reads is
    // released two steps after its own (or at backward, for untimed ones); its memory is reused
    // by later values and by gradients; a released value read again is recomputed.
    void* alloc_value(std::size_t bytes);
    /// A buffer of exactly `bytes` (a multiple of 64) from the free list, or null.
    void* take_free(std::size_t bytes);
    void give_free(void* p, std::size_t bytes);
    void note_reads(const op_def& op, std::uint32_t first, std::size_t k, bool requires_grad) {
        // Only a node whose gradient is wanted runs its backward; it may read any of its inputs.
        const auto s = static_cast<unsigned>(op.saved);
        const bool in_saved = requires_grad && (s & static_cast<unsigned>(saves::inputs));
        for (std::size_t j = 0; j < k; ++j) {
            detail::node& m = nodes_[input_ids_[first + j]];
            m.shared = m.shared || m.read;
            m.read = true;
            m.saved = m.saved || in_saved;
        }
        nodes_.back().saved = requires_grad && (s & static_cast<unsigned>(saves::output));
    }
    bool releasable(std::uint32_t id) const;
    void release_value(std::uint32_t id);
    /// Forward, when the step changes: release the candidates two or more steps away.
    void release_old_steps();
    /// Backward start: release every releasable value but the root's; gradients borrowed from
    /// the free list by the last backward go back to it.
    void release_for_backward(std::uint32_t root);
    template <class T>
    void recompute_released(std::uint32_t id);
    /// A gradient buffer for node id in a sweep allocating from mem: with its checkpoint segment,
    /// or, in the main sweep, preferably memory released by saves (borrowed until next backward).
    template <class T>
    T* grad_alloc(std::uint32_t id, detail::arena& mem, std::size_t n);
    /// Throws graph_error if parameter leaf `id` was written since the tape read it.
    void check_param_current(std::uint32_t id, const char* who) const;
    /// The same for every parameter leaf (before backward and gradient accumulation).
    void check_params_current(const char* who) const;
    /// With check_finite on, the new leaf `id` (the last node) must be finite; it is removed if not.
    void check_leaf(std::uint32_t id);
    std::uint32_t resolve(const expr& e) const {
        if (e.t_ == this && detail::slot_generation(e.slot_) == e.gen_) [[likely]]
            return e.id_;
        return resolve_slow(e);
    }
    std::uint32_t resolve_slow(const expr& e) const;

    dtype dt_;
    std::uint32_t slot_;
    std::uint64_t gen_;
    std::vector<detail::node> nodes_;
    std::vector<std::uint32_t> input_ids_;
    detail::shape_scratch shape_scratch_;                          // apply's
    std::unordered_map<std::uint64_t, std::uint32_t> param_leaf_;  // parameter uid -> node
    std::vector<std::uint32_t> param_ids_;                         // parameter leaves, in tape order
    detail::arena values_, grads_;
    int step_ = -1;
    int state_from_ = -1;
    int group_ = -1;
    int max_group_ = -1;  // largest group mark on any node
    bool check_finite_ = false;
    bool training_ = false;
    std::uint64_t seed_ = 0, draws_ = 0;
    bool accumulate_params_ = true;
    bool has_records_ = false;  // a node's op is a record (op_def::record_state_rows)
    param_grad_hook param_hook_;
    bool hook_final_ = false;
    bool optimize_;
    // Products of row blocks of one matrix by one b (the input projections of every step): the
    // second such product computes all rows of the matrix at once; later ones read their rows.
    //
    // When the matrix is a lookup, gather_rows(E, ids), into a table E with fewer rows (an
    // embedding: 65 characters, 2,048 looked-up rows), E op(b) is computed instead and each product
    // copies the rows its ids select; backward then sums the products' gradients by id into
    // [rows of E, n] and does the weight's and the table's gradients from that (see
    // backward_batched.hpp).
    struct product_memo {
        static constexpr std::uint32_t no_table = UINT32_MAX;
        std::uint32_t base, b;
        bool trans_b;
        std::uint32_t uses;
        void* rows;                      // base x op(b) (or table x op(b)), null until the second use
        std::uint32_t table = no_table;  // E, when base = gather_rows(E, ids) and rows come from E op(b)
    };
    /// The memo that served product node id's value from a table, or null.
    const product_memo* table_memo(std::uint32_t id) const;
    std::vector<product_memo> memo_;
    std::vector<std::pair<std::uint32_t, void*>> transposed_;  // weight node -> its transpose (transposed_product)
    optimization_counts opt_counts_;
    backward_plan plan_;
    std::size_t ckpt_ = 0;  // steps per checkpoint segment, 0: off
    struct segment {
        std::unique_ptr<detail::arena> values, grads;  // null: released (or no gradient yet)
        std::vector<std::uint32_t> nodes;              // its op nodes, in tape order
    };
    std::vector<segment> segments_;
    std::vector<void*> grad_table_;  // backward: gradient per node
    // Product nodes whose b is untimed, in tape order; backward gives each group of them (same b)
    // one contiguous gradient block (grad_home_) so its batched GEMMs read it without a gather.
    std::vector<std::uint32_t> products_;
    std::vector<void*> grad_home_;
    std::vector<std::pair<std::size_t, std::vector<void*>>> free_values_;  // bytes -> released buffers
    std::size_t free_count_ = 0;
    std::vector<std::uint32_t> candidates_, late_;  // timed / untimed values that may be released
    static constexpr std::size_t release_min_bytes = 1024;
    std::vector<std::pair<void*, std::size_t>> borrowed_;  // gradients taken from the free list
    int release_step_ = -1;                                // step_ at the last release_old_steps
    std::size_t released_count_ = 0, recomputed_count_ = 0;
    bool poison_ = false, release_ = true;
    std::vector<std::unique_ptr<detail::arena>> pass_mem_;  // backward: one arena per window pass
};

/// The engine's graph optimisations, on by default: every tape created afterwards starts with
/// this setting (tape::set_optimize changes one tape). With them, the gradient of a weight read by
/// many products (one per time step) is one GEMM over all of them. Results equal the plain graph's
/// up to floating-point rounding, and are deterministic either way.
void set_graph_optimizations(bool on);
bool graph_optimizations();

/// Sets the tape's time step (and the step its state comes from, see tape::set_step) for the
/// scope's lifetime and restores the previous ones after.
class step_scope {
public:
    step_scope(tape& t, int s, int state_from = -1) : t_(t), prev_(t.step()), prev_from_(t.state_from()) {
        t.set_step(s, state_from);
    }
    ~step_scope() { t_.set_step(prev_, prev_from_); }
    step_scope(const step_scope&) = delete;
    step_scope& operator=(const step_scope&) = delete;

private:
    tape& t_;
    int prev_, prev_from_;
};

/// Sets the tape's group for the scope's lifetime and restores the previous one after.
class group_scope {
public:
    group_scope(tape& t, int g) : t_(t), prev_(t.group()) { t.set_group(g); }
    ~group_scope() { t_.set_group(prev_); }
    group_scope(const group_scope&) = delete;
    group_scope& operator=(const group_scope&) = delete;

private:
    tape& t_;
    int prev_;
};

/// Apply an op by reference or by name to exprs on one tape.
expr apply(const op_def& op, std::span<const expr> inputs, const attrs& at = no_attrs);
inline expr apply(const op_def& op, std::initializer_list<expr> inputs, const attrs& at = no_attrs) {
    return apply(op, std::span<const expr>(inputs.begin(), inputs.size()), at);
}
expr apply(std::string_view op_name, std::span<const expr> inputs, const attrs& at = no_attrs);

// ---- inline definitions ---------------------------------------------------------------------

template <class T>
tensor_ref<const T> forward_ctx<T>::in(std::size_t i) const {
    const detail::node& n = nodes[inputs[i]];
    return {static_cast<const T*>(n.value), n.shp};
}
template <class T>
tensor_ref<const T> backward_ctx<T>::in(std::size_t i) const {
    const detail::node& n = nodes[inputs[i]];
    return {static_cast<const T*>(n.value), n.shp};
}
template <class T>
bool backward_ctx<T>::internal_unwritten(std::size_t i) const {
    if (!engine || adds[i] || !detail::internal_unread(nodes[inputs[i]])) return false;
    // The engine's own gradient buffer, not scratch it adds in (or clips) afterwards.
    const auto* s = static_cast<const detail::scratch_source<T>*>(engine);
    return (*s->g)[inputs[i]] == targets[i].data;
}
template <class T>
bool backward_ctx<T>::output_internal_unwritten() const {
    return self && detail::internal_unread(*self);
}
template <class T>
bool chain_ctx<T>::internal_unwritten(std::size_t k) const {
    return detail::internal_unread(nodes[ids[k]]);
}
template <class T>
tensor_ref<const T> chain_ctx<T>::value(std::uint32_t id) const {
    return {static_cast<const T*>(nodes[id].value), nodes[id].shp};
}
template <class T>
const attrs& chain_ctx<T>::at(std::size_t k) const {
    return *nodes[ids[k]].at;
}

}  // namespace seqgrad
