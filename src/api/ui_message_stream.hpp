#pragma once
// The AI SDK's UI message stream (`x-vercel-ai-ui-message-stream: v1`, as the
// `ai` package's DefaultChatTransport reads it): `data: {json}` events
// `start` (the assistant message's id), `start-step`, the reasoning as
// `reasoning-start`, `reasoning-delta`…, `reasoning-end` (when the model
// thinks), `text-start`, `text-delta`…, `text-end`, then `finish-step` and
// `finish`, an `error` or an `abort`, and `data: [DONE]`. Each event's id is
// chatd's cursor; the events that open or close a part carry the id of the
// text event they come with, so a cursor covers the parts before it. The
// body is chunked: a stream chatd cuts off (deadline, shutdown) ends without
// `finish` and without its last chunk, which a browser sees as a broken
// connection, and resumes.
#include "api/stream_format.hpp"

namespace chatd::api {

class UiMessageStream final : public StreamFormat {
public:
    // `continuation`: the reader holds the message up to where it starts
    // (it resumes with a cursor), so no opening events; otherwise the
    // message is written from `start`, which a resuming client takes as a
    // replay of the whole answer.
    explicit UiMessageStream(bool continuation) : continuation_(continuation) {}

    std::string head_lines() const override;
    bool chunked() const override { return true; }
    std::string opening(const store::Message& m, const engine::Cursor& at) const override;
    std::string reasoning(const store::Message& m, const engine::Cursor& at,
                          std::string_view reasoning, std::size_t max_bytes) const override;
    std::string deltas(const store::Message& m, const engine::Cursor& at, std::string_view content,
                       std::size_t max_bytes) const override;
    std::string ending(const store::Message& m, const engine::Cursor& at) const override;

private:
    bool continuation_;
};

// The AI SDK's finishReason for a provider's (chatd stores OpenAI's words).
std::string_view ui_finish_reason(const store::Message& m);

}  // namespace chatd::api
