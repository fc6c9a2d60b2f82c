#pragma once
// What a SqliteStore has committed of the generating messages it writes, kept
// beside the chunk log. The log is keyed by commit order only, with no index
// by message: a group commit of N streams then appends a few pages to one
// B-tree instead of touching one index page per stream. Finding one message's
// chunks in it would mean scanning the log, so the writer plans each write
// from here (instead of two look-ups per write) and readers take a live
// message's text from here.
//
// The writer thread is the only one that changes it, after each of its
// commits, and reads it without the lock; readers lock. Another connection's
// commit (another store on the file) makes it stale: the writer forgets
// everything when it notices one (PRAGMA data_version) and rebuilds entries
// from the database as it writes. A reader trusts it only for a snapshot
// whose change sequence the writer has accounted for (`valid_through`), and
// only at the lease epoch its snapshot shows; otherwise it reads the log.
#include "core/hash.hpp"
#include "core/time.hpp"
#include "store/write_plan.hpp"

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace chatd::store::sqlite {

class LiveTexts {
public:
    struct Tail {
        std::string text;  // every committed byte, from the first
        std::int64_t version = 1;
        std::int64_t epoch = 1;
        std::int64_t reasoning_end = 0;
        std::int64_t change_seq = 0;
        UnixMillis last_updated = 0;
    };

    // One committed write, as the writer hands it over after its commit. Its
    // views are into the committed batch, which outlives the call.
    struct Update {
        std::string_view id;
        std::optional<Tail> base;  // the message as read from the database first
        std::string_view text;     // appended

        std::optional<std::string_view> replace;  // the whole text instead
        std::int64_t reasoning_added = 0;
        std::int64_t version = 0;
        std::int64_t change_seq = 0;
        UnixMillis at = 0;
        bool ended = false;  // the message took its terminal state: forget it
    };

    // Writer thread only.
    const Tail* find(const std::string& id) const;
    // Applies a committed transaction's writes, which leave the log complete
    // through change sequence `through`.
    void committed(std::vector<Update>& updates, std::int64_t through);
    // Another transaction of the writer took change sequences (before,
    // through] and changed no live text: the texts stay whole through it,
    // unless someone else took sequences since the writer's last commit.
    void advance(std::int64_t before, std::int64_t through);
    // A message as a transaction of the writer has just read it whole.
    void remember(std::string id, Tail tail);
    void forget(const std::vector<std::string>& ids);
    void forget_all();
    // Keeps only the messages in `generating`.
    void retain(const std::unordered_set<std::string>& generating);

    // Any thread. A live message's text from byte `from` on, when this holds
    // it whole for a reader whose snapshot has change sequences up to
    // `snapshot_seq` and shows lease epoch `epoch`; nullopt: read the log.
    struct Piece {
        std::int64_t offset = 0;
        std::string text;
        std::int64_t version = 0;
        std::int64_t change_seq = 0;
        UnixMillis last_updated = 0;
    };
    std::optional<Piece> read(const std::string& id, std::int64_t epoch, std::int64_t snapshot_seq,
                              std::int64_t from) const;

    std::size_t size() const;

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, Tail, TextHash, std::equal_to<>> tails_;
    std::int64_t valid_through_ = -1;  // no snapshot is accounted for yet
};

}  // namespace chatd::store::sqlite
