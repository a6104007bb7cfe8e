//! Response bodies in the shapes of spec §5.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;

/// A response before it becomes HTTP: status, body and whether it may carry `Retry-After`.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Bytes,
    pub content_type: &'static str,
}

const JSON: &str = "application/json";

#[derive(Serialize)]
struct Ok200 {
    code: u16,
    events_ingested: usize,
    payload_size_bytes: usize,
    server_upload_time: u64,
}

#[derive(Serialize)]
struct Error<'a> {
    code: u16,
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    missing_field: Option<&'a str>,
}

#[derive(Serialize)]
struct InvalidEvents<'a> {
    code: u16,
    error: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    events_with_invalid_fields: BTreeMap<&'static str, Vec<usize>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    events_with_missing_fields: BTreeMap<&'static str, Vec<usize>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    events_with_invalid_id_lengths: BTreeMap<&'static str, Vec<usize>>,
}

/// Body of a 429.
#[derive(Serialize, Debug, Default)]
pub(crate) struct Throttled {
    pub eps_threshold: u32,
    pub throttled_devices: BTreeMap<String, u64>,
    pub throttled_users: BTreeMap<String, u64>,
    pub throttled_events: Vec<usize>,
    pub exceeded_daily_quota_users: BTreeMap<String, u64>,
    pub exceeded_daily_quota_devices: BTreeMap<String, u64>,
}

#[derive(Serialize)]
struct Throttled429<'a> {
    code: u16,
    error: &'a str,
    eps_threshold: u32,
    throttled_devices: &'a BTreeMap<String, u64>,
    throttled_users: &'a BTreeMap<String, u64>,
    throttled_events: &'a [usize],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    exceeded_daily_quota_users: &'a BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    exceeded_daily_quota_devices: &'a BTreeMap<String, u64>,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Reply {
    fn json<T: Serialize>(status: u16, body: &T) -> Self {
        // Serialising these plain structs into a Vec cannot fail; fall back to a
        // minimal body rather than panicking if it ever did.
        let body = serde_json::to_vec(body)
            .unwrap_or_else(|_| format!("{{\"code\":{status}}}").into_bytes());
        Self {
            status,
            body: Bytes::from(body),
            content_type: JSON,
        }
    }

    fn error(status: u16, error: &str, missing_field: Option<&str>) -> Self {
        Self::json(
            status,
            &Error {
                code: status,
                error,
                missing_field,
            },
        )
    }

    /// `200` with Amplitude's success body.
    pub fn ok(events_ingested: usize, payload_size_bytes: usize) -> Self {
        Self::json(
            200,
            &Ok200 {
                code: 200,
                events_ingested,
                payload_size_bytes,
                server_upload_time: now_millis(),
            },
        )
    }

    /// `200` with `{"code":200}` (for `/reset`).
    pub fn plain_ok() -> Self {
        Self::error_free(200)
    }

    fn error_free(status: u16) -> Self {
        #[derive(Serialize)]
        struct Code {
            code: u16,
        }
        Self::json(status, &Code { code: status })
    }

    /// `400` with only an `error` text.
    pub fn bad_request(error: &str) -> Self {
        Self::error(400, error, None)
    }

    /// `400` naming a missing request-level field.
    pub fn missing_field(field: &str) -> Self {
        Self::error(400, "Request missing required field", Some(field))
    }

    /// `400` naming a request-level field with a custom error text.
    pub fn missing_field_with(field: &str, error: &str) -> Self {
        Self::error(400, error, Some(field))
    }

    /// `400` for an API key that is not accepted.
    pub fn invalid_api_key(key: &str) -> Self {
        Self::error(400, &format!("Invalid API key: {key}"), None)
    }

    /// `400` with per-event index lists.
    pub fn invalid_events(
        invalid: BTreeMap<&'static str, Vec<usize>>,
        missing: BTreeMap<&'static str, Vec<usize>>,
        id_lengths: BTreeMap<&'static str, Vec<usize>>,
    ) -> Self {
        let error = if !missing.is_empty() {
            "Request missing required field"
        } else if !id_lengths.is_empty() && invalid.is_empty() {
            "Invalid id length for user_id or device_id"
        } else {
            "Invalid field values on some events"
        };
        Self::json(
            400,
            &InvalidEvents {
                code: 400,
                error,
                events_with_invalid_fields: invalid,
                events_with_missing_fields: missing,
                events_with_invalid_id_lengths: id_lengths,
            },
        )
    }

    /// `413`.
    pub fn too_large() -> Self {
        Self::error(413, "Payload too large", None)
    }

    /// `415` for a `Content-Encoding` other than gzip or identity.
    pub fn unsupported_encoding(encoding: &str) -> Self {
        Self::error(
            415,
            &format!("Unsupported Content-Encoding: {encoding}"),
            None,
        )
    }

    /// `429`.
    pub fn throttled(t: &Throttled) -> Self {
        Self::json(
            429,
            &Throttled429 {
                code: 429,
                error: "Too many requests for some devices and users",
                eps_threshold: t.eps_threshold,
                throttled_devices: &t.throttled_devices,
                throttled_users: &t.throttled_users,
                throttled_events: &t.throttled_events,
                exceeded_daily_quota_users: &t.exceeded_daily_quota_users,
                exceeded_daily_quota_devices: &t.exceeded_daily_quota_devices,
            },
        )
    }

    /// A non-2xx answer that is not about the request's content, as a fault or a
    /// routing error. 502 and 504 come with a non-JSON body, as a load balancer in
    /// front of the real service would send; others carry `{"code":S,"error":...}`.
    pub fn status(status: u16) -> Self {
        match status {
            502 | 504 => {
                let text = format!(
                    "<html><body><h1>{status} {}</h1></body></html>\n",
                    reason(status)
                );
                Self {
                    status,
                    body: Bytes::from(text),
                    content_type: "text/html",
                }
            }
            _ => Self::error(status, reason(status), None),
        }
    }

    /// `404` or `405` and the like with a custom message.
    pub fn with_message(status: u16, error: &str) -> Self {
        Self::error(status, error, None)
    }
}

/// Reason phrase used in error bodies.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not found",
        405 => "Method not allowed",
        408 => "Request timeout",
        409 => "Conflict",
        413 => "Payload too large",
        415 => "Unsupported media type",
        429 => "Too many requests",
        500 => "Internal server error",
        501 => "Not implemented",
        502 => "Bad Gateway",
        503 => "Service unavailable",
        504 => "Gateway Timeout",
        _ if status < 500 => "Client error",
        _ => "Server error",
    }
}
