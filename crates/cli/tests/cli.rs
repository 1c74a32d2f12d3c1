//! The `dala` command line, run as a user would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::Command;

mod common;

use common::{dala, ok};

const CSV: &str =
    "id,city,year,amount\n1,Oslo,2023,1.5\n2,Lima,2024,2.5\n3,a/b=c,2024,3.5\n4,Oslo,2024,4.0\n";

/// The rows `dala scan ARGS --format csv` prints, header included, sorted.
fn sorted_scan(dir: &Path, args: &[&str]) -> Vec<String> {
    let mut command = vec!["scan"];
    command.extend_from_slice(args);
    command.extend_from_slice(&["--format", "csv"]);
    let mut lines: Vec<String> = ok(&command, dir).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// Writes `CSV` to `dir/ds`, partitioned by year.
fn csv_dataset(dir: &Path) {
    std::fs::write(dir.join("in.csv"), CSV).unwrap();
    ok(&["write", "in.csv", "ds", "--partition-by", "year"], dir);
}

#[test]
fn write_scan_info_history_sync() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), CSV).unwrap();
    let out = ok(
        &[
            "write",
            "in.csv",
            "ds",
            "--partition-by",
            "year,city",
            "--compression",
            "snappy",
        ],
        dir.path(),
    );
    assert!(out.contains("version 0: 4 rows inserted"), "{out}");
    ok(&["write", "in.csv", "ds", "--mode", "append"], dir.path());
    assert!(dir.path().join("ds/year=2024/city=a%2Fb%3Dc").is_dir());

    let csv = ok(
        &[
            "scan",
            "ds",
            "--filter",
            "year = 2024 AND amount > 2",
            "--columns",
            "id,city",
            "--format",
            "csv",
        ],
        dir.path(),
    );
    let mut lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.remove(0), "id,city");
    lines.sort();
    assert_eq!(
        lines,
        vec!["2,Lima", "2,Lima", "3,a/b=c", "3,a/b=c", "4,Oslo", "4,Oslo"]
    );

    let json = ok(
        &[
            "scan",
            "ds",
            "--version",
            "0",
            "--format",
            "json",
            "--limit",
            "10",
        ],
        dir.path(),
    );
    assert_eq!(json.lines().count(), 4, "{json}");

    let explain = ok(
        &[
            "scan",
            "ds",
            "--filter",
            "city = 'Oslo' AND year = 2023",
            "--explain",
        ],
        dir.path(),
    );
    assert!(
        explain.contains("files:       2 of 8 read (6 pruned by partition"),
        "{explain}"
    );

    let info = ok(&["info", "ds"], dir.path());
    assert!(
        info.contains("version:    1") && info.contains("rows:       8"),
        "{info}"
    );
    assert!(info.contains("year (Int64), city (Utf8)"), "{info}");
    let history = ok(&["history", "ds"], dir.path());
    assert!(
        history.contains("create") && history.contains("append"),
        "{history}"
    );

    let out = ok(
        &["write", "in.csv", "ds", "--mode", "overwrite"],
        dir.path(),
    );
    assert!(
        out.contains("4 rows inserted, 0 updated, 8 deleted"),
        "{out}"
    );

    let parquet = dir.path().join("out.parquet");
    ok(
        &[
            "scan",
            "ds",
            "--format",
            "parquet",
            "--output",
            parquet.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(std::fs::metadata(&parquet).unwrap().len() > 0);
    let sync = ok(&["sync", "ds"], dir.path());
    assert!(sync.contains("nothing to commit"), "{sync}");
}

#[test]
fn errors_are_one_line_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    csv_dataset(dir.path());
    for args in [
        vec!["scan", "ds", "--filter", "nope = 1"],
        vec!["scan", "ds", "--filter", "id = = 1"],
        vec!["write", "in.csv", "ds", "--partition-by", "city"],
        vec!["info", "missing"],
    ] {
        let out = dala(&args, dir.path());
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error:"), "{stderr}");
    }
    let stderr =
        String::from_utf8(dala(&["scan", "ds", "--filter", "nope = 1"], dir.path()).stderr)
            .unwrap();
    assert!(stderr.contains("nope"), "{stderr}");
    // Bad option values are refused by the argument parser, before anything is done.
    let out = dala(
        &["write", "in.csv", "ds", "--compression", "zstd:99"],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("valid compression range 1..=22"));
}

