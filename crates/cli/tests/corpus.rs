//! A corpus of broken and hostile input. Each entry breaks an input file or the dataset
//! itself, runs a `dala` command that must refuse it, and checks three things: the
//! command fails with one line that names what is wrong (the file, entry or column), it
//! does not panic, and not one byte under the folder changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;

mod common;

use common::{copy_tree, dala, ok};

/// A valid Parquet file of `columns` (each an Int64 column named so) with `rows` rows.
fn parquet_bytes(columns: &[&str], rows: i64) -> Vec<u8> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(*c, DataType::Int64, false))
        .collect();
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|_| Arc::new(Int64Array::from_iter_values(0..rows)) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes
}

/// A valid Parquet file with the dataset's columns but `amount` as text.
fn contradicting_parquet() -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("city", DataType::Utf8, true),
        Field::new("amount", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(StringArray::from(vec!["Oslo"])),
            Arc::new(StringArray::from(vec!["lots"])),
        ],
    )
    .unwrap();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes
}

/// Every file under `dir` with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                files.insert(entry.path(), std::fs::read(entry.path()).unwrap());
            }
        }
    }
    files
}

/// The dataset every entry starts from: `ds`, partitioned by year, four commits (the
/// last two with checkpoints), and `changes.csv`, an upsert that reads every partition.
fn template(dir: &Path) {
    let mut csv = String::from("id,city,year,amount\n");
    for id in 0..40 {
        csv += &format!("{id},city-{},{},{id}.5\n", id % 3, 2020 + id % 2);
    }
    std::fs::write(dir.join("in.csv"), &csv).unwrap();
    ok(&["write", "in.csv", "ds", "--partition-by", "year"], dir);
    ok(&["write", "in.csv", "ds", "--mode", "overwrite"], dir);
    ok(&["properties", "ds", "checkpoint.interval=1"], dir);
    std::fs::write(
        dir.join("changes.csv"),
        "id,city,year,amount\n1,Lima,2021,9.5\n2,Lima,2020,8.5\n",
    )
    .unwrap();
    ok(
        &[
            "write",
            "changes.csv",
            "ds",
            "--mode",
            "upsert",
            "--key",
            "id",
        ],
        dir,
    );
}

/// The first data file of `ds` (relative to `ds`).
fn first_data_file(dir: &Path) -> String {
    let mut files: Vec<String> = tree(&dir.join("ds"))
        .into_keys()
        .map(|p| {
            p.strip_prefix(dir.join("ds"))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|p| p.ends_with(".parquet") && !p.starts_with("_dala"))
        .collect();
    files.sort();
    files.remove(0)
}

fn log_entry(dir: &Path, version: u64) -> PathBuf {
    dir.join(format!("ds/_dala/{version:020}.json"))
}

/// Removes the checkpoints, so that the log's entries are read from the first.
fn drop_checkpoints(dir: &Path) {
    for entry in std::fs::read_dir(dir.join("ds/_dala")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".checkpoint") || name == "_last_checkpoint" {
            std::fs::remove_file(path).unwrap();
        }
    }
}

/// One entry of the corpus: `prepare` breaks something and returns what the error must
/// name; `args` is the command that must refuse it.
struct Entry {
    name: &'static str,
    prepare: fn(&Path) -> Vec<String>,
    args: &'static [&'static str],
}

const UPSERT: &[&str] = &[
    "write",
    "changes.csv",
    "ds",
    "--mode",
    "upsert",
    "--key",
    "id",
];

fn write_input(dir: &Path, name: &str, bytes: &[u8]) -> Vec<String> {
    std::fs::write(dir.join(name), bytes).unwrap();
    vec![name.to_string()]
}

/// An input whose partition column `place` holds `value` (among harmless ones).
fn partition_value(dir: &Path, value: &str) -> Vec<String> {
    let csv = format!("id,place\n1,Oslo\n2,\"{value}\"\n3,Lima\n");
    write_input(dir, "input.csv", csv.as_bytes());
    vec![format!("{value:?}"), "place".into()]
}

