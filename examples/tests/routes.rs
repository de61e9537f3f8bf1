//! The observability routes of the examples' server, in memory on a paused clock: `/stats`
//! counts every segment, `/connections` shows a CLOSE-WAIT pile-up.

use examples::{serve, PatternCheck};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tcp_tokio::{MemLink, Stack};
use tokio::io::AsyncReadExt;

/// A server stack serving the routes on 10.0.0.1:80 and a client stack with an HTTP/1.1
/// connection to it.
async fn setup() -> (Stack, Stack, SendRequest<Empty<Bytes>>) {
    let (a, b) = MemLink::pair();
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(b).unwrap();
    let listener = server.bind("10.0.0.1:80").await.unwrap();
    tokio::spawn(serve(server.clone(), listener));
    let stream = client.connect("10.0.0.1:80").await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    (server, client, send)
}

async fn get(send: &mut SendRequest<Empty<Bytes>>, path: &str) -> Bytes {
    let req = Request::get(path).header("host", "10.0.0.1").body(Empty::new()).unwrap();
    send.ready().await.unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
    resp.into_body().collect().await.unwrap().to_bytes()
}

async fn get_json(send: &mut SendRequest<Empty<Bytes>>, path: &str) -> serde_json::Value {
    serde_json::from_slice(&get(send, path).await).unwrap()
}

/// CL-11: a server that never closes what its peers closed shows a CLOSE-WAIT pile-up in
/// `/connections`, in the counts and in the listing.
#[tokio::test(start_paused = true)]
async fn cl_11_connections_route_shows_a_close_wait_pile_up() {
    const N: usize = 12;
    let (server, client, mut send) = setup().await;
    let forgetful = server.bind("10.0.0.1:81").await.unwrap();
    let mut never_closed = Vec::new();
    for _ in 0..N {
        let c = client.connect("10.0.0.1:81").await.unwrap();
        let (mut s, _) = forgetful.accept().await.unwrap();
        drop(c);
        assert_eq!(s.read(&mut [0; 8]).await.unwrap(), 0, "the peer's FIN");
        never_closed.push(s);
    }
    let json = get_json(&mut send, "/connections").await;
    assert_eq!(json["counts"]["CLOSE_WAIT"], N, "{json:#}");
    assert_eq!(json["counts"]["ESTABLISHED"], 1, "the HTTP connection itself");
    let listing = json["connections"].as_array().unwrap();
    let close_wait: Vec<_> = listing.iter().filter(|c| c["state"] == "CLOSE_WAIT").collect();
    assert_eq!(close_wait.len(), N);
    for c in close_wait {
        assert!(c["local"].as_str().unwrap().ends_with(":81"), "{c:#}");
        assert_eq!(c["info"]["state"], "CLOSE_WAIT");
        assert_eq!(c["recv_queue"], 0);
    }
}

/// `/stats` counts every segment the server sent and received, not only the endpoint's
/// own: after a 4 MiB download, at least one packet out per MSS of it.
#[tokio::test(start_paused = true)]
async fn stats_route_counts_every_segment() {
    const SIZE: u64 = 4 << 20;
    let (server, _client, mut send) = setup().await;
    let body = get(&mut send, &format!("/bytes/{SIZE}")).await;
    let mut check = PatternCheck::new();
    check.check(&body).unwrap();
    assert_eq!(check.position(), SIZE);
    let stats = get_json(&mut send, "/stats").await;
    let mss = u64::from(server.connections()[0].info.snd_mss);
    let n = |k: &str| stats[k].as_u64().unwrap_or_else(|| panic!("{k} in {stats:#}"));
    assert!(n("packets_out") >= SIZE / mss, "{stats:#}");
    assert!(n("bytes_out") > SIZE, "{stats:#}");
    assert!(n("packets_in") > 0 && n("bytes_in") > 0, "{stats:#}");
    assert_eq!(n("connections"), 1);
    assert_eq!(stats["endpoint"]["passive_opens"], 1);
    assert_eq!(stats["endpoint"]["parse_errors"]["Truncated"], 0);
    for k in ["drops_not_local", "drops_connection", "drops_endpoint", "drops_send_error"] {
        assert_eq!(n(k), 0, "{k}");
    }
}