#[test]
fn a_writer_killed_before_its_commit_leaves_the_dataset_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    csv_dataset(dir.path());
    for point in ["write:after-data", "commit:after-log"] {
        let out = Command::new(env!("CARGO_BIN_EXE_dala"))
            .args(["write", "in.csv", "ds", "--mode", "overwrite"])
            .current_dir(dir.path())
            .env("DALA_FAIL_POINT", point)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{point}: the writer was not stopped");
        let info = ok(&["info", "ds"], dir.path());
        // Killed before the commit: still version 0. Killed after it: version 1, whole.
        let version = if point == "write:after-data" { 0 } else { 1 };
        assert!(
            info.contains(&format!("version:    {version}\n")),
            "{point}: {info}"
        );
        assert!(info.contains("rows:       4\n"), "{point}: {info}");
        let csv = ok(
            &["scan", "ds", "--columns", "id", "--format", "csv"],
            dir.path(),
        );
        let mut ids: Vec<&str> = csv.lines().skip(1).collect();
        ids.sort();
        assert_eq!(ids, vec!["1", "2", "3", "4"], "{point}");
    }
}

#[test]
fn upsert_by_key_and_delete_by_filter() {
    let dir = tempfile::tempdir().unwrap();
    csv_dataset(dir.path());
    // id 2 changes, id 3 is sent unchanged, id 5 is new.
    std::fs::write(
        dir.path().join("changes.csv"),
        "id,city,year,amount\n2,Lima,2024,9.5\n3,a/b=c,2024,3.5\n5,Rome,2023,5.5\n",
    )
    .unwrap();
    let out = ok(
        &[
            "write",
            "changes.csv",
            "ds",
            "--mode",
            "upsert",
            "--key",
            "id",
        ],
        dir.path(),
    );
    assert!(
        out.contains("version 1: 1 rows inserted, 1 updated, 0 deleted, 1 unchanged"),
        "{out}"
    );
    let out = ok(&["delete", "ds", "--filter", "city = 'Oslo'"], dir.path());
    assert!(
        out.contains("version 2: 0 rows inserted, 0 updated, 2 deleted"),
        "{out}"
    );
    let csv = ok(
        &["scan", "ds", "--columns", "id,amount", "--format", "csv"],
        dir.path(),
    );
    let mut lines: Vec<&str> = csv.lines().skip(1).collect();
    lines.sort();
    assert_eq!(lines, vec!["2,9.5", "3,3.5", "5,5.5"]);
    let history = ok(&["history", "ds"], dir.path());
    assert!(
        history.contains("upsert") && history.contains("delete"),
        "{history}"
    );
}

#[test]
fn derived_partitions_unique_rows_and_schema_merge() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("events.csv"),
        "id,at\n1,2024-03-01T10:00:00\n1,2024-03-01T10:00:00\n2,2024-04-02T11:00:00\n",
    )
    .unwrap();
    let out = ok(
        &[
            "write",
            "events.csv",
            "ds",
            "--partition-by",
            "year,month",
            "--timestamp-column",
            "at",
            "--unique",
        ],
        dir.path(),
    );
    assert!(out.contains("2 rows inserted"), "{out}");
    assert!(dir.path().join("ds/year=2024/month=4").is_dir());

    std::fs::write(
        dir.path().join("more.csv"),
        "id,at,source\n3,2024-05-03T12:00:00,web\n",
    )
    .unwrap();
    let refused = dala(&["write", "more.csv", "ds"], dir.path());
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("source"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    ok(
        &["write", "more.csv", "ds", "--schema-mode", "merge"],
        dir.path(),
    );
    let csv = ok(
        &[
            "scan",
            "ds",
            "--columns",
            "id,month,source",
            "--format",
            "csv",
        ],
        dir.path(),
    );
    let mut lines: Vec<&str> = csv.lines().skip(1).collect();
    lines.sort();
    assert_eq!(lines, vec!["1,3,", "2,4,", "3,5,web"]);
}

