//! The command-line options both TUN examples (`http_server`, `http_get`) take, with the
//! defaults the issue fixes: `--tun tcptun0 --kernel-ip 10.77.0.1/24 --ip 10.77.0.2`.

use std::net::IpAddr;

/// Where the stack attaches: the TUN name, the kernel side's address, and the stack's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunArgs {
    /// Interface name (`--tun`).
    pub tun: String,
    /// The kernel side's address (`--kernel-ip`, CIDR).
    pub kernel_ip: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// The stack's own address (`--ip`).
    pub ip: IpAddr,
}

impl Default for TunArgs {
    fn default() -> Self {
        TunArgs {
            tun: "tcptun0".into(),
            kernel_ip: [10, 77, 0, 1].into(),
            prefix: 24,
            ip: [10, 77, 0, 2].into(),
        }
    }
}

impl TunArgs {
    /// Take `flag` if it is one of these options, reading its value with `value`; `Ok(false)`
    /// for any other flag.
    ///
    /// # Errors
    /// A missing or malformed value, as a message for the user.
    pub fn take(
        &mut self,
        flag: &str,
        mut value: impl FnMut() -> Result<String, String>,
    ) -> Result<bool, String> {
        match flag {
            "--tun" => self.tun = value()?,
            "--kernel-ip" => (self.kernel_ip, self.prefix) = parse_cidr(&value()?)?,
            "--ip" => self.ip = value()?.parse().map_err(|e| format!("--ip: {e}"))?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// `ADDR[/PREFIX]`; the prefix defaults to 24 for IPv4 and 64 for IPv6.
///
/// # Errors
/// A malformed address or prefix, as a message for the user.
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let (ip, prefix) = s.split_once('/').unwrap_or((s, ""));
    let ip: IpAddr = ip.parse().map_err(|e| format!("--kernel-ip {s:?}: {e}"))?;
    let prefix = match prefix {
        "" if ip.is_ipv4() => 24,
        "" => 64,
        p => p.parse().map_err(|e| format!("--kernel-ip {s:?}: prefix: {e}"))?,
    };
    Ok((ip, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_and_defaults() {
        assert_eq!(parse_cidr("10.1.2.3/16").unwrap(), ([10, 1, 2, 3].into(), 16));
        assert_eq!(parse_cidr("10.1.2.3").unwrap().1, 24);
        assert!(parse_cidr("10.1.2/8").is_err());
        let mut a = TunArgs::default();
        assert_eq!(a.take("--tun", || Ok("t1".into())), Ok(true));
        assert_eq!(a.take("--port", || Ok("1".into())), Ok(false));
        assert_eq!(a.tun, "t1");
    }
}
