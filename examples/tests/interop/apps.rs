// Three ordinary tokio networking apps: a hyper 1.x server and client, a tokio-util `Framed`
// codec, and a proxy built on `tokio::io::copy_bidirectional`. This file is included twice by
// `interop.rs`, once after `use tcp_tokio::net::{TcpListener, TcpStream};` and once after
// `use tokio::net::{TcpListener, TcpStream};`: nothing else differs between the two.

use std::convert::Infallible;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ salt).collect()
}

/// A hyper server (`/hello`, and an echo of any other request's body) and a hyper client
/// making a GET and a streamed 1 MiB POST on one keep-alive connection.
pub(crate) async fn hyper_app(listener: TcpListener) {
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
            let body = match req.uri().path() {
                "/hello" => Full::new(Bytes::from("hello")).map_err(|n| match n {}).boxed(),
                _ => req.into_body().boxed(),
            };
            Ok::<_, Infallible>(Response::new(body))
        });
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await
            .unwrap();
    });

    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    let conn = tokio::spawn(conn);

    let req = Request::get("/hello").header("host", "test").body(Full::new(Bytes::new()));
    let resp = send.send_request(req.unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "hello");

    let data = pattern(1 << 20, 0x5a);
    send.ready().await.unwrap();
    let req = Request::post("/echo").header("host", "test").body(Full::new(Bytes::from(data.clone())));
    let resp = send.send_request(req.unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.into_body().collect().await.unwrap().to_bytes() == data);

    drop(send); // The client closes the connection; the server then finishes cleanly.
    conn.await.unwrap().unwrap();
    server.await.unwrap();
}

/// Length-delimited frames: the server sends each frame back reversed; the client sends 64
/// frames of up to 100 kB one by one, then 64 small ones pipelined, and checks every reply.
pub(crate) async fn framed_app(listener: TcpListener) {
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
        let mut frames = 0;
        while let Some(frame) = framed.next().await {
            let mut frame = frame.unwrap();
            frame.reverse();
            framed.send(frame.freeze()).await.unwrap();
            frames += 1;
        }
        frames
    });

    let stream = TcpStream::connect(addr).await.unwrap();
    let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
    let msg = |i: usize| pattern(i * 7919 % 100_000, i as u8);
    for i in 0..64 {
        framed.send(Bytes::from(msg(i))).await.unwrap();
        let mut back = framed.next().await.unwrap().unwrap().to_vec();
        back.reverse();
        assert!(back == msg(i), "frame {i}");
    }
    // Pipelined: written before any reply is read, so the batch (about 64 KiB) must fit in
    // the socket buffers, as with the kernel, or both ends wait on each other.
    let small = |i: usize| pattern(i * 997 % 2000, i as u8);
    for i in 64..128 {
        framed.feed(Bytes::from(small(i))).await.unwrap();
    }
    SinkExt::<Bytes>::flush(&mut framed).await.unwrap();
    for i in 64..128 {
        let mut back = framed.next().await.unwrap().unwrap().to_vec();
        back.reverse();
        assert!(back == small(i), "frame {i}");
    }
    drop(framed);
    assert_eq!(server.await.unwrap(), 128);
}

/// client ⇄ proxy (`copy_bidirectional`) ⇄ echo backend: 4 MiB through both ways at once;
/// the client's shutdown must travel through the proxy to the backend and back (FIN after
/// the data in flight), or `copy_bidirectional` never returns.
pub(crate) async fn proxy_app(backend: TcpListener, front: TcpListener) {
    let backend_addr = backend.local_addr().unwrap();
    let front_addr = front.local_addr().unwrap();
    let echo = tokio::spawn(async move {
        let (mut s, _) = backend.accept().await.unwrap();
        let (mut r, mut w) = s.split();
        let n = tokio::io::copy(&mut r, &mut w).await.unwrap();
        w.shutdown().await.unwrap();
        n
    });
    let proxy = tokio::spawn(async move {
        let (mut inbound, _) = front.accept().await.unwrap();
        let mut outbound = TcpStream::connect(backend_addr).await.unwrap();
        tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await.unwrap()
    });

    let data = pattern(4 << 20, 0x33);
    let mut c = TcpStream::connect(front_addr).await.unwrap();
    let (mut r, mut w) = c.split();
    let send = async {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let recv = async {
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        got
    };
    let ((), got) = tokio::join!(send, recv);
    assert!(got == data);
    let n = data.len() as u64;
    assert_eq!(proxy.await.unwrap(), (n, n));
    assert_eq!(echo.await.unwrap(), n);
}