#[test]
fn an_upsert_or_delete_killed_before_its_commit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    csv_dataset(dir.path());
    std::fs::write(
        dir.path().join("changes.csv"),
        "id,city,year,amount\n2,Lima,2024,9.5\n5,Rome,2023,5.5\n",
    )
    .unwrap();
    let before = ok(&["scan", "ds", "--format", "csv"], dir.path());
    let runs: [&[&str]; 2] = [
        &[
            "write",
            "changes.csv",
            "ds",
            "--mode",
            "upsert",
            "--key",
            "id",
        ],
        &["delete", "ds", "--filter", "id = 2"],
    ];
    for args in runs {
        let out = Command::new(env!("CARGO_BIN_EXE_dala"))
            .args(args)
            .current_dir(dir.path())
            .env("DALA_FAIL_POINT", "write:after-data")
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{args:?}: the writer was not stopped"
        );
        let info = ok(&["info", "ds"], dir.path());
        assert!(info.contains("version:    0\n"), "{args:?}: {info}");
        let mut after: Vec<String> = ok(&["scan", "ds", "--format", "csv"], dir.path())
            .lines()
            .map(String::from)
            .collect();
        let mut expected: Vec<String> = before.lines().map(String::from).collect();
        after.sort();
        expected.sort();
        assert_eq!(after, expected, "{args:?}");
    }
}

#[test]
fn scans_give_the_same_rows_on_every_engine() {
    let dir = tempfile::tempdir().unwrap();
    csv_dataset(dir.path());
    let scan = |engine: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_dala"))
            .args([
                "scan",
                "ds",
                "--filter",
                "year = 2024 AND amount > 2",
                "--format",
                "csv",
            ])
            .current_dir(dir.path())
            .env("DALA_ENGINE", engine)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{engine}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines[1..].sort();
        lines
    };
    let arrow = scan("arrow");
    assert_eq!(arrow.len(), 4, "{arrow:?}");
    assert_eq!(scan("duckdb"), arrow);
    let flag = ok(
        &[
            "scan",
            "ds",
            "--engine",
            "duckdb",
            "--filter",
            "city = 'Oslo'",
            "--columns",
            "id",
            "--format",
            "csv",
        ],
        dir.path(),
    );
    let mut ids: Vec<&str> = flag.lines().skip(1).collect();
    ids.sort();
    assert_eq!(ids, vec!["1", "4"]);
    let bad = dala(&["scan", "ds", "--engine", "spark"], dir.path());
    assert!(!bad.status.success());

    // A dataset's default engine, set as a property, is used unless one is asked for.
    let engine_of = |extra: &[&str]| {
        let mut args = vec!["scan", "ds", "--explain"];
        args.extend_from_slice(extra);
        let out = Command::new(env!("CARGO_BIN_EXE_dala"))
            .args(&args)
            .current_dir(dir.path())
            .env_remove("DALA_ENGINE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("engine: ").map(String::from))
            .unwrap()
    };
    assert_eq!(engine_of(&[]), "arrow");
    let set = ok(&["properties", "ds", "engine.default=duckdb"], dir.path());
    assert!(set.contains("engine.default=duckdb"), "{set}");
    assert_eq!(engine_of(&[]), "duckdb");
    assert_eq!(engine_of(&["--engine", "arrow"]), "arrow");
    assert_eq!(scan(""), arrow);
    let refused = dala(&["properties", "ds", "engine.default=spark"], dir.path());
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("spark"));
    // An engine this build lacks is named in the error.
    if !cfg!(feature = "polars") {
        let out = dala(&["scan", "ds", "--engine", "polars"], dir.path());
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("--features polars"));
    } else {
        assert_eq!(scan("polars"), arrow);
    }
}

