//! Shared by the simulator's long-transfer tests (`bbr.rs`, `loss_recovery.rs`): one client
//! sending without end to a server over a data link and a clean ACK link.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tcpcore::sim::{BulkApp, Host, LinkConfig, Network, NodeId};
use tcpcore::{ConnConfig, Connection, EndpointConfig, Instant};

/// The client's address.
pub const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
/// The server's address (it listens on port 80).
pub const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

/// A client that sends without end to a server (which only reads), both with `conn`, over
/// `data` (client → server) and a clean ACK link, each with a delay of half `rtt`. Endpoint
/// seeds are `seed ^ 1` and `seed ^ 2`, the network's `seed`. Returns the network and the
/// client's and server's nodes.
pub fn bulk_network(
    seed: u64,
    conn: ConnConfig,
    rtt: Duration,
    data: LinkConfig,
) -> (Network<Host<BulkApp>>, NodeId, NodeId) {
    let ep = |salt: u64| EndpointConfig { seed: seed ^ salt, conn, ..EndpointConfig::default() };
    let mut client = Host::new(ep(1));
    let mut server = Host::new(ep(2));
    let at = SocketAddr::new(SERVER, 80);
    server.listen(at, |_: &Connection| BulkApp::new(0, 2, 1)).expect("listen");
    client.connect(Instant::ZERO, CLIENT, at, BulkApp::new(1 << 40, 1, 2)).expect("connect");
    let mut net = Network::new(seed);
    let c = net.add_node(client, &[CLIENT]);
    let s = net.add_node(server, &[SERVER]);
    net.link_dir(c, s, LinkConfig { delay: rtt / 2, ..data });
    net.link_dir(s, c, LinkConfig { delay: rtt / 2, ..LinkConfig::default() });
    (net, c, s)
}

/// The client's connection.
pub fn client_conn(net: &Network<Host<BulkApp>>, c: NodeId) -> &Connection {
    let (_, conn, _) = net.node(c).connections().next().expect("client connection");
    conn
}
