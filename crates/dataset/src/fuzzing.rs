//! Hooks for the fuzz targets in `fuzz/`, behind the `fuzzing` feature; not part of dala's
//! API. They reach the crate-private form of the log that opening a dataset reads.

use crate::log::{Commit, CommitView};
use crate::snapshot::Snapshot;

/// Reads `bytes` as the log entry of `version` in both forms the log is read in: the full
/// parse ([`Commit::parse`], which writers and conflict checks use) and the borrowed view
/// that opening a dataset uses. Builds version 0 from it when `base` is `None`, else applies
/// it to `base`. Returns the full form's snapshot, or `None` when both refuse the entry.
///
/// # Panics
/// When the two forms disagree: one refuses what the other accepts, or their snapshots
/// differ. Opening a dataset must read exactly what was written.
#[allow(clippy::panic)] // a disagreement is what the fuzz target reports, by panicking
pub fn load_both_ways(bytes: &[u8], version: u64, base: Option<&Snapshot>) -> Option<Snapshot> {
    let path = "_dala/fuzz.json";
    let full = Commit::parse(bytes, version, path).and_then(|commit| match base {
        None => Snapshot::from_first_commit(&commit, path),
        Some(base) => {
            let mut snapshot = base.clone();
            snapshot.apply(&commit, path).map(|()| snapshot)
        }
    });
    let view = CommitView::parse(bytes, version, path).and_then(|view| match base {
        None => Snapshot::from_first_entry(&view, path),
        Some(base) => {
            let mut snapshot = base.clone();
            snapshot.apply_entry(&view, path).map(|()| snapshot)
        }
    });
    match (full, view) {
        (Ok(full), Ok(view)) => {
            assert_eq!(full, view, "the two forms read different snapshots");
            Some(full)
        }
        (Err(_), Err(_)) => None,
        (full, view) => panic!(
            "one form refused what the other read: full parse {:?}, view {:?}",
            full.map(|_| "read"),
            view.map(|_| "read")
        ),
    }
}
