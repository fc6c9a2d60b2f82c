#pragma once
// Runs one generation: builds its prompt from the stored conversation, reads
// its provider into it, continues a partial answer after a transient failure
// where the provider can, and requests its end. What it appends, the
// persister commits (and makes visible); it never writes to the store.
// Lives on the I/O thread.
#include "engine/engine_config.hpp"
#include "engine/generation.hpp"
#include "engine/persister.hpp"
#include "llm/provider.hpp"
#include "store/chat_store.hpp"

#include <memory>
#include <optional>
#include <string>

namespace chatd::engine {

// An `error` end with `code` and `message`.
store::Terminal failure(std::string code, std::string message);

class Driver {
public:
    Driver(net::any_io_executor ex, store::ChatStore& store, llm::Provider& provider,
           Persister& persister, const EngineConfig& config);

    // Runs `g` until its provider is done or fails, or `g` is finished from
    // outside (cancel, shutdown, a lost lease).
    net::awaitable<void> drive(std::shared_ptr<Generation> g);
    // Requests `g`'s end (the first request wins) and stops its provider.
    void end(const std::shared_ptr<Generation>& g, store::Terminal terminal);

private:
    // Relays one provider stream into `g`; returns its last event (done or
    // failed), or nothing when `g` was finished from outside meanwhile.
    // `started`: when the answer began (its first text is counted from it).
    net::awaitable<std::optional<llm::StreamEvent>> relay(
        const std::shared_ptr<Generation>& g, llm::ProviderStream& stream, Wakeup& committed,
        std::chrono::steady_clock::time_point started);
    net::awaitable<Result<llm::GenerationRequest>> build_request(const Generation& g);

    net::any_io_executor ex_;
    store::ChatStore& store_;
    llm::Provider& provider_;
    Persister& persister_;
    const EngineConfig& config_;
};

}  // namespace chatd::engine
