#pragma once
// Address ranges (`10.0.0.0/8`, `::1`, `127.0.0.1`) for the trusted-header
// mode's proxy list. IPv4-mapped IPv6 peers match IPv4 ranges.
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

#include <optional>
#include <string_view>
#include <variant>
#include <vector>

namespace chatd::auth {

class AddressRange {
public:
    // An address or CIDR; nullopt when malformed.
    static std::optional<AddressRange> parse(std::string_view text);
    bool contains(const boost::asio::ip::address& a) const;

private:
    std::variant<boost::asio::ip::network_v4, boost::asio::ip::network_v6> net_;
};

// A comma-separated list; throws std::runtime_error naming a bad entry.
std::vector<AddressRange> parse_address_ranges(std::string_view list);

// Loopback: 127.0.0.0/8, ::1, and IPv4-mapped loopback.
bool is_loopback(const boost::asio::ip::address& a);

}  // namespace chatd::auth
