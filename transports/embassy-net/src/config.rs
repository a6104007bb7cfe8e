//! Timeouts and connection behaviour of the transport.

use embassy_time::Duration;

/// The `User-Agent` sent by default: this crate's name and version.
pub const DEFAULT_USER_AGENT: &str =
    concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// How the transport connects and how long it waits.
///
/// ```
/// use amplitude_embassy_net::Config;
/// use embassy_time::Duration;
///
/// let config = Config::default()
///     .connect_timeout(Duration::from_secs(5))
///     .request_timeout(Duration::from_secs(20))
///     .keep_alive(false);
/// assert_eq!(config.connect_timeout, Duration::from_secs(5));
/// assert!(!config.keep_alive);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Limit for name resolution, the TCP handshake and (with TLS) the TLS handshake
    /// together. Default: 10 s.
    pub connect_timeout: Duration,
    /// Limit for writing the request and reading the whole response. Default: 30 s.
    pub request_timeout: Duration,
    /// Keep the connection open between requests when the server allows it. Default: on.
    pub keep_alive: bool,
    /// `User-Agent` header value; empty sends none. Default: [`DEFAULT_USER_AGENT`].
    pub user_agent: &'static str,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            keep_alive: true,
            user_agent: DEFAULT_USER_AGENT,
        }
    }
}

impl Config {
    /// Set [`Config::connect_timeout`].
    pub const fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Set [`Config::request_timeout`].
    pub const fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Set [`Config::keep_alive`].
    pub const fn keep_alive(mut self, keep_alive: bool) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Set [`Config::user_agent`].
    pub const fn user_agent(mut self, user_agent: &'static str) -> Self {
        self.user_agent = user_agent;
        self
    }
}
