//! UDP interception on a [`Stack`] (AI-01): one [`UdpSocket`] receives the datagrams to
//! every address and port that no socket of the stack is bound to, each with the
//! destination its sender used, and replies from that destination. What a tun2socks proxy
//! or a VPN client behind a TUN needs to forward UDP flows (DNS first of all).

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use super::wait::{Wait, Waiter};
use super::UdpSocket;
use crate::cell::READ;
use crate::error::{endpoint_error, read_error};
use crate::lock;
use crate::stack::Stack;

impl Stack {
    /// A socket that receives UDP datagrams to any unicast address and port no socket of
    /// this stack is bound to, of either family ([`UdpSocket::recv_from_to`]), and sends
    /// from any address ([`UdpSocket::send_from_to`]). The driver then takes packets for any
    /// destination. Dropping the socket turns UDP interception off.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// use tcp_tokio::{MemLink, Stack};
    ///
    /// let (a, b) = MemLink::pair();
    /// let proxy = Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// let client = Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
    /// let all = proxy.intercept_udp()?;
    ///
    /// let sock = client.bind_udp("10.0.0.2:0").await?;
    /// sock.send_to(b"query", "192.0.2.53:53").await?;
    /// let mut buf = [0; 512];
    /// let (n, from, to) = all.recv_from_to(&mut buf).await?;
    /// assert_eq!((&buf[..n], to), (&b"query"[..], "192.0.2.53:53".parse().unwrap()));
    /// all.send_from_to(b"answer", to, from).await?;
    ///
    /// let (n, src) = sock.recv_from(&mut buf).await?;
    /// assert_eq!((&buf[..n], src), (&b"answer"[..], "192.0.2.53:53".parse().unwrap()));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `AddrInUse` while another interception socket of this stack is open.
    pub fn intercept_udp(&self) -> io::Result<UdpSocket> {
        let mut st = lock(&self.shared.ep);
        let sock = st.ep.udp_intercept().map_err(endpoint_error)?;
        let s = UdpSocket::register(&self.shared, &mut st, sock);
        drop(st);
        self.shared.wake_driver();
        Ok(s)
    }
}

impl UdpSocket {
    /// Receive one datagram into `buf`: its length, its source, and the destination its
    /// sender used (for the socket of [`Stack::intercept_udp`], the address it dialled).
    /// What does not fit is discarded.
    ///
    /// # Examples
    /// See [`Stack::intercept_udp`].
    ///
    /// # Errors
    /// As [`UdpSocket::recv_from`].
    ///
    /// # Cancel safety
    /// Cancel safe: a datagram is taken from the queue only when the future completes.
    pub async fn recv_from_to(
        &self,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr, SocketAddr)> {
        let mut w = Waiter::new(&self.cell);
        poll_fn(|cx| self.recv_from_to_inner(w.with(cx), buf)).await
    }

    /// Poll to receive one datagram with its source and destination.
    ///
    /// # Errors
    /// As [`UdpSocket::recv_from_to`].
    pub fn poll_recv_from_to(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr, SocketAddr)>> {
        self.recv_from_to_inner(Wait::Poll(cx), buf)
    }

    fn recv_from_to_inner(
        &self,
        wait: Wait<'_, '_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr, SocketAddr)>> {
        let mut inner = lock(&self.cell.inner);
        match inner.sock.recv_from(buf) {
            Ok(r) => Poll::Ready(Ok((r.len, r.src, r.dst))),
            Err(tcpcore::ReadError::WouldBlock) => {
                wait.park(&mut inner, READ, || read_error(tcpcore::ReadError::WouldBlock))
            }
            Err(e) => Poll::Ready(Err(read_error(e))),
        }
    }

    /// Send `buf` to `dst` from `src`, any address and port: from the socket of
    /// [`Stack::intercept_udp`], the reply to a datagram received with
    /// [`UdpSocket::recv_from_to`], sent from the destination it was sent to.
    ///
    /// # Examples
    /// See [`Stack::intercept_udp`].
    ///
    /// # Errors
    /// `InvalidInput` on any other socket, for an unspecified or multicast address, port 0,
    /// mixed families, or a datagram longer than IP allows.
    ///
    /// # Cancel safety
    /// Cancel safe: the datagram is queued whole when the future completes, or not at all.
    pub async fn send_from_to(
        &self,
        buf: &[u8],
        src: SocketAddr,
        dst: SocketAddr,
    ) -> io::Result<usize> {
        let mut w = Waiter::new(&self.cell);
        poll_fn(|cx| {
            let mut inner = lock(&self.cell.inner);
            let result = inner.sock.send_as(src, dst, buf);
            self.finish_send(inner, w.with(cx), result, buf.len())
        })
        .await
    }

    /// Poll to send `buf` to `dst` from `src`; `Pending` while the send queue is full.
    ///
    /// # Errors
    /// As [`UdpSocket::send_from_to`].
    pub fn poll_send_from_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        let mut inner = lock(&self.cell.inner);
        let result = inner.sock.send_as(src, dst, buf);
        self.finish_send(inner, Wait::Poll(cx), result, buf.len())
    }

    /// Send `buf` to `dst` from `src` without waiting.
    ///
    /// # Errors
    /// `WouldBlock` when the send queue is full; otherwise as [`UdpSocket::send_from_to`].
    pub fn try_send_from_to(
        &self,
        buf: &[u8],
        src: SocketAddr,
        dst: SocketAddr,
    ) -> io::Result<usize> {
        let mut inner = lock(&self.cell.inner);
        let result = inner.sock.send_as(src, dst, buf);
        super::poll_result(self.finish_send(inner, Wait::Never, result, buf.len()))
    }

    /// Refuse a datagram this interception socket received, as its destination would have:
    /// ICMP port unreachable from `dialled`'s address to `client`, quoting a datagram
    /// `client` → `dialled` carrying `data` (AI-03). A connected client socket then fails
    /// its next receive with `ConnectionRefused`. What a forwarder sends when its upstream
    /// socket for the flow got `ConnectionRefused` (the upstream's own port unreachable).
    /// Rate-limited like the stack's own ICMP errors (per client address, a burst of 6 then
    /// one per second; 1,000 per second overall): returns whether it was sent.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// use tcp_tokio::{MemLink, Stack};
    ///
    /// let (a, b) = MemLink::pair();
    /// let proxy = Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// let client = Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
    /// let all = proxy.intercept_udp()?;
    ///
    /// let sock = client.bind_udp("10.0.0.2:0").await?;
    /// sock.connect("192.0.2.53:53").await?;
    /// sock.send(b"query").await?;
    /// let mut buf = [0; 512];
    /// let (n, from, to) = all.recv_from_to(&mut buf).await?;
    /// // The upstream refused it: so does the proxy.
    /// assert!(all.send_port_unreachable(&buf[..n], to, from)?);
    ///
    /// let err = sock.recv(&mut buf).await.unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `InvalidInput` on a socket other than the interception socket.
    pub fn send_port_unreachable(
        &self,
        data: &[u8],
        dialled: SocketAddr,
        client: SocketAddr,
    ) -> io::Result<bool> {
        if !lock(&self.cell.inner).sock.is_intercept() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "only the interception socket refuses datagrams for other addresses",
            ));
        }
        let now = self.shared.now();
        let sent = lock(&self.shared.ep).ep.udp_intercept_unreachable(now, dialled, client, data);
        if sent {
            self.shared.wake_driver();
        }
        Ok(sent)
    }
}
