#pragma once
// How many generations may run: in all (each holds a provider request, and
// with a real provider costs money per token) and per user (one user cannot
// take every slot). A send reserves a slot before its turn is stored and the
// generation keeps it until it ends, so the bound holds however many sends
// race. Runs on the I/O thread; not thread-safe.
#include "core/error.hpp"
#include "core/ids.hpp"

#include <cstddef>
#include <string>
#include <unordered_map>

namespace chatd::engine {

struct GenerationLimits {
    std::size_t max_live = 2000;    // whole server: beyond it, 503 overloaded
    std::size_t max_per_user = 10;  // one user: beyond it, 429 too_many_generations
};

class GenerationSlots {
public:
    // A reserved slot, released when destroyed. Move-only.
    class Slot {
    public:
        Slot() = default;
        Slot(Slot&& other) noexcept : owner_(other.owner_), user_(std::move(other.user_)) {
            other.owner_ = nullptr;
        }
        Slot& operator=(Slot&& other) noexcept;
        Slot(const Slot&) = delete;
        Slot& operator=(const Slot&) = delete;
        ~Slot() { release(); }
        void release();
        bool held() const { return owner_ != nullptr; }

    private:
        friend class GenerationSlots;
        Slot(GenerationSlots* owner, UserId user) : owner_(owner), user_(std::move(user)) {}
        GenerationSlots* owner_ = nullptr;
        UserId user_;
    };

    explicit GenerationSlots(GenerationLimits limits) : limits_(limits) {}

    // overloaded when the server is full, too_many_generations when the user is.
    Result<Slot> reserve(const UserId& user);
    std::size_t live() const { return total_; }
    std::size_t live(const UserId& user) const;

private:
    void give_back(const UserId& user);

    GenerationLimits limits_;
    std::size_t total_ = 0;
    std::unordered_map<std::string, std::size_t> per_user_;
};

}  // namespace chatd::engine
