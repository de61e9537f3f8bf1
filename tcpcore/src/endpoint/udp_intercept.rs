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
use crate::EndpointError;

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
}
