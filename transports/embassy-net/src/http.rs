//! One HTTP/1.1 request/response exchange over any byte stream.
//!
//! Request encoding and response parsing (status line, headers, fixed-length and chunked
//! bodies) come from `reqwless`; this module adds what a reusable SDK connection needs:
//! the body read into the caller's buffer and cut when longer, the two headers the core
//! reads, and the decision whether the connection may carry another request.

use amplitude_core::transport::{TransportError, parse_http_date, parse_retry_after};
use embassy_time::{Instant, with_deadline};
use embedded_io_async::{Error as _, ErrorKind, Read, Write};
use reqwless::headers::{ContentType, TransferEncoding};
use reqwless::request::{Method, Request, RequestBuilder};
use reqwless::response::{BodyReader, Response};

/// How many bytes of an over-long body are read and thrown away so that the connection
/// can be reused. Longer bodies close the connection instead.
const DISCARD_LIMIT: usize = 16 * 1024;

/// A stream wrapper that remembers whether any response byte arrived since the request
/// started, and the first bytes of the response (its HTTP version).
pub(crate) struct Tracked<S> {
    inner: S,
    read_total: usize,
    head: [u8; 8],
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            read_total: 0,
            head: [0; 8],
        }
    }

    fn start_request(&mut self) {
        self.read_total = 0;
        self.head = [0; 8];
    }

    /// Whether the response was `HTTP/1.0` (closes unless it says `keep-alive`).
    fn is_http10(&self) -> bool {
        self.read_total >= self.head.len() && &self.head == b"HTTP/1.0"
    }
}

impl<S: embedded_io_async::ErrorType> embedded_io_async::ErrorType for Tracked<S> {
    type Error = S::Error;
}

impl<S: Read> Read for Tracked<S> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = self.inner.read(buf).await?;
        if self.read_total < self.head.len() {
            let take = n.min(self.head.len() - self.read_total);
            self.head[self.read_total..self.read_total + take].copy_from_slice(&buf[..take]);
        }
        self.read_total = self.read_total.saturating_add(n);
        Ok(n)
    }
}

impl<S: Write> Write for Tracked<S> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.inner.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush().await
    }
}

/// What to put on the wire besides the body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestHead<'r> {
    /// Path and query.
    pub path: &'r str,
    /// Value of the `Host` header.
    pub authority: &'r str,
    /// `User-Agent` header value (none when empty).
    pub user_agent: &'r str,
    /// Ask the server to keep the connection open (`false` sends `Connection: close`).
    pub keep_alive: bool,
}

/// A completed exchange; the body is `body_buf[..body_len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exchanged {
    pub status: u16,
    pub retry_after_secs: Option<u32>,
    pub date_ms: Option<u64>,
    pub body_len: usize,
    pub truncated: bool,
    /// The connection is at a message boundary and the server allows another request.
    pub reusable: bool,
}

/// A failed exchange: no status line was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failed {
    pub error: TransportError,
    /// Whether any response byte arrived before the failure. When none did on a reused
    /// connection, the server most likely closed it while idle: retrying on a fresh
    /// connection is safe.
    pub response_started: bool,
}

/// Map an I/O error kind onto the core's error kinds.
pub(crate) fn io_error(kind: ErrorKind) -> TransportError {
    match kind {
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::NotConnected
        | ErrorKind::WriteZero => TransportError::Closed,
        ErrorKind::TimedOut => TransportError::Timeout,
        _ => TransportError::Io,
    }
}

fn reqwless_error(e: reqwless::Error) -> TransportError {
    match e {
        reqwless::Error::Network(kind) => io_error(kind),
        reqwless::Error::ConnectionAborted => TransportError::Closed,
        reqwless::Error::Dns => TransportError::Dns,
        reqwless::Error::InvalidUrl(_) => TransportError::InvalidUrl,
        // Malformed status line or headers, or headers larger than the header buffer.
        _ => TransportError::Protocol,
    }
}

