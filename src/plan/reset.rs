//! Requested resets (`kubectl tmdbsync reset`), in the Flux `requestedAt` pattern: the request is
//! a pair of annotations on the TmdbSync, and the controller acknowledges the one it carried out
//! in `status.lastHandledResetAt`. Pure: which request is pending, and what it means.

use chrono::NaiveDate;

/// Annotation holding the request's token (the time it was asked, RFC 3339).
pub const RESET_REQUESTED_AT: &str = "tmdbsync.io/reset-requested-at";
/// Annotation saying what to reset: `bulk` or `delta-since=YYYY-MM-DD`.
pub const RESET_WHAT: &str = "tmdbsync.io/reset";

/// What a reset does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetKind {
    /// Re-import every catalog page: checkpoints cleared, stored movies kept and refetched by one
    /// Manual Bulk run over every page.
    Bulk,
    /// Replay the changes feed from this day: the delta days from it on are forgotten, so the next
    /// Delta run reads them again (in windows of at most 14 days, as every delta does).
    DeltaSince(NaiveDate),
}

impl ResetKind {
    /// The annotation value.
    pub fn annotation(self) -> String {
        match self {
            ResetKind::Bulk => "bulk".into(),
            ResetKind::DeltaSince(d) => format!("delta-since={d}"),
        }
    }

    /// Parses the annotation value.
    pub fn parse(s: &str) -> Result<ResetKind, String> {
        match s.trim() {
            "bulk" => Ok(ResetKind::Bulk),
            other => other
                .strip_prefix("delta-since=")
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .map(ResetKind::DeltaSince)
                .ok_or_else(|| {
                    format!(
                        "{RESET_WHAT}: {other:?} is neither `bulk` nor `delta-since=YYYY-MM-DD`"
                    )
                }),
        }
    }

    /// What it does, for people (the plugin prints it before acting).
    pub fn plan(self, total_pages: i32) -> String {
        match self {
            ResetKind::Bulk => format!(
                "clear every bulk page checkpoint and start one Manual Bulk run over pages 1-{total_pages}: \
                 every stored movie is kept and fetched again once"
            ),
            ResetKind::DeltaSince(d) => format!(
                "forget the delta days from {d} on: the next Delta run reads TMDb's changes feed again \
                 from {d} (in windows of at most 14 days) and refetches the changed movies"
            ),
        }
    }
}

/// The pending request, if the annotations ask for one the status has not handled: its token
/// and what it asks (or why it cannot be read).
pub fn pending(
    requested_at: Option<&str>,
    what: Option<&str>,
    last_handled: Option<&str>,
) -> Option<(String, Result<ResetKind, String>)> {
    let token = requested_at?.trim();
    if token.is_empty() || Some(token) == last_handled {
        return None;
    }
    Some((token.to_string(), ResetKind::parse(what.unwrap_or(""))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (requested-at, what, last handled) → pending (Err when unreadable).
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Option<Result<ResetKind, ()>>,
    );

    #[test]
    fn a_request_is_pending_until_its_token_is_handled() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let cases: [Case; 6] = [
            (None, Some("bulk"), None, None),
            (Some("t1"), Some("bulk"), None, Some(Ok(ResetKind::Bulk))),
            (Some("t1"), Some("bulk"), Some("t1"), None),
            (
                Some("t2"),
                Some("delta-since=2026-03-01"),
                Some("t1"),
                Some(Ok(ResetKind::DeltaSince(d))),
            ),
            (Some("t3"), Some("everything"), None, Some(Err(()))),
            (Some(" "), Some("bulk"), None, None),
        ];
        for (at, what, handled, want) in cases {
            let got = pending(at, what, handled).map(|(_, k)| k.map_err(|_| ()));
            assert_eq!(got, want, "{at:?} {what:?} {handled:?}");
        }
        for k in [ResetKind::Bulk, ResetKind::DeltaSince(d)] {
            assert_eq!(ResetKind::parse(&k.annotation()), Ok(k));
        }
        assert!(ResetKind::Bulk.plan(250).contains("pages 1-250"));
    }
}