#[test]
fn catalog_names_datasets_and_query_runs_sql_over_them() {
    let dir = tempfile::tempdir().unwrap();
    csv_dataset(dir.path());
    let cat = ["--catalog", "lake/catalog.json"];
    let with =
        |args: &[&str]| -> Vec<String> { cat.iter().chain(args).map(|s| s.to_string()).collect() };
    let run = |args: &[&str]| {
        let args = with(args);
        ok(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            dir.path(),
        )
    };
    assert!(run(&["catalog", "init"]).contains("version 0"));
    run(&[
        "catalog",
        "register",
        "shop.sales",
        "ds",
        "--description",
        "test rows",
    ]);
    let list: serde_json::Value =
        serde_json::from_str(&run(&["catalog", "list", "--format", "json"])).unwrap();
    assert_eq!(list[0]["name"], "shop.sales");
    let show = run(&["catalog", "show", "sales"]);
    assert!(
        show.contains("rows:       4") && show.contains("by [year]"),
        "{show}"
    );

    let csv = run(&[
        "query",
        "SELECT city, sum(amount) AS total FROM shop.sales WHERE year = ? GROUP BY city ORDER BY city",
        "--param",
        "2024",
        "--format",
        "csv",
    ]);
    assert_eq!(csv, "city,total\nLima,2.5\nOslo,4.0\na/b=c,3.5\n");

    // Bad input: an unknown table names the closest one; nothing changes.
    let args = with(&["query", "SELECT * FROM shop.sale"]);
    let out = dala(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        dir.path(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("shop.sale") && stderr.contains("shop.sales"),
        "{stderr}"
    );

    // A PyDala2 catalog: its tables join this one.
    std::fs::write(
        dir.path().join("pydala.yml"),
        "tables:\n  legacy:\n    sales:\n      path: ds\n      format: parquet\n",
    )
    .unwrap();
    let imported = run(&["catalog", "import", "pydala.yml"]);
    assert!(
        imported.contains("imported 0 stores and 1 tables"),
        "{imported}"
    );
    let legacy = run(&[
        "query",
        "SELECT count(*) AS n FROM legacy.sales",
        "--format",
        "csv",
    ]);
    assert_eq!(legacy, "n\n4\n");

    // A materialized view: created, read as a table, stale after a write, refreshed.
    let created = run(&[
        "view",
        "create",
        "shop.by_city",
        "SELECT city, count(*) AS n FROM shop.sales GROUP BY city",
    ]);
    assert!(created.contains("3 rows"), "{created}");
    assert!(run(&["view", "status", "shop.by_city"]).contains("(fresh)"));
    std::fs::write(
        dir.path().join("more.csv"),
        "id,city,year,amount\n5,Oslo,2024,1.0\n",
    )
    .unwrap();
    ok(&["write", "more.csv", "ds"], dir.path());
    let status = run(&["view", "status", "shop.by_city"]);
    assert!(
        status.contains("(stale)") && status.contains("1 behind"),
        "{status}"
    );
    assert!(run(&["view", "refresh", "shop.by_city"]).contains("refreshed shop.by_city (full)"));
    let oslo = run(&[
        "query",
        "SELECT n FROM shop.by_city WHERE city = 'Oslo'",
        "--format",
        "csv",
    ]);
    assert_eq!(oslo, "n\n3\n");
    let listed = run(&["catalog", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.contains("shop.by_city") && l.contains("view")),
        "{listed}"
    );
    let shown = run(&["catalog", "show", "shop.by_city"]);
    assert!(shown.starts_with("view:       shop.by_city"), "{shown}");
    assert!(shown.contains("sql:        SELECT city"), "{shown}");
    assert!(
        shown.contains("source:     shop.sales at version 1"),
        "{shown}"
    );
    assert!(run(&["view", "refresh", "shop.by_city", "--full"]).contains("(full)"));
    run(&["view", "drop", "shop.by_city", "--purge"]);

    run(&["catalog", "rename", "shop.sales", "shop.orders"]);
    assert!(run(&["catalog", "list"]).contains("shop.orders"));
    run(&["catalog", "drop", "shop.orders"]);
    assert!(!run(&["catalog", "list"]).contains("shop.orders"));
    assert!(
        dir.path().join("ds/_dala").exists(),
        "drop without --purge keeps the files"
    );
}

#[test]
fn compaction_killed_midway_loses_nothing_and_vacuum_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    csv_dataset(dir.path());
    for _ in 0..3 {
        ok(&["write", "in.csv", "ds"], dir.path());
    }
    let ids = |dir: &Path| {
        let csv = ok(&["scan", "ds", "--columns", "id", "--format", "csv"], dir);
        let mut ids: Vec<String> = csv.lines().skip(1).map(str::to_string).collect();
        ids.sort();
        ids
    };
    let before = ids(dir.path());
    assert_eq!(before.len(), 16);
    let stats = ok(&["stats", "ds"], dir.path());
    assert!(stats.contains("files:        8 in 2 partitions"), "{stats}");

    let plan = ok(&["compact", "ds", "--dry-run"], dir.path());
    assert!(plan.contains("8 of 8 files"), "{plan}");
    assert!(plan.contains("year=2024: 4 files, 12 rows"), "{plan}");

    // Killed after writing the new files, before committing: nothing changes but orphans.
    let out = Command::new(env!("CARGO_BIN_EXE_dala"))
        .args(["compact", "ds"])
        .current_dir(dir.path())
        .env("DALA_FAIL_POINT", "write:after-data")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the compaction was not stopped");
    assert!(ok(&["info", "ds"], dir.path()).contains("files:      8\n"));
    assert_eq!(ids(dir.path()), before);
    let orphans = ok(
        &[
            "vacuum",
            "ds",
            "--retain",
            "0s",
            "--orphan-grace",
            "0s",
            "--dry-run",
        ],
        dir.path(),
    );
    assert!(orphans.contains("orphan"), "{orphans}");
    let vacuumed = ok(
        &["vacuum", "ds", "--retain", "0s", "--orphan-grace", "0s"],
        dir.path(),
    );
    // One orphan per partition group whose files were written before the kill.
    assert!(
        vacuumed.starts_with("deleted 1 files") || vacuumed.starts_with("deleted 2 files"),
        "{vacuumed}"
    );

    let done = ok(&["compact", "ds"], dir.path());
    assert!(done.starts_with("compacted 8 files"), "{done}");
    assert!(ok(&["info", "ds"], dir.path()).contains("files:      2\n"));
    assert_eq!(ids(dir.path()), before);
    let json = ok(&["stats", "ds", "--format", "json"], dir.path());
    let stats: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(stats["files"], 2);
    assert_eq!(stats["rows"], 16);

    // Clustered along a Z-order of two columns: the same rows, a summary per commit.
    let clustered = ok(&["compact", "ds", "--zorder", "id,amount"], dir.path());
    assert!(clustered.contains("committed"), "{clustered}");
    assert_eq!(ids(dir.path()), before);
    let both = dala(
        &["compact", "ds", "--zorder", "id,amount", "--sort-by", "id"],
        dir.path(),
    );
    assert!(!both.status.success());
}

