//! Scrubs secrets from text that came from outside (an error body, a URL) before it reaches a log
//! line, a `sync_errors` row, a status or an event: the known API keys, any `api_key=` / `apikey=` /
//! token query value, a Bearer token, and the password (or token) in a URL's user info.

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// Query parameter names whose values are secrets (compared ASCII case-insensitively).
const SECRET_PARAMS: [&str; 7] = [
    "api_key=",
    "apikey=",
    "api-key=",
    "access_token=",
    "token=",
    "password=",
    "secret=",
];

/// Shorter "secrets" are not looked for verbatim (they would mangle ordinary words); the patterns
/// still catch them where they travel (query strings, Bearer headers).
const MIN_SECRET_LEN: usize = 4;

/// `text` with the given secrets (verbatim and percent-encoded) and every secret-looking pattern
/// replaced by [`REDACTED`].
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().map(|s| s.trim()) {
        if secret.len() < MIN_SECRET_LEN {
            continue;
        }
        if out.contains(secret) {
            out = out.replace(secret, REDACTED);
        }
        let encoded = percent_encode(secret);
        if encoded != secret && out.contains(&encoded) {
            out = out.replace(&encoded, REDACTED);
        }
    }
    redact_patterns(&out)
}

/// `text` with secret-looking patterns replaced: query values of [`SECRET_PARAMS`], Bearer tokens
/// and URL user info passwords. Needs no knowledge of the keys (a last line of defence).
pub fn redact_patterns(text: &str) -> String {
    let text = redact_after(text, &SECRET_PARAMS, |b| {
        matches!(b, b'&' | b'#' | b'"' | b'\'' | b'<' | b'>' | b';' | b',')
            || b.is_ascii_whitespace()
    });
    let text = redact_after(&text, &["bearer "], |b| {
        !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b'/' | b'='))
    });
    redact_userinfo(&text)
}

/// Replaces the value after each (case-insensitive) occurrence of one of `prefixes`, up to the
/// first byte for which `ends` holds.
fn redact_after(text: &str, prefixes: &[&str], ends: impl Fn(u8) -> bool) -> String {
    let lower = text.to_ascii_lowercase();
    let lower = lower.as_bytes();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        let hit = prefixes
            .iter()
            .find(|p| lower[at..].starts_with(p.as_bytes()));
        let Some(prefix) = hit else {
            at += 1;
            continue;
        };
        let start = at + prefix.len();
        let end = (start..bytes.len())
            .find(|&i| ends(bytes[i]))
            .unwrap_or(bytes.len());
        if end > start && &text[start..end] != REDACTED {
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
            copied = end;
        }
        at = end.max(at + 1);
    }
    out.push_str(&text[copied..]);
    out
}

/// `scheme://user:password@host` → `scheme://user:<redacted>@host`; `scheme://token@host` →
/// `scheme://<redacted>@host`.
fn redact_userinfo(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let start = from + found + 3;
        let end = (start..bytes.len())
            .find(|&i| {
                matches!(bytes[i], b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>')
                    || bytes[i].is_ascii_whitespace()
            })
            .unwrap_or(bytes.len());
        if let Some(at) = text[start..end].rfind('@') {
            let info = &text[start..start + at];
            let keep = match info.find(':') {
                Some(colon) => &info[..=colon],
                None => "",
            };
            if &info[keep.len()..] != REDACTED {
                out.push_str(&text[copied..start]);
                out.push_str(keep);
                out.push_str(REDACTED);
                copied = start + at;
            }
        }
        from = end.max(start);
    }
    out.push_str(&text[copied..]);
    out
}

/// RFC 3986 percent-encoding of everything but unreserved characters (how a key travels in a URL).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echoed_request_line_loses_the_key_and_keeps_the_rest() {
        let body = "<h1>502 Bad Gateway</h1><p>GET /3/movie/5?append_to_response=credits&api_key=0123abcd HTTP/1.1</p>";
        let r = redact(body, &["0123abcd"]);
        assert!(!r.contains("0123abcd"), "{r}");
        assert!(r.contains("/3/movie/5?append_to_response=credits&api_key=<redacted> HTTP/1.1"));
    }

    #[test]
    fn known_keys_go_wherever_they_appear_even_percent_encoded() {
        let r = redact(
            "key was s3cr+t/k=y; again s3cr%2Bt%2Fk%3Dy",
            &["s3cr+t/k=y"],
        );
        assert_eq!(r, "key was <redacted>; again <redacted>");
        // Too short to look for verbatim, but still caught in a query string.
        assert_eq!(
            redact("?apikey=k&i=tt1", &["k"]),
            "?apikey=<redacted>&i=tt1"
        );
    }

    #[test]
    fn query_tokens_bearer_headers_and_url_passwords_are_scrubbed_without_knowing_them() {
        let cases = [
            (
                "GET /?i=tt1&APIKEY=abc123 HTTP/1.1",
                "GET /?i=tt1&APIKEY=<redacted> HTTP/1.1",
            ),
            (
                "Authorization: Bearer eyJhbGciOi.x-y_z",
                "Authorization: Bearer <redacted>",
            ),
            (
                "connect postgres://app:hunter2@db:5432/x failed",
                "connect postgres://app:<redacted>@db:5432/x failed",
            ),
            (
                "https://tok3n@proxy.example/p",
                "https://<redacted>@proxy.example/p",
            ),
            (
                "nothing secret here: http://host/a?b=c",
                "nothing secret here: http://host/a?b=c",
            ),
            (
                "status_code 7: Invalid API key",
                "status_code 7: Invalid API key",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact_patterns(input), want, "{input}");
        }
    }

    #[test]
    fn redacting_twice_changes_nothing_and_multibyte_text_survives() {
        let once = redact("é api_key=ключ&x=1 postgres://u:p@h/d", &[]);
        assert_eq!(once, "é api_key=<redacted>&x=1 postgres://u:<redacted>@h/d");
        assert_eq!(redact(&once, &[]), once);
    }
}
