//! The chart's alert rules pass `promtool check rules` and their unit tests (tests/alerts/*.yaml),
//! through `scripts/promtool-test.sh`. Needs promtool (Debian package `prometheus`, installed by
//! `scripts/install-deps.sh`) and helm (built by `scripts/build-control-plane.sh`).

use std::path::Path;
use std::process::Command;

/// Fewer passing unit tests than this means tests were lost, not that the rules got better.
const MIN_RULE_TESTS: u32 = 10;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `(passed, failed)` from the script's closing line `promtool: N passed, M failed`.
fn tally(stdout: &str) -> Option<(u32, u32)> {
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("promtool: "))?;
    let (passed, failed) = line.split_once(" passed, ")?;
    let failed = failed.strip_suffix(" failed")?;
    Some((passed.trim().parse().ok()?, failed.trim().parse().ok()?))
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let found = Command::new("promtool").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "promtool is not installed: run scripts/install-deps.sh (Debian package `prometheus`)"
    );
    let out = Command::new("bash")
        .arg(root().join("scripts/promtool-test.sh"))
        .current_dir(root())
        .output()
        .expect("run scripts/promtool-test.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/promtool-test.sh failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("SUCCESS: 5 rules found"),
        "promtool check rules should find the 5 alerts:\n{stdout}"
    );
    let (passed, failed) = tally(&stdout)
        .unwrap_or_else(|| panic!("no `promtool: N passed, M failed` line:\n{stdout}"));
    assert_eq!(failed, 0, "{stdout}");
    assert!(
        passed >= MIN_RULE_TESTS,
        "only {passed} promtool rule tests passed, expected at least {MIN_RULE_TESTS}:\n{stdout}"
    );
}

#[test]
fn a_threshold_change_makes_the_unit_tests_fail() {
    // The unit tests pin the seed's thresholds: rendering with others must break some of them.
    let out = Command::new("bash")
        .arg(root().join("scripts/promtool-test.sh"))
        .args(["--set", "alerts.errorRatePercent=20"])
        .current_dir(root())
        .output()
        .expect("run scripts/promtool-test.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    let (_, failed) = tally(&stdout).unwrap_or_else(|| panic!("no tally line:\n{stdout}"));
    assert!(failed >= 1, "{stdout}");
}

#[test]
fn tally_reads_the_closing_line() {
    assert_eq!(tally("x\npromtool: 13 passed, 0 failed\n"), Some((13, 0)));
    assert_eq!(tally("promtool: 10 passed, 3 failed"), Some((10, 3)));
    assert_eq!(tally("SUCCESS"), None);
}
