//! Shared pieces of the peer-benchmark sink and floor client.
//!
//! The sink must count the events in every HTTP V2 request body without being the
//! bottleneck of the benchmark, so it does not build a JSON tree: [`count_events`]
//! walks the top-level object once, skips every value it does not need and counts the
//! elements of the `events` array by tracking nesting depth and string state.

use core::fmt;

/// Why a request body could not be counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// The body is not a JSON object (or ends before the object closes).
    NotAnObject,
    /// The top-level object has no `events` key.
    MissingEvents,
    /// `events` is present but is not an array.
    EventsNotArray,
    /// The body ended in the middle of a value, or holds a byte that cannot start one.
    Malformed(usize),
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::NotAnObject => f.write_str("request body is not a JSON object"),
            ScanError::MissingEvents => f.write_str("request body has no \"events\" field"),
            ScanError::EventsNotArray => f.write_str("\"events\" is not an array"),
            ScanError::Malformed(at) => write!(f, "malformed JSON at byte {at}"),
        }
    }
}

impl std::error::Error for ScanError {}

/// What [`count_events`] found in a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodySummary {
    /// Number of elements in the top-level `events` array.
    pub events: usize,
    /// Whether the top-level object has an `api_key` field.
    pub has_api_key: bool,
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn err(&self) -> ScanError {
        ScanError::Malformed(self.i)
    }

    /// Consumes a string starting at the opening quote; returns its raw (escaped) bytes.
    fn string(&mut self) -> Result<&'a [u8], ScanError> {
        if self.peek() != Some(b'"') {
            return Err(self.err());
        }
        self.i += 1;
        let start = self.i;
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'"' => {
                    let s = &self.b[start..self.i];
                    self.i += 1;
                    return Ok(s);
                }
                b'\\' => self.i += 2,
                _ => self.i += 1,
            }
        }
        Err(self.err())
    }

    /// Skips one value of any kind (object, array, string or scalar).
    fn skip_value(&mut self) -> Result<(), ScanError> {
        self.ws();
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'{') | Some(b'[') => {
                let mut depth = 0usize;
                while let Some(&c) = self.b.get(self.i) {
                    match c {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Ok(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                Err(self.err())
            }
            Some(c) if c == b'-' || c.is_ascii_alphanumeric() => {
                while let Some(&c) = self.b.get(self.i) {
                    if c == b'-' || c == b'+' || c == b'.' || c.is_ascii_alphanumeric() {
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                Ok(())
            }
            _ => Err(self.err()),
        }
    }

    /// Counts the elements of the array starting at the current `[`, handing each
    /// element's raw bytes to `on_element`.
    fn count_array(&mut self, on_element: &mut impl FnMut(&[u8])) -> Result<usize, ScanError> {
        self.ws();
        if self.peek() != Some(b'[') {
            return Err(ScanError::EventsNotArray);
        }
        self.i += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(0);
        }
        let mut n = 0usize;
        loop {
            self.ws();
            let start = self.i;
            self.skip_value()?;
            on_element(&self.b[start..self.i]);
            n += 1;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(n);
                }
                _ => return Err(self.err()),
            }
        }
    }
}

/// Counts the events in an HTTP V2 request body.
///
/// Walks the top-level object only as far as needed: every member other than `events`
/// is skipped without being decoded. Duplicate `events` keys are counted once (the
/// last one wins, as most JSON parsers do).
///
/// ```
/// use peer_bench_sink::count_events;
/// let body = br#"{"api_key":"k","events":[{"event_type":"a","user_id":"u1234"},{"event_type":"]"}]}"#;
/// let summary = count_events(body).unwrap();
/// assert_eq!(summary.events, 2);
/// assert!(summary.has_api_key);
/// ```
pub fn count_events(body: &[u8]) -> Result<BodySummary, ScanError> {
    scan_events(body, |_| {})
}