/// Breaks the first data file of `ds` with `damage`.
fn damage_data_file(dir: &Path, damage: fn(Vec<u8>) -> Vec<u8>) -> Vec<String> {
    let file = first_data_file(dir);
    let path = dir.join("ds").join(&file);
    std::fs::write(&path, damage(std::fs::read(&path).unwrap())).unwrap();
    vec![file]
}

fn truncate(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.truncate(bytes.len() / 2);
    bytes
}

fn bad_magic(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(b"PAR2");
    bytes
}

/// The footer length field says the footer is longer than the file.
fn lying_footer(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = bytes.len();
    let claimed = u32::try_from(n * 2).unwrap().to_le_bytes();
    bytes[n - 8..n - 4].copy_from_slice(&claimed);
    bytes
}

/// The footer length is right but the footer is garbage.
fn garbage_footer(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = bytes.len();
    let length = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    for byte in &mut bytes[n - 8 - length..n - 8] {
        *byte = 0xFF;
    }
    bytes
}

const CORPUS: &[Entry] = &[
    // Input files.
    Entry {
        name: "a truncated Parquet input",
        prepare: |dir| write_input(dir, "input.parquet", &truncate(parquet_bytes(&["id"], 100))),
        args: &["write", "input.parquet", "ds"],
    },
    Entry {
        name: "a Parquet input with a bad magic number",
        prepare: |dir| {
            write_input(
                dir,
                "input.parquet",
                &bad_magic(parquet_bytes(&["id"], 100)),
            )
        },
        args: &["write", "input.parquet", "ds"],
    },
    Entry {
        name: "a Parquet input whose footer lies about its length",
        prepare: |dir| {
            write_input(
                dir,
                "input.parquet",
                &lying_footer(parquet_bytes(&["id"], 100)),
            )
        },
        args: &["write", "input.parquet", "ds"],
    },
    Entry {
        name: "a Parquet input with a garbage footer",
        prepare: |dir| {
            write_input(
                dir,
                "input.parquet",
                &garbage_footer(parquet_bytes(&["id"], 100)),
            )
        },
        args: &["write", "input.parquet", "ds"],
    },
    Entry {
        name: "an empty Parquet input",
        prepare: |dir| write_input(dir, "input.parquet", b""),
        args: &["write", "input.parquet", "ds"],
    },
    Entry {
        name: "an empty CSV input",
        prepare: |dir| write_input(dir, "input.csv", b""),
        args: &["write", "input.csv", "ds"],
    },
    Entry {
        name: "a CSV input with ragged rows",
        prepare: |dir| {
            write_input(
                dir,
                "input.csv",
                b"id,city,year,amount\n1,Oslo,2020,1.5\n2,Lima,2021\n",
            )
        },
        args: &["write", "input.csv", "ds"],
    },
    Entry {
        name: "a CSV input with a wrong type",
        prepare: |dir| {
            let mut named =
                write_input(dir, "input.csv", b"id,city,year,amount\n1,Oslo,2020,lots\n");
            named.push("amount".into());
            named
        },
        args: &["write", "input.csv", "ds"],
    },
    Entry {
        name: "a CSV input of 10 000 columns",
        prepare: |dir| {
            // The dataset's four columns and 9 996 more.
            let header: Vec<String> = (4..10_000).map(|i| format!("c{i}")).collect();
            let row: Vec<String> = (4..10_000).map(|i| i.to_string()).collect();
            let text = format!(
                "id,city,year,amount,{}\n1,Oslo,2020,1.5,{}\n",
                header.join(","),
                row.join(",")
            );
            let mut named = write_input(dir, "input.csv", text.as_bytes());
            named.push("c4".into());
            named
        },
        args: &["write", "input.csv", "ds"],
    },
    Entry {
        name: "a Parquet input of 10 000 columns",
        prepare: |dir| {
            let mut names = vec!["id".to_string(), "year".to_string()];
            names.extend((2..10_000).map(|i| format!("c{i}")));
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut named = write_input(dir, "input.parquet", &parquet_bytes(&names, 3));
            named.push("c2".into());
            named
        },
        args: &["write", "input.parquet", "ds"],
    },
    Entry {
        name: "a partition value `..`",
        prepare: |dir| partition_value(dir, ".."),
        args: &["write", "input.csv", "new", "--partition-by", "place"],
    },
    Entry {
        name: "a partition value with `..` segments",
        prepare: |dir| partition_value(dir, "a/../../escape"),
        args: &["write", "input.csv", "new", "--partition-by", "place"],
    },
    Entry {
        name: "a partition value that is an absolute path",
        prepare: |dir| partition_value(dir, "/etc/passwd"),
        args: &["write", "input.csv", "new", "--partition-by", "place"],
    },
    Entry {
        name: "a partition value that is the null folder's name",
        prepare: |dir| partition_value(dir, "__HIVE_DEFAULT_PARTITION__"),
        args: &["write", "input.csv", "new", "--partition-by", "place"],
    },
    // The dataset's data files.
    Entry {
        name: "a truncated data file",
        prepare: |dir| damage_data_file(dir, truncate),
        args: UPSERT,
    },
    Entry {
        name: "a data file with a bad magic number",
        prepare: |dir| damage_data_file(dir, bad_magic),
        args: UPSERT,
    },
    Entry {
        name: "a data file whose footer lies about its length",
        prepare: |dir| damage_data_file(dir, lying_footer),
        args: UPSERT,
    },
    Entry {
        name: "a data file with a garbage footer",
        prepare: |dir| damage_data_file(dir, garbage_footer),
        args: UPSERT,
    },
    Entry {
        name: "an empty data file",
        prepare: |dir| damage_data_file(dir, |_| Vec::new()),
        args: UPSERT,
    },
    Entry {
        name: "a data file whose schema contradicts the log",
        prepare: |dir| {
            let file = first_data_file(dir);
            std::fs::write(dir.join("ds").join(&file), contradicting_parquet()).unwrap();
            vec![file]
        },
        args: UPSERT,
    },
    // The log.
    Entry {
        name: "a log entry with bad JSON",
        prepare: |dir| {
            drop_checkpoints(dir);
            let entry = log_entry(dir, 1);
            let text = std::fs::read_to_string(&entry).unwrap();
            std::fs::write(&entry, &text[..text.len() / 2]).unwrap();
            vec![format!("{:020}.json", 1)]
        },
        args: &["write", "changes.csv", "ds"],
    },
    Entry {
        name: "a log entry with an unknown field",
        prepare: |dir| {
            drop_checkpoints(dir);
            let entry = log_entry(dir, 1);
            let text = std::fs::read_to_string(&entry).unwrap();
            std::fs::write(&entry, text.replacen('{', "{\"surprise\":1,", 1)).unwrap();
            vec![format!("{:020}.json", 1), "surprise".into()]
        },
        args: &["write", "changes.csv", "ds"],
    },
    Entry {
        name: "a gap in the log's versions",
        prepare: |dir| {
            drop_checkpoints(dir);
            std::fs::remove_file(log_entry(dir, 1)).unwrap();
            vec![format!("{:020}.json", 1)]
        },
        args: &["write", "changes.csv", "ds"],
    },
    Entry {
        name: "a checkpoint that disagrees with the log",
        prepare: |dir| {
            // The checkpoint of version 2 put where version 3's belongs.
            let log = dir.join("ds/_dala");
            std::fs::copy(
                log.join(format!("{:020}.checkpoint", 2)),
                log.join(format!("{:020}.checkpoint", 3)),
            )
            .unwrap();
            vec![format!("{:020}.checkpoint", 3)]
        },
        args: &["write", "changes.csv", "ds"],
    },
    Entry {
        name: "a log entry naming a file outside the dataset",
        prepare: |dir| {
            let entry = log_entry(dir, 3);
            let text = std::fs::read_to_string(&entry).unwrap();
            let file = first_data_file(dir);
            let hostile = text.replace(&file, "../victim.parquet");
            assert_ne!(text, hostile);
            std::fs::write(&entry, hostile).unwrap();
            // Also lose the checkpoints, so that the entry is read.
            drop_checkpoints(dir);
            std::fs::write(dir.join("victim.parquet"), parquet_bytes(&["id"], 1)).unwrap();
            vec!["../victim.parquet".into()]
        },
        args: &["vacuum", "ds", "--retain", "0s", "--orphan-grace", "0s"],
    },
];

