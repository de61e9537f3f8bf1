//! The command-line options the TUN examples (`http_server`, `http_get`, `tun_forward`) take,
//! with their defaults `--tun tcptun0 --kernel-ip 10.77.0.1/24 --ip 10.77.0.2`, and the
//! `main` they share.

use std::future::Future;
use std::net::IpAddr;
use std::process::ExitCode;

/// The parsed options, or the usage printed (after the error, if there is one) and exit
/// code 2.
///
/// # Errors
/// The exit code when `parsed` is an error.
pub fn args_or_usage<A>(name: &str, usage: &str, parsed: Result<A, String>) -> Result<A, ExitCode> {
    parsed.map_err(|e| {
        if !e.is_empty() {
            eprintln!("{name}: {e}");
        }
        eprintln!("{usage}");
        ExitCode::from(2)
    })
}

/// Run `main` on a multi-thread runtime: exit code 0, or 1 with its error printed.
pub fn run_multi_thread(name: &str, main: impl Future<Output = std::io::Result<()>>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

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