/// Like [`count_events`], and hands the raw bytes of every element of `events` to
/// `on_event` (in order; an element may be seen before a later syntax error is found).
///
/// ```
/// use peer_bench_sink::scan_events;
/// let mut seen = Vec::new();
/// let body = br#"{"events":[{"e":1}, "x" ],"api_key":"k"}"#;
/// let summary = scan_events(body, |ev| seen.push(ev.to_vec())).unwrap();
/// assert_eq!(summary.events, 2);
/// assert_eq!(seen, vec![br#"{"e":1}"#.to_vec(), br#""x""#.to_vec()]);
/// ```
pub fn scan_events(body: &[u8], mut on_event: impl FnMut(&[u8])) -> Result<BodySummary, ScanError> {
    let mut s = Scanner { b: body, i: 0 };
    s.ws();
    if s.peek() != Some(b'{') {
        return Err(ScanError::NotAnObject);
    }
    s.i += 1;
    let mut events = None;
    let mut has_api_key = false;
    s.ws();
    if s.peek() == Some(b'}') {
        return Err(ScanError::MissingEvents);
    }
    loop {
        s.ws();
        let key = s.string()?;
        s.ws();
        if s.peek() != Some(b':') {
            return Err(s.err());
        }
        s.i += 1;
        s.ws();
        match key {
            b"events" => events = Some(s.count_array(&mut on_event)?),
            b"api_key" => {
                has_api_key = true;
                s.skip_value()?;
            }
            _ => s.skip_value()?,
        }
        s.ws();
        match s.peek() {
            Some(b',') => s.i += 1,
            Some(b'}') => break,
            None => return Err(ScanError::NotAnObject),
            _ => return Err(s.err()),
        }
    }
    match events {
        Some(events) => Ok(BodySummary {
            events,
            has_api_key,
        }),
        None => Err(ScanError::MissingEvents),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_nested_values_and_tricky_strings() {
        let body = br#" { "options" : {"min_id_length": 5}, "api_key":"k",
            "events" : [ {"a":[1,2,{"b":"x\"]},"}]}, {"s":"\\"}, 3, "str", [[]] ],
            "client_upload_time":"2026-01-01T00:00:00Z" } "#;
        let s = count_events(body).unwrap();
        assert_eq!(s.events, 5);
        assert!(s.has_api_key);
    }

    #[test]
    fn empty_events_array_is_zero() {
        assert_eq!(count_events(br#"{"events":[]}"#).unwrap().events, 0);
        assert!(!count_events(br#"{"events":[]}"#).unwrap().has_api_key);
    }

    #[test]
    fn rejects_bodies_without_events() {
        assert_eq!(count_events(b"[]"), Err(ScanError::NotAnObject));
        assert_eq!(count_events(b"{}"), Err(ScanError::MissingEvents));
        assert_eq!(
            count_events(br#"{"api_key":"k"}"#),
            Err(ScanError::MissingEvents)
        );
        assert_eq!(
            count_events(br#"{"events":{"a":1}}"#),
            Err(ScanError::EventsNotArray)
        );
    }

    #[test]
    fn rejects_truncated_bodies() {
        let full = br#"{"api_key":"k","events":[{"e":"x"},{"e":"y"}]}"#;
        for cut in 0..full.len() {
            assert!(
                count_events(&full[..cut]).is_err(),
                "prefix of {cut} bytes was accepted"
            );
        }
        assert_eq!(count_events(full).unwrap().events, 2);
    }

    #[test]
    fn agrees_with_a_generated_body() {
        let mut body = String::from(r#"{"api_key":"key","events":["#);
        for i in 0..1000 {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                r#"{{"event_type":"e{i}","user_id":"user_{i:05}","event_properties":{{"l":[1,"]",{{"x":"{{"}}],"o":{{"k":null}}}}}}"#
            ));
        }
        body.push_str("]}");
        assert_eq!(count_events(body.as_bytes()).unwrap().events, 1000);
    }
}
