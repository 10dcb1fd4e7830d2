// The arenas that hold a tape's values and gradients, and the process-wide pool of blocks they
// recycle: a new tape, or a segment released by checkpointing, reuses blocks instead of asking
// the allocator again.
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>

#include "tape.hpp"

namespace seqgrad {
namespace detail {
namespace {
constexpr std::size_t block_bytes = std::size_t(1) << 20;
constexpr std::size_t pool_cap_bytes = std::size_t(1) << 30;

struct block_pool {
    std::mutex mu;
    std::multimap<std::size_t, std::byte*> free;  // size -> block
    std::size_t held = 0;

    std::pair<std::byte*, std::size_t> take(std::size_t want) {
        {
            std::lock_guard<std::mutex> lock(mu);
            auto it = free.lower_bound(want);
            if (it != free.end() && it->first <= 4 * want + block_bytes) {
                auto got = *it;
                free.erase(it);
                held -= got.first;
                return {got.second, got.first};
            }
        }
        const std::size_t size = (want + 63) / 64 * 64;
        auto* p = static_cast<std::byte*>(std::aligned_alloc(64, size));
        if (!p) throw std::bad_alloc();
        return {p, size};
    }
    void give(std::byte* p, std::size_t size) {
        std::lock_guard<std::mutex> lock(mu);
        if (held + size > pool_cap_bytes) {
            std::free(p);
            return;
        }
        free.emplace(size, p);
        held += size;
    }
    ~block_pool() {
        for (auto& [s, p] : free) std::free(p);
    }
};
block_pool& pool() {
    static block_pool* p = new block_pool();  // never destroyed: tapes may outlive statics
    return *p;
}

}  // namespace

arena::~arena() {
    for (auto& b : blocks_) pool().give(b.p, b.size);
}

void* arena::alloc_slow(std::size_t bytes) {
    while (cur_ < blocks_.size()) {
        if (off_ + bytes <= blocks_[cur_].size) {
            void* p = blocks_[cur_].p + off_;
            off_ += bytes;
            return p;
        }
        ++cur_;
        off_ = 0;
    }
    auto [p, size] = pool().take(std::max(bytes, block_bytes));
    blocks_.push_back({p, size});
    cur_ = blocks_.size() - 1;
    off_ = bytes;
    return p;
}

bool arena::contains(const void* p) const {
    const auto* b = static_cast<const std::byte*>(p);
    for (const auto& k : blocks_)
        if (b >= k.p && b < k.p + k.size) return true;
    return false;
}

std::size_t arena::reserved() const {
    std::size_t n = 0;
    for (auto& b : blocks_) n += b.size;
    return n;
}
}  // namespace detail
}  // namespace seqgrad