/// Whether a `Connection` header value lists `token` (comma-separated, any case).
fn connection_has(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// The body ended before its framing said it would, or the stream failed.
struct BodyBroken;

/// Read the next piece of the body into `buf` (non-empty). `Ok(0)` means the body is
/// complete by its framing; a stream that ends early is [`BodyBroken`], never a short body
/// taken for a whole one.
async fn read_framed<B: Read>(
    reader: &mut BodyReader<B>,
    buf: &mut [u8],
) -> Result<usize, BodyBroken> {
    match reader {
        BodyReader::Empty => Ok(0),
        BodyReader::FixedLength(r) => {
            if r.remaining == 0 {
                return Ok(0);
            }
            // Never read past the declared length: whatever follows is not this body.
            let max = buf.len().min(r.remaining);
            match r.raw_body.read(&mut buf[..max]).await {
                Ok(0) | Err(_) => Err(BodyBroken),
                Ok(n) => {
                    r.remaining -= n;
                    Ok(n)
                }
            }
        }
        BodyReader::Chunked(r) => match r.read(buf).await {
            Ok(0) if !r.is_done() => Err(BodyBroken),
            Ok(n) => Ok(n),
            Err(_) => Err(BodyBroken),
        },
        // No framing: the body is everything until the server closes.
        BodyReader::ToEnd(raw) => raw.read(buf).await.map_err(|_| BodyBroken),
    }
}

/// Send `POST head.path` with `body` on `io` and read the response: headers into
/// `header_buf`, body into `body_buf` (cut when longer). Everything must finish by
/// `deadline`.
pub(crate) async fn exchange<S: Read + Write>(
    io: &mut Tracked<S>,
    head: RequestHead<'_>,
    body: &[u8],
    header_buf: &mut [u8],
    body_buf: &mut [u8],
    deadline: Instant,
) -> Result<Exchanged, Failed> {
    io.start_request();
    let before_response = |error| Failed {
        error,
        response_started: false,
    };

    // --- request ---
    let close_header = [("Connection", "close")];
    let ua_header = [("User-Agent", head.user_agent)];
    let both = [("User-Agent", head.user_agent), ("Connection", "close")];
    let extra: &[(&str, &str)] = match (head.user_agent.is_empty(), head.keep_alive) {
        (true, true) => &[],
        (true, false) => &close_header,
        (false, true) => &ua_header,
        (false, false) => &both,
    };
    let request = Request::new(Method::POST, head.path)
        .host(head.authority)
        .content_type(ContentType::ApplicationJson)
        .headers(extra)
        .body(body)
        .build();
    let send = async {
        request.write_header(io).await.map_err(reqwless_error)?;
        io.write_all(body).await.map_err(|e| io_error(e.kind()))?;
        io.flush().await.map_err(|e| io_error(e.kind()))
    };
    match with_deadline(deadline, send).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(before_response(e)),
        Err(_) => return Err(before_response(TransportError::Timeout)),
    }

    // --- status line and headers ---
    let read = with_deadline(
        deadline,
        Response::read(&mut *io, Method::POST, &mut *header_buf),
    )
    .await;
    let response = match read {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return Err(Failed {
                error: reqwless_error(e),
                response_started: io.read_total > 0,
            });
        }
        Err(_) => {
            return Err(Failed {
                error: TransportError::Timeout,
                response_started: io.read_total > 0,
            });
        }
    };
    if response.status.is_informational() {
        // No `Expect: 100-continue` is sent, so no interim response is expected; bytes of
        // the final response may already sit behind it in the header buffer, where
        // reqwless cannot hand them back. Report it rather than misread what follows.
        return Err(Failed {
            error: TransportError::Protocol,
            response_started: true,
        });
    }

    let status = response.status.0;
    let mut retry_after_secs = None;
    let mut date_ms = None;
    let mut close = false;
    let mut keep_alive_token = false;
    for (name, value) in response.headers() {
        if name.eq_ignore_ascii_case("retry-after") {
            retry_after_secs = parse_retry_after(value);
        } else if name.eq_ignore_ascii_case("date") {
            date_ms = parse_http_date(value);
        } else if name.eq_ignore_ascii_case("connection") {
            close |= connection_has(value, "close");
            keep_alive_token |= connection_has(value, "keep-alive");
        }
    }
    // Without a length or chunked framing the body runs until the server closes.
    let framed = response.content_length.is_some()
        || response
            .transfer_encoding
            .contains(&TransferEncoding::Chunked)
        || status == 204
        || status == 304;

    // --- body ---
    let mut reader = response.body().reader();
    let mut body_len = 0;
    let mut truncated = false;
    let mut complete = false;
    let read_body = async {
        while body_len < body_buf.len() {
            match read_framed(&mut reader, &mut body_buf[body_len..]).await? {
                0 => {
                    complete = true;
                    return Ok::<(), BodyBroken>(());
                }
                n => body_len += n,
            }
        }
        // The buffer is full: find out whether more follows, and skip it (bounded).
        let mut scratch = [0u8; 64];
        let mut discarded = 0usize;
        loop {
            match read_framed(&mut reader, &mut scratch).await? {
                0 => {
                    complete = true;
                    return Ok(());
                }
                n => {
                    truncated = true;
                    discarded += n;
                    if discarded > DISCARD_LIMIT {
                        return Ok(());
                    }
                }
            }
        }
    };
    // The status is known: a body that breaks off or times out still gives a response,
    // marked truncated, and the connection is not reused.
    let body_ok = matches!(with_deadline(deadline, read_body).await, Ok(Ok(())));
    if !body_ok {
        truncated = true;
    }

    let persistent = if io.is_http10() {
        keep_alive_token && !close
    } else {
        !close
    };
    Ok(Exchanged {
        status,
        retry_after_secs,
        date_ms,
        body_len,
        truncated,
        reusable: head.keep_alive && persistent && framed && complete && body_ok,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use embassy_futures::block_on;
    use std::vec::Vec;

    /// A scripted peer: hands out `incoming` in pieces of at most `chunk` bytes, then EOF
    /// (or `end_error`), and records what was written.
    struct Peer {
        incoming: Vec<u8>,
        pos: usize,
        chunk: usize,
        end_error: Option<ErrorKind>,
        write_error: Option<ErrorKind>,
        written: Vec<u8>,
    }

    impl Peer {
        fn new(incoming: &[u8]) -> Self {
            Self {
                incoming: incoming.to_vec(),
                pos: 0,
                chunk: 7,
                end_error: None,
                write_error: None,
                written: Vec::new(),
            }
        }
    }

    impl embedded_io_async::ErrorType for Peer {
        type Error = ErrorKind;
    }

    impl Read for Peer {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
            if self.pos == self.incoming.len() {
                return match self.end_error {
                    Some(e) => Err(e),
                    None => Ok(0),
                };
            }
            let n = buf
                .len()
                .min(self.chunk)
                .min(self.incoming.len() - self.pos);
            buf[..n].copy_from_slice(&self.incoming[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    impl Write for Peer {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
            if let Some(e) = self.write_error {
                return Err(e);
            }
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        async fn flush(&mut self) -> Result<(), ErrorKind> {
            Ok(())
        }
    }

    const HEAD: RequestHead<'static> = RequestHead {
        path: "/2/httpapi",
        authority: "192.168.69.1:8080",
        user_agent: "amplitude-embassy-net/test",
        keep_alive: true,
    };

    fn run(
        peer: &mut Tracked<Peer>,
        head: RequestHead<'_>,
        body_cap: usize,
    ) -> (Result<Exchanged, Failed>, Vec<u8>) {
        let mut header_buf = [0u8; 512];
        let mut body_buf = std::vec![0u8; body_cap];
        let r = block_on(exchange(
            peer,
            head,
            br#"{"api_key":"k","events":[]}"#,
            &mut header_buf,
            &mut body_buf,
            Instant::from_secs(3600),
        ));
        let body = match &r {
            Ok(x) => body_buf[..x.body_len].to_vec(),
            Err(_) => Vec::new(),
        };
        (r, body)
    }

    #[test]
    fn writes_a_post_with_host_content_type_and_content_length() {
        let mut peer = Tracked::new(Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        let (r, _) = run(&mut peer, HEAD, 64);
        assert_eq!(r.unwrap().status, 200);
        let sent = std::string::String::from_utf8(peer.inner.written.clone()).unwrap();
        assert!(sent.starts_with("POST /2/httpapi HTTP/1.1\r\n"), "{sent}");
        assert!(sent.contains("Host: 192.168.69.1:8080\r\n"), "{sent}");
        assert!(
            sent.contains("Content-Type: application/json\r\n"),
            "{sent}"
        );
        assert!(sent.contains("Content-Length: 27\r\n"), "{sent}");
        assert!(
            sent.contains("User-Agent: amplitude-embassy-net/test\r\n"),
            "{sent}"
        );
        assert!(!sent.contains("Connection:"), "{sent}");
        assert!(
            sent.ends_with("\r\n\r\n{\"api_key\":\"k\",\"events\":[]}"),
            "{sent}"
        );
    }

    #[test]
    fn keep_alive_off_sends_connection_close_and_never_reuses() {
        let mut peer = Tracked::new(Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"));
        let head = RequestHead {
            keep_alive: false,
            user_agent: "",
            ..HEAD
        };
        let (r, body) = run(&mut peer, head, 64);
        let r = r.unwrap();
        assert!(!r.reusable);
        assert_eq!(body, b"{}");
        let sent = std::string::String::from_utf8(peer.inner.written.clone()).unwrap();
        assert!(sent.contains("Connection: close\r\n"), "{sent}");
        assert!(!sent.contains("User-Agent"), "{sent}");
    }

    #[test]
    fn reads_status_headers_and_fixed_length_body() {
        let mut peer = Tracked::new(Peer::new(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
              Content-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"code\":429}\n",
        ));
        let (r, body) = run(&mut peer, HEAD, 64);
        let r = r.unwrap();
        assert_eq!(r.status, 429);
        assert_eq!(r.retry_after_secs, Some(30));
        assert_eq!(r.date_ms, Some(784_111_777_000));
        assert_eq!(body, b"{\"code\":429}\n");
        assert!(!r.truncated);
        assert!(r.reusable);
    }

    #[test]
    fn reads_a_chunked_body_and_stays_reusable() {
        let mut peer = Tracked::new(Peer::new(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"cod\r\n7\r\ne\":200}\r\n0\r\n\r\n",
        ));
        let (r, body) = run(&mut peer, HEAD, 64);
        let r = r.unwrap();
        assert_eq!(body, b"{\"code\":200}");
        assert!(r.reusable && !r.truncated);
    }

    #[test]
    fn a_longer_body_is_cut_to_the_buffer_and_the_rest_skipped() {
        let mut peer = Tracked::new(Peer::new(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 20\r\n\r\n0123456789abcdefghij",
        ));
        let (r, body) = run(&mut peer, HEAD, 8);
        let r = r.unwrap();
        assert_eq!(body, b"01234567");
        assert!(r.truncated);
        // The rest was drained, so the connection is still at a message boundary.
        assert!(r.reusable);
        assert_eq!(peer.inner.pos, peer.inner.incoming.len());
    }

    #[test]
    fn a_body_exactly_the_buffer_size_is_not_truncated() {
        let mut peer = Tracked::new(Peer::new(
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd",
        ));
        let (r, body) = run(&mut peer, HEAD, 4);
        let r = r.unwrap();
        assert_eq!(body, b"abcd");
        assert!(!r.truncated && r.reusable);
    }

    #[test]
    fn connection_close_header_prevents_reuse() {
        let mut peer = Tracked::new(Peer::new(
            b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n",
        ));
        assert!(!run(&mut peer, HEAD, 64).0.unwrap().reusable);
    }

    #[test]
    fn http10_closes_unless_it_says_keep_alive() {
        let mut peer = Tracked::new(Peer::new(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!run(&mut peer, HEAD, 64).0.unwrap().reusable);
        let mut peer = Tracked::new(Peer::new(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        ));
        assert!(run(&mut peer, HEAD, 64).0.unwrap().reusable);
    }

    #[test]
    fn a_body_without_framing_is_read_to_eof_and_not_reused() {
        let mut peer = Tracked::new(Peer::new(b"HTTP/1.1 200 OK\r\n\r\n{\"code\":200}"));
        let (r, body) = run(&mut peer, HEAD, 64);
        let r = r.unwrap();
        assert_eq!(body, b"{\"code\":200}");
        assert!(!r.reusable);
    }

    #[test]
    fn an_unrequested_interim_response_is_a_protocol_error() {
        let mut peer = Tracked::new(Peer::new(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
        ));
        assert_eq!(
            run(&mut peer, HEAD, 64).0.unwrap_err(),
            Failed {
                error: TransportError::Protocol,
                response_started: true
            }
        );
    }

    #[test]
    fn eof_before_any_byte_is_closed_without_a_started_response() {
        let mut peer = Tracked::new(Peer::new(b""));
        let (r, _) = run(&mut peer, HEAD, 64);
        assert_eq!(
            r.unwrap_err(),
            Failed {
                error: TransportError::Closed,
                response_started: false
            }
        );
    }

    #[test]
    fn eof_inside_the_headers_is_closed_with_a_started_response() {
        let mut peer = Tracked::new(Peer::new(b"HTTP/1.1 200 OK\r\nContent-Le"));
        let (r, _) = run(&mut peer, HEAD, 64);
        assert_eq!(
            r.unwrap_err(),
            Failed {
                error: TransportError::Closed,
                response_started: true
            }
        );
    }

    #[test]
    fn a_reset_while_writing_is_closed() {
        let mut p = Peer::new(b"");
        p.write_error = Some(ErrorKind::ConnectionReset);
        let mut peer = Tracked::new(p);
        let (r, _) = run(&mut peer, HEAD, 64);
        assert_eq!(r.unwrap_err().error, TransportError::Closed);
    }

    #[test]
    fn garbage_instead_of_http_is_a_protocol_error() {
        let mut peer = Tracked::new(Peer::new(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"));
        assert_eq!(
            run(&mut peer, HEAD, 64).0.unwrap_err().error,
            TransportError::Protocol
        );
    }

    #[test]
    fn headers_larger_than_the_header_buffer_are_a_protocol_error() {
        let mut resp = b"HTTP/1.1 200 OK\r\nX-Pad: ".to_vec();
        resp.extend(std::iter::repeat_n(b'a', 600));
        resp.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
        let mut peer = Tracked::new(Peer::new(&resp));
        assert_eq!(
            run(&mut peer, HEAD, 64).0.unwrap_err().error,
            TransportError::Protocol
        );
    }

    #[test]
    fn a_body_cut_short_by_a_reset_still_reports_the_status() {
        let mut p = Peer::new(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 50\r\n\r\n{\"code\":",
        );
        p.end_error = Some(ErrorKind::ConnectionReset);
        let mut peer = Tracked::new(p);
        let (r, body) = run(&mut peer, HEAD, 64);
        let r = r.unwrap();
        assert_eq!(r.status, 500);
        assert_eq!(body, b"{\"code\":");
        assert!(r.truncated && !r.reusable);
    }

    #[test]
    fn a_fixed_length_body_ended_early_is_truncated_not_complete() {
        let mut peer = Tracked::new(Peer::new(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        ));
        let (r, body) = run(&mut peer, HEAD, 64);
        let r = r.unwrap();
        assert_eq!(body, b"abc");
        assert!(r.truncated && !r.reusable);
    }

    #[test]
    fn a_chunked_body_ended_early_is_truncated_not_complete() {
        let mut peer = Tracked::new(Peer::new(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        ));
        let (r, body) = run(&mut peer, HEAD, 64);
        let r = r.unwrap();
        assert_eq!(body, b"ab");
        assert!(r.truncated && !r.reusable);
    }

    #[test]
    fn bytes_after_a_fixed_length_body_are_not_read_into_it() {
        // The server sends more than it declared; only the declared bytes are the body.
        let mut p = Peer::new(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
        p.chunk = 1;
        p.incoming.extend_from_slice(b"{}EXTRA");
        let mut peer = Tracked::new(p);
        let (r, body) = run(&mut peer, HEAD, 64);
        assert_eq!(body, b"{}");
        assert!(!r.unwrap().truncated);
    }

    #[test]
    fn connection_tokens_are_matched_whole_and_case_insensitively() {
        assert!(connection_has(b"close", "close"));
        assert!(connection_has(b" Upgrade ,CLOSE", "close"));
        assert!(!connection_has(b"closed", "close"));
        assert!(!connection_has(b"", "close"));
    }

    #[test]
    fn io_error_kinds_map_to_core_errors() {
        assert_eq!(io_error(ErrorKind::ConnectionReset), TransportError::Closed);
        assert_eq!(io_error(ErrorKind::TimedOut), TransportError::Timeout);
        assert_eq!(io_error(ErrorKind::Other), TransportError::Io);
    }
}
