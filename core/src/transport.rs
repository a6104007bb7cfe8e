//! The one trait a transport implements, and the request/response types it exchanges
//! with the core.
//!
//! A transport holds no SDK logic: it posts the bytes it is given to the URL it is given
//! and reports what came back. Everything else — batching, limits, classification,
//! retries — lives in the core, so every transport behaves the same.

use core::future::Future;

/// One HTTP request the core wants sent: `POST url` with a JSON body.
///
/// ```
/// use amplitude_core::transport::Request;
/// let req = Request { url: "https://api2.amplitude.com/2/httpapi", body: b"{}" };
/// assert_eq!(req.content_type(), "application/json");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Absolute URL (`http://` or `https://`), e.g. `https://api2.amplitude.com/2/httpapi`.
    pub url: &'a str,
    /// The complete JSON body, never larger than the configured byte limit.
    pub body: &'a [u8],
}

impl Request<'_> {
    /// The `Content-Type` header to send: always `application/json`.
    pub const fn content_type(&self) -> &'static str {
        "application/json"
    }
}

/// What a transport got back: the status, the two headers the core reads, and the body
/// (possibly cut at the caller's buffer size).
///
/// ```
/// use amplitude_core::transport::Response;
/// let r = Response::new(200, br#"{"code":200}"#);
/// assert_eq!(r.status, 200);
/// assert!(r.retry_after_secs.is_none());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Response<'b> {
    /// HTTP status code.
    pub status: u16,
    /// `Retry-After` in seconds, when the server sent one (parse it with
    /// [`parse_retry_after`]).
    pub retry_after_secs: Option<u32>,
    /// The `Date` header as milliseconds since the Unix epoch (parse it with
    /// [`parse_http_date`]); used to learn wall-clock time on devices without a clock.
    pub date_ms: Option<u64>,
    /// The response body as received (possibly empty, possibly not JSON).
    pub body: &'b [u8],
    /// `true` when the body was longer than the buffer and was cut.
    pub truncated: bool,
}

impl<'b> Response<'b> {
    /// A response with just a status and a body.
    pub const fn new(status: u16, body: &'b [u8]) -> Self {
        Self {
            status,
            retry_after_secs: None,
            date_ms: None,
            body,
            truncated: false,
        }
    }
}

/// Why a request got no HTTP response. Every kind is retried with the retry policy,
/// except [`TransportError::InvalidUrl`], which no retry can fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TransportError {
    /// Name resolution failed.
    Dns,
    /// The TCP (or TLS) connection could not be made.
    Connect,
    /// The request or its response did not complete in time.
    Timeout,
    /// The peer closed the connection or reset it mid-exchange.
    Closed,
    /// Reading or writing the socket failed otherwise.
    Io,
    /// The TLS handshake or record layer failed.
    Tls,
    /// The response was not valid HTTP.
    Protocol,
    /// The configured URL cannot be used by this transport (bad scheme, host or port).
    InvalidUrl,
}

impl TransportError {
    /// Whether the same request may succeed later.
    ///
    /// ```
    /// use amplitude_core::transport::TransportError;
    /// assert!(TransportError::Timeout.is_retryable());
    /// assert!(!TransportError::InvalidUrl.is_retryable());
    /// ```
    pub const fn is_retryable(self) -> bool {
        !matches!(self, TransportError::InvalidUrl)
    }
}

impl core::fmt::Display for TransportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TransportError::Dns => "DNS resolution failed",
            TransportError::Connect => "connection failed",
            TransportError::Timeout => "request timed out",
            TransportError::Closed => "connection closed by peer",
            TransportError::Io => "I/O error",
            TransportError::Tls => "TLS error",
            TransportError::Protocol => "malformed HTTP response",
            TransportError::InvalidUrl => "invalid server URL",
        })
    }
}

impl core::error::Error for TransportError {}

/// Sends one request and returns the response, with the body read into `body_buf`.
///
/// Implementations post `request.body` to `request.url` with
/// `Content-Type: application/json` and `Content-Length`, apply their own timeout, and
/// fill [`Response`] using [`parse_retry_after`] and [`parse_http_date`] for the headers.
///
/// ```
/// use amplitude_core::transport::{Request, Response, Transport, TransportError};
///
/// /// A transport that answers every request with 200.
/// struct AlwaysOk;
/// impl Transport for AlwaysOk {
///     async fn send<'b>(&mut self, _req: Request<'_>, buf: &'b mut [u8])
///         -> Result<Response<'b>, TransportError> {
///         let body = br#"{"code":200}"#;
///         buf[..body.len()].copy_from_slice(body);
///         Ok(Response::new(200, &buf[..body.len()]))
///     }
/// }
/// ```
pub trait Transport {
    /// Send `request`; read the response body into `body_buf` (cut when longer).
    fn send<'b>(
        &mut self,
        request: Request<'_>,
        body_buf: &'b mut [u8],
    ) -> impl Future<Output = Result<Response<'b>, TransportError>>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn send<'b>(
        &mut self,
        request: Request<'_>,
        body_buf: &'b mut [u8],
    ) -> impl Future<Output = Result<Response<'b>, TransportError>> {
        (**self).send(request, body_buf)
    }
}

/// Parse a `Retry-After` header value given in seconds (`"30"`). HTTP-date forms and
/// garbage give `None`.
///
/// ```
/// use amplitude_core::transport::parse_retry_after;
/// assert_eq!(parse_retry_after(b" 30 "), Some(30));
/// assert_eq!(parse_retry_after(b"soon"), None);
/// ```
pub fn parse_retry_after(value: &[u8]) -> Option<u32> {
    let v = value.trim_ascii();
    if v.is_empty() || v.len() > 9 {
        return None;
    }
    let mut n: u32 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(b - b'0');
    }
    Some(n)
}

/// Parse an HTTP `Date` header (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`) into
/// milliseconds since the Unix epoch. Other forms give `None`.
///
/// ```
/// use amplitude_core::transport::parse_http_date;
/// assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"), Some(784111777000));
/// assert_eq!(parse_http_date(b"yesterday"), None);
/// ```
pub fn parse_http_date(value: &[u8]) -> Option<u64> {
    let v = value.trim_ascii();
    // "Sun, 06 Nov 1994 08:49:37 GMT" is exactly 29 bytes.
    if v.len() != 29 || &v[3..5] != b", " || &v[25..] != b" GMT" {
        return None;
    }
    let num = |s: &[u8]| -> Option<u64> {
        let mut n = 0u64;
        for &b in s {
            if !b.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u64::from(b - b'0');
        }
        Some(n)
    };
    let day = num(&v[5..7])?;
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let month = MONTHS.iter().position(|m| &v[8..11] == *m)? as u64 + 1;
    let year = num(&v[12..16])?;
    let (h, m, s) = (num(&v[17..19])?, num(&v[20..22])?, num(&v[23..25])?);
    if v[7] != b' '
        || v[11] != b' '
        || v[16] != b' '
        || v[19] != b':'
        || v[22] != b':'
        || year < 1970
        || !(1..=31).contains(&day)
        || h > 23
        || m > 59
        || s > 60
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), valid for years >= 1970.
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400) + h * 3600 + m * 60 + s) * 1000)
}
