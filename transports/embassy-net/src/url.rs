//! Splitting the request URL into what the transport needs: scheme, host, port, path.

use amplitude_core::transport::TransportError;

/// Longest host name accepted (RFC 1035: 253 characters in text form).
pub(crate) const MAX_HOST_LEN: usize = 253;

/// The parts of an absolute `http://` or `https://` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target<'u> {
    /// `true` for `https://`.
    pub tls: bool,
    /// Host name or IP literal, without IPv6 brackets.
    pub host: &'u str,
    /// `true` when the host is an IPv6 literal (`[::1]`).
    pub host_is_ipv6: bool,
    /// `host[:port]` exactly as written, for the `Host` header.
    pub authority: &'u str,
    /// Explicit port, or 80 / 443 by scheme.
    pub port: u16,
    /// Path and query (`/` when absent); the fragment is dropped.
    pub path: &'u str,
}

impl<'u> Target<'u> {
    /// Parse `url`. Anything this transport cannot connect to — another scheme, user info,
    /// an empty or over-long host, a bad port — is [`TransportError::InvalidUrl`].
    pub(crate) fn parse(url: &'u str) -> Result<Self, TransportError> {
        let invalid = TransportError::InvalidUrl;
        let (scheme, rest) = url.split_once("://").ok_or(invalid)?;
        let tls = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(invalid);
        };
        // Drop the fragment; it is never sent.
        let rest = rest.split('#').next().unwrap_or("");
        let path_start = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(path_start);
        let path = if path.is_empty() { "/" } else { path };
        if authority.is_empty() || authority.contains('@') {
            return Err(invalid);
        }
        if path.starts_with('?') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            // "http://host?q" has an empty path; a request line needs one, and control
            // characters or spaces would corrupt the request line.
            return Err(invalid);
        }

        let (host, host_is_ipv6, port_text) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or(invalid)?;
            let port_text = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or(invalid)?),
            };
            if host.is_empty()
                || !host
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return Err(invalid);
            }
            (host, true, port_text)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, false, Some(p)),
                None => (authority, false, None),
            }
        };
        if host.is_empty()
            || host.len() > MAX_HOST_LEN
            || !host_is_ipv6
                && !host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        {
            return Err(invalid);
        }
        let port = match port_text {
            None => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(p) => parse_port(p).ok_or(invalid)?,
        };
        Ok(Target {
            tls,
            host,
            host_is_ipv6,
            authority,
            port,
            path,
        })
    }
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => None,
        Ok(p) => Some(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_url_defaults_to_port_443_and_keeps_the_path() {
        let t = Target::parse("https://api2.amplitude.com/2/httpapi").unwrap();
        assert!(t.tls);
        assert_eq!(t.host, "api2.amplitude.com");
        assert_eq!(t.authority, "api2.amplitude.com");
        assert_eq!(t.port, 443);
        assert_eq!(t.path, "/2/httpapi");
    }

    #[test]
    fn http_url_with_port_and_ip_literal() {
        let t = Target::parse("http://192.168.69.1:8080/2/httpapi?x=1#frag").unwrap();
        assert!(!t.tls);
        assert_eq!(t.host, "192.168.69.1");
        assert_eq!(t.authority, "192.168.69.1:8080");
        assert_eq!(t.port, 8080);
        assert_eq!(t.path, "/2/httpapi?x=1");
    }

    #[test]
    fn missing_path_becomes_slash_and_scheme_is_case_insensitive() {
        let t = Target::parse("HTTP://localhost").unwrap();
        assert_eq!(t.port, 80);
        assert_eq!(t.path, "/");
    }

    #[test]
    fn ipv6_literal_loses_its_brackets_but_keeps_them_in_the_authority() {
        let t = Target::parse("http://[fe80::1]:81/x").unwrap();
        assert_eq!(t.host, "fe80::1");
        assert!(t.host_is_ipv6);
        assert_eq!(t.authority, "[fe80::1]:81");
        assert_eq!(t.port, 81);
    }

    #[test]
    fn unusable_urls_are_invalid_url_errors() {
        for bad in [
            "",
            "api2.amplitude.com/2/httpapi",
            "ftp://host/",
            "http:///path",
            "http://user:pw@host/",
            "http://host:0/",
            "http://host:65536/",
            "http://host:/",
            "http://host:80x/",
            "http://ho st/",
            "http://host/a b",
            "http://host?x=1",
            "http://[::1/",
            "http://[::1]x/",
            "http://[zz]/",
        ] {
            assert_eq!(
                Target::parse(bad),
                Err(TransportError::InvalidUrl),
                "{bad:?}"
            );
        }
        let long = "http://".to_owned() + &"a".repeat(MAX_HOST_LEN + 1) + "/";
        assert_eq!(Target::parse(&long), Err(TransportError::InvalidUrl));
    }
}
