//! Makes text from the wire storable in Postgres while keeping everything else byte for byte.
//!
//! JSON may carry what Postgres refuses: the escape `\u0000` (U+0000 is legal JSON but `text` and
//! `jsonb` reject it) and escaped lone surrogates (`\ud800` with no low half; `jsonb` and serde_json
//! both refuse them). TMDb serves both in user-edited records. [`storable_json`] rewrites exactly
//! those escapes (U+0000 is dropped, a lone surrogate becomes U+FFFD) and leaves every other byte,
//! emoji, right-to-left text, quotes, backslashes, tabs and newlines included, as it was. Bodies
//! without a `\u` escape or a NUL byte (nearly all of them) are returned as they are, uncopied.

use std::borrow::Cow;

/// What [`storable_json`] changed in a body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repairs {
    /// `\u0000` escapes and raw NUL bytes removed.
    pub nul_removed: u32,
    /// Escaped lone surrogates replaced by U+FFFD.
    pub surrogates_replaced: u32,
    /// Bytes that were not UTF-8, decoded as U+FFFD.
    pub invalid_utf8: bool,
}

impl Repairs {
    /// Whether anything was changed.
    pub fn any(&self) -> bool {
        self.nul_removed > 0 || self.surrogates_replaced > 0 || self.invalid_utf8
    }
}

/// A JSON document made storable, as UTF-8 text, with what was changed.
pub fn storable_json_text(body: &[u8]) -> (Cow<'_, str>, Repairs) {
    let (bytes, mut repairs) = storable_json(body);
    let text = match bytes {
        Cow::Borrowed(b) => match std::str::from_utf8(b) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => {
                repairs.invalid_utf8 = true;
                Cow::Owned(String::from_utf8_lossy(b).into_owned())
            }
        },
        Cow::Owned(b) => match String::from_utf8(b) {
            Ok(s) => Cow::Owned(s),
            Err(e) => {
                repairs.invalid_utf8 = true;
                Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned())
            }
        },
    };
    (text, repairs)
}

/// Removes `\u0000` escapes and NUL bytes from a JSON document and replaces escaped lone
/// surrogates with `\ufffd`. Every other byte is kept.
pub fn storable_json(body: &[u8]) -> (Cow<'_, [u8]>, Repairs) {
    let mut repairs = Repairs::default();
    if memchr::memchr(0, body).is_none() && memchr::memmem::find(body, b"\\u").is_none() {
        return (Cow::Borrowed(body), repairs);
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b == 0 {
            repairs.nul_removed += 1;
            i += 1;
            continue;
        }
        if b != b'\\' || i + 1 >= body.len() {
            out.push(b);
            i += 1;
            continue;
        }
        if body[i + 1] != b'u' {
            // Any other escape (`\\`, `\"`, `\n` ...) is two bytes kept as they are.
            out.extend_from_slice(&body[i..i + 2]);
            i += 2;
            continue;
        }
        match hex4(body, i + 2) {
            Some(0) => {
                repairs.nul_removed += 1;
                i += 6;
            }
            Some(0xD800..=0xDBFF) => {
                let low = (body.get(i + 6) == Some(&b'\\') && body.get(i + 7) == Some(&b'u'))
                    .then(|| hex4(body, i + 8))
                    .flatten();
                if matches!(low, Some(0xDC00..=0xDFFF)) {
                    out.extend_from_slice(&body[i..i + 12]);
                    i += 12;
                } else {
                    repairs.surrogates_replaced += 1;
                    out.extend_from_slice(b"\\ufffd");
                    i += 6;
                }
            }
            Some(0xDC00..=0xDFFF) => {
                repairs.surrogates_replaced += 1;
                out.extend_from_slice(b"\\ufffd");
                i += 6;
            }
            Some(_) => {
                out.extend_from_slice(&body[i..i + 6]);
                i += 6;
            }
            // Not a valid escape: kept, the JSON parser will say what is wrong with it.
            None => {
                out.extend_from_slice(&body[i..i + 2]);
                i += 2;
            }
        }
    }
    (Cow::Owned(out), repairs)
}

