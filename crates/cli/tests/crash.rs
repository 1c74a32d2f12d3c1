//! Crash injection: every operation that changes a dataset or a catalog is run by the
//! `dala` command in a child process and killed with SIGKILL, at each named fail point
//! (`dala_dataset::failpoint::POINTS`) and after random delays. After every kill the
//! dataset must open at the version before the operation or at one it committed, hold
//! every row of that version exactly once, and miss no file that any version names.
//!
//! Each operation gets 20 trials here; `cargo test -p dala-cli --test crash -- --ignored`
//! runs 200 per operation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use dala_catalog::Catalog;
use dala_dataset::Dataset;
use dala_dataset::failpoint::{ENV as FAIL_POINT, POINTS};
use object_store::ObjectStoreExt;

const CATALOG: &str = "lake/catalog.json";

/// What an operation changes, and so what a trial inspects.
#[derive(Clone, Copy)]
enum Target {
    /// The dataset `ds`.
    Dataset,
    /// A view of the catalog (and the dataset behind it).
    View(&'static str),
    /// The catalog's list of tables (and `ds`, which must not change).
    Catalog,
}

/// One operation under test.
struct Case {
    name: &'static str,
    args: &'static [&'static str],
    target: Target,
    /// Whether running it again after a kill must finish the job (operations that
    /// leave the rows as they are, and view refreshes).
    rerun: bool,
    /// Whether versions older than the latest may lose their files (vacuum).
    prunes_history: bool,
}

const CASES: &[Case] = &[
    Case::write("append", &["write", "more.csv", "ds"]),
    Case::write(
        "overwrite",
        &["write", "more.csv", "ds", "--mode", "overwrite"],
    ),
    Case::write(
        "overwrite-partitions",
        &["write", "more.csv", "ds", "--mode", "overwrite-partitions"],
    ),
    Case::write(
        "insert",
        &[
            "write",
            "changes.csv",
            "ds",
            "--mode",
            "insert",
            "--key",
            "id",
        ],
    ),
    Case::write(
        "update",
        &[
            "write",
            "changes.csv",
            "ds",
            "--mode",
            "update",
            "--key",
            "id",
        ],
    ),
    Case::write(
        "upsert",
        &[
            "write",
            "changes.csv",
            "ds",
            "--mode",
            "upsert",
            "--key",
            "id",
        ],
    ),
    Case::write("delete", &["delete", "ds", "--filter", "amount < 450"]),
    Case::rewrite("compact", &["compact", "ds"]),
    Case::rewrite("optimize-dtypes", &["optimize", "dtypes", "ds"]),
    Case::rewrite("optimize-compression", &["optimize", "compression", "ds"]),
    Case::rewrite(
        "repartition",
        &["repartition", "ds", "--partition-by", "city"],
    ),
    Case {
        name: "vacuum",
        args: &["vacuum", "ds", "--retain", "0s", "--orphan-grace", "0s"],
        target: Target::Dataset,
        rerun: true,
        prunes_history: true,
    },
    Case {
        name: "catalog-register",
        args: &[
            "--catalog",
            CATALOG,
            "catalog",
            "register",
            "shop.more",
            "ds",
        ],
        target: Target::Catalog,
        rerun: false,
        prunes_history: false,
    },
    Case {
        name: "view-refresh",
        args: &["--catalog", CATALOG, "view", "refresh", "shop.by_year"],
        target: Target::View("shop.by_year"),
        rerun: true,
        prunes_history: false,
    },
];

impl Case {
    const fn write(name: &'static str, args: &'static [&'static str]) -> Case {
        Case {
            name,
            args,
            target: Target::Dataset,
            rerun: false,
            prunes_history: false,
        }
    }

    const fn rewrite(name: &'static str, args: &'static [&'static str]) -> Case {
        Case {
            rerun: true,
            ..Case::write(name, args)
        }
    }
}

mod common;

use common::{copy_tree, ok};

/// `dala ARGS` in `dir`, its output discarded but for errors.
fn dala(args: &[&str], dir: &Path) -> Command {
    let mut command = common::command(args, dir);
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    command
}

fn csv(rows: impl Iterator<Item = u32>, amount: impl Fn(u32) -> f64) -> String {
    let mut csv = String::from("id,city,year,amount,note\n");
    for id in rows {
        csv += &format!(
            "{id},city-{},{},{:.2},note {}\n",
            id % 7,
            2000 + id % 6,
            amount(id),
            id % 3
        );
    }
    csv
}

/// The template every trial starts from: `ds`, 600 rows in 3 appends over 6 year
/// partitions (18 files), a checkpoint at every version and removed files kept for a
/// week (so every version stays readable), a catalog naming it, and an incremental view
/// over it that one more append left stale.
fn template(dir: &Path) {
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
    write("more.csv", csv(600..700, |id| f64::from(id) * 1.5));
    // Ids 100..150 change, 600..650 are new.
    write(
        "changes.csv",
        csv((100..150).chain(600..650), |id| f64::from(id) + 1000.0),
    );
    for part in 0..3 {
        write(
            "part.csv",
            csv(part * 200..(part + 1) * 200, |id| f64::from(id) * 1.5),
        );
        ok(&["write", "part.csv", "ds", "--partition-by", "year"], dir);
    }
    ok(
        &[
            "properties",
            "ds",
            "checkpoint.interval=1",
            "retention.seconds=604800",
        ],
        dir,
    );
    fn with<'a>(args: &[&'a str]) -> Vec<&'a str> {
        ["--catalog", CATALOG]
            .into_iter()
            .chain(args.iter().copied())
            .collect()
    }
    ok(&with(&["catalog", "init"]), dir);
    ok(&with(&["catalog", "register", "shop.sales", "ds"]), dir);
    ok(
        &with(&[
            "view",
            "create",
            "shop.by_year",
            "SELECT year, city, count(*) AS n, sum(amount) AS total FROM shop.sales GROUP BY year, city",
            "--incremental-by",
            "year",
        ]),
        dir,
    );
    write("late.csv", csv(700..760, |id| f64::from(id) * 1.5));
    ok(&["write", "late.csv", "ds"], dir);
    // For vacuum: an overwrite of two partitions leaves files only older versions name.
    write(
        "two.csv",
        csv((760..800).filter(|id| id % 6 < 2), f64::from),
    );
    ok(
        &["write", "two.csv", "ds", "--mode", "overwrite-partitions"],
        dir,
    );
}

