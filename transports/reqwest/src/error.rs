//! Errors of the std client.

use std::fmt;

use amplitude_core::ValidationError;
use amplitude_core::encode::EncodeError;

use crate::transport::BuildError;

/// Why [`init`](crate::init) could not create a client.
#[derive(Debug)]
#[non_exhaustive]
pub enum InitError {
    /// The API key is empty.
    EmptyApiKey,
    /// The server URL is not an absolute `http://` or `https://` URL this build can use
    /// (`https://` needs the `rustls` or `native-tls` feature).
    InvalidServerUrl(String),
    /// An option is out of range.
    InvalidOption {
        /// The option's name.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The HTTP client could not be built.
    Transport(BuildError),
    /// The sender's thread or runtime could not be started.
    Runtime(std::io::Error),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::EmptyApiKey => f.write_str("the API key is empty"),
            InitError::InvalidServerUrl(url) => write!(f, "unusable server URL {url:?}"),
            InitError::InvalidOption { name, reason } => write!(f, "option {name} {reason}"),
            InitError::Transport(e) => e.fmt(f),
            InitError::Runtime(e) => write!(f, "cannot start the sender: {e}"),
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitError::Transport(e) => Some(e),
            InitError::Runtime(e) => Some(e),
            _ => None,
        }
    }
}

/// Why [`Client::log_event`](crate::Client::log_event) did not accept an event.
/// Nothing is queued and no outcome follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogError {
    /// The event breaks an HTTP V2 rule (the error names the field and the rule).
    Invalid(ValidationError),
    /// A typed value could not be encoded.
    Encode(EncodeError),
    /// The encoded event is larger than one request may be (or than the queue).
    TooLarge {
        /// Its encoded size in bytes (0 when unknown).
        bytes: usize,
    },
    /// The queue is full (policy: reject newest).
    QueueFull,
    /// A middleware stopped the event.
    Filtered,
    /// Opt-out is on.
    OptedOut,
    /// The client was shut down, or its sender's runtime ended.
    Closed,
    /// Logged to this client from inside one of its own middleware.
    Reentrant,
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Invalid(e) => write!(f, "invalid event: {e}"),
            LogError::Encode(e) => write!(f, "event could not be encoded: {e}"),
            LogError::TooLarge { bytes: 0 } => f.write_str("event too large"),
            LogError::TooLarge { bytes } => {
                write!(f, "event of {bytes} bytes exceeds the request size limit")
            }
            LogError::QueueFull => f.write_str("queue full"),
            LogError::Filtered => f.write_str("stopped by a middleware"),
            LogError::OptedOut => f.write_str("opt-out is on"),
            LogError::Closed => f.write_str("client shut down"),
            LogError::Reentrant => f.write_str("logged from inside the client's own middleware"),
        }
    }
}

impl std::error::Error for LogError {}

impl From<amplitude_core::LogError> for LogError {
    fn from(e: amplitude_core::LogError) -> Self {
        match e {
            amplitude_core::LogError::Invalid(v) => LogError::Invalid(v),
            amplitude_core::LogError::Encode(v) => LogError::Encode(v),
            amplitude_core::LogError::QueueFull => LogError::QueueFull,
            amplitude_core::LogError::Busy => LogError::Reentrant,
            amplitude_core::LogError::TooLarge { bytes } => LogError::TooLarge { bytes },
        }
    }
}

/// Why a blocking call ([`Client::flush_blocking`](crate::Client::flush_blocking),
/// [`Client::shutdown_blocking`](crate::Client::shutdown_blocking)) refused to block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockingError {
    /// Called on a tokio runtime thread, where blocking could stall the very sender
    /// it waits for. Use the async method there.
    InsideRuntime,
}

impl fmt::Display for BlockingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockingError::InsideRuntime => {
                f.write_str("blocking call on a tokio runtime thread; use the async method instead")
            }
        }
    }
}

impl std::error::Error for BlockingError {}