#[test]
fn dry_runs_on_a_folder_without_a_log_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    csv_dataset(dir.path());
    for _ in 0..2 {
        ok(&["write", "in.csv", "ds"], dir.path());
    }
    // The data files alone: a hive tree another tool could have written.
    std::fs::remove_dir_all(dir.path().join("ds").join("_dala")).unwrap();
    let plan = ok(&["compact", "ds", "--dry-run"], dir.path());
    assert!(plan.contains("6 of 6 files"), "{plan}");
    ok(&["optimize", "dtypes", "ds", "--dry-run"], dir.path());
    ok(
        &["repartition", "ds", "--partition-by", "city", "--dry-run"],
        dir.path(),
    );
    let vacuum = ok(&["vacuum", "ds", "--dry-run"], dir.path());
    assert!(vacuum.contains("no dala log"), "{vacuum}");
    assert!(
        !dir.path().join("ds").join("_dala").exists(),
        "a dry run adopted the folder"
    );
    // Without --dry-run the folder is adopted, then compacted.
    let done = ok(&["compact", "ds"], dir.path());
    assert!(done.starts_with("compacted 6 files"), "{done}");
    assert!(dir.path().join("ds").join("_dala").exists());
}

#[test]
fn optimize_narrows_types_and_applies_measured_compression() {
    let dir = tempfile::tempdir().unwrap();
    csv_dataset(dir.path());
    let ids = |dir: &Path| sorted_scan(dir, &["ds", "--columns", "id,amount"]);
    let before = ids(dir.path());

    let plan = ok(&["optimize", "dtypes", "ds", "--dry-run"], dir.path());
    assert!(plan.contains("Int64 -> UInt8"), "{plan}");
    assert!(ok(&["info", "ds"], dir.path()).contains("version:    0\n"));
    let json = ok(
        &["optimize", "dtypes", "ds", "--dry-run", "--format", "json"],
        dir.path(),
    );
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(plan["columns"][0]["column"], "id");
    assert_eq!(plan["columns"][0]["after"], "UInt8");

    let forced = dala(
        &["optimize", "dtypes", "ds", "--type", "id=Int8x"],
        dir.path(),
    );
    assert!(!forced.status.success());

    let done = ok(
        &[
            "optimize",
            "all",
            "ds",
            "--codecs",
            "snappy,zstd:3",
            "--sample-rows",
            "1000",
        ],
        dir.path(),
    );
    assert!(done.contains("UInt8"), "{done}");
    assert!(done.contains("full scan"), "{done}");
    let info = ok(&["info", "ds"], dir.path());
    assert!(info.contains("id: UInt8"), "{info}");
    assert_eq!(ids(dir.path()), before);
    let properties = ok(&["properties", "ds"], dir.path());
    assert!(properties.contains("write.defaults"), "{properties}");
}

