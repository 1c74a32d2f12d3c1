//! Writing data files: splits input batches by partition, writes Parquet files at hive
//! paths with bounded memory, and returns their index entries with statistics.
//!
//! Memory stays bounded by [`WriteOptions::max_open_files`] and
//! [`WriteOptions::max_buffered_bytes`]: when the buffered bytes of all open files exceed
//! the budget, the largest buffer is flushed as a row group.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::{SortColumn as ArrowSortColumn, SortOptions, concat_batches};
use arrow::compute::{lexsort_to_indices, take_record_batch};
use arrow::datatypes::{Schema, SchemaRef};
use bytes::Bytes;
use object_store::ObjectStore;
use parquet::arrow::ArrowWriter;
use parquet::arrow::async_writer::{AsyncFileWriter, ParquetObjectWriter};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::layout::{PartitionField, new_file_path, partition_dir, partition_type_for};
use crate::log::LogStore;
use crate::options::{StatisticsLevel, WriteOptions};
use crate::scalar::Scalar;
use crate::snapshot::FileEntry;
use crate::stats::file_stats;

/// Resolves the partition columns of a write against the input schema and the dataset's.
pub(crate) fn resolve_partitioning(
    input: &Schema,
    options: &WriteOptions,
    existing: Option<&[PartitionField]>,
) -> Result<Vec<PartitionField>> {
    let names: Vec<String> = match (existing, options.partition_by.is_empty()) {
        (Some(fields), true) => fields.iter().map(|f| f.name.clone()).collect(),
        _ => options.partition_by.clone(),
    };
    let mut fields = Vec::with_capacity(names.len());
    for name in &names {
        let field = input
            .field_with_name(name)
            .map_err(|_| Error::UnknownColumn {
                column: name.clone(),
                context: Some("named in partition_by but not in the input".into()),
            })?;
        fields.push(PartitionField {
            name: name.clone(),
            data_type: partition_type_for(name, field.data_type())?,
        });
    }
    if let Some(existing) = existing {
        let same = existing.len() == fields.len()
            && existing.iter().zip(&fields).all(|(a, b)| a.name == b.name);
        if !same {
            return Err(Error::PartitioningMismatch {
                expected: existing.iter().map(|f| f.name.clone()).collect(),
                found: fields.iter().map(|f| f.name.clone()).collect(),
            });
        }
        return Ok(existing.to_vec());
    }
    Ok(fields)
}

/// The data schema of an input: its columns less the partition columns.
pub(crate) fn data_schema(input: &Schema, partitioning: &[PartitionField]) -> SchemaRef {
    let fields: Vec<_> = input
        .fields()
        .iter()
        .filter(|f| !partitioning.iter().any(|p| &p.name == f.name()))
        .cloned()
        .collect();
    Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()))
}

/// One data file being written: a synchronous Parquet encoder whose output is moved to
/// the object store between encoding rounds.
struct OpenFile {
    path: String,
    partition_values: Vec<Scalar>,
    writer: ArrowWriter<Vec<u8>>,
    sink: ParquetObjectWriter,
    uploaded: u64,
    rows: u64,
    /// Batches waiting to be sorted into a row group (only with `sort_by`).
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    pending_bytes: usize,
    /// Set once the footer is written: the file only awaits its upload.
    finished: Option<ParquetMetaData>,
}

impl OpenFile {
    /// Memory held for this file: encoder state, encoded bytes not yet uploaded, and
    /// batches waiting to be sorted.
    fn buffered_bytes(&self) -> usize {
        self.writer.memory_size() + self.writer.inner().len() + self.pending_bytes
    }

    /// Rows that still fit in this file.
    fn room(&self, options: &WriteOptions) -> usize {
        match options.max_rows_per_file {
            Some(max) => max.saturating_sub(self.rows as usize).max(1),
            None => usize::MAX,
        }
    }

    /// Whether the file has reached its row or byte target.
    fn is_full(&self, options: &WriteOptions) -> bool {
        let by_rows = options
            .max_rows_per_file
            .is_some_and(|max| self.rows as usize >= max);
        let bytes = self.writer.bytes_written() + self.writer.in_progress_size();
        by_rows || bytes as u64 >= options.target_file_size
    }

