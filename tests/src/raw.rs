//! HTTP/1.1 spoken by hand over a TCP socket, where a well-behaved client cannot misbehave:
//! partial heads, oversized ones, duplicate headers, reading until the server closes.

use crate::server::Server;
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Generous bound for anything that should happen "at once" on a loaded machine.
pub const PROMPT: Duration = Duration::from_secs(20);

pub fn connect(server: &Server) -> TcpStream {
    let address = server.url.strip_prefix("http://").unwrap();
    let stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(PROMPT)).unwrap();
    stream
}

/// Reads until the peer closes (or `PROMPT` passes): what arrived, and whether it closed.
pub fn read_to_close(stream: &mut TcpStream) -> (String, bool) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&received).into_owned(), true),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&received).into_owned(), true);
            }
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), false),
        }
    }
}

/// Reads one response head and its JSON body (by Content-Length).
pub fn read_response(stream: &mut TcpStream) -> (u16, Value) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                let body =
                    serde_json::from_str(&body[..length]).unwrap_or(Value::String(body.into()));
                return (status, body);
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => panic!("connection closed before a full response: {text:?}"),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) => panic!("no response in time ({e}): {text:?}"),
        }
    }
}

/// Sends a raw HTTP/1.1 request head (and `body`) on a new connection: (status, JSON body).
pub fn raw_request(server: &Server, head: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = connect(server);
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    read_response(&mut stream)
}

/// Sends `request` (a whole HTTP/1.1 request, which this adds `Connection: close` to the head
/// of) on a new connection and reads the answer to the end: (head, body), the body byte for byte.
pub fn raw_answer(server: &Server, request: &str) -> (String, String) {
    let (head, body) = request
        .split_once("\r\n\r\n")
        .expect("a request head ends with an empty line");
    let mut stream = connect(server);
    write!(stream, "{head}\r\nConnection: close\r\n\r\n{body}").unwrap();
    let (answer, closed) = read_to_close(&mut stream);
    assert!(closed, "the server did not close: {answer:?}");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole answer");
    (head.to_owned(), body.to_owned())
}
