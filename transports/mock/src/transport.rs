//! [`MockTransport`]: a scripted [`Transport`] that records every request.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use amplitude_core::transport::{Request, Response, Transport, TransportError};

/// One scripted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An HTTP response.
    Status {
        /// Status code.
        status: u16,
        /// Body bytes (any bytes: JSON, HTML, garbage, nothing).
        body: Vec<u8>,
        /// `Retry-After` seconds.
        retry_after: Option<u32>,
    },
    /// No response: the transport failed this way.
    Fail(TransportError),
}

impl Reply {
    /// A response with `status` and `body`.
    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Reply::Status {
            status,
            body: body.into(),
            retry_after: None,
        }
    }

    /// `200 {"code":200,...}` for `events` events.
    pub fn ok(events: usize) -> Self {
        Reply::status(
            200,
            format!(
                r#"{{"code":200,"events_ingested":{events},"payload_size_bytes":0,"server_upload_time":1396381378123}}"#
            ),
        )
    }
}

/// A request as the transport saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The URL.
    pub url: String,
    /// The body.
    pub body: Vec<u8>,
    /// What was answered.
    pub reply: Reply,
}

/// Random faults from a seed: each request independently gets a 5xx, a transport error,
/// or the scripted/default answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Seed of the generator.
    pub seed: u64,
    /// Probability of a 500/502/503/504.
    pub server_error: f64,
    /// Probability of a timeout or closed connection.
    pub transport_error: f64,
}

#[derive(Debug)]
struct State {
    script: VecDeque<Reply>,
    default: Option<Reply>,
    recorded: Vec<Recorded>,
    faults: Option<(Faults, u64)>,
}

/// A scripted transport: answers from a script, then a default (200 for every event
/// when none is set), optionally with seeded random faults; records every request.
///
/// Clones share the script and the recording, so a test can keep one handle while the
/// client owns another.
///
/// ```
/// use amplitude_mock::{MockTransport, Reply};
/// use amplitude_core::transport::{Request, Transport, TransportError};
///
/// let t = MockTransport::new();
/// t.push(Reply::status(503, "busy"));
/// t.push(Reply::Fail(TransportError::Timeout));
/// let mut client_side = t.clone();
/// let mut buf = [0u8; 256];
/// let req = Request { url: "http://localhost/2/httpapi", body: br#"{"events":[]}"# };
/// let r = futures_lite::future::block_on(client_side.send(req, &mut buf)).unwrap();
/// assert_eq!(r.status, 503);
/// assert!(futures_lite::future::block_on(client_side.send(req, &mut buf)).is_err());
/// assert_eq!(t.requests().len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct MockTransport {
    state: Arc<Mutex<State>>,
}

impl Default for MockTransport {
    fn default() -> Self {
        Self::new()
    }
}

fn split_mix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Count the events of a request body (the number of objects in its `events` array).
pub fn count_events(body: &[u8]) -> usize {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("events").and_then(|e| e.as_array()).map(Vec::len))
        .unwrap_or(0)
}

impl MockTransport {
    /// An empty script: every request gets `200`.
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                script: VecDeque::new(),
                default: None,
                recorded: Vec::new(),
                faults: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append an answer to the script.
    pub fn push(&self, reply: Reply) -> &Self {
        self.lock().script.push_back(reply);
        self
    }

    /// The answer once the script is used up (default: 200 for every event).
    pub fn set_default(&self, reply: Reply) -> &Self {
        self.lock().default = Some(reply);
        self
    }

    /// Enable seeded random faults.
    pub fn set_faults(&self, faults: Faults) -> &Self {
        self.lock().faults = Some((faults, faults.seed));
        self
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().recorded.clone()
    }

    /// Scripted answers not used yet.
    pub fn remaining(&self) -> usize {
        self.lock().script.len()
    }

    /// The answer the next request gets (and record the request).
    pub fn answer(&self, request: Request<'_>) -> Reply {
        let mut st = self.lock();
        let mut reply = match st.script.pop_front() {
            Some(r) => r,
            None => st
                .default
                .clone()
                .unwrap_or_else(|| Reply::ok(count_events(request.body))),
        };
        if let Some((f, rng)) = st.faults.as_mut() {
            let roll = (split_mix(rng) >> 11) as f64 / (1u64 << 53) as f64;
            let pick = split_mix(rng);
            if roll < f.server_error {
                let status = [500, 502, 503, 504][(pick % 4) as usize];
                reply = Reply::status(status, format!(r#"{{"code":{status},"error":"injected"}}"#));
            } else if roll < f.server_error + f.transport_error {
                reply = Reply::Fail(if pick.is_multiple_of(2) {
                    TransportError::Timeout
                } else {
                    TransportError::Closed
                });
            }
        }
        st.recorded.push(Recorded {
            url: request.url.to_owned(),
            body: request.body.to_vec(),
            reply: reply.clone(),
        });
        reply
    }

    /// Fill a [`Response`] from `reply`, copying the body into `buf` (cut when longer).
    pub fn materialize<'b>(
        reply: &Reply,
        buf: &'b mut [u8],
    ) -> Result<Response<'b>, TransportError> {
        match reply {
            Reply::Fail(e) => Err(*e),
            Reply::Status {
                status,
                body,
                retry_after,
            } => {
                let n = body.len().min(buf.len());
                buf[..n].copy_from_slice(&body[..n]);
                Ok(Response {
                    status: *status,
                    retry_after_secs: *retry_after,
                    date_ms: None,
                    body: &buf[..n],
                    truncated: n < body.len(),
                })
            }
        }
    }
}

impl Transport for MockTransport {
    async fn send<'b>(
        &mut self,
        request: Request<'_>,
        body_buf: &'b mut [u8],
    ) -> Result<Response<'b>, TransportError> {
        let reply = self.answer(request);
        Self::materialize(&reply, body_buf)
    }
}
