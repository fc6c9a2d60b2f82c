#pragma once
// Open event streams per user. A stream holds its slot while it is open and
// gives it back the moment it ends; EventStream notices a client that went
// away by reading its socket, so a reloaded page gets its slot back at once,
// not at the next heartbeat. I/O thread only; not thread-safe.
#include "core/error.hpp"
#include "core/ids.hpp"

#include <memory>
#include <string>
#include <unordered_map>

namespace chatd::api {

class StreamSlots {
public:
    explicit StreamSlots(std::size_t per_user) : per_user_(per_user) {}

    // A held slot; destroying it gives the slot back.
    using Slot = std::shared_ptr<void>;
    // too_many_streams when `user` has all of theirs open.
    Result<Slot> open(const UserId& user);
    std::size_t open_count(const UserId& user) const;
    // Every user's open slots.
    std::size_t open_total() const;

private:
    std::size_t per_user_;
    // Shared with the slots, so one outliving this table stays harmless.
    std::shared_ptr<std::unordered_map<std::string, std::size_t>> counts_ =
        std::make_shared<std::unordered_map<std::string, std::size_t>>();
};

}  // namespace chatd::api
