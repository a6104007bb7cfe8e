//! The transport: connection management around one HTTP exchange.

use core::net::{IpAddr, SocketAddr};

use amplitude_core::transport::{Request, Response, Transport, TransportError};
use embassy_net::Stack;
use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::client::{TcpClient, TcpConnection};
use embassy_time::{Instant, with_deadline};
use embedded_io_async::{Error as _, ErrorKind, ErrorType, Read, Write};
use embedded_nal_async::TcpConnect;

use crate::config::Config;
use crate::http::{self, RequestHead, Tracked};
use crate::url::{MAX_HOST_LEN, Target};

#[cfg(feature = "tls")]
use crate::tls::{TlsBuffers, TlsLease, TlsMode, TlsSlot};
#[cfg(feature = "tls")]
use embedded_tls::{Aes128GcmSha256, TlsConfig, TlsConnection, TlsContext, UnsecureProvider};
#[cfg(feature = "tls")]
use rand_core::SeedableRng;

/// Counters describing how the transport used its connections.
///
/// ```
/// use amplitude_embassy_net::ConnectionStats;
/// let s = ConnectionStats::default();
/// assert_eq!(s.requests, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Requests handed to [`Transport::send`].
    pub requests: u32,
    /// Connections opened (TCP, plus the TLS handshake for `https://`).
    pub connects: u32,
    /// Requests sent on a connection kept open from an earlier request.
    pub reused: u32,
    /// Requests resent once on a fresh connection because the kept-open one turned out
    /// to be closed by the server.
    pub stale_retries: u32,
}

/// An HTTP/1.1 [`Transport`] over an embassy-net [`Stack`].
///
/// It resolves the host (IP literals need no DNS server), connects with
/// [`Config::connect_timeout`], posts the body with `Content-Length`, and reads the status,
/// `Retry-After`, `Date` and the body (cut to the caller's buffer) within
/// [`Config::request_timeout`]. The connection is kept open for the next request when the
/// server allows it; if a kept-open connection turns out to have been closed by the server
/// before any response byte arrived, the request is sent once more on a fresh connection
/// before [`TransportError::Closed`] is reported.
///
/// All memory is the caller's: the TCP socket buffers come from the
/// [`TcpClient`]'s `TcpClientState` (one connection is used at a time), the response
/// headers go into `header_buf` (512–1024 bytes is typical), and, with the `tls` feature,
/// the TLS records into a `TlsBuffers`.
///
/// ```no_run
/// use amplitude_embassy_net::{Config, EmbassyNetTransport};
/// use embassy_net::tcp::client::{TcpClient, TcpClientState};
///
/// async fn build(stack: embassy_net::Stack<'static>) {
///     // Typically `static` (e.g. in a `StaticCell`) in firmware.
///     let state: TcpClientState<1, 2048, 2048> = TcpClientState::new();
///     let tcp = TcpClient::new(stack, &state);
///     let mut header_buf = [0u8; 1024];
///     let transport = EmbassyNetTransport::new(stack, &tcp, &mut header_buf, Config::default());
///     # drop(transport);
/// }
/// ```
pub struct EmbassyNetTransport<'a, const N: usize, const TX: usize, const RX: usize> {
    stack: Stack<'a>,
    tcp: &'a TcpClient<'a, N, TX, RX>,
    header_buf: &'a mut [u8],
    config: Config,
    conn: Option<Connection<'a, N, TX, RX>>,
    #[cfg(feature = "tls")]
    tls: Option<TlsSetup<'a>>,
    stats: ConnectionStats,
}

#[cfg(feature = "tls")]
struct TlsSetup<'a> {
    slot: TlsSlot<'a>,
    mode: TlsMode,
    rng: rand_chacha::ChaCha20Rng,
}

/// An open connection and the origin it leads to.
struct Connection<'a, const N: usize, const TX: usize, const RX: usize> {
    io: Tracked<Stream<'a, N, TX, RX>>,
    tls: bool,
    port: u16,
    host: heapless::String<MAX_HOST_LEN>,
}

