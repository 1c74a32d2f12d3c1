//! Rewriting files in place: the rows of some files written again into new files
//! (compacted, sorted, recompressed, deduplicated) and swapped in by one commit.

use std::collections::BTreeMap;

use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::{Schema, SchemaRef};
use futures::StreamExt;

use crate::cluster::{Clustering, cluster_stream};
use crate::commit::{ConflictScope, PendingCommit};
use crate::conform::cast_exact;
use crate::dataset::{Dataset, WriteResult, commit_written};
use crate::derive::{TIMESTAMP_COLUMN_PROPERTY, derive_partitions};
use crate::error::{Error, Result};
use crate::log::{LogStore, Operation};
use crate::merge::Unique;
use crate::options::{WriteMode, WriteOptions};
use crate::snapshot::Snapshot;
use crate::write::{FileWriter, data_schema, delete_files, resolve_partitioning};

/// Files (or runs of small local files) a rewrite reads at once. What they hold ahead of
/// the writer is part of what a compaction counts for each group beside its writer.
const REWRITE_FILES_AT_ONCE: usize = 4;

/// How [`Dataset::rewrite_files`] writes the new files.
#[derive(Debug, Clone)]
pub struct RewriteOptions {
    /// Writer settings: target file size, rows per file, row-group size, compression,
    /// sort order, `unique`, statistics, bloom filters, memory budget. The mode and the
    /// partitioning are the dataset's own; `unique` drops duplicates among the rewritten
    /// files only.
    pub write: WriteOptions,
    /// What the log records.
    pub operation: Operation,
    /// New types for the data columns (the same columns, in the same order): every value
    /// is cast exactly (see [`crate::cast_exact`]), and the first that does not fit
    /// fails the rewrite with nothing changed. A change of types rewrites every file of the
    /// version in one commit, which conflicts with any concurrent change of the data, so
    /// that files of the old and the new types never share a version.
    pub schema: Option<SchemaRef>,
    /// Order the rows across all the new files (sort columns or Z-order), not only within
    /// each: rows beyond half the memory budget (`write.max_buffered_bytes`) are sorted
    /// in runs spilled to local temporary files and merged. Each new file then holds a
    /// narrow range of the key, so filters on it prune files.
    pub cluster: Option<Clustering>,
    /// Dataset properties the same commit sets (for example
    /// [`crate::PROP_WRITE_DEFAULTS`], so that later writes keep the new layout).
    pub properties: BTreeMap<String, String>,
}

impl Default for RewriteOptions {
    fn default() -> Self {
        RewriteOptions {
            write: WriteOptions::default(),
            operation: Operation::Optimize,
            schema: None,
            cluster: None,
            properties: BTreeMap::new(),
        }
    }
}

