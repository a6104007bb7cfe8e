//! [`ReqwestTransport`]: the core's [`Transport`] over a keep-alive `reqwest` client.
//!
//! It posts the bytes the core gives it and reports what came back — status,
//! `Retry-After`, `Date` and a bounded body. Everything else (batching, limits,
//! classification, retries) is the core's job.

use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use amplitude_core::transport::{
    Request, Response, Transport, TransportError, parse_http_date, parse_retry_after,
};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, DATE, HeaderValue, RETRY_AFTER};

/// Default time a whole request (connect, send, response and body) may take.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of an over-long response body read and thrown away after the caller's buffer
/// is full, so the connection can be reused; beyond this the connection is dropped.
const MAX_DISCARD: usize = 1 << 20;

/// The `User-Agent` header sent with every request.
pub const USER_AGENT: &str = concat!("amplitude-rust/", env!("CARGO_PKG_VERSION"));

/// Why a [`ReqwestTransport`] could not be built.
#[derive(Debug)]
pub struct BuildError(reqwest::Error);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot build the HTTP client: {}", self.0)
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Settings of a [`ReqwestTransport`].
///
/// ```
/// use std::time::Duration;
/// use amplitude_reqwest::ReqwestTransport;
///
/// let transport = ReqwestTransport::builder()
///     .timeout(Duration::from_secs(5))
///     .build()
///     .unwrap();
/// # let _ = transport;
/// ```
#[derive(Debug, Clone)]
pub struct TransportBuilder {
    timeout: Duration,
    connect_timeout: Option<Duration>,
    gzip: bool,
    plain_http: bool,
}

impl TransportBuilder {
    /// Time a whole request may take (default 10 s). Longer ones fail with
    /// [`TransportError::Timeout`] and are retried by the core.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Time the TCP (and TLS) connection may take (default: bounded by `timeout` only).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Compress request bodies with gzip (`Content-Encoding: gzip`). Amplitude counts
    /// its limits after decompression, so this saves bandwidth, not requests.
    #[cfg(feature = "gzip")]
    #[must_use]
    pub fn gzip(mut self, on: bool) -> Self {
        self.gzip = on;
        self
    }

    /// The transport will only post to `http://` URLs (a local server or relay): the
    /// system's certificate roots are not loaded (a faster start and about 1.5 MB less
    /// memory), and an `https://` URL would fail certificate verification.
    #[must_use]
    pub fn plain_http_only(mut self, on: bool) -> Self {
        self.plain_http = on;
        self
    }

    /// Build the transport: one keep-alive connection pool, no redirects, no proxy
    /// discovery.
    pub fn build(self) -> Result<ReqwestTransport, BuildError> {
        let mut b = reqwest::Client::builder()
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(50));
        if let Some(t) = self.connect_timeout {
            b = b.connect_timeout(t);
        }
        #[cfg(any(feature = "rustls", feature = "native-tls"))]
        if self.plain_http {
            b = b.tls_certs_only(Vec::new());
        }
        let client = b.build().map_err(BuildError)?;
        Ok(ReqwestTransport {
            client,
            url: None,
            gzip: self.gzip,
        })
    }
}

/// The core's [`Transport`] over `reqwest`: HTTP/1.1 keep-alive, HTTPS with the crate's
/// TLS feature, a whole-request timeout, and a response body bounded by the caller's
/// buffer (the rest is discarded).
///
/// Clones share the connection pool, so each request in flight can own a clone.
///
/// ```no_run
/// use amplitude_core::transport::{Request, Transport};
/// use amplitude_reqwest::ReqwestTransport;
///
/// # async fn demo() {
/// let mut transport = ReqwestTransport::new().unwrap();
/// let body = br#"{"api_key":"KEY","events":[]}"#;
/// let mut buf = [0u8; 4096];
/// let request = Request { url: "http://127.0.0.1:8080/2/httpapi", body };
/// match transport.send(request, &mut buf).await {
///     Ok(response) => println!("status {}", response.status),
///     Err(e) => println!("no response: {e}"),
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    /// The last URL used, parsed (the core sends every request to the same URL).
    url: Option<(String, reqwest::Url)>,
    gzip: bool,
}

impl fmt::Debug for ReqwestTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestTransport")
            .field("url", &self.url.as_ref().map(|u| u.0.as_str()))
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

impl ReqwestTransport {
    /// A transport with the default settings (10 s timeout, no gzip).
    pub fn new() -> Result<Self, BuildError> {
        Self::builder().build()
    }

    /// Settings to build a transport from.
    pub fn builder() -> TransportBuilder {
        TransportBuilder {
            timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: None,
            gzip: false,
            plain_http: false,
        }
    }

    /// Use an existing `reqwest::Client` (its timeouts, proxy and TLS settings apply).
    /// Redirects should be disabled on it: a redirected POST is not resent as a POST.
    pub fn from_client(client: reqwest::Client) -> Self {
        Self {
            client,
            url: None,
            gzip: false,
        }
    }

