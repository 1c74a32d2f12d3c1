//! End-to-end tests across dala's crates live in `e2e/`; this library is empty on purpose
//! so that the package has a target besides its tests.
