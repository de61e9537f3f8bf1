//! Any-IP interception for UDP (AI-01): one socket of the endpoint takes every datagram to
//! a unicast address and port that no other socket takes, and each keeps the destination
//! its sender used ([`crate::UdpRecv::dst`]); replies leave from that destination
//! ([`UdpSocket::send_as`]). What a tun2socks proxy or a VPN client needs to carry UDP
//! flows (DNS first) to any address behind a TUN. Demultiplexing stays O(1): the socket is
//! the last step of the ordinary lookup. Independent of TCP interception.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::intercept::interceptable;
use super::udp::UdpHandle;
use super::udp_socket::UdpSocket;
use super::Endpoint;
use crate::wire::{frag, icmp, ipv4, ipv6, udp};
use crate::{EndpointError, Instant};

impl Endpoint {
    /// Make the interception socket: datagrams of either family to any unicast address and
    /// port with no socket of their own are delivered to it instead of being answered with
    /// port unreachable. Its local address reads `0.0.0.0:0`; it sends only with
    /// [`UdpSocket::send_as`]. Closing it ([`Endpoint::udp_close`]) turns UDP interception
    /// off.
    ///
    /// # Errors
    /// [`EndpointError::AddrInUse`] while another interception socket is open.
    pub fn udp_intercept(&mut self) -> Result<UdpSocket, EndpointError> {
        if self.udp.intercept.is_some() {
            return Err(EndpointError::AddrInUse);
        }
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        let (h, ident) = self.udp.new_slot(local);
        self.udp.intercept = Some(h);
        let mut sock = UdpSocket::new(h, local, &self.cfg, ident);
        sock.set_intercept();
        Ok(sock)
    }

    /// Whether a UDP interception socket is open: the endpoint then wants datagrams to
    /// every address.
    pub fn udp_intercepting(&self) -> bool {
        self.udp.intercept.is_some()
    }

    /// The interception socket, for a datagram to `dst` that no other socket takes.
    pub(super) fn udp_interceptor(&self, dst: SocketAddr) -> Option<UdpHandle> {
        self.udp.intercept.filter(|_| interceptable(dst))
    }

    /// Refuse an intercepted datagram as its destination would have (AI-03): ICMP port
    /// unreachable (RFC 1122 §4.1.3.1; ICMPv4 3/3, ICMPv6 1/4) from `dialled`'s address to
    /// `client`, quoting a datagram `client` → `dialled` that carries `payload`. The quote's
    /// IP and UDP headers are rebuilt from the addresses (the interception socket keeps only
    /// the data), which is what the client's stack matches to find the socket that sent it
    /// (RFC 1122 §4.1.3.3: a connected socket then reports the error). A forwarder sends
    /// this when the upstream answered its copy of the datagram with port unreachable.
    ///
    /// The error follows the rules and the rate limit of the endpoint's own (see
    /// `icmp_out`): it is not sent for a multicast or unspecified `client`, nor when the
    /// rate limit says no (counted in `icmp_errors_rate_limited`). Returns whether it was
    /// queued; `poll_transmit` writes it out.
    pub fn udp_intercept_unreachable(
        &mut self,
        now: Instant,
        dialled: SocketAddr,
        client: SocketAddr,
        payload: &[u8],
    ) -> bool {
        if !interceptable(dialled) || client.port() == 0 || dialled.is_ipv4() != client.is_ipv4() {
            return false;
        }
        let ip_len = if client.is_ipv4() { ipv4::HEADER_LEN } else { ipv6::HEADER_LEN };
        let max = if client.is_ipv4() { udp::MAX_PAYLOAD_V4 } else { udp::MAX_PAYLOAD_V6 };
        let payload = &payload[..payload.len().min(max)];
        let mut hdr = [0u8; ipv6::HEADER_LEN + udp::HEADER_LEN];
        let udp_len = udp::HEADER_LEN + payload.len();
        let ip = (client.ip(), dialled.ip());
        if frag::emit_ip_header(&mut hdr[..ip_len], ip.0, ip.1, udp::PROTO_UDP, udp_len, 0, None)
            .is_err()
        {
            return false;
        }
        let mut udp_hdr = [0u8; udp::HEADER_LEN];
        udp::emit_header(&mut udp_hdr, client, dialled, payload);
        hdr[ip_len..ip_len + udp::HEADER_LEN].copy_from_slice(&udp_hdr);
        let tc = if client.is_ipv4() {
            (icmp::V4_DEST_UNREACHABLE, 3)
        } else {
            (icmp::V6_DEST_UNREACHABLE, 4)
        };
        let before = self.stats.icmp_errors_sent;
        let quote = [&hdr[..ip_len + udp::HEADER_LEN], payload];
        self.queue_icmp_error(now, dialled.ip(), client.ip(), tc, quote);
        self.stats.icmp_errors_sent > before
    }
}