    /// Check that `url` can be used: absolute `http://` or `https://` (the latter only
    /// with a TLS feature), with a host.
    ///
    /// ```
    /// use amplitude_reqwest::ReqwestTransport;
    /// assert!(ReqwestTransport::check_url("http://127.0.0.1:8080/2/httpapi").is_ok());
    /// assert!(ReqwestTransport::check_url("ftp://example.com/").is_err());
    /// assert!(ReqwestTransport::check_url("not a url").is_err());
    /// ```
    pub fn check_url(url: &str) -> Result<reqwest::Url, TransportError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| TransportError::InvalidUrl)?;
        let tls = cfg!(any(feature = "rustls", feature = "native-tls"));
        let scheme_ok = match parsed.scheme() {
            "http" => true,
            "https" => tls,
            _ => false,
        };
        if !scheme_ok || parsed.host_str().is_none_or(str::is_empty) {
            return Err(TransportError::InvalidUrl);
        }
        Ok(parsed)
    }

    fn url_for(&mut self, url: &str) -> Result<reqwest::Url, TransportError> {
        if let Some((s, u)) = &self.url {
            if s == url {
                return Ok(u.clone());
            }
        }
        let parsed = Self::check_url(url)?;
        self.url = Some((url.to_owned(), parsed.clone()));
        Ok(parsed)
    }

    /// The bytes to post: `body` itself, or its gzip compression.
    fn encode_body(&self, body: Vec<u8>) -> Result<(Vec<u8>, bool), TransportError> {
        #[cfg(feature = "gzip")]
        if self.gzip {
            use std::io::Write as _;
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4 + 64),
                flate2::Compression::fast(),
            );
            enc.write_all(&body).map_err(|_| TransportError::Io)?;
            return enc
                .finish()
                .map(|b| (b, true))
                .map_err(|_| TransportError::Io);
        }
        Ok((body, false))
    }

    /// [`Transport::send`] with an owned body, which goes to reqwest without a copy.
    pub(crate) async fn send_owned<'b>(
        &mut self,
        url: &str,
        body: Vec<u8>,
        body_buf: &'b mut [u8],
    ) -> Result<Response<'b>, TransportError> {
        let url = self.url_for(url)?;
        let (body, gzipped) = self.encode_body(body)?;
        let mut req = self
            .client
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if gzipped {
            req = req.header(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let mut resp = req.body(body).send().await.map_err(|e| {
            let kind = classify(&e);
            tracing::debug!(error = %e, ?kind, "request failed");
            kind
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers();
        let retry_after_secs = headers
            .get(RETRY_AFTER)
            .and_then(|v| parse_retry_after(v.as_bytes()));
        let date_ms = headers
            .get(DATE)
            .and_then(|v| parse_http_date(v.as_bytes()));
        let mut len = 0usize;
        let mut truncated = false;
        let mut discarded = 0usize;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let take = chunk.len().min(body_buf.len() - len);
                    body_buf[len..len + take].copy_from_slice(&chunk[..take]);
                    len += take;
                    if take < chunk.len() {
                        truncated = true;
                        discarded += chunk.len() - take;
                        if discarded > MAX_DISCARD {
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // The status is known: report it with what was read (the core
                    // classifies by status when the body is cut or not JSON).
                    tracing::debug!(error = %e, status, "response body cut short");
                    truncated = true;
                    break;
                }
            }
        }
        Ok(Response {
            status,
            retry_after_secs,
            date_ms,
            body: &body_buf[..len],
            truncated,
        })
    }
}

/// Map a reqwest error onto the core's transport error kinds.
fn classify(e: &reqwest::Error) -> TransportError {
    if e.is_builder() {
        return TransportError::InvalidUrl;
    }
    if e.is_timeout() {
        return TransportError::Timeout;
    }
    if e.is_dns() {
        return TransportError::Dns;
    }
    let mut closed = false;
    let mut tls = false;
    let mut source = e.source();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                    closed = true
                }
                K::TimedOut => return TransportError::Timeout,
                _ => {}
            }
        }
        let text = err.to_string();
        if text.contains("connection closed") || text.contains("incomplete") {
            closed = true;
        }
        if text.contains("certificate") || text.contains("tls") || text.contains("TLS") {
            tls = true;
        }
        source = err.source();
    }
    if tls {
        TransportError::Tls
    } else if e.is_connect() {
        TransportError::Connect
    } else if closed || e.is_body() || e.is_decode() {
        TransportError::Closed
    } else {
        TransportError::Io
    }
}

impl Transport for ReqwestTransport {
    async fn send<'b>(
        &mut self,
        request: Request<'_>,
        body_buf: &'b mut [u8],
    ) -> Result<Response<'b>, TransportError> {
        // reqwest needs an owned body.
        self.send_owned(request.url, request.body.to_vec(), body_buf)
            .await
    }
}