impl<const N: usize, const TX: usize, const RX: usize> Connection<'_, N, TX, RX> {
    fn leads_to(&self, target: &Target<'_>) -> bool {
        self.tls == target.tls
            && self.port == target.port
            && self.host.eq_ignore_ascii_case(target.host)
    }
}

// One instance lives in the transport; without an allocator there is nothing to box into.
#[allow(clippy::large_enum_variant)]
enum Stream<'a, const N: usize, const TX: usize, const RX: usize> {
    Plain(TcpConnection<'a, N, TX, RX>),
    #[cfg(feature = "tls")]
    Tls(TlsStream<'a, N, TX, RX>),
}

#[cfg(feature = "tls")]
struct TlsStream<'a, const N: usize, const TX: usize, const RX: usize> {
    // Declared before the lease: dropped first, so the record buffers are free again
    // only once nothing refers to them.
    conn: TlsConnection<'a, TcpConnection<'a, N, TX, RX>, Aes128GcmSha256>,
    _lease: TlsLease<'a>,
}

impl<const N: usize, const TX: usize, const RX: usize> ErrorType for Stream<'_, N, TX, RX> {
    type Error = ErrorKind;
}

impl<const N: usize, const TX: usize, const RX: usize> Read for Stream<'_, N, TX, RX> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        match self {
            Stream::Plain(c) => c.read(buf).await.map_err(|e| e.kind()),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.conn.read(buf).await.map_err(|e| e.kind()),
        }
    }
}

impl<const N: usize, const TX: usize, const RX: usize> Write for Stream<'_, N, TX, RX> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        match self {
            Stream::Plain(c) => c.write(buf).await.map_err(|e| e.kind()),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.conn.write(buf).await.map_err(|e| e.kind()),
        }
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        match self {
            Stream::Plain(c) => c.flush().await.map_err(|e| e.kind()),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.conn.flush().await.map_err(|e| e.kind()),
        }
    }
}

impl<'a, const N: usize, const TX: usize, const RX: usize> EmbassyNetTransport<'a, N, TX, RX> {
    /// A transport for `http://` URLs (add `https://` with `with_tls`, feature `tls`).
    ///
    /// `header_buf` receives each response's status line and headers; responses whose
    /// headers do not fit are reported as [`TransportError::Protocol`].
    pub fn new(
        stack: Stack<'a>,
        tcp: &'a TcpClient<'a, N, TX, RX>,
        header_buf: &'a mut [u8],
        config: Config,
    ) -> Self {
        Self {
            stack,
            tcp,
            header_buf,
            config,
            conn: None,
            #[cfg(feature = "tls")]
            tls: None,
            stats: ConnectionStats::default(),
        }
    }

    /// Enable `https://` URLs, using `buffers` for the TLS records and `mode` to say how
    /// the server is trusted; see `TlsMode` for what the only mode today does **not**
    /// protect against.
    ///
    /// `seed` seeds the ChaCha20 generator behind the handshake's key exchange: it must
    /// come from a true random source (a hardware RNG), and differ at every boot. A
    /// predictable seed makes the encryption worthless.
    ///
    /// ```no_run
    /// use amplitude_embassy_net::{Config, EmbassyNetTransport, TlsBuffers, TlsMode};
    /// use embassy_net::tcp::client::{TcpClient, TcpClientState};
    ///
    /// async fn build(stack: embassy_net::Stack<'static>, seed: [u8; 32]) {
    ///     let state: TcpClientState<1, 2048, 2048> = TcpClientState::new();
    ///     let tcp = TcpClient::new(stack, &state);
    ///     let tls: TlsBuffers = TlsBuffers::new();
    ///     let mut header_buf = [0u8; 1024];
    ///     let transport = EmbassyNetTransport::new(stack, &tcp, &mut header_buf, Config::default())
    ///         .with_tls(&tls, TlsMode::InsecureNoVerify, seed);
    ///     # drop(transport);
    /// }
    /// ```
    #[cfg(feature = "tls")]
    pub fn with_tls<const READ: usize, const WRITE: usize>(
        mut self,
        buffers: &'a TlsBuffers<READ, WRITE>,
        mode: TlsMode,
        seed: [u8; 32],
    ) -> Self {
        self.tls = Some(TlsSetup {
            slot: buffers.slot(),
            mode,
            rng: rand_chacha::ChaCha20Rng::from_seed(seed),
        });
        self
    }