#[test]
fn repartition_moves_every_row_under_new_partition_columns() {
    let dir = tempfile::tempdir().unwrap();
    csv_dataset(dir.path());
    let rows = |dir: &Path| sorted_scan(dir, &["ds", "--columns", "id,city,year"]);
    let before = rows(dir.path());
    let plan = ok(
        &["repartition", "ds", "--partition-by", "city", "--dry-run"],
        dir.path(),
    );
    assert!(plan.contains("by [year] -> by [city]"), "{plan}");
    assert!(ok(&["info", "ds"], dir.path()).contains(
        "version:    0
"
    ));
    let done = ok(&["repartition", "ds", "--partition-by", "city"], dir.path());
    assert!(done.contains("4 rows"), "{done}");
    let info = ok(&["info", "ds"], dir.path());
    assert!(info.contains("partitions: 3 by [city (Utf8)]"), "{info}");
    assert_eq!(rows(dir.path()), before);
    assert!(dir.path().join("ds/city=a%2Fb%3Dc").is_dir());
    let explain = ok(
        &["scan", "ds", "--filter", "city = 'Oslo'", "--explain"],
        dir.path(),
    );
    assert!(explain.contains("pruned"), "{explain}");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    csv_dataset(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_dala"))
        .args(["history", "ds"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