/// What a trial sees: the target dataset's version and rows (each row as text, columns
/// in name order, so rewrites that reorder columns or narrow types compare equal), for
/// the catalog case its list of tables, and how many Parquet files `ds` holds on disk.
#[derive(Debug, Clone, PartialEq)]
struct State {
    version: u64,
    rows: Vec<String>,
    tables: Vec<String>,
    stored_files: usize,
}

/// The Parquet files under `dir`, the log's checkpoints excepted.
fn parquet_files(dir: &Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if entry.file_type().unwrap().is_dir() {
            if name != "_dala" {
                count += parquet_files(&entry.path());
            }
        } else if name.to_string_lossy().ends_with(".parquet") {
            count += 1;
        }
    }
    count
}

/// Opens `location` and checks that every version from `oldest` on names only files
/// that exist; returns the latest version and its rows.
async fn inspect(location: &str, check_from: Option<u64>) -> (u64, Vec<String>) {
    let dataset = Dataset::open(location)
        .await
        .unwrap_or_else(|e| panic!("{location} does not open: {e}"));
    let latest = dataset.version();
    let oldest = check_from.unwrap_or(latest);
    for version in oldest..=latest {
        let at = Dataset::open_at(location, version)
            .await
            .unwrap_or_else(|e| panic!("{location} at version {version} does not open: {e}"));
        let log = at.log_store();
        for file in at.snapshot().files() {
            let path = log.child(&file.path).unwrap();
            if let Err(e) = log.store().head(&path).await {
                panic!("version {version} of {location} names {}: {e}", file.path);
            }
        }
    }
    let batches = dataset.scan().collect().await.unwrap();
    (latest, dala_tests::rows_as_text(&batches, true))
}

async fn observe(dir: &Path, case: &Case) -> State {
    let ds = dir.join("ds").to_string_lossy().into_owned();
    let history = if case.prunes_history { None } else { Some(0) };
    let stored_files = parquet_files(&dir.join("ds"));
    match case.target {
        Target::Dataset => {
            let (version, rows) = inspect(&ds, history).await;
            State {
                version,
                rows,
                tables: Vec::new(),
                stored_files,
            }
        }
        Target::View(name) => {
            let catalog = Catalog::open(&dir.join(CATALOG).to_string_lossy())
                .await
                .unwrap();
            let view = catalog.load(name).await.unwrap();
            // Views keep no removed files, so only their latest version must be whole.
            let location = view.url().to_string();
            let (version, rows) = inspect(&location, None).await;
            // The source must not change.
            inspect(&ds, Some(0)).await;
            State {
                version,
                rows,
                tables: Vec::new(),
                stored_files,
            }
        }
        Target::Catalog => {
            let catalog = Catalog::open(&dir.join(CATALOG).to_string_lossy())
                .await
                .unwrap_or_else(|e| panic!("the catalog does not open: {e}"));
            let (version, rows) = inspect(&ds, Some(0)).await;
            State {
                version,
                rows,
                tables: catalog.list(None),
                stored_files,
            }
        }
    }
}

/// How the trials of one case ended.
#[derive(Debug, Default)]
struct Tally {
    trials: usize,
    killed: usize,
    at_old: usize,
    at_new: usize,
    between: usize,
}

/// A fixed pseudo-random sequence (xorshift), so every run kills at the same delays.
struct Delays(u64);