#[test]
fn every_broken_input_is_refused_by_name_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let template_dir = root.path().join("template");
    std::fs::create_dir_all(&template_dir).unwrap();
    template(&template_dir);
    for entry in CORPUS {
        let work = root.path().join("work");
        if work.exists() {
            std::fs::remove_dir_all(&work).unwrap();
        }
        copy_tree(&template_dir, &work);
        let named = (entry.prepare)(&work);
        let before = tree(&work);
        let out = dala(entry.args, &work);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: accepted", entry.name);
        assert!(!stderr.contains("panicked"), "{}: {stderr}", entry.name);
        assert!(
            stderr.starts_with("error:") && stderr.trim_end().lines().count() == 1,
            "{}: {stderr}",
            entry.name
        );
        for name in &named {
            assert!(
                stderr.contains(name.as_str()),
                "{}: the error does not name {name}: {stderr}",
                entry.name
            );
        }
        let after = tree(&work);
        let changed: Vec<&PathBuf> = before
            .keys()
            .chain(after.keys())
            .filter(|p| before.get(*p) != after.get(*p))
            .collect();
        assert!(changed.is_empty(), "{}: changed {changed:?}", entry.name);
        println!("{}: {}", entry.name, stderr.trim_end());
    }
    println!("{} broken inputs refused", CORPUS.len());
}

