//! Concurrent writers: eight `dala` processes at a time on one dataset for a bounded time,
//! appending, upserting disjoint and overlapping keys, compacting and vacuuming. Every
//! write that reports a version must be in the final rows exactly once, every write that
//! fails must fail with a commit conflict, and the final rows must equal a replay of the
//! committed writes in version order. Locally and on an S3 server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dala_tests::S3Server;

mod common;

/// What one worker process does each round.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    /// Ten new rows with ids of its own.
    Append,
    /// Ten rows of a key range of its own: inserted the first time, updated after.
    DisjointUpsert,
    /// Ten rows of the keys every overlapping worker shares (the first 200 ids).
    OverlappingUpsert,
    /// A compaction, then a vacuum, in turns.
    Maintain,
}

const ROLES: [Role; 8] = [
    Role::Append,
    Role::Append,
    Role::Append,
    Role::DisjointUpsert,
    Role::DisjointUpsert,
    Role::OverlappingUpsert,
    Role::OverlappingUpsert,
    Role::Maintain,
];

/// A row: id → (writer, seq). The partition column `year` follows from the id.
type Rows = BTreeMap<i64, (i64, i64)>;

fn year(id: i64) -> i64 {
    2020 + id % 4
}

fn csv(rows: &[(i64, i64, i64)]) -> String {
    let mut text = String::from("id,writer,seq,year\n");
    for (id, writer, seq) in rows {
        text += &format!("{id},{writer},{seq},{}\n", year(*id));
    }
    text
}

/// The rows worker `w` writes in round `seq`.
fn round_rows(role: Role, w: i64, seq: i64) -> Vec<(i64, i64, i64)> {
    let ids: Vec<i64> = match role {
        Role::Append => (0..10)
            .map(|k| 1_000_000 * (w + 1) + seq * 10 + k)
            .collect(),
        Role::DisjointUpsert => (0..10)
            .map(|k| 100_000 * (w + 1) + (seq % 5) * 10 + k)
            .collect(),
        Role::OverlappingUpsert => (0..10).map(|k| (seq * 7 + k * 13 + w) % 200).collect(),
        Role::Maintain => Vec::new(),
    };
    ids.into_iter().map(|id| (id, w, seq)).collect()
}

/// A write that reported a version.
#[derive(Debug)]
struct Committed {
    version: u64,
    role: Role,
    rows: Vec<(i64, i64, i64)>,
}

/// How the run went.
#[derive(Debug, Default)]
struct Outcome {
    committed: Vec<Committed>,
    conflicts: usize,
    maintenance: usize,
}

/// The version `dala write` printed (`version N: ...`).
fn printed_version(stdout: &str) -> Option<u64> {
    let line = stdout.lines().find(|l| l.starts_with("version "))?;
    line["version ".len()..].split(':').next()?.parse().ok()
}

fn run_workers(dir: &Path, location: &str, env: &[(String, String)], seconds: u64) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let env = Arc::new(env.to_vec());
    let handles: Vec<_> = ROLES
        .iter()
        .enumerate()
        .map(|(w, &role)| {
            let dir = dir.to_path_buf();
            let location = location.to_string();
            let env = env.clone();
            std::thread::spawn(move || {
                let w = w as i64;
                let mut outcome = Outcome::default();
                let mut seq = 0i64;
                while Instant::now() < deadline {
                    seq += 1;
                    let rows = round_rows(role, w, seq);
                    let input = format!("w{w}-{seq}.csv");
                    let args: Vec<&str> = match role {
                        Role::Append => vec!["write", &input, &location],
                        Role::DisjointUpsert | Role::OverlappingUpsert => {
                            vec!["write", &input, &location, "--mode", "upsert", "--key", "id"]
                        }
                        Role::Maintain if seq % 2 == 1 => vec!["compact", &location],
                        Role::Maintain => vec!["vacuum", &location, "--retain", "2s"],
                    };
                    if !rows.is_empty() {
                        std::fs::write(dir.join(&input), csv(&rows)).unwrap();
                    }
                    let out = common::command(&args, &dir)
                        .envs(env.iter().cloned())
                        .output()
                        .unwrap();
                    let stdout = String::from_utf8_lossy(&out.stdout);
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
                    if !out.status.success() {
                        assert!(
                            stderr.contains("commit conflict"),
                            "worker {w} ({role:?}) failed with something else than a conflict: {stderr}"
                        );
                        outcome.conflicts += 1;
                    } else if role == Role::Maintain {
                        outcome.maintenance += 1;
                    } else {
                        let version = printed_version(&stdout)
                            .unwrap_or_else(|| panic!("{args:?} printed no version: {stdout}"));
                        outcome.committed.push(Committed {
                            version,
                            role,
                            rows,
                        });
                    }
                }
                outcome
            })
        })
        .collect();
    let mut all = Outcome::default();
    for handle in handles {
        let outcome = handle.join().unwrap();
        all.committed.extend(outcome.committed);
        all.conflicts += outcome.conflicts;
        all.maintenance += outcome.maintenance;
    }
    all
}

