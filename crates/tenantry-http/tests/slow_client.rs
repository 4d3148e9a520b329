//! `tenantry_http::serve` disconnects a client that does not finish sending a request's headers
//! within the header read timeout, while complete requests are answered as usual.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn connect(port: u16) -> TcpStream {
    for _ in 0..200 {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await {
            return stream;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the server did not start listening");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let port = free_port();
    let app = Router::new().route("/", get(|| async { "ok" }));
    let server = tokio::spawn(tenantry_http::serve(
        app,
        format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_millis(300),
    ));

    let mut complete = connect(port).await;
    complete.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    complete.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let mut slow = connect(port).await;
    slow.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    // the headers never end: the server closes the connection (a guard, not a measurement, keeps
    // a broken server from hanging the test)
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), slow.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the server kept a connection with unfinished headers open for 30 s");
    let text = String::from_utf8_lossy(&rest);
    assert!(!text.starts_with("HTTP/1.1 200"), "an unfinished request was answered: {text}");
    server.abort();
}
