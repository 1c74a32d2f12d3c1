//! Hive paths: `k1=v1/k2=v2/<uuid>.parquet`, their escaping, and the typed partition schema.
//!
//! Values are escaped the way Hive does, so DuckDB, Polars, pyarrow and Spark read the
//! tree as it is; a null value is written as [`NULL_PARTITION`].

use arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::scalar::Scalar;

/// The directory value Hive uses for a null partition value.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The folder at the dataset root that holds dala's log and checkpoints.
pub const LOG_DIR: &str = "_dala";

/// One partition column with its recorded type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionField {
    /// Column name.
    pub name: String,
    /// Column type, recorded when the dataset is created and never re-guessed.
    pub data_type: DataType,
}

impl PartitionField {
    /// The Arrow field for this column (partition columns are nullable).
    pub fn to_field(&self) -> Field {
        Field::new(&self.name, self.data_type.clone(), true)
    }
}

/// Whether a column of `data_type` can partition a dataset.
pub fn is_partition_type(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Date32
            | DataType::Utf8
    )
}

/// The partition type stored for an input column of `data_type` (string layouts become Utf8).
pub fn partition_type_for(column: &str, data_type: &DataType) -> Result<DataType> {
    let stored = match data_type {
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::Dictionary(_, v) if crate::scalar::is_string_type(v) => DataType::Utf8,
        other => other.clone(),
    };
    if is_partition_type(&stored) {
        Ok(stored)
    } else {
        Err(Error::Unsupported(format!(
            "column `{column}` of type {data_type} cannot be a partition column \
             (integers, booleans, dates and strings can)"
        )))
    }
}

/// Characters Hive escapes in partition directory names.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '"' | '#' | '%' | '\'' | '*' | '/' | ':' | '=' | '?' | '\\' | '{' | '[' | ']' | '^'
        )
}

/// Escapes a partition value for a directory name, as Hive's `escapePathName` does.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if needs_escape(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverses [`escape`]; `%XX` sequences become bytes, other text is kept.
pub fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks that `path`, a file path the log or a checkpoint names, stays inside the
/// dataset: relative, with no empty, `.` or `..` segment, no backslash and no control
/// character. Returns why it does not.
pub fn check_relative_path(path: &str) -> std::result::Result<(), &'static str> {
    if path.is_empty() {
        return Err("it is empty");
    }
    if path.starts_with('/') {
        return Err("it is absolute");
    }
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("it has an empty, `.` or `..` segment");
    }
    if path.contains('\\') || path.chars().any(char::is_control) {
        return Err("it has a backslash or a control character");
    }
    Ok(())
}

/// Checks that a partition value cannot escape the dataset root or confuse readers.
pub fn validate_value(column: &str, value: &str) -> Result<()> {
    let reject = |reason: &str| {
        Err(Error::InvalidPartition {
            column: column.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        })
    };
    if value == "." || value == ".." || value.split(['/', '\\']).any(|s| s == "..") {
        return reject("relative path components are not allowed");
    }
    if value.starts_with('/') || value.starts_with('\\') {
        return reject("absolute paths are not allowed");
    }
    if value == NULL_PARTITION {
        return reject("this value is reserved for null");
    }
    Ok(())
}

/// The directory (`k1=v1/k2=v2`) for one combination of partition values.
pub fn partition_dir(fields: &[PartitionField], values: &[Scalar]) -> Result<String> {
    let mut parts = Vec::with_capacity(fields.len());
    for (field, value) in fields.iter().zip(values) {
        let text = match value.to_partition_text() {
            None => NULL_PARTITION.to_string(),
            Some(t) if t.is_empty() => NULL_PARTITION.to_string(),
            Some(t) => {
                validate_value(&field.name, &t)?;
                escape(&t)
            }
        };
        parts.push(format!("{}={}", escape(&field.name), text));
    }
    Ok(parts.join("/"))
}

/// The `(column, raw value)` pairs in a relative file path, in order; segments without `=` are skipped.
pub fn parse_hive_segments(path: &str) -> Vec<(String, Option<String>)> {
    let mut segments: Vec<&str> = path.split('/').collect();
    segments.pop(); // the file name
    segments
        .into_iter()
        .filter_map(|segment| {
            let (key, value) = segment.split_once('=')?;
            let value = if value == NULL_PARTITION {
                None
            } else {
                Some(unescape(value))
            };
            Some((unescape(key), value))
        })
        .collect()
}

/// Reads the typed partition values of a relative file path.
pub fn parse_partition_values(fields: &[PartitionField], path: &str) -> Result<Vec<Scalar>> {
    let segments = parse_hive_segments(path);
    fields
        .iter()
        .map(|field| {
            let (_, raw) = segments
                .iter()
                .find(|(k, _)| k == &field.name)
                .ok_or_else(|| Error::InvalidPartition {
                    column: field.name.clone(),
                    value: path.to_string(),
                    reason: "the path has no such partition directory".into(),
                })?;
            match raw {
                None => Ok(Scalar::Null),
                Some(text) => {
                    validate_value(&field.name, text)?;
                    Scalar::parse(text, &field.data_type).map_err(|_| Error::InvalidPartition {
                        column: field.name.clone(),
                        value: text.clone(),
                        reason: format!("not a valid {}", field.data_type),
                    })
                }
            }
        })
        .collect()
}

