#pragma once
// Request framing checks of RFC 9112 §6, made on the head before any body is
// read. Beast reads a body by Content-Length or chunked coding, but a request
// whose Transfer-Encoding does not end in `chunked` would have its body parsed
// as the next request (one request, two responses: a desync behind any
// proxy), and a duplicate Content-Length is ambiguous between hops. Such a
// request is answered once and the connection closed. Pure; unit-tested.
#include "http/types.hpp"

namespace chatd::http {

enum class Framing {
    ok,
    bad,              // 400 and close
    not_implemented,  // 501 and close: a transfer coding chatd does not decode
};

Framing check_framing(const bhttp::fields& head, unsigned version);

enum class Expectation {
    none,
    continue_100,  // `Expect: 100-continue`
    unsupported,   // 417
};

Expectation expectation_of(const bhttp::fields& head);

}  // namespace chatd::http
