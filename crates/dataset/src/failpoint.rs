//! Named fail points for crash tests. When the environment variable `DALA_FAIL_POINT`
//! names a point, the process kills itself there with `SIGKILL` (elsewhere than Unix it
//! aborts), as a crash, an out-of-memory kill or `kill -9` would stop it: no destructor
//! runs, no buffer is flushed.
//!
//! The points, in the order an operation passes them:
//! - `write:after-file`: the first data file is written, the others not yet.
//! - `write:after-data`: every data file is written, nothing committed.
//! - `commit:after-log`: the log entry landed, the files it removed not yet deleted.
//! - `checkpoint:after-data`: a checkpoint file is written, `_last_checkpoint` not yet
//!   updated.
//! - `vacuum:after-delete`: vacuum deleted one file, the others not yet.
//! - `catalog:after-entry`: a catalog's log entry landed, its readable copy not yet.
//! - `view:after-data`: a view's data is committed, the catalog not yet told.
//!
//! Reading the variable costs one check per process; an unset variable arms nothing.

use std::sync::OnceLock;

/// The environment variable that arms a fail point.
pub const ENV: &str = "DALA_FAIL_POINT";

/// Every fail point, in the order an operation passes them.
pub const POINTS: &[&str] = &[
    "write:after-file",
    "write:after-data",
    "commit:after-log",
    "checkpoint:after-data",
    "vacuum:after-delete",
    "catalog:after-entry",
    "view:after-data",
];

/// Kills the process if `DALA_FAIL_POINT` names `point`.
pub fn hit(point: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var(ENV).ok());
    if armed.as_deref() == Some(point) {
        eprintln!("dala: fail point {point} reached, killing the process");
        kill_self();
    }
}

#[cfg(unix)]
fn kill_self() -> ! {
    use rustix::process::{Signal, getpid, kill_process};
    // SIGKILL cannot be caught; should sending it fail, abort instead.
    let _ = kill_process(getpid(), Signal::KILL);
    std::process::abort()
}

#[cfg(not(unix))]
fn kill_self() -> ! {
    std::process::abort()
}
