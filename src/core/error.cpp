#include "core/error.hpp"

namespace chatd {
namespace {

class Category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "chatd"; }
    std::string message(int ev) const override {
        switch (static_cast<Error>(ev)) {
            case Error::not_found:
                return "not found";
            case Error::not_generating:
                return "message is not generating";
            case Error::invalid_cursor:
                return "invalid cursor";
            case Error::idempotency_key_reused:
                return "idempotency key reused with a different body";
            case Error::store_failure:
                return "store failure";
            case Error::shutting_down:
                return "shutting down";
            case Error::bad_request:
                return "malformed request";
            case Error::unauthorized:
                return "missing or invalid credentials";
            case Error::forbidden_host:
                return "host not allowed";
            case Error::cross_origin:
                return "cross-origin request refused";
            case Error::rate_limited:
                return "too many requests";
            case Error::too_many_generations:
                return "too many generations in progress";
            case Error::too_many_streams:
                return "too many open streams";
            case Error::too_many_sessions:
                return "too many sessions";
            case Error::overloaded:
                return "server at capacity";
            case Error::model_not_allowed:
                return "model not allowed";
            case Error::invalid_request:
                return "invalid request";
            case Error::invalid_json:
                return "request body is not a JSON object";
            case Error::content_too_long:
                return "message content too long";
            case Error::invalid_since:
                return "invalid `since`";
            case Error::unsupported_media_type:
                return "unsupported media type";
            case Error::method_not_allowed:
                return "method not allowed";
            case Error::generation_in_progress:
                return "a generation is in progress in this session";
            case Error::cursor_mismatch:
                return "cursor of another message or session";
            case Error::cursor_out_of_range:
                return "cursor out of range";
            case Error::not_ready:
                return "not ready";
            case Error::lease_lost:
                return "the message's lease was taken over by another node";
            case Error::store_unavailable:
                return "store unavailable";
        }
        return "unknown chatd error";
    }
};

}  // namespace

const boost::system::error_category& chatd_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace chatd