/// Removes U+0000 from a string (text that did not come through [`storable_json`]).
pub fn storable_text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', ""))
    } else {
        Cow::Borrowed(s)
    }
}

fn hex4(body: &[u8], at: usize) -> Option<u32> {
    let digits = body.get(at..at + 4)?;
    let s = std::str::from_utf8(digits).ok()?;
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> (String, Repairs) {
        let (text, r) = storable_json_text(s.as_bytes());
        (text.into_owned(), r)
    }

    #[test]
    fn bodies_without_escapes_are_borrowed_unchanged() {
        let body = br#"{"title":"Am\xc3\xa9lie \xf0\x9f\x8e\xac","overview":"tab\there"}"#;
        let (out, r) = storable_json(body);
        assert!(matches!(out, Cow::Borrowed(_)));
        assert_eq!(&*out, &body[..]);
        assert!(!r.any());
    }

    #[test]
    fn nul_escapes_are_removed_everywhere_and_nothing_else_changes() {
        let cases = [
            (r#"{"t":"a\u0000b"}"#, r#"{"t":"ab"}"#, 1, 0),
            (r#"{"k\u0000ey":1}"#, r#"{"key":1}"#, 1, 0),
            (r#"{"t":"\\u0000"}"#, r#"{"t":"\\u0000"}"#, 0, 0),
            (r#"{"t":"\\\u0000"}"#, r#"{"t":"\\"}"#, 1, 0),
            (r#"{"t":"\u00e9\u0041"}"#, r#"{"t":"\u00e9\u0041"}"#, 0, 0),
            (r#"{"t":"\ud83c\udfac"}"#, r#"{"t":"\ud83c\udfac"}"#, 0, 0),
            (r#"{"t":"\ud800x"}"#, r#"{"t":"\ufffdx"}"#, 0, 1),
            (r#"{"t":"\udc00"}"#, r#"{"t":"\ufffd"}"#, 0, 1),
            (r#"{"t":"\ud800\u0041"}"#, r#"{"t":"\ufffd\u0041"}"#, 0, 1),
            (r#"{"t":"\"q\" \/ \n"}"#, r#"{"t":"\"q\" \/ \n"}"#, 0, 0),
            (r#"{"t":"\u00"}"#, r#"{"t":"\u00"}"#, 0, 0),
        ];
        for (input, want, nul, sur) in cases {
            let (out, r) = clean(input);
            assert_eq!(out, want, "{input}");
            assert_eq!(
                (r.nul_removed, r.surrogates_replaced),
                (nul, sur),
                "{input}"
            );
        }
    }

    #[test]
    fn raw_nul_bytes_and_invalid_utf8_are_repaired() {
        let (out, r) = storable_json_text(b"{\"t\":\"a\0b\xff\"}");
        assert_eq!(out, "{\"t\":\"ab\u{fffd}\"}");
        assert_eq!(r.nul_removed, 1);
        assert!(r.invalid_utf8);
    }

    #[test]
    fn repaired_documents_parse_and_keep_their_values() {
        let body = r#"{"a":"x\u0000y\ud800","b":["\u0000"],"c\u0000":{"d":"RTL \u05e9\u05dc\u05d5\u05dd"}}"#;
        let (out, _) = clean(body);
        let v: serde_json::Value = serde_json::from_str(&out).expect("parses");
        assert_eq!(v["a"], "xy\u{fffd}");
        assert_eq!(v["b"][0], "");
        assert_eq!(v["c"]["d"], "RTL שלום");
    }

    #[test]
    fn storable_text_removes_only_nul() {
        assert_eq!(storable_text("a\0b\tc\\"), "ab\tc\\");
        assert!(matches!(storable_text("plain"), Cow::Borrowed("plain")));
    }
}
