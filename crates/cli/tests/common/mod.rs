//! What the command-line tests share: running `dala` as a user would, with none of the
//! environment variables that change what it does.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

/// `dala ARGS` in `dir`, not yet run.
pub fn command(args: &[&str], dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dala"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("DALA_FAIL_POINT")
        .env_remove("DALA_CATALOG")
        .env_remove("DALA_ENGINE")
        .env_remove("DALA_CACHE")
        .env_remove("DALA_CACHE_DIR");
    command
}

/// Runs `dala ARGS` in `dir`.
pub fn dala(args: &[&str], dir: &Path) -> Output {
    command(args, dir).output().unwrap()
}

/// Runs `dala ARGS` in `dir`, which must succeed; returns what it printed.
pub fn ok(args: &[&str], dir: &Path) -> String {
    let out = dala(args, dir);
    assert!(
        out.status.success(),
        "dala {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Copies the folder `from` to `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
