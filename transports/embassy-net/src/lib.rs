//! An HTTP/1.1 transport for the Amplitude SDK core (`amplitude-core`) over an
//! [embassy-net](embassy_net) TCP/IP stack, for `no_std` devices.
//!
//! [`EmbassyNetTransport`] implements the core's
//! [`Transport`](amplitude_core::transport::Transport): it resolves the host, opens a
//! TCP connection (with timeouts), posts the JSON body with `Content-Length`, reads the
//! status, `Retry-After`, `Date` and the body into caller-owned buffers, and keeps the
//! connection open between requests when the server allows it. Every byte of memory it
//! uses is given to it by the caller, so its RAM is fixed at compile time.
//!
//! `http://` is meant for a relay on a trusted network (and for tests). `https://` needs
//! the `tls` feature and an explicit trust choice: embedded-tls cannot verify server
//! certificates on `no_std`, so the only mode, `TlsMode::InsecureNoVerify`, says what it
//! does in its name.
//!
//! # Feature flags
//! - `medium-ethernet` (default): Ethernet/TAP link medium for embassy-net. Turn default
//!   features off and pick `medium-ip` for IP-only links.
//! - `medium-ip`: IP-only link medium.
//! - `tls`: `https://` through embedded-tls (TLS 1.3), unverified by explicit opt-in.
//! - `ipv6`: resolve and connect over IPv6 as well.
//!
//! # Modules
//! - `config`: [`Config`] — timeouts, keep-alive, user agent.
//! - `transport`: [`EmbassyNetTransport`], [`ConnectionStats`].
//! - `tls` (feature `tls`): `TlsBuffers`, `TlsMode`.
//! - `http`, `url` (private): the HTTP/1.1 exchange and URL splitting, tested on the host.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

mod config;
mod http;
#[cfg(feature = "tls")]
mod tls;
mod transport;
mod url;

pub use config::{Config, DEFAULT_USER_AGENT};
#[cfg(feature = "tls")]
pub use tls::{TlsBuffers, TlsMode};
pub use transport::{ConnectionStats, EmbassyNetTransport};
