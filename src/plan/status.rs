//! TmdbSync phase and conditions as pure functions of what the controller observed.

/// The phase a TmdbSync is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Bootstrapping,
    Maintaining,
    Suspended,
    Degraded,
}

/// What the phase depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct PhaseInputs {
    pub spec_usable: bool,
    pub suspended: bool,
    pub catalog_loaded: bool,
    pub bulk_complete: bool,
    pub credentials_refused: bool,
}

/// Degraded beats Suspended beats progress: a broken sync must be visible even when paused.
pub fn phase(i: PhaseInputs) -> Phase {
    if !i.spec_usable || i.credentials_refused {
        Phase::Degraded
    } else if i.suspended {
        Phase::Suspended
    } else if !i.catalog_loaded {
        Phase::Pending
    } else if i.bulk_complete {
        Phase::Maintaining
    } else {
        Phase::Bootstrapping
    }
}

/// Error rate of a run in percent: errors over everything it attempted.
pub fn error_rate_percent(imported: i64, updated: i64, errors: i64) -> f64 {
    let attempted = imported + updated + errors;
    if attempted == 0 {
        0.0
    } else {
        errors as f64 * 100.0 / attempted as f64
    }
}

/// Whether today's rate is below `fraction` of the 7-day average (only meaningful with a rate).
pub fn low_rate(today: i64, daily_average: f64, fraction: f64) -> bool {
    daily_average > 0.0 && (today as f64) < daily_average * fraction
}

/// Whether no bulk or delta run succeeded within `hours` (a sync younger than that is not stalled).
pub fn stalled(hours_since_success: Option<f64>, age_hours: f64, hours: f64) -> bool {
    match hours_since_success {
        Some(h) => h > hours,
        None => age_hours > hours,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_cases() {
        let ok = PhaseInputs {
            spec_usable: true,
            catalog_loaded: true,
            ..Default::default()
        };
        let cases = [
            (ok, Phase::Bootstrapping),
            (
                PhaseInputs {
                    bulk_complete: true,
                    ..ok
                },
                Phase::Maintaining,
            ),
            (
                PhaseInputs {
                    catalog_loaded: false,
                    ..ok
                },
                Phase::Pending,
            ),
            (
                PhaseInputs {
                    suspended: true,
                    ..ok
                },
                Phase::Suspended,
            ),
            (
                PhaseInputs {
                    spec_usable: false,
                    suspended: true,
                    ..ok
                },
                Phase::Degraded,
            ),
            (
                PhaseInputs {
                    credentials_refused: true,
                    ..ok
                },
                Phase::Degraded,
            ),
        ];
        for (inputs, want) in cases {
            assert_eq!(phase(inputs), want, "{inputs:?}");
        }
    }

    #[test]
    fn alert_inputs() {
        assert_eq!(error_rate_percent(0, 0, 0), 0.0);
        assert_eq!(error_rate_percent(90, 5, 5), 5.0);
        assert!(low_rate(1000, 4000.0, 0.5));
        assert!(!low_rate(2000, 4000.0, 0.5));
        assert!(!low_rate(0, 0.0, 0.5));
        assert!(stalled(Some(40.0), 100.0, 36.0));
        assert!(!stalled(Some(2.0), 100.0, 36.0));
        assert!(!stalled(None, 1.0, 36.0));
        assert!(stalled(None, 37.0, 36.0));
    }
}