impl Dataset {
    /// Writes the rows of `paths` (files of this handle's version) into new files with
    /// `options` and commits, in one version, the new files in place of the old. The same
    /// rows come out (less duplicates with `unique`), in the same partitions.
    ///
    /// The commit conflicts only with a concurrent change that removed one of `paths`
    /// (`Error::CommitConflict`, with nothing changed); appends and changes to other
    /// files land beside it. This handle stays at its version, so that several rewrites
    /// of disjoint files can run at once from it; the handle returned is at the version
    /// committed (a copy of this one when `paths` is empty).
    pub async fn rewrite_files(
        &self,
        paths: &[String],
        options: &RewriteOptions,
    ) -> Result<(Dataset, WriteResult)> {
        self.require_log()?;
        for (key, value) in &options.properties {
            crate::snapshot::check_property(key, value)?;
        }
        let snapshot = self.snapshot().clone();
        let files = snapshot.entries(paths)?;
        if files.is_empty() {
            return Ok((self.clone(), WriteResult::default()));
        }
        let schema = match &options.schema {
            Some(schema) if schema != snapshot.data_schema() => {
                check_new_types(snapshot.data_schema(), schema)?;
                if files.len() != snapshot.files().len() {
                    return Err(Error::InvalidArgument(format!(
                        "a change of column types rewrites every file: {} of {} named",
                        files.len(),
                        snapshot.files().len()
                    )));
                }
                Some(schema.clone())
            }
            _ => None,
        };
        let write = WriteOptions {
            mode: WriteMode::Append,
            partition_by: Vec::new(),
            ..options.write.with_dataset_defaults(snapshot.properties())?
        };
        let log = self.log_store();
        let target = schema.as_ref().unwrap_or(snapshot.data_schema()).clone();
        let mut writer = FileWriter::try_new(
            log,
            target.clone(),
            snapshot.partitioning().to_vec(),
            &write,
        )?;
        let mut unique = write.unique.clone().map(Unique::new);
        let (mut read, mut kept) = (0u64, 0u64);
        let mut stream = self
            .scan()
            .with_files(files.clone())
            .with_concurrency(REWRITE_FILES_AT_ONCE)
            .stream()?;
        if let Some(clustering) = &options.cluster {
            // Rows are counted and deduplicated as the sorted stream hands them on.
            stream = cluster_stream(
                stream,
                clustering,
                &snapshot,
                &files,
                write.max_buffered_bytes / 2,
            )?;
        }
        let copied: Result<()> = async {
            while let Some(batch) = stream.next().await {
                let mut batch = batch?;
                read += batch.num_rows() as u64;
                if schema.is_some() {
                    batch = retype(&batch, &target)?;
                }
                if let Some(unique) = unique.as_mut() {
                    batch = unique.filter(&batch)?;
                }
                kept += batch.num_rows() as u64;
                writer.write(batch).await?;
            }
            Ok(())
        }
        .await;
        let entries = match writer.conclude(copied).await {
            Ok(entries) => entries,
            // A file that vanished under the read was removed by a newer version: that is
            // a conflict, not damage.
            Err(e) => return Err(self.removed_since(paths).await?.unwrap_or(e)),
        };
        let pending = PendingCommit {
            operation: options.operation,
            options: serde_json::to_value(&write).unwrap_or_default(),
            schema: target,
            partitioning: snapshot.partitioning().to_vec(),
            properties: (!options.properties.is_empty()).then(|| options.properties.clone()),
            add: entries,
            remove: files,
            scope: if schema.is_some() {
                ConflictScope::All
            } else {
                ConflictScope::Rewrite
            },
            metadata: write.metadata.clone(),
        };
        let named = |pending: &PendingCommit| {
            let paths: Vec<&str> = pending.remove.iter().map(|f| f.path.as_str()).collect();
            paths.join(", ")
        };
        let (committed, result) = swap_in(log, &snapshot, pending, read, kept, &named).await?;
        Ok((self.at(committed), result))
    }

    /// Writes every row of this handle's version again, partitioned by `partition_by`
    /// (columns of the dataset, or `year`, `month`, `week`, `day`, `hour`, `date` derived
    /// from the timestamp column: the dataset's, or `options.write.timestamp_column`), and
    /// commits the new files in place of all the old in one version, which conflicts with
    /// any concurrent change. The old partition columns become data columns; no row or
    /// value is lost (the rows read, written and indexed are checked to agree).
    pub async fn repartition(
        &self,
        partition_by: &[String],
        options: &RewriteOptions,
    ) -> Result<WriteResult> {
        self.require_log()?;
        for (key, value) in &options.properties {
            crate::snapshot::check_property(key, value)?;
        }
        let snapshot = self.snapshot().clone();
        let full = snapshot.schema();
        let mut properties = options.properties.clone();
        let timestamp_column = options.write.timestamp_column.clone().or_else(|| {
            snapshot
                .properties()
                .get(TIMESTAMP_COLUMN_PROPERTY)
                .cloned()
        });
        if let Some(column) = &options.write.timestamp_column {
            properties.insert(TIMESTAMP_COLUMN_PROPERTY.to_string(), column.clone());
        }
        let derive = |batch: &RecordBatch| match &timestamp_column {
            Some(column) => derive_partitions(batch, partition_by, column),
            None => Ok(batch.clone()),
        };
        let input = derive(&RecordBatch::new_empty(full.clone()))?.schema();
        let write = WriteOptions {
            mode: WriteMode::Append,
            partition_by: partition_by.to_vec(),
            ..options.write.with_dataset_defaults(snapshot.properties())?
        };
        let partitioning = resolve_partitioning(&input, &write, None)?;
        if partitioning.as_slice() == snapshot.partitioning() {
            return Err(Error::InvalidArgument(format!(
                "the dataset is already partitioned by {partition_by:?}"
            )));
        }
        let schema = data_schema(&input, &partitioning);
        let log = self.log_store();
        let mut writer = FileWriter::try_new(log, schema.clone(), partitioning.clone(), &write)?;
        let mut read = 0u64;
        let mut stream = self.scan().stream()?;
        let copied: Result<()> = async {
            while let Some(batch) = stream.next().await {
                let batch = derive(&batch?)?;
                read += batch.num_rows() as u64;
                writer.write(batch).await?;
            }
            Ok(())
        }
        .await;
        let entries = writer.conclude(copied).await?;
        let pending = PendingCommit {
            operation: Operation::Repartition,
            options: serde_json::to_value(&write).unwrap_or_default(),
            schema,
            partitioning,
            properties: (!properties.is_empty()).then_some(properties),
            add: entries,
            remove: snapshot.files().cloned().collect(),
            scope: ConflictScope::All,
            metadata: write.metadata.clone(),
        };
        let named = |_: &PendingCommit| self.url().to_string();
        let (_, result) = swap_in(log, &snapshot, pending, read, read, &named).await?;
        Ok(result)
    }

