//! The address forms `bind` and `connect` accept, as tokio's `ToSocketAddrs` does, without
//! DNS: the stack has no resolver, so host names are refused.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Values that name one or more socket addresses: [`SocketAddr`] (and its V4/V6 forms),
/// `(IpAddr, u16)` (and its V4/V6 forms), `"ip:port"` strings (`&str`, `String`),
/// `(&str, u16)` with an IP literal, and slices of [`SocketAddr`].
///
/// Sealed, like [`tokio::net::ToSocketAddrs`]. Host names are an error (`InvalidInput`):
/// the stack does not resolve names.
pub trait ToSocketAddrs: sealed::Sealed {}

#[allow(unreachable_pub)]
mod sealed {
    use std::io;
    use std::net::SocketAddr;

    /// The conversion behind [`super::ToSocketAddrs`].
    pub trait Sealed {
        #[doc(hidden)]
        fn to_addrs(&self) -> io::Result<Vec<SocketAddr>>;
    }
}

pub(crate) fn to_addrs(a: &impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    sealed::Sealed::to_addrs(a)
}

fn parse(s: &str) -> io::Result<Vec<SocketAddr>> {
    s.parse::<SocketAddr>().map(|a| vec![a]).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} is not an `ip:port` address (tcp-tokio does not resolve host names)"),
        )
    })
}

macro_rules! impl_addrs {
    ($($t:ty => |$s:ident| $e:expr;)*) => {$(
        impl ToSocketAddrs for $t {}
        impl sealed::Sealed for $t {
            fn to_addrs(&self) -> io::Result<Vec<SocketAddr>> {
                let $s = self;
                $e
            }
        }
    )*};
}

impl_addrs! {
    SocketAddr => |s| Ok(vec![*s]);
    SocketAddrV4 => |s| Ok(vec![SocketAddr::V4(*s)]);
    SocketAddrV6 => |s| Ok(vec![SocketAddr::V6(*s)]);
    (IpAddr, u16) => |s| Ok(vec![SocketAddr::new(s.0, s.1)]);
    (Ipv4Addr, u16) => |s| Ok(vec![SocketAddr::new(IpAddr::V4(s.0), s.1)]);
    (Ipv6Addr, u16) => |s| Ok(vec![SocketAddr::new(IpAddr::V6(s.0), s.1)]);
    str => |s| parse(s);
    String => |s| parse(s);
    [SocketAddr] => |s| Ok(s.to_vec());
    Vec<SocketAddr> => |s| Ok(s.clone());
    (&str, u16) => |s| s.0.parse::<IpAddr>().map(|ip| vec![SocketAddr::new(ip, s.1)]).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, "not an IP address (tcp-tokio does not resolve host names)")
    });
    (String, u16) => |s| (s.0.as_str(), s.1).to_addrs();
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: ToSocketAddrs + ?Sized> sealed::Sealed for &T {
    fn to_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (**self).to_addrs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let want: SocketAddr = "10.0.0.1:80".parse().unwrap();
        assert_eq!(to_addrs(&"10.0.0.1:80").unwrap(), vec![want]);
        assert_eq!(to_addrs(&String::from("10.0.0.1:80")).unwrap(), vec![want]);
        assert_eq!(to_addrs(&("10.0.0.1", 80)).unwrap(), vec![want]);
        assert_eq!(to_addrs(&(want.ip(), 80)).unwrap(), vec![want]);
        assert_eq!(to_addrs(&want).unwrap(), vec![want]);
        assert_eq!(to_addrs(&"[::1]:80").unwrap()[0].port(), 80);
        assert_eq!(to_addrs(&"localhost:80").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
