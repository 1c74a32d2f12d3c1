//! The `dala` command on `s3://` datasets, against an S3-protocol server on 127.0.0.1,
//! with the SSD cache tier shared by processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use dala_tests::S3Server;

mod common;

fn dala(server: &S3Server, cache_dir: Option<&Path>, args: &[&str], dir: &Path) -> Command {
    let mut command = common::command(args, dir);
    command
        .envs(server.environment())
        .env("DALA_CACHE_BLOCK", "16KiB");
    match cache_dir {
        Some(cache) => command
            .env("DALA_CACHE", "remote")
            .env("DALA_CACHE_DIR", cache),
        None => command
            .env("DALA_CACHE", "off")
            .env_remove("DALA_CACHE_DIR"),
    };
    command
}

fn ok(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn sorted(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn processes_share_one_ssd_cache_over_s3() {
    let server = S3Server::start().unwrap();
    server.create_bucket("lake").unwrap();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let mut csv = String::from("id,city,year,amount\n");
    for id in 0..20_000 {
        let city = ["Oslo", "Lima", "Kyōto", "Pune"][id % 4];
        csv.push_str(&format!("{id},{city},{},{}.25\n", 2020 + id % 5, id % 997));
    }
    std::fs::write(work.path().join("in.csv"), csv).unwrap();
    let url = "s3://lake/sales";
    let dir = work.path();
    ok(
        dala(
            &server,
            None,
            &[
                "write",
                "in.csv",
                url,
                "--partition-by",
                "year",
                "--max-rows-per-file",
                "1500",
            ],
            dir,
        )
        .output()
        .unwrap(),
        "write",
    );
    let scan = ["scan", url, "--format", "csv"];
    let expected = sorted(&ok(
        dala(&server, None, &scan, dir).output().unwrap(),
        "scan",
    ));
    assert_eq!(expected.len(), 20_001);

    // Two processes fill one cache directory at once.
    let children: Vec<_> = (0..2)
        .map(|_| {
            dala(&server, Some(&cache), &scan, dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert_eq!(sorted(&ok(output, "cached scan")), expected);
    }
    let stats = |verify: bool| -> serde_json::Value {
        let mut args = vec!["cache", "stats", "--format", "json"];
        if verify {
            args.push("--verify");
        }
        let out = dala(&server, Some(&cache), &args, dir).output().unwrap();
        serde_json::from_str(&ok(out, "cache stats")).unwrap()
    };
    let filled = stats(true);
    assert_eq!(filled["broken"], 0, "{filled}");
    assert!(filled["entries"].as_u64().unwrap() > 10, "{filled}");
    assert!(filled["counts"]["misses"].as_u64().unwrap() > 0, "{filled}");

    // A later process reads the data files from the SSD tier.
    let before = filled["counts"]["disk_hits"].as_u64().unwrap();
    let again = dala(&server, Some(&cache), &scan, dir).output().unwrap();
    assert_eq!(sorted(&ok(again, "warm scan")), expected);
    let warm = stats(false);
    assert!(
        warm["counts"]["disk_hits"].as_u64().unwrap() > before,
        "{warm}"
    );

    // SQL through the catalog over the S3 table, on DuckDB (fed by dala's reader).
    let catalog = dir.join("catalog.json");
    let catalog = catalog.to_str().unwrap();
    let register = [
        "--catalog",
        catalog,
        "catalog",
        "register",
        "sales.orders",
        url,
    ];
    ok(
        dala(&server, Some(&cache), &register, dir)
            .output()
            .unwrap(),
        "register",
    );
    let query = [
        "--catalog",
        catalog,
        "query",
        "SELECT city, count(*) AS n FROM sales.orders WHERE year = 2021 GROUP BY city ORDER BY city",
        "--format",
        "csv",
    ];
    let answer = ok(
        dala(&server, Some(&cache), &query, dir).output().unwrap(),
        "query",
    );
    assert_eq!(
        answer.lines().collect::<Vec<_>>(),
        [
            "city,n",
            "Kyōto,1000",
            "Lima,1000",
            "Oslo,1000",
            "Pune,1000"
        ]
    );

    let cleared = dala(&server, Some(&cache), &["cache", "clear"], dir)
        .output()
        .unwrap();
    assert!(ok(cleared, "cache clear").starts_with("removed "));
    let empty = stats(true);
    assert_eq!(
        (empty["entries"].as_u64(), empty["whole"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn a_named_store_carries_the_endpoint_and_the_cache_settings() {
    let server = S3Server::start().unwrap();
    server.create_bucket("lake").unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let mut csv = String::from("id,city,year\n");
    for id in 0..3_000 {
        csv.push_str(&format!(
            "{id},{},{}\n",
            ["Oslo", "Lima"][id % 2],
            2020 + id % 3
        ));
    }
    std::fs::write(dir.join("in.csv"), csv).unwrap();
    let write = [
        "write",
        "in.csv",
        "s3://lake/sales",
        "--partition-by",
        "year",
    ];
    ok(dala(&server, None, &write, dir).output().unwrap(), "write");

    // From here the environment holds only the credentials: the store says where the
    // server is and how to cache it.
    let run = |args: &[&str]| {
        let mut args: Vec<&str> = args.to_vec();
        args.splice(0..0, ["--catalog", "cat/catalog.json"]);
        let mut command = common::command(&args, dir);
        command
            .env_remove("AWS_ENDPOINT")
            .env_remove("AWS_ALLOW_HTTP")
            .env_remove("AWS_REGION")
            .envs(
                server
                    .environment()
                    .into_iter()
                    .filter(|(key, _)| key.contains("KEY")),
            );
        command.output().unwrap()
    };
    let endpoint = server.endpoint();
    let added = run(&[
        "catalog",
        "store",
        "add",
        "lake",
        "s3://lake",
        "--endpoint",
        &endpoint,
        "--region",
        "us-east-1",
        "--allow-http",
        "--cache-memory",
        "8MiB",
        "--cache-dir",
        "cache",
    ]);
    assert!(ok(added, "store add").contains("added store lake"));
    let listed = ok(
        run(&["catalog", "store", "list", "--format", "json"]),
        "store list",
    );
    let stores: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(stores[0]["name"], "lake");
    assert_eq!(stores[0]["endpoint"], endpoint.as_str());
    assert_eq!(stores[0]["cache"]["dir"], "cache");
    let file = std::fs::read_to_string(dir.join("cat/catalog.json")).unwrap();
    assert!(!file.contains("testing"), "credentials written: {file}");

    let register = run(&[
        "catalog",
        "register",
        "sales.orders",
        "sales",
        "--store",
        "lake",
    ]);
    ok(register, "register");
    let query = "SELECT city, count(*) AS n FROM sales.orders WHERE year = 2021 GROUP BY city ORDER BY city";
    let answer = ok(run(&["query", query, "--format", "csv"]), "query");
    assert_eq!(answer, "city,n\nLima,500\nOslo,500\n");
    let cached = std::fs::read_dir(dir.join("cat/cache")).unwrap().count();
    assert!(
        cached > 0,
        "the store's SSD tier beside the catalog is used"
    );

    // A store that a table lives in stays; without the table it can go.
    let refused = run(&["catalog", "store", "drop", "lake"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("sales.orders"), "{stderr}");
    ok(run(&["catalog", "drop", "sales.orders"]), "drop");
    ok(run(&["catalog", "store", "drop", "lake"]), "store drop");
    let listed = ok(run(&["catalog", "store", "list"]), "store list");
    assert!(!listed.contains("s3://lake"), "{listed}");
}
