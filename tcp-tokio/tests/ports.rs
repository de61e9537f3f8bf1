//! PT-01 through the tokio API: `bind` to port 0 never takes a port the stack's own live
//! connections use.

use std::io::ErrorKind;

use tcp_tokio::{EndpointConfig, MemLink, Stack};

/// PT-01: with a two-port ephemeral range and one port taken by a live connection,
/// `bind(":0")` gets the other port, and then no port at all.
#[tokio::test(start_paused = true)]
async fn pt_01_bind_port_zero_skips_ports_of_live_connections() {
    let (a, b) = MemLink::pair();
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let narrow = EndpointConfig {
        ephemeral_start: 40000,
        ephemeral_end: 40001,
        ..EndpointConfig::default()
    };
    let client = Stack::builder()
        .address("10.0.0.2".parse().unwrap())
        .config(narrow)
        .seed(2)
        .build(b)
        .unwrap();
    let _listener = server.bind("10.0.0.1:80").await.unwrap();
    let conn = client.connect("10.0.0.1:80").await.unwrap();
    let used = conn.local_addr().unwrap().port();

    let l = client.bind("10.0.0.2:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    assert!((40000..=40001).contains(&port), "{port} is in the ephemeral range");
    assert_ne!(port, used, "the listener took the live connection's port");
    let err = client.bind("0.0.0.0:0").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrNotAvailable, "{err}");
}