    /// Encodes as many of `rows` as fit (CPU only, no I/O); returns the rows left over
    /// when the file filled up and was finished.
    fn encode(&mut self, rows: RecordBatch, options: &WriteOptions) -> Result<Option<RecordBatch>> {
        let take = rows.num_rows().min(self.room(options));
        let chunk = rows.slice(0, take);
        self.rows += take as u64;
        if options.sort_by.is_empty() {
            self.writer.write(&chunk)?;
        } else {
            self.pending_bytes += chunk.get_array_memory_size();
            self.pending_rows += take;
            self.pending.push(chunk);
            if self.pending_rows >= options.row_group_size {
                self.write_sorted(options)?;
            }
        }
        if self.is_full(options) {
            self.finish(options)?;
        }
        let left = rows.num_rows() - take;
        Ok((left > 0).then(|| rows.slice(take, left)))
    }

    /// Writes the footer (after any rows waiting to be sorted).
    fn finish(&mut self, options: &WriteOptions) -> Result<()> {
        if self.finished.is_none() {
            self.write_sorted(options)?;
            let metadata = self
                .writer
                .finish()
                .map_err(|e| Error::parquet(&self.path, e))?;
            self.finished = Some(metadata);
        }
        Ok(())
    }

    /// Ends the row group in progress, so that its memory can be released.
    fn flush(&mut self, options: &WriteOptions) -> Result<()> {
        self.write_sorted(options)?;
        Ok(self.writer.flush()?)
    }