impl Delays {
    fn next_fraction(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 10_000) as f64 / 10_000.0
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `trials` killed runs of `case`: the first at each fail point, the rest after a
/// random delay within the time a whole run takes.
fn crash_trials(case: &Case, trials: usize) -> Tally {
    let runtime = runtime();
    let root = tempfile::tempdir().unwrap();
    let template_dir = root.path().join("template");
    std::fs::create_dir_all(&template_dir).unwrap();
    template(&template_dir);
    let before = runtime.block_on(observe(&template_dir, case));

    // One whole run: the state it ends in, and how long it takes.
    let work: PathBuf = root.path().join("work");
    copy_tree(&template_dir, &work);
    let started = Instant::now();
    ok(case.args, &work);
    let whole = started.elapsed();
    let after = runtime.block_on(observe(&work, case));
    assert_ne!(
        (before.version, &before.tables, before.stored_files),
        (after.version, &after.tables, after.stored_files),
        "{}: a whole run changed nothing",
        case.name
    );

    let mut tally = Tally::default();
    let mut delays = Delays(0x2545_F491_4F6C_DD1D ^ case.name.len() as u64);
    for trial in 0..trials {
        std::fs::remove_dir_all(&work).unwrap();
        copy_tree(&template_dir, &work);
        let mut command = dala(case.args, &work);
        let point = POINTS.get(trial).copied();
        let status = match point {
            Some(point) => command.env(FAIL_POINT, point).status().unwrap(),
            None => {
                // Within the last three quarters of a whole run: the first quarter is
                // mostly the process starting.
                let delay = whole.mul_f64(0.25 + 0.75 * delays.next_fraction());
                let mut child = command.stderr(Stdio::null()).spawn().unwrap();
                std::thread::sleep(delay);
                let _ = child.kill();
                child.wait().unwrap()
            }
        };
        let how = point.map_or_else(
            || "a random delay".to_string(),
            |p| format!("fail point {p}"),
        );
        tally.trials += 1;
        if !status.success() {
            tally.killed += 1;
        }
        let state = runtime.block_on(observe(&work, case));
        let same_rows = |s: &State| s.rows == state.rows && s.tables == state.tables;
        if same_rows(&before) && (!same_rows(&after) || state.version == before.version) {
            assert_eq!(state.version, before.version, "{}: after {how}", case.name);
            tally.at_old += 1;
        } else if same_rows(&after) && (!same_rows(&before) || state.version == after.version) {
            assert_eq!(state.version, after.version, "{}: after {how}", case.name);
            tally.at_new += 1;
        } else {
            // Only an operation that commits in steps (per partition group) may stop
            // between, and then every row is still there exactly once.
            assert!(
                same_rows(&before) && same_rows(&after),
                "{}: after {how} the rows are neither the old nor the new ones (version {})",
                case.name,
                state.version
            );
            assert!(
                before.version < state.version && state.version < after.version,
                "{}: after {how}: version {}",
                case.name,
                state.version
            );
            tally.between += 1;
        }
        if case.prunes_history {
            assert!(
                (after.stored_files..=before.stored_files).contains(&state.stored_files),
                "{}: after {how}: {} files on disk",
                case.name,
                state.stored_files
            );
        }
        if case.rerun && state != after {
            ok(case.args, &work);
            let finished = runtime.block_on(observe(&work, case));
            assert_eq!(
                finished.rows, after.rows,
                "{}: rerun after {how}",
                case.name
            );
            if case.prunes_history {
                assert_eq!(finished.stored_files, after.stored_files, "{}", case.name);
            }
        }
    }
    println!(
        "{}: {} trials, {} killed, {} at the old version, {} at the new, {} between (committed steps), whole run {:?}",
        case.name, tally.trials, tally.killed, tally.at_old, tally.at_new, tally.between, whole
    );
    assert!(tally.killed > 0, "{}: no kill landed", case.name);
    tally
}

fn case(name: &str) -> &'static Case {
    CASES.iter().find(|c| c.name == name).unwrap()
}

const CI_TRIALS: usize = 20;

macro_rules! crash_tests {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                crash_trials(case($name), CI_TRIALS);
            }
        )*
    };
}

crash_tests! {
    append_survives_kills => "append",
    overwrite_survives_kills => "overwrite",
    overwrite_partitions_survives_kills => "overwrite-partitions",
    insert_survives_kills => "insert",
    update_survives_kills => "update",
    upsert_survives_kills => "upsert",
    delete_survives_kills => "delete",
    compaction_survives_kills => "compact",
    dtype_optimization_survives_kills => "optimize-dtypes",
    compression_tuning_survives_kills => "optimize-compression",
    repartition_survives_kills => "repartition",
    vacuum_survives_kills => "vacuum",
    catalog_update_survives_kills => "catalog-register",
    view_refresh_survives_kills => "view-refresh",
}

/// The long mode: 200 kills per operation.
#[test]
#[ignore = "long: about 200 killed runs per operation"]
fn every_operation_survives_200_kills() {
    let trials = std::env::var("DALA_CRASH_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(200);
    let mut total = Tally::default();
    for case in CASES {
        let tally = crash_trials(case, trials);
        total.trials += tally.trials;
        total.killed += tally.killed;
        total.at_old += tally.at_old;
        total.at_new += tally.at_new;
        total.between += tally.between;
    }
    println!("all operations: {total:?}");
}

#[test]
fn every_fail_point_is_documented() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    for point in POINTS {
        assert!(
            readme.contains(point),
            "README does not name fail point {point}"
        );
    }
}
