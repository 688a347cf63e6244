//! Bridge networks through netlink, IP address management, NAT and published
//! ports, and the embedded DNS server.