/// Partition values with `/`, `=`, `%`, `\\` and control characters are escaped into one
/// folder level below the dataset's root, and read back as they were written.
#[test]
fn hostile_partition_values_stay_inside_the_dataset() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("lake");
    std::fs::create_dir_all(&dir).unwrap();
    // (`..`, `.`, absolute paths and the null folder's name are refused: see the corpus.)
    let values = [
        "a/b=c",
        "a/./b",
        "tab\there",
        "bell\u{7}",
        "new\nline",
        "C:\\windows",
        "%2F..%2F",
        "__HIVE_DEFAULT_PARTITION__x",
    ];
    let mut csv = String::from("id,place\n");
    for (id, value) in values.iter().enumerate() {
        let quoted = value.replace('"', "\"\"");
        csv += &format!("{id},\"{quoted}\"\n");
    }
    std::fs::write(dir.join("in.csv"), csv).unwrap();
    ok(&["write", "in.csv", "ds", "--partition-by", "place"], &dir);
    // Nothing outside the dataset's folder besides the input.
    let outside: Vec<PathBuf> = tree(root.path())
        .into_keys()
        .filter(|p| !p.starts_with(dir.join("ds")) && *p != dir.join("in.csv"))
        .collect();
    assert!(
        outside.is_empty(),
        "written outside the dataset: {outside:?}"
    );
    // Each value is one folder directly under the root.
    let folders: Vec<String> = std::fs::read_dir(dir.join("ds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "_dala")
        .collect();
    assert_eq!(folders.len(), values.len(), "{folders:?}");
    let out = ok(&["scan", "ds", "--format", "json"], &dir);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut read: Vec<(i64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["place"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    read.sort();
    let expected: Vec<(i64, String)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64, v.to_string()))
        .collect();
    assert_eq!(read, expected);
}