    /// How the transport has used its connections so far.
    pub fn stats(&self) -> ConnectionStats {
        self.stats
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Close the kept-open connection, if any. The next request opens a new one.
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    fn user_agent(&self) -> &'static str {
        let ua = self.config.user_agent;
        // A header value must not be able to end the header or inject another one.
        if ua.bytes().all(|b| (b' '..=b'~').contains(&b)) {
            ua
        } else {
            ""
        }
    }

    async fn connect(
        &mut self,
        target: &Target<'_>,
    ) -> Result<Connection<'a, N, TX, RX>, TransportError> {
        let host =
            heapless::String::try_from(target.host).map_err(|_| TransportError::InvalidUrl)?;
        let deadline = Instant::now() + self.config.connect_timeout;
        let ip = with_deadline(deadline, resolve(self.stack, target))
            .await
            .map_err(|_| TransportError::Timeout)??;
        let tcp = with_deadline(deadline, self.tcp.connect(SocketAddr::new(ip, target.port)))
            .await
            .map_err(|_| TransportError::Timeout)?
            .map_err(|_| TransportError::Connect)?;
        self.stats.connects = self.stats.connects.wrapping_add(1);
        let stream = if target.tls {
            self.open_tls(tcp, target, deadline).await?
        } else {
            Stream::Plain(tcp)
        };
        Ok(Connection {
            io: Tracked::new(stream),
            tls: target.tls,
            port: target.port,
            host,
        })
    }

    #[cfg(feature = "tls")]
    async fn open_tls(
        &mut self,
        tcp: TcpConnection<'a, N, TX, RX>,
        target: &Target<'_>,
        deadline: Instant,
    ) -> Result<Stream<'a, N, TX, RX>, TransportError> {
        let Some(setup) = self.tls.as_mut() else {
            return Err(TransportError::InvalidUrl);
        };
        // The previous connection (and its lease) is always dropped before connecting.
        let (lease, read, write) = setup.slot.lease().ok_or(TransportError::Tls)?;
        let mut conn = TlsConnection::new(tcp, read, write);
        let mut tls_config = TlsConfig::new();
        // Server Name Indication carries host names only, never IP literals.
        if !target.host_is_ipv6 && target.host.parse::<core::net::Ipv4Addr>().is_err() {
            tls_config = tls_config.with_server_name(target.host);
        }
        let opened = match setup.mode {
            TlsMode::InsecureNoVerify => {
                let provider = UnsecureProvider::new::<Aes128GcmSha256>(&mut setup.rng);
                with_deadline(deadline, conn.open(TlsContext::new(&tls_config, provider))).await
            }
        };
        match opened {
            Ok(Ok(())) => Ok(Stream::Tls(TlsStream {
                conn,
                _lease: lease,
            })),
            Ok(Err(embedded_tls::TlsError::Io(kind))) => Err(match http::io_error(kind) {
                TransportError::Io => TransportError::Tls,
                other => other,
            }),
            Ok(Err(_)) => Err(TransportError::Tls),
            Err(_) => Err(TransportError::Timeout),
        }
    }

    #[cfg(not(feature = "tls"))]
    async fn open_tls(
        &mut self,
        _tcp: TcpConnection<'a, N, TX, RX>,
        _target: &Target<'_>,
        _deadline: Instant,
    ) -> Result<Stream<'a, N, TX, RX>, TransportError> {
        Err(TransportError::InvalidUrl)
    }

    fn tls_available(&self) -> bool {
        #[cfg(feature = "tls")]
        {
            self.tls.is_some()
        }
        #[cfg(not(feature = "tls"))]
        {
            false
        }
    }
}

/// Whether a failed exchange looks like a kept-open connection that the server had
/// already closed: reused, nothing received, and not a timeout (a server that is merely
/// slow must not be sent the request twice).
fn is_stale(reused: bool, failed: http::Failed) -> bool {
    reused && !failed.response_started && failed.error != TransportError::Timeout
}

