#include "http/framing.hpp"
#include "core/text.hpp"

#include <string_view>

namespace chatd::http {
namespace {}  // namespace

Framing check_framing(const bhttp::fields& head, unsigned version) {
    auto [cl_first, cl_last] = head.equal_range(bhttp::field::content_length);
    auto lengths = std::distance(cl_first, cl_last);
    if (lengths > 1) return Framing::bad;
    if (lengths == 1 && cl_first->value().find(',') != std::string_view::npos) return Framing::bad;

    auto [te_first, te_last] = head.equal_range(bhttp::field::transfer_encoding);
    if (te_first == te_last) return Framing::ok;
    // HTTP/1.0 has no transfer codings; with a length besides, which one a
    // proxy used is unknown.
    if (version < 11 || lengths > 0) return Framing::bad;
    int chunked = 0;
    bool last_chunked = false, other = false;
    for (auto it = te_first; it != te_last; ++it) {
        std::string_view list = it->value();
        while (true) {
            auto comma = list.find(',');
            auto coding = trim(list.substr(0, comma));
            auto semicolon = coding.find(';');  // parameters do not change the coding
            coding = trim(coding.substr(0, semicolon));
            if (!coding.empty()) {
                last_chunked = iequals(coding, "chunked");
                if (last_chunked)
                    ++chunked;
                else
                    other = true;
            }
            if (comma == std::string_view::npos) break;
            list.remove_prefix(comma + 1);
        }
    }
    if (!last_chunked || chunked != 1) return Framing::bad;
    return other ? Framing::not_implemented : Framing::ok;
}

Expectation expectation_of(const bhttp::fields& head) {
    auto it = head.find(bhttp::field::expect);
    if (it == head.end()) return Expectation::none;
    return iequals(trim(it->value()), "100-continue") ? Expectation::continue_100
                                                      : Expectation::unsupported;
}

}  // namespace chatd::http
