//! Named fail points for crash tests: when the environment variable `DALA_FAIL_POINT`
//! names a point, the process aborts there, as a crash or `kill -9` would stop it.
//!
//! Points: `write:after-data` (data files written, nothing committed) and
//! `commit:after-log` (the log entry landed, removed files not yet deleted).

use std::sync::OnceLock;

/// Aborts the process if `DALA_FAIL_POINT` names `point`.
pub(crate) fn hit(point: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("DALA_FAIL_POINT").ok());
    if armed.as_deref() == Some(point) {
        eprintln!("dala: fail point {point} reached, aborting");
        std::process::abort();
    }
}
