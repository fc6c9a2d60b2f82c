#pragma once
// How many generations may run: in all (each holds a provider request, and
// with a real provider costs money per token) and per user (one user cannot
// take every slot). A send reserves a slot before its turn is stored and the
// generation keeps it until it ends, so the bound holds however many sends
// race. The counts are shared with the slots, so a slot that outlives its
// table (a generation held past the engine's end) gives back harmlessly.
// Runs on the I/O thread; not thread-safe.
#include "core/error.hpp"
#include "core/ids.hpp"

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>

namespace chatd::engine {

struct GenerationLimits {
    std::size_t max_live = 2000;    // whole server: beyond it, 503 overloaded
    std::size_t max_per_user = 10;  // one user: beyond it, 429 too_many_generations
};

class GenerationSlots {
public:
private:
    struct Counts {
        std::size_t total = 0;
        std::unordered_map<std::string, std::size_t> per_user;
        void give_back(const std::string& user);
    };

public:
    // A reserved slot, released when destroyed or release()d. Move-only.
    class Slot {
    public:
        Slot() = default;
        Slot(Slot&&) noexcept = default;
        Slot& operator=(Slot&& other) noexcept;
        Slot(const Slot&) = delete;
        Slot& operator=(const Slot&) = delete;
        ~Slot() { release(); }
        void release();

    private:
        friend class GenerationSlots;
        Slot(std::weak_ptr<Counts> counts, std::string user)
            : counts_(std::move(counts)), user_(std::move(user)) {}
        std::weak_ptr<Counts> counts_;
        std::string user_;
    };

    explicit GenerationSlots(GenerationLimits limits) : limits_(limits) {}

    // overloaded when the server is full, too_many_generations when the user is.
    Result<Slot> reserve(const UserId& user);
    // A slot for a generation taken over from another node: it was admitted
    // when it was sent, so it counts against the limits and is never refused
    // (the caller bounds how many it takes by room()).
    Slot adopt(const UserId& user);
    // Generations the whole server may still start.
    std::size_t room() const {
        return counts_->total >= limits_.max_live ? 0 : limits_.max_live - counts_->total;
    }
    std::size_t live() const { return counts_->total; }
    std::size_t live(const UserId& user) const;

private:
    GenerationLimits limits_;
    std::shared_ptr<Counts> counts_ = std::make_shared<Counts>();
};

}  // namespace chatd::engine