    /// A conflict naming the first of `paths` that a version newer than this handle's
    /// removed, if any did.
    async fn removed_since(&self, paths: &[String]) -> Result<Option<Error>> {
        let log = self.log_store();
        let listing = log.list(Some(self.version() + 1)).await?;
        for version in listing.commits.into_iter().filter(|v| *v > self.version()) {
            let commit = log.read_commit(version).await?;
            if let Some(removed) = commit.remove.iter().find(|r| paths.contains(&r.path)) {
                return Ok(Some(Error::CommitConflict {
                    version,
                    reason: format!(
                        "version {version} ({}) already removed {}",
                        commit.operation, removed.path
                    ),
                }));
            }
        }
        Ok(None)
    }
}

/// Commits `pending`, whose new files hold the rows read from the files it removes (less
/// those `kept` leaves out), on `snapshot`, once the file index and the files agree: the
/// removed files' rows in the index, the rows `read` from them, and the rows written
/// (`kept`). When they do not, the new files are deleted and the error names what
/// `named` says.
async fn swap_in(
    log: &LogStore,
    snapshot: &Snapshot,
    pending: PendingCommit,
    read: u64,
    kept: u64,
    named: &(dyn Fn(&PendingCommit) -> String + Sync),
) -> Result<(Snapshot, WriteResult)> {
    let expected: u64 = pending.remove.iter().map(|f| f.rows).sum();
    let written: u64 = pending.add.iter().map(|f| f.rows).sum();
    if read != expected || written != kept {
        delete_files(log, pending.add.iter().map(|f| f.path.as_str())).await;
        return Err(Error::CorruptFile {
            path: named(&pending),
            message: format!(
                "the file index holds {expected} rows, reading gave {read}, \
                 writing {written} of {kept}"
            ),
        });
    }
    let committed = commit_written(log, Some(snapshot), &pending).await?;
    let result = WriteResult {
        version: Some(committed.version()),
        rows_inserted: 0,
        rows_updated: 0,
        rows_deleted: read - kept,
        rows_unchanged: kept,
        files_added: pending.add.len() as u64,
        files_removed: pending.remove.len() as u64,
        bytes_written: pending.add.iter().map(|f| f.size).sum(),
    };
    Ok((committed, result))
}

/// Checks that `new` has the columns of `old`, in order, with types each value can be
/// checked into.
fn check_new_types(old: &SchemaRef, new: &SchemaRef) -> Result<()> {
    let names = |s: &SchemaRef| {
        s.fields()
            .iter()
            .map(|f| f.name().clone())
            .collect::<Vec<_>>()
    };
    if names(old) != names(new) {
        return Err(Error::InvalidArgument(format!(
            "new types must name the columns {:?}, not {:?}",
            names(old),
            names(new)
        )));
    }
    Ok(())
}

/// `batch` with its data columns cast exactly to their types in `schema` (the partition
/// columns, which the writer reads the partition from, are kept as they are).
fn retype(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        match schema.field_with_name(field.name()) {
            Ok(target) => {
                columns.push(cast_exact(field.name(), column, target.data_type())?);
                fields.push(target.clone());
            }
            Err(_) => {
                columns.push(column.clone());
                fields.push(field.as_ref().clone());
            }
        }
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &options,
    )?)
}