fn concurrent_writers(location: &str, env: &[(String, String)], seconds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let initial: Vec<(i64, i64, i64)> = (0..200).map(|id| (id, -1, 0)).collect();
    std::fs::write(dir.path().join("initial.csv"), csv(&initial)).unwrap();
    let run = |args: &[&str]| {
        let out = common::command(args, dir.path())
            .envs(env.iter().cloned())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dala {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["write", "initial.csv", location, "--partition-by", "year"]);

    let outcome = run_workers(dir.path(), location, env, seconds);

    // Replay the committed writes in version order.
    let mut model: Rows = initial.iter().map(|&(id, w, s)| (id, (w, s))).collect();
    let mut committed = outcome.committed;
    committed.sort_by_key(|c| c.version);
    for pair in committed.windows(2) {
        assert_ne!(
            pair[0].version, pair[1].version,
            "two writes got one version"
        );
    }
    for write in &committed {
        for &(id, w, s) in &write.rows {
            let before = model.insert(id, (w, s));
            if write.role == Role::Append {
                assert!(before.is_none(), "append of an id that exists: {id}");
            }
        }
    }
    let scanned = run(&[
        "scan",
        location,
        "--columns",
        "id,writer,seq,year",
        "--format",
        "csv",
    ]);
    let mut found: Rows = BTreeMap::new();
    for line in scanned.lines().skip(1) {
        let fields: Vec<i64> = line.split(',').map(|f| f.parse().unwrap()).collect();
        assert_eq!(fields[3], year(fields[0]), "{line}");
        let twice = found.insert(fields[0], (fields[1], fields[2]));
        assert!(twice.is_none(), "id {} is there twice", fields[0]);
    }
    assert_eq!(found.len(), model.len(), "rows: found vs the replay");
    assert_eq!(
        found, model,
        "the rows differ from a replay of the committed writes"
    );
    let info = run(&["info", location]);
    println!(
        "{location}: {} writes committed, {} conflicts, {} compactions and vacuums, {} rows; {}",
        committed.len(),
        outcome.conflicts,
        outcome.maintenance,
        found.len(),
        info.lines()
            .find(|l| l.starts_with("version"))
            .unwrap_or("")
    );
    assert!(committed.len() >= ROLES.len(), "too few writes landed");
}

fn seconds() -> u64 {
    std::env::var("DALA_CONCURRENCY_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6)
}

#[test]
fn eight_processes_on_one_local_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("ds").to_string_lossy().into_owned();
    concurrent_writers(&location, &[], seconds());
}

#[test]
fn eight_processes_on_one_s3_dataset() {
    let server = S3Server::start().unwrap();
    server.create_bucket("concurrency").unwrap();
    let mut env = server.environment();
    env.push(("DALA_CACHE".into(), "off".into()));
    concurrent_writers("s3://concurrency/ds", &env, seconds());
}
