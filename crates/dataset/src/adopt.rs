//! Adopting a hive tree that dala did not write (pyarrow, DuckDB, Polars, Spark,
//! PyDala2): one listing, a parallel read of the footers, and version 0 or a sync commit.

use std::collections::BTreeSet;

use arrow::datatypes::{DataType, SchemaRef};
use futures::{StreamExt, TryStreamExt, stream};
use object_store::ObjectMeta;

use crate::error::{Error, Result};
use crate::layout::{PartitionField, is_data_file, parse_hive_segments, parse_partition_values};
use crate::log::LogStore;
use crate::scalar::Scalar;
use crate::scan::load_metadata_at;
use crate::snapshot::FileEntry;
use crate::stats::file_stats;

/// Footers read at once while adopting.
const FOOTER_CONCURRENCY: usize = 32;

/// The data files found below a dataset root, relative paths with their sizes.
pub(crate) async fn list_data_files(log: &LogStore) -> Result<Vec<(String, u64)>> {
    let root = log.root().clone();
    let objects: Vec<ObjectMeta> = log
        .store()
        .list(Some(&root))
        .try_collect()
        .await
        .map_err(|e| Error::store(&root, e))?;
    let mut files: Vec<(String, u64)> = objects
        .into_iter()
        .filter_map(|o| Some((log.relative(&o.location)?, o.size)))
        .filter(|(path, _)| is_data_file(path))
        .collect();
    files.sort();
    Ok(files)
}

/// The data files of a foreign hive tree that may be adopted: none if `_dala/` holds
/// anything, because then the files belong to a dala writer (perhaps one creating the
/// dataset right now, which announces itself in `_dala/` before writing data files; so the
/// data files are listed first, the log directory second).
pub(crate) async fn adoptable_files(log: &LogStore) -> Result<Vec<(String, u64)>> {
    let files = list_data_files(log).await?;
    if files.is_empty() || log.has_entries().await? {
        return Ok(Vec::new());
    }
    Ok(files)
}

/// Infers the partition columns and their types from file paths, as pyarrow does:
/// integers that fit become Int32 (Int64 if larger), anything else a string.
pub(crate) fn infer_partitioning(paths: &[(String, u64)]) -> Result<Vec<PartitionField>> {
    let Some((first, _)) = paths.first() else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = parse_hive_segments(first)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut fields = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let mut values: BTreeSet<String> = BTreeSet::new();
        for (path, _) in paths {
            let segments = parse_hive_segments(path);
            let same = segments.len() == names.len()
                && segments.iter().zip(&names).all(|((k, _), n)| k == n);
            if !same {
                return Err(Error::InvalidPartition {
                    column: name.clone(),
                    value: path.clone(),
                    reason: format!("partition directories differ from {first}"),
                });
            }
            if let Some(v) = &segments[i].1 {
                values.insert(v.clone());
            }
        }
        let data_type = if !values.is_empty() && values.iter().all(|v| v.parse::<i32>().is_ok()) {
            DataType::Int32
        } else if !values.is_empty() && values.iter().all(|v| v.parse::<i64>().is_ok()) {
            DataType::Int64
        } else {
            DataType::Utf8
        };
        fields.push(PartitionField {
            name: name.clone(),
            data_type,
        });
    }
    Ok(fields)
}

/// Reads the footers of `paths` and builds their index entries. The first file sets the
/// schema when `schema` is None; every other file must match it.
pub(crate) async fn index_files(
    log: &LogStore,
    paths: &[(String, u64)],
    partitioning: &[PartitionField],
    schema: Option<SchemaRef>,
) -> Result<(SchemaRef, Vec<FileEntry>)> {
    let reader = log.clone();
    // Each footer becomes its index entry as it arrives, so that only the footers being
    // read are held at once (a footer in memory is several times its entry).
    let mut footers = stream::iter(paths.to_vec())
        .map(move |(path, size)| {
            let log = reader.clone();
            async move {
                let location = log.child(&path)?;
                let metadata = load_metadata_at(&log, &location, size, false).await?;
                Ok::<_, Error>((path, size, metadata))
            }
        })
        .buffered(FOOTER_CONCURRENCY);
    let partition_names: Vec<&str> = partitioning.iter().map(|f| f.name.as_str()).collect();
    let mut schema = schema;
    let mut entries = Vec::with_capacity(paths.len());
    while let Some(footer) = footers.next().await {
        let (path, size, metadata) = footer?;
        // Some writers keep the partition columns in the files too; dala reads them from paths.
        let file_schema = crate::write::data_schema(
            metadata.schema(),
            &partitioning
                .iter()
                .filter(|p| partition_names.contains(&p.name.as_str()))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let schema = schema.get_or_insert_with(|| file_schema.clone());
        crate::commit::check_schema(schema, &file_schema).map_err(|e| match e {
            Error::SchemaMismatch {
                column,
                expected,
                found,
            } => Error::SchemaMismatch {
                column,
                expected,
                found: format!("{found} in {path}"),
            },
            other => other,
        })?;
        let partition_values: Vec<Scalar> = parse_partition_values(partitioning, &path)?;
        entries.push(FileEntry {
            stats: file_stats(metadata.metadata(), metadata.schema(), schema),
            rows: metadata.metadata().file_metadata().num_rows().max(0) as u64,
            path,
            partition_values,
            size,
            added_version: 0,
        });
    }
    let schema = schema.ok_or_else(|| Error::NotFound {
        what: "data files to adopt".into(),
    })?;
    Ok((schema, entries))
}