    /// Sorts the pending batches by `sort_by` and writes them as one row group.
    fn write_sorted(&mut self, options: &WriteOptions) -> Result<()> {
        let Some(first) = self.pending.first() else {
            return Ok(());
        };
        let batch = concat_batches(&first.schema(), &self.pending)?;
        self.pending.clear();
        self.pending_rows = 0;
        self.pending_bytes = 0;
        let columns = options
            .sort_by
            .iter()
            .map(|s| {
                let values = batch
                    .column_by_name(&s.column)
                    .ok_or_else(|| Error::UnknownColumn {
                        column: s.column.clone(),
                        context: Some("named in sort_by".into()),
                    })?
                    .clone();
                Ok(ArrowSortColumn {
                    values,
                    options: Some(SortOptions {
                        descending: s.descending,
                        nulls_first: !s.descending,
                    }),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let indices = lexsort_to_indices(&columns, None)?;
        self.writer.write(&take_record_batch(&batch, &indices)?)?;
        Ok(self.writer.flush()?)
    }

    /// Moves the encoded bytes to the object store.
    async fn upload(&mut self) -> Result<()> {
        let bytes = std::mem::take(self.writer.inner_mut());
        if !bytes.is_empty() {
            self.uploaded += bytes.len() as u64;
            self.sink
                .write(Bytes::from(bytes))
                .await
                .map_err(|e| Error::parquet(&self.path, e))?;
        }
        Ok(())
    }
}

/// Rows waiting to be encoded, by partition directory, with the partition values.
type Work = HashMap<String, (Vec<Scalar>, RecordBatch)>;

/// One partition's result of an encoding round: its file, and the rows that did not fit.
type Encoded = (String, Vec<Scalar>, OpenFile, Result<Option<RecordBatch>>);

/// An encoding round running on the rayon pool.
struct Round {
    receiver: tokio::sync::oneshot::Receiver<Vec<Encoded>>,
}

/// Writes input batches into data files under a dataset root.
///
/// Each batch is split by partition; the partitions' files are encoded in parallel (rayon),
/// then their bytes are uploaded.
pub(crate) struct FileWriter<'a> {
    log: &'a LogStore,
    schema: SchemaRef,
    partitioning: Vec<PartitionField>,
    options: Arc<WriteOptions>,
    properties: WriterProperties,
    open: HashMap<String, OpenFile>,
    done: Vec<FileEntry>,
    /// Files whose upload was begun, to delete if the write fails.
    started: Vec<String>,
}

impl<'a> FileWriter<'a> {
    /// A writer of files with data schema `schema` (partition columns excluded).
    pub fn try_new(
        log: &'a LogStore,
        schema: SchemaRef,
        partitioning: Vec<PartitionField>,
        options: &WriteOptions,
    ) -> Result<Self> {
        options.validate()?;
        for sort in &options.sort_by {
            if schema.field_with_name(&sort.column).is_err() {
                return Err(Error::UnknownColumn {
                    column: sort.column.clone(),
                    context: Some("named in sort_by".into()),
                });
            }
        }
        let mut builder = WriterProperties::builder()
            .set_compression(options.compression.to_parquet()?)
            .set_max_row_group_row_count(Some(options.row_group_size))
            .set_dictionary_enabled(options.dictionary)
            .set_statistics_enabled(match options.statistics {
                StatisticsLevel::None => EnabledStatistics::None,
                StatisticsLevel::Chunk => EnabledStatistics::Chunk,
                StatisticsLevel::Page => EnabledStatistics::Page,
            });
        for column in &options.bloom_filter_columns {
            if schema.field_with_name(column).is_err() {
                return Err(Error::UnknownColumn {
                    column: column.clone(),
                    context: Some("named in bloom_filter_columns".into()),
                });
            }
            builder =
                builder.set_column_bloom_filter_enabled(ColumnPath::from(column.as_str()), true);
        }
        Ok(FileWriter {
            log,
            schema,
            partitioning,
            options: Arc::new(options.clone()),
            properties: builder.build(),
            open: HashMap::new(),
            done: Vec::new(),
            started: Vec::new(),
        })
    }

    /// Writes every batch (each with the partition columns). The next batch is read and
    /// split by partition while the previous one is encoded on the rayon pool.
    pub async fn write_all(
        &mut self,
        batches: impl Iterator<Item = Result<RecordBatch>>,
    ) -> Result<()> {
        let mut in_flight: Option<Round> = None;
        let mut work = Work::new();
        for batch in batches {
            let next = self.split(&batch?)?;
            if let Some(round) = in_flight.take() {
                self.finish_round(round, &mut work).await?;
            }
            self.drain(&mut work).await?;
            self.enforce_memory_budget().await?;
            work = next;
            in_flight = Some(self.start_round(&mut work).await?);
        }
        if let Some(round) = in_flight.take() {
            self.finish_round(round, &mut work).await?;
        }
        self.drain(&mut work).await?;
        self.enforce_memory_budget().await
    }

    /// Splits a batch into the rows of each partition directory.
    fn split(&self, batch: &RecordBatch) -> Result<Work> {
        let mut work = Work::new();
        if batch.num_rows() == 0 {
            return Ok(work);
        }
        for (values, rows) in split_by_partition(batch, &self.partitioning, &self.schema)? {
            work.insert(partition_dir(&self.partitioning, &values)?, (values, rows));
        }
        Ok(work)
    }

    /// Encodes rows left over from a round (a file filled up, or was closed to make room
    /// for others) until none are left.
    async fn drain(&mut self, work: &mut Work) -> Result<()> {
        while !work.is_empty() {
            let round = self.start_round(work).await?;
            self.finish_round(round, work).await?;
        }
        Ok(())
    }

    /// Opens the files `work` needs and starts encoding its rows on the rayon pool; the
    /// files travel with the task. Partitions whose file was closed to make room for others
    /// stay in `work`.
    async fn start_round(&mut self, work: &mut Work) -> Result<Round> {
        for (dir, (values, _)) in work.iter() {
            if !self.open.contains_key(dir) {
                self.make_room().await?;
                let file = self.open_file(dir, values.clone())?;
                self.open.insert(dir.clone(), file);
            }
        }
        let dirs: Vec<String> = work
            .keys()
            .filter(|d| self.open.contains_key(*d))
            .cloned()
            .collect();
        let mut jobs = Vec::with_capacity(dirs.len());
        for dir in dirs {
            if let (Some(file), Some((values, rows))) = (self.open.remove(&dir), work.remove(&dir))
            {
                jobs.push((dir, values, file, rows));
            }
        }
        let options = self.options.clone();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        rayon::spawn(move || {
            let encoded: Vec<Encoded> = jobs
                .into_par_iter()
                .map(|(dir, values, mut file, rows)| {
                    let left = file.encode(rows, &options);
                    (dir, values, file, left)
                })
                .collect();
            let _ = sender.send(encoded);
        });
        Ok(Round { receiver })
    }

    /// Waits for a round, takes its files back and uploads what they encoded; rows that
    /// did not fit go back to `work`.
    async fn finish_round(&mut self, round: Round, work: &mut Work) -> Result<()> {
        let encoded = round
            .receiver
            .await
            .map_err(|_| Error::InvalidArgument("a Parquet encoding task stopped".into()))?;
        let mut first_error = None;
        let mut uploads = Vec::new();
        for (dir, values, file, left) in encoded {
            self.open.insert(dir.clone(), file);
            match left {
                Ok(left) => {
                    uploads.push(dir.clone());
                    if let Some(rows) = left {
                        work.insert(dir, (values, rows));
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        for dir in uploads {
            self.upload(&dir).await?;
        }
        Ok(())
    }

    /// Uploads a file's encoded bytes; completes it if it is finished.
    async fn upload(&mut self, dir: &str) -> Result<()> {
        let finished = match self.open.get_mut(dir) {
            Some(file) => {
                file.upload().await?;
                file.finished.is_some()
            }
            None => false,
        };
        if finished {
            self.complete(dir).await?;
        }
        Ok(())
    }

    fn open_file(&mut self, dir: &str, partition_values: Vec<Scalar>) -> Result<OpenFile> {
        let path = new_file_path(dir);
        let store: Arc<dyn ObjectStore> = self.log.store().clone();
        let sink = ParquetObjectWriter::new(store, self.log.child(&path)?);
        let writer = ArrowWriter::try_new(
            Vec::new(),
            self.schema.clone(),
            Some(self.properties.clone()),
        )?;
        self.started.push(path.clone());
        Ok(OpenFile {
            path,
            partition_values,
            writer,
            sink,
            uploaded: 0,
            rows: 0,
            pending: Vec::new(),
            pending_rows: 0,
            pending_bytes: 0,
            finished: None,
        })
    }

    /// Closes the largest open file when opening another would exceed the limit.
    async fn make_room(&mut self) -> Result<()> {
        while self.open.len() >= self.options.max_open_files {
            let largest = self
                .open
                .iter()
                .max_by_key(|(_, f)| f.uploaded as usize + f.buffered_bytes())
                .map(|(k, _)| k.clone());
            match largest {
                Some(dir) => self.close(&dir).await?,
                None => break,
            }
        }
        Ok(())
    }

    /// Flushes the largest buffers until the total is under the budget.
    async fn enforce_memory_budget(&mut self) -> Result<()> {
        loop {
            let total: usize = self.open.values().map(OpenFile::buffered_bytes).sum();
            if total <= self.options.max_buffered_bytes {
                return Ok(());
            }
            let Some((dir, file)) = self.open.iter_mut().max_by_key(|(_, f)| f.buffered_bytes())
            else {
                return Ok(());
            };
            let before = file.buffered_bytes();
            file.flush(&self.options)?;
            let dir = dir.clone();
            self.upload(&dir).await?;
            let after = self
                .open
                .get(&dir)
                .map(OpenFile::buffered_bytes)
                .unwrap_or(0);
            if after >= before {
                return Ok(());
            }
        }
    }

    /// Finishes, uploads and completes one open file.
    async fn close(&mut self, dir: &str) -> Result<()> {
        if let Some(file) = self.open.get_mut(dir) {
            file.finish(&self.options)?;
            file.upload().await?;
            self.complete(dir).await?;
        }
        Ok(())
    }

    /// Completes the upload of a finished file and records its index entry.
    async fn complete(&mut self, dir: &str) -> Result<()> {
        let Some(mut file) = self.open.remove(dir) else {
            return Ok(());
        };
        let Some(metadata) = file.finished.take() else {
            return Err(Error::InvalidArgument(format!(
                "{} is not finished",
                file.path
            )));
        };
        file.sink
            .complete()
            .await
            .map_err(|e| Error::parquet(&file.path, e))?;
        if file.rows == 0 {
            delete_files(self.log, std::iter::once(file.path.as_str())).await;
            return Ok(());
        }
        let stats = file_stats(&metadata, &self.schema, &self.schema);
        self.done.push(FileEntry {
            path: file.path,
            partition_values: file.partition_values,
            rows: file.rows,
            size: file.uploaded,
            stats,
            added_version: 0,
        });
        Ok(())
    }

    /// Closes every open file and returns the entries of all files written.
    pub async fn finish(&mut self) -> Result<Vec<FileEntry>> {
        let dirs: Vec<String> = self.open.keys().cloned().collect();
        for dir in dirs {
            self.close(&dir).await?;
        }
        Ok(std::mem::take(&mut self.done))
    }

    /// Deletes the files written so far (after a failure; they were never committed).
    pub async fn abort(&mut self) {
        self.open.clear();
        self.done.clear();
        let paths = std::mem::take(&mut self.started);
        delete_files(self.log, paths.iter().map(String::as_str)).await;
    }
}

/// Deletes files relative to the dataset root, best effort.
pub(crate) async fn delete_files<'p>(log: &LogStore, paths: impl Iterator<Item = &'p str>) {
    use object_store::ObjectStoreExt;
    for path in paths {
        let Ok(location) = log.child(path) else {
            continue;
        };
        if let Err(e) = log.store().delete(&location).await
            && !matches!(e, object_store::Error::NotFound { .. })
        {
            tracing::warn!(path = %location, error = %e, "could not delete file");
        }
    }
}

/// Splits a batch into `(partition values, rows without partition columns)` groups.
fn split_by_partition(
    batch: &RecordBatch,
    partitioning: &[PartitionField],
    data_schema: &SchemaRef,
) -> Result<Vec<(Vec<Scalar>, RecordBatch)>> {
    let data_columns = |b: &RecordBatch| -> Result<RecordBatch> {
        let columns = data_schema
            .fields()
            .iter()
            .map(|f| {
                b.column_by_name(f.name())
                    .cloned()
                    .ok_or_else(|| Error::SchemaMismatch {
                        column: f.name().clone(),
                        expected: f.data_type().to_string(),
                        found: "absent".into(),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new(data_schema.clone(), columns).map_err(|e| {
            Error::InvalidArgument(format!("input does not fit the dataset schema: {e}"))
        })
    };
    if partitioning.is_empty() {
        return Ok(vec![(Vec::new(), data_columns(batch)?)]);
    }
    let keys: Vec<ArrayRef> = partitioning
        .iter()
        .map(|p| {
            let column = batch
                .column_by_name(&p.name)
                .ok_or_else(|| Error::UnknownColumn {
                    column: p.name.clone(),
                    context: Some("partition column missing from the input".into()),
                })?;
            let options = arrow::compute::CastOptions {
                safe: false,
                ..Default::default()
            };
            arrow::compute::cast_with_options(column, &p.data_type, &options).map_err(|e| {
                Error::InvalidPartition {
                    column: p.name.clone(),
                    value: column.data_type().to_string(),
                    reason: format!("cannot be stored as {}: {e}", p.data_type),
                }
            })
        })
        .collect::<Result<_>>()?;
    let sort_columns: Vec<ArrowSortColumn> = keys
        .iter()
        .map(|k| ArrowSortColumn {
            values: k.clone(),
            options: None,
        })
        .collect();
    let indices: UInt32Array = lexsort_to_indices(&sort_columns, None)?;
    let sorted_keys: Vec<ArrayRef> = keys
        .iter()
        .map(|k| arrow::compute::take(k.as_ref(), &indices, None))
        .collect::<std::result::Result<_, _>>()?;
    let sorted = take_record_batch(batch, &indices)?;
    let ranges = arrow::compute::partition(&sorted_keys)?.ranges();
    let mut out = Vec::with_capacity(ranges.len());
    for range in ranges {
        let values = sorted_keys
            .iter()
            .map(|k| Scalar::from_array(k.as_ref(), range.start))
            .collect::<Result<Vec<_>>>()?;
        let rows = sorted.slice(range.start, range.end - range.start);
        out.push((values, data_columns(&rows)?));
    }
    Ok(out)
}
