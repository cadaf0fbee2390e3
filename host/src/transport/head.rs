//! The first request head of a connection, bounded before hyper buffers it.
//!
//! hyper answers a head over its buffer (about 400 KiB) or with more than 100 headers with an
//! empty `431`, which no client of an OAuth endpoint can read. This wrapper counts the bytes
//! and lines of the connection's first head as they arrive; past [`MAX_HEAD_BYTES`] or
//! [`MAX_HEAD_LINES`] it writes the endpoint's JSON answer ([`guard::oversized_head`]) itself,
//! and hyper sees the connection end (a partial head, which it drops without an answer). Once
//! the first head has ended the wrapper only passes bytes through: later heads on the same
//! connection are held to the same limits by the api layer's guard, up to hyper's buffer.

use crate::api::guard::{self, MAX_HEAD_BYTES, MAX_HEAD_LINES};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest request line kept to choose the answer's shape.
const MAX_REQUEST_LINE: usize = 2048;
/// Most bytes of the rest of a refused head read and dropped after the answer: closing a
/// socket with unread data sends a reset, which can destroy the answer before the client
/// reads it. (hyper's header timeout bounds the time this takes.)
const MAX_DRAINED: usize = 16 << 20;

/// A connection whose first request head is bounded.
pub struct FirstHead<S> {
    inner: S,
    scan: Option<Scan>,
    /// The refusal being written, and how much of it is out.
    answer: Option<(Vec<u8>, usize)>,
    /// Whether the answer is out and the writing side closed.
    closed: bool,
    /// Bytes read and dropped since then.
    drained: usize,
}

impl<S> FirstHead<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            scan: Some(Scan::default()),
            answer: None,
            closed: false,
            drained: 0,
        }
    }
}

/// Where the first head stands.
#[derive(Default)]
struct Scan {
    bytes: usize,
    lines: usize,
    /// Progress through a blank line: 1 after `\n`, 2 after `\n\r`.
    blank: u8,
    request_line: Vec<u8>,
}

enum Seen {
    More,
    Ended,
    TooLarge,
}

impl Scan {
    fn feed(&mut self, data: &[u8]) -> Seen {
        for &b in data {
            self.bytes += 1;
            if self.lines == 0 && b != b'\n' && self.request_line.len() < MAX_REQUEST_LINE {
                self.request_line.push(b);
            }
            // httparse accepts bare `\n` line ends, so a head ends at `\n\n` or `\n\r\n`.
            self.blank = match (self.blank, b) {
                (1 | 2, b'\n') => return Seen::Ended,
                (1, b'\r') => 2,
                (_, b'\n') => 1,
                _ => 0,
            };
            if b == b'\n' {
                self.lines += 1;
            }
            if self.bytes > MAX_HEAD_BYTES || self.lines > MAX_HEAD_LINES {
                return Seen::TooLarge;
            }
        }
        Seen::More
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> FirstHead<S> {
    /// Writes the refusal and closes the writing side, then drops what the client still sends
    /// until it closes too (or [`MAX_DRAINED`]); then reads end, and hyper drops the partial
    /// head without an answer of its own.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some((answer, written)) = &mut self.answer else {
            return Poll::Ready(Ok(()));
        };
        if !self.closed {
            while *written < answer.len() {
                let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
            ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
            self.closed = true;
        }
        let mut scratch = [0u8; 8192];
        while self.drained < MAX_DRAINED {
            let mut sink = ReadBuf::new(&mut scratch);
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut sink))?;
            if sink.filled().is_empty() {
                break;
            }
            self.drained += sink.filled().len();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for FirstHead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.answer.is_some() {
            return this.poll_answer(cx);
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let Some(scan) = &mut this.scan else {
            return Poll::Ready(Ok(()));
        };
        match scan.feed(&buf.filled()[before..]) {
            Seen::More => Poll::Ready(Ok(())),
            Seen::Ended => {
                this.scan = None;
                Poll::Ready(Ok(()))
            }
            Seen::TooLarge => {
                buf.set_filled(before);
                this.answer = Some((guard::oversized_head(&scan.request_line), 0));
                this.scan = None;
                this.poll_answer(cx)
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstHead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, data)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Sends `request` through the wrapper: what the server side read, and what the client got.
    async fn through(request: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
        let (client, server) = tokio::io::duplex(1 << 20);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let writer = tokio::spawn(async move {
            let _ = client_write.write_all(&request).await;
            let _ = client_write.shutdown().await;
        });
        let mut wrapped = FirstHead::new(server);
        let mut read = Vec::new();
        wrapped.read_to_end(&mut read).await.unwrap();
        drop(wrapped);
        writer.await.unwrap();
        let mut answer = Vec::new();
        client_read.read_to_end(&mut answer).await.unwrap();
        (read, answer)
    }

    #[tokio::test]
    async fn a_head_within_the_limits_passes_untouched() {
        let mut request = b"POST /oauth2/token HTTP/1.1\r\nhost: x\r\n\r\n".to_vec();
        // A body after the head is never counted, however large.
        request.extend(vec![b'a'; 2 * MAX_HEAD_BYTES]);
        let (read, answer) = through(request.clone()).await;
        assert_eq!(read, request);
        assert!(answer.is_empty());
    }

    #[tokio::test]
    async fn an_oversized_first_head_gets_the_json_answer() {
        let mut request =
            b"GET /sts/exchange?identity=x HTTP/1.1\r\nauthorization: Bearer ".to_vec();
        request.extend(vec![b'a'; 1 << 20]);
        request.extend(b"\r\n\r\n");
        let (read, answer) = through(request).await;
        assert!(read.len() <= MAX_HEAD_BYTES + 64 * 1024, "{}", read.len());
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
        assert!(answer.contains(r#""error":"invalid_request""#), "{answer}");
    }

    #[tokio::test]
    async fn too_many_header_lines_get_the_json_answer() {
        let mut request = b"GET /v1/tenants HTTP/1.1\n".to_vec();
        for i in 0..200 {
            request.extend(format!("x-{i}: y\n").as_bytes());
        }
        request.extend(b"\n");
        let (_, answer) = through(request).await;
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
        assert!(answer.contains(r#""message""#), "{answer}");
    }
}
