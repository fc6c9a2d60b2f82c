#pragma once
// Change notices within one process (ChatStore::listen for a store that is
// the database's only writer, as SQLite is): announce() hands a notice to
// every listener made by listen() and still alive, on the listener's own
// executor. announce() may be called from any thread.
#include "store/chat_store.hpp"

#include <memory>
#include <mutex>
#include <vector>

namespace chatd::store {

class LocalNotices {
public:
    // A listener used on `ex`.
    std::unique_ptr<ChangeListener> listen(net::any_io_executor ex);
    void announce(ChangeNotice notice);

private:
    struct Inbox;
    class Listener;
    std::mutex mutex_;
    std::vector<std::weak_ptr<Inbox>> inboxes_;
};

}  // namespace chatd::store
