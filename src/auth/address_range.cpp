#include "auth/address_range.hpp"
#include "core/text.hpp"

#include <stdexcept>
#include <string>

namespace chatd::auth {
namespace {

namespace ip = boost::asio::ip;

ip::address unmapped(const ip::address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
    return a;
}

}  // namespace

std::optional<AddressRange> AddressRange::parse(std::string_view text) {
    boost::system::error_code ec;
    AddressRange r;
    std::string s(text);
    if (s.find('/') == std::string::npos) {
        auto a = ip::make_address(s, ec);
        if (ec) return std::nullopt;
        s += a.is_v4() ? "/32" : "/128";
    }
    if (s.find(':') == std::string::npos) {
        auto n = ip::make_network_v4(s, ec);
        if (ec || n.network() != n.address()) return std::nullopt;  // host bits set
        r.net_ = n;
    } else {
        auto n = ip::make_network_v6(s, ec);
        if (ec || n.network() != n.address()) return std::nullopt;
        r.net_ = n;
    }
    return r;
}

bool AddressRange::contains(const ip::address& peer) const {
    auto a = unmapped(peer);
    if (const auto* v4 = std::get_if<ip::network_v4>(&net_)) {
        if (!a.is_v4()) return false;
        return ip::network_v4(a.to_v4(), v4->prefix_length()).network() == v4->network();
    }
    const auto& v6 = std::get<ip::network_v6>(net_);
    if (!a.is_v6()) return false;
    return ip::network_v6(a.to_v6(), v6.prefix_length()).network() == v6.network();
}

std::vector<AddressRange> parse_address_ranges(std::string_view list) {
    std::vector<AddressRange> out;
    for (auto item : split_list(list)) {
        auto r = AddressRange::parse(item);
        if (!r)
            throw std::runtime_error("`" + std::string(item) +
                                     "` is not an address or a CIDR range (e.g. 10.0.0.0/8)");
        out.push_back(*r);
    }
    return out;
}

bool is_loopback(const ip::address& a) {
    return unmapped(a).is_loopback();
}

}  // namespace chatd::auth
