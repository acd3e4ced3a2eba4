// The configuration and framing shared by the fuzz target and its seed maker.
//
// Input layout: byte 0 selects the direction (bit 0), the link type (bit 1)
// and the service set (bit 2); byte 1 advances the clock by that many
// seconds; the rest is one frame. The engine persists across inputs, so
// sequences of inputs build up and age sessions as real traffic would.
// "shop" and "lab" filter HTTP: shop's servers have longer addresses than
// its façade (Host rewrites grow packets), lab's has one of the same length.
#pragma once

namespace fulcrum::fuzz {

inline constexpr const char* kConfig = R"(
set service-set web inside-interface in0 outside-interface out0
set service-set lab inside-interface in1 outside-interface out1
set application shop service-set web facade 198.18.0.10 port 80 algorithm least-connections
set application shop server s1 address 198.18.1.11 port 8080 max-connections 50
set application shop server s2 address 198.18.1.12 port 8080
set application shop http-filter on
set application sticky service-set web facade 198.18.0.20 port 443 algorithm maglev
set application sticky persistence source-address timeout 60
set application sticky server a address 198.18.1.21 weight 3
set application sticky server b address 198.18.1.22
set application lab service-set lab facade 198.18.0.10 port 80 algorithm source-hash
set application lab server l1 address 198.18.2.11
set application lab http-filter on
)";

}  // namespace fulcrum::fuzz