/// A new, unique data file name inside `dir`.
pub fn new_file_path(dir: &str) -> String {
    let name = format!("{}.parquet", uuid::Uuid::now_v7());
    if dir.is_empty() {
        name
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether a listed relative path is a data file (not a sidecar, hidden or log file).
pub fn is_data_file(path: &str) -> bool {
    if path.starts_with(LOG_DIR) {
        return false;
    }
    let hidden = path
        .split('/')
        .any(|s| s.starts_with('.') || s.starts_with('_') && !s.contains('='));
    let name = path.rsplit('/').next().unwrap_or(path);
    let parquet = name.ends_with(".parquet")
        || name.ends_with(".parq")
        || name.ends_with(".pq")
        || (name.starts_with("part-") && !name.ends_with(".crc"));
    !hidden && parquet
}

/// The full schema of a dataset: its data columns followed by its partition columns.
pub fn full_schema(data: &Schema, partitioning: &[PartitionField]) -> Schema {
    let mut fields: Vec<Field> = data.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(partitioning.iter().map(PartitionField::to_field));
    Schema::new_with_metadata(fields, data.metadata().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<PartitionField> {
        vec![
            PartitionField {
                name: "year".into(),
                data_type: DataType::Int32,
            },
            PartitionField {
                name: "city".into(),
                data_type: DataType::Utf8,
            },
        ]
    }

    #[test]
    fn log_paths_must_stay_inside_the_dataset() {
        for good in [
            "a.parquet",
            "year=2024/month=3/x.parquet",
            "city=a%2Fb/..x.parquet",
        ] {
            assert_eq!(check_relative_path(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x.parquet",
            "a/../../x.parquet",
            "a/./x.parquet",
            "a//x.parquet",
            "a\\..\\x.parquet",
            "a/x\n.parquet",
        ] {
            assert!(check_relative_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn escapes_like_hive_and_round_trips() {
        for value in [
            "a/b",
            "x=y",
            "50%",
            "#1",
            "a:b",
            "tab\there",
            "naïve",
            "plain",
        ] {
            let dir =
                partition_dir(&fields(), &[Scalar::Int(2024), Scalar::Utf8(value.into())]).unwrap();
            assert_eq!(dir.matches('/').count(), 1, "{dir}");
            let path = format!("{dir}/f.parquet");
            let back = parse_partition_values(&fields(), &path).unwrap();
            assert_eq!(back, vec![Scalar::Int(2024), Scalar::Utf8(value.into())]);
        }
        assert_eq!(escape("a/b=c"), "a%2Fb%3Dc");
    }

    #[test]
    fn null_and_empty_use_the_hive_default_partition() {
        let dir = partition_dir(&fields(), &[Scalar::Null, Scalar::Utf8(String::new())]).unwrap();
        assert_eq!(
            dir,
            "year=__HIVE_DEFAULT_PARTITION__/city=__HIVE_DEFAULT_PARTITION__"
        );
        let back = parse_partition_values(&fields(), &format!("{dir}/x.parquet")).unwrap();
        assert_eq!(back, vec![Scalar::Null, Scalar::Null]);
    }

    #[test]
    fn rejects_traversal() {
        for bad in ["..", "../etc", "/abs", "a/../b"] {
            let err = partition_dir(&fields(), &[Scalar::Int(1), Scalar::Utf8(bad.into())]);
            assert!(matches!(err, Err(Error::InvalidPartition { .. })), "{bad}");
        }
        let err = parse_partition_values(&fields(), "year=1/city=%2E%2E/x.parquet");
        assert!(matches!(err, Err(Error::InvalidPartition { .. })));
        let err = parse_partition_values(&fields(), "year=abc/city=x/x.parquet");
        assert!(matches!(err, Err(Error::InvalidPartition { .. })));
    }

    #[test]
    fn partition_values_must_fit_their_type_exactly() {
        // Out of an Int32's range: refused, naming the column and the value.
        let err = parse_partition_values(&fields(), "year=3000000000/city=x/x.parquet");
        let Err(Error::InvalidPartition { column, value, .. }) = err else {
            panic!("{err:?}");
        };
        assert_eq!((column.as_str(), value.as_str()), ("year", "3000000000"));
        // A time finer than the column's unit: refused, not cut to the second.
        let second = [PartitionField {
            name: "at".into(),
            data_type: DataType::Timestamp(arrow::datatypes::TimeUnit::Second, None),
        }];
        let whole = parse_partition_values(&second, "at=2024-03-01 10%3A00%3A01/x.parquet");
        assert!(whole.is_ok(), "{whole:?}");
        let err = parse_partition_values(&second, "at=2024-03-01 10%3A00%3A01.5/x.parquet");
        assert!(
            matches!(err, Err(Error::InvalidPartition { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn recognises_data_files() {
        assert!(is_data_file("year=2024/a.parquet"));
        assert!(is_data_file("part-00000-abc.snappy.parquet"));
        assert!(!is_data_file("_metadata"));
        assert!(!is_data_file("_common_metadata"));
        assert!(!is_data_file("year=2024/_file_metadata"));
        assert!(!is_data_file("_dala/00000000000000000000.json"));
        assert!(!is_data_file(".hidden/a.parquet"));
        assert!(!is_data_file("year=2024/.a.parquet.crc"));
        assert!(!is_data_file("README.txt"));
    }
}