/// Resolve the target's host: IP literals directly, names through the stack's DNS.
async fn resolve(stack: Stack<'_>, target: &Target<'_>) -> Result<IpAddr, TransportError> {
    if target.host_is_ipv6 {
        #[cfg(feature = "ipv6")]
        {
            return target
                .host
                .parse::<core::net::Ipv6Addr>()
                .map(IpAddr::V6)
                .map_err(|_| TransportError::InvalidUrl);
        }
        #[cfg(not(feature = "ipv6"))]
        {
            return Err(TransportError::InvalidUrl);
        }
    }
    if let Ok(v4) = target.host.parse::<core::net::Ipv4Addr>() {
        return Ok(IpAddr::V4(v4));
    }
    let found = stack
        .dns_query(target.host, DnsQueryType::A)
        .await
        .map_err(|_| TransportError::Dns)?;
    if let Some(addr) = found.first() {
        return Ok(IpAddr::from(*addr));
    }
    #[cfg(feature = "ipv6")]
    {
        let found = stack
            .dns_query(target.host, DnsQueryType::Aaaa)
            .await
            .map_err(|_| TransportError::Dns)?;
        if let Some(addr) = found.first() {
            return Ok(IpAddr::from(*addr));
        }
    }
    Err(TransportError::Dns)
}

impl<'a, const N: usize, const TX: usize, const RX: usize> Transport
    for EmbassyNetTransport<'a, N, TX, RX>
{
    async fn send<'b>(
        &mut self,
        request: Request<'_>,
        body_buf: &'b mut [u8],
    ) -> Result<Response<'b>, TransportError> {
        self.stats.requests = self.stats.requests.wrapping_add(1);
        let target = Target::parse(request.url)?;
        if target.tls && !self.tls_available() {
            return Err(TransportError::InvalidUrl);
        }
        if self.conn.as_ref().is_some_and(|c| !c.leads_to(&target)) {
            self.conn = None;
        }
        let head = RequestHead {
            path: target.path,
            authority: target.authority,
            user_agent: self.user_agent(),
            keep_alive: self.config.keep_alive,
        };

        let mut may_retry = true;
        loop {
            let (conn, reused) = match self.conn.take() {
                Some(c) => (c, true),
                None => (self.connect(&target).await?, false),
            };
            if reused {
                self.stats.reused = self.stats.reused.wrapping_add(1);
            }
            let conn = self.conn.insert(conn);
            let deadline = Instant::now() + self.config.request_timeout;
            let result = http::exchange(
                &mut conn.io,
                head,
                request.body,
                self.header_buf,
                body_buf,
                deadline,
            )
            .await;
            match result {
                Ok(x) => {
                    if !x.reusable {
                        self.conn = None;
                    }
                    let body: &'b [u8] = body_buf;
                    return Ok(Response {
                        status: x.status,
                        retry_after_secs: x.retry_after_secs,
                        date_ms: x.date_ms,
                        body: &body[..x.body_len],
                        truncated: x.truncated,
                    });
                }
                Err(failed) => {
                    self.conn = None;
                    // A kept-open connection that the server closed while it was idle
                    // fails before any response byte arrives: the request almost surely
                    // never reached the server, so it is sent once more on a fresh
                    // connection (and in the rare other case, `insert_id` makes the
                    // duplicate harmless).
                    if may_retry && is_stale(reused, failed) {
                        may_retry = false;
                        self.stats.stale_retries = self.stats.stale_retries.wrapping_add(1);
                        continue;
                    }
                    return Err(failed.error);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Failed;

    fn failed(error: TransportError, response_started: bool) -> Failed {
        Failed {
            error,
            response_started,
        }
    }

    #[test]
    fn only_a_silent_failure_on_a_reused_connection_is_stale() {
        assert!(is_stale(true, failed(TransportError::Closed, false)));
        assert!(is_stale(true, failed(TransportError::Io, false)));
        assert!(
            !is_stale(false, failed(TransportError::Closed, false)),
            "fresh connection"
        );
        assert!(
            !is_stale(true, failed(TransportError::Closed, true)),
            "response had begun"
        );
        assert!(
            !is_stale(true, failed(TransportError::Timeout, false)),
            "slow server"
        );
    }
}
