//! Writing data files: splits input batches by partition, writes Parquet files at hive
//! paths with bounded memory, and returns their index entries with statistics.
//!
//! Rows wait in memory, as compact Arrow batches per partition, until a partition has a
//! whole row group; then the row group is encoded in one go, so that no Parquet encoder
//! (with its compressor state) outlives it. Memory stays bounded by
//! [`WriteOptions::max_buffered_bytes`], which counts the rows waiting, the rows being
//! encoded and the encoded bytes not yet stored: past half of it, the largest partitions
//! are encoded early as smaller row groups, and past all of it, reading waits for the
//! encoders. [`WriteOptions::max_open_files`] bounds the files open at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::{SortColumn as ArrowSortColumn, SortOptions, concat_batches};
use arrow::compute::{lexsort_to_indices, take_record_batch};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};
use bytes::Bytes;
use foldhash::fast::RandomState;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowLeafColumn, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::arrow::async_writer::{AsyncFileWriter, ParquetObjectWriter};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
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

/// Bytes the object-store writer buffers per file before it starts a multipart upload
/// (and the size of each part after that).
const SINK_BUFFER: usize = 10 * 1024 * 1024;

/// Rows sampled to decide whether a column is dictionary-encoded.
const DICTIONARY_SAMPLE_ROWS: usize = 4096;

/// Rows of one partition waiting to be encoded.
struct Pending {
    values: Vec<Scalar>,
    batches: VecDeque<RecordBatch>,
    rows: usize,
    bytes: usize,
}

impl Pending {
    fn new(values: Vec<Scalar>) -> Self {
        Pending {
            values,
            batches: VecDeque::new(),
            rows: 0,
            bytes: 0,
        }
    }

    fn push(&mut self, batch: RecordBatch) {
        self.rows += batch.num_rows();
        self.bytes += batch.get_array_memory_size();
        self.batches.push_back(batch);
    }

    /// Removes up to `max_rows` rows from the front.
    fn take(&mut self, max_rows: usize) -> Vec<RecordBatch> {
        if max_rows >= self.rows {
            self.rows = 0;
            self.bytes = 0;
            return std::mem::take(&mut self.batches).into();
        }
        let mut taken = Vec::new();
        let mut wanted = max_rows;
        while wanted > 0 {
            let Some(batch) = self.batches.pop_front() else {
                break;
            };
            let size = batch.get_array_memory_size();
            if batch.num_rows() <= wanted {
                wanted -= batch.num_rows();
                self.rows -= batch.num_rows();
                self.bytes = self.bytes.saturating_sub(size);
                taken.push(batch);
            } else {
                let rest = batch.slice(wanted, batch.num_rows() - wanted);
                let share = size * wanted / batch.num_rows().max(1);
                self.rows -= wanted;
                self.bytes = self.bytes.saturating_sub(share);
                taken.push(batch.slice(0, wanted));
                self.batches.push_front(rest);
                wanted = 0;
            }
        }
        taken
    }

    /// Puts rows back at the front (rows a full file could not take).
    fn put_back(&mut self, batches: Vec<RecordBatch>) {
        for batch in batches.into_iter().rev() {
            self.rows += batch.num_rows();
            self.bytes += batch.get_array_memory_size();
            self.batches.push_front(batch);
        }
    }
}

/// One data file being written. Its row groups are encoded whole, in one go, so between
/// row groups it holds only the file's metadata and the bytes not yet handed to the store.
struct OpenFile {
    path: String,
    partition_values: Vec<Scalar>,
    writer: SerializedFileWriter<Vec<u8>>,
    /// Makes the column encoders of each row group.
    columns: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    sink: ParquetObjectWriter,
    /// Bytes handed to `sink`.
    uploaded: u64,
    rows: u64,
    /// Set once the footer is written: the file only awaits its upload.
    finished: Option<ParquetMetaData>,
}

impl OpenFile {
    /// Memory held for this file: encoded bytes not yet handed to the store, and those the
    /// store's writer is buffering.
    fn buffered_bytes(&self) -> usize {
        self.writer.inner().len() + (self.uploaded as usize).min(SINK_BUFFER)
    }

    /// Rows that still fit in this file.
    fn room(&self, options: &WriteOptions) -> usize {
        match options.max_rows_per_file {
            Some(max) => max.saturating_sub(self.rows as usize),
            None => usize::MAX,
        }
    }

    /// Whether the file has reached its row or byte target.
    fn is_full(&self, options: &WriteOptions) -> bool {
        self.room(options) == 0 || self.writer.bytes_written() as u64 >= options.target_file_size
    }

    /// Encodes `batches` as row groups of at most `row_group_size` rows (CPU only, no
    /// I/O). Stops when the file fills up and returns the rows it did not take.
    ///
    /// With `sort_by`, the rows are sorted first and the file is finished after them, so
    /// that each file holds one sorted run.
    fn encode(
        &mut self,
        batches: Vec<RecordBatch>,
        options: &WriteOptions,
    ) -> Result<Vec<RecordBatch>> {
        let mut queue = Pending::new(Vec::new());
        let sorted = !options.sort_by.is_empty();
        match batches.first() {
            Some(first) if sorted => {
                let all = concat_batches(&first.schema(), &batches)?;
                queue.push(sort_rows(&all, options)?);
            }
            _ => batches.into_iter().for_each(|b| queue.push(b)),
        }
        while queue.rows > 0 && !self.is_full(options) {
            let rows = queue.take(options.row_group_size.min(self.room(options)));
            self.write_row_group(rows)?;
        }
        if sorted || self.is_full(options) {
            self.finish()?;
        }
        Ok(queue.take(usize::MAX))
    }

    /// Writes rows as one row group, its columns encoded in parallel.
    fn write_row_group(&mut self, rows: Vec<RecordBatch>) -> Result<()> {
        let encoders = self
            .columns
            .create_column_writers(self.writer.flushed_row_groups().len())?;
        // The leaf columns of every batch, by encoder (one per Parquet leaf column).
        let mut leaves: Vec<Vec<ArrowLeafColumn>> = encoders.iter().map(|_| Vec::new()).collect();
        for batch in &rows {
            self.rows += batch.num_rows() as u64;
            let mut leaf = 0;
            for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
                for values in compute_leaves(field, column)? {
                    if let Some(list) = leaves.get_mut(leaf) {
                        list.push(values);
                    }
                    leaf += 1;
                }
            }
        }
        let chunks = encoders
            .into_par_iter()
            .zip(leaves)
            .map(|(mut encoder, values)| {
                for v in &values {
                    encoder.write(v)?;
                }
                encoder.close()
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut row_group = self.writer.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        Ok(())
    }

    /// Writes the footer.
    fn finish(&mut self) -> Result<()> {
        if self.finished.is_none() {
            let metadata = self
                .writer
                .finish()
                .map_err(|e| Error::parquet(&self.path, e))?;
            self.finished = Some(metadata);
        }
        Ok(())
    }

    /// Hands the encoded bytes to the object store.
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

/// Sorts rows by the `sort_by` columns.
fn sort_rows(batch: &RecordBatch, options: &WriteOptions) -> Result<RecordBatch> {
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
    Ok(take_record_batch(batch, &indices)?)
}

/// One partition's share of an encoding round: its directory, its file, and its rows.
type Job = (String, OpenFile, Vec<RecordBatch>);

/// One partition's result of an encoding round: its file, and the rows that did not fit.
type Encoded = (String, OpenFile, Result<Vec<RecordBatch>>);

/// An encoding round running on the rayon pool.
struct Round {
    receiver: tokio::sync::oneshot::Receiver<Vec<Encoded>>,
    /// Bytes of the rows being encoded.
    bytes: usize,
}

/// Writes input batches into data files under a dataset root.
///
/// Each input batch is split by partition into compact per-partition batches that wait in
/// memory until a partition has a row group's worth of rows, or the memory budget makes
/// the largest ones go early. Row groups are then encoded whole, several partitions in
/// parallel on the rayon pool, while the next input batches are read and split.
pub(crate) struct FileWriter<'a> {
    log: &'a LogStore,
    schema: SchemaRef,
    partitioning: Vec<PartitionField>,
    options: Arc<WriteOptions>,
    properties: WriterProperties,
    pending: HashMap<String, Pending>,
    pending_bytes: usize,
    open: HashMap<String, OpenFile>,
    in_flight: Option<Round>,
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
        for (column, settings) in &options.columns {
            if schema.field_with_name(column).is_err() {
                return Err(Error::UnknownColumn {
                    column: column.clone(),
                    context: Some("named in the column write settings".into()),
                });
            }
            let path = ColumnPath::from(column.as_str());
            if let Some(compression) = &settings.compression {
                builder = builder.set_column_compression(path.clone(), compression.to_parquet()?);
            }
            if let Some(dictionary) = settings.dictionary {
                builder = builder.set_column_dictionary_enabled(path.clone(), dictionary);
            }
            if let Some(bloom) = settings.bloom_filter {
                builder = builder.set_column_bloom_filter_enabled(path, bloom);
            }
        }
        Ok(FileWriter {
            log,
            schema,
            partitioning,
            options: Arc::new(options.clone()),
            properties: builder.build(),
            pending: HashMap::new(),
            pending_bytes: 0,
            open: HashMap::new(),
            in_flight: None,
            done: Vec::new(),
            started: Vec::new(),
        })
    }

    /// Writes every batch (each with the partition columns).
    pub async fn write_all(
        &mut self,
        batches: impl Iterator<Item = Result<RecordBatch>>,
    ) -> Result<()> {
        for batch in batches {
            self.write(batch?).await?;
        }
        Ok(())
    }

    /// Writes one batch (with the partition columns; other columns are ignored).
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        for (values, rows) in split_by_partition(&batch, &self.partitioning, &self.schema)? {
            let dir = partition_dir(&self.partitioning, &values)?;
            self.pending_bytes += rows.get_array_memory_size();
            self.pending
                .entry(dir)
                .or_insert_with(|| Pending::new(values))
                .push(rows);
        }
        self.step(false).await
    }

    /// The memory budget of the write (`max_buffered_bytes`).
    pub fn memory_budget(&self) -> usize {
        self.options.max_buffered_bytes
    }

    /// Bytes held in memory: rows waiting, rows being encoded, encoded bytes not yet stored.
    fn memory(&self) -> usize {
        let files: usize = self.open.values().map(OpenFile::buffered_bytes).sum();
        self.pending_bytes + self.in_flight.as_ref().map_or(0, |r| r.bytes) + files
    }

    /// Collects a finished round if there is one (waiting for it when memory is over the
    /// budget or `flush_all` is set) and starts the next: partitions with a full row group,
    /// then, over the budget, the largest, then with `flush_all` all of them.
    async fn step(&mut self, flush_all: bool) -> Result<()> {
        if let Some(mut round) = self.in_flight.take() {
            let wait = flush_all || self.memory() > self.options.max_buffered_bytes;
            let encoded = if wait {
                Some((&mut round.receiver).await.map_err(|_| stopped())?)
            } else {
                match round.receiver.try_recv() {
                    Ok(encoded) => Some(encoded),
                    Err(tokio::sync::oneshot::error::TryRecvError::Empty) => None,
                    Err(_) => return Err(stopped()),
                }
            };
            match encoded {
                Some(encoded) => self.finish_round(encoded).await?,
                None => {
                    self.in_flight = Some(round);
                    return Ok(());
                }
            }
        }
        let chosen = self.choose(flush_all);
        if !chosen.is_empty() {
            self.in_flight = self.start_round(chosen).await?;
        }
        Ok(())
    }

    /// The partitions to encode now, with how many rows of each.
    fn choose(&self, flush_all: bool) -> Vec<(String, usize)> {
        let row_group = self.options.row_group_size;
        let mut chosen: Vec<(String, usize)> = Vec::new();
        let mut left = self.pending_bytes;
        for (dir, pending) in &self.pending {
            if flush_all {
                chosen.push((dir.clone(), pending.rows));
            } else if pending.rows >= row_group && self.options.sort_by.is_empty() {
                let rows = pending.rows - pending.rows % row_group;
                left = left.saturating_sub(pending.bytes * rows / pending.rows);
                chosen.push((dir.clone(), rows));
            }
        }
        if flush_all {
            return chosen;
        }
        let files: usize = self.open.values().map(OpenFile::buffered_bytes).sum();
        let budget = self.options.max_buffered_bytes;
        // Past half the budget, encode the largest partitions until no more than half is
        // in use: the encoders get a steady stream of work, and the next input batches room.
        if left + files > budget / 2 {
            let mut rest: Vec<(&String, &Pending)> = self
                .pending
                .iter()
                .filter(|(dir, _)| !chosen.iter().any(|(d, _)| d == *dir))
                .collect();
            rest.sort_by_key(|(_, p)| std::cmp::Reverse(p.bytes));
            for (dir, pending) in rest {
                if left + files <= budget / 2 {
                    break;
                }
                left = left.saturating_sub(pending.bytes);
                chosen.push((dir.clone(), pending.rows));
            }
        }
        chosen
    }

    /// Opens the files the chosen partitions need and starts encoding their rows on the
    /// rayon pool; the files travel with the task.
    async fn start_round(&mut self, chosen: Vec<(String, usize)>) -> Result<Option<Round>> {
        let mut jobs: Vec<Job> = Vec::with_capacity(chosen.len());
        let mut bytes = 0;
        for (dir, rows) in chosen {
            if !self.open.contains_key(&dir) {
                self.make_room(jobs.len()).await?;
                if self.open.len() + jobs.len() >= self.options.max_open_files {
                    // Every open file is in this round: the rest wait for the next.
                    break;
                }
            }
            let Some(pending) = self.pending.get_mut(&dir) else {
                continue;
            };
            let before = pending.bytes;
            let batches = pending.take(rows);
            let values = pending.values.clone();
            let taken = before - pending.bytes;
            if pending.rows == 0 {
                self.pending.remove(&dir);
            }
            self.pending_bytes = self.pending_bytes.saturating_sub(taken);
            bytes += taken;
            let file = match self.open.remove(&dir) {
                Some(file) => file,
                None => self.open_file(&dir, values, &batches)?,
            };
            jobs.push((dir, file, batches));
        }
        if jobs.is_empty() {
            return Ok(None);
        }
        let options = self.options.clone();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        rayon::spawn(move || {
            let encoded: Vec<Encoded> = jobs
                .into_par_iter()
                .map(|(dir, mut file, batches)| {
                    let left = file.encode(batches, &options);
                    (dir, file, left)
                })
                .collect();
            let _ = sender.send(encoded);
        });
        Ok(Some(Round { receiver, bytes }))
    }

    /// Takes the files of a finished round back and uploads what they encoded; rows that
    /// did not fit (their file filled up) go back to the front of their partition's queue.
    async fn finish_round(&mut self, encoded: Vec<Encoded>) -> Result<()> {
        let mut first_error = None;
        let mut uploads = Vec::new();
        for (dir, file, left) in encoded {
            let values = file.partition_values.clone();
            self.open.insert(dir.clone(), file);
            match left {
                Ok(left) => {
                    if !left.is_empty() {
                        let pending = self
                            .pending
                            .entry(dir.clone())
                            .or_insert_with(|| Pending::new(values));
                        let before = pending.bytes;
                        pending.put_back(left);
                        self.pending_bytes += pending.bytes - before;
                    }
                    uploads.push(dir);
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

    /// Opens a file for a partition; `first_rows` (the first rows it will hold) decide
    /// which columns are dictionary-encoded.
    fn open_file(
        &mut self,
        dir: &str,
        partition_values: Vec<Scalar>,
        first_rows: &[RecordBatch],
    ) -> Result<OpenFile> {
        let path = new_file_path(dir);
        let store: Arc<dyn ObjectStore> = self.log.store().clone();
        let sink = ParquetObjectWriter::from_buf_writer(BufWriter::with_capacity(
            store,
            self.log.child(&path)?,
            SINK_BUFFER,
        ));
        let mut properties = self.properties.clone();
        if self.options.dictionary {
            let sample = sample_rows(&self.schema, first_rows, DICTIONARY_SAMPLE_ROWS)?;
            let mut builder = properties.into_builder();
            for (field, values) in self.schema.fields().iter().zip(sample.columns()) {
                let fixed = self
                    .options
                    .columns
                    .get(field.name())
                    .is_some_and(|c| c.dictionary.is_some());
                if !fixed && !field.data_type().is_nested() && !dictionary_pays(values) {
                    builder = builder.set_column_dictionary_enabled(
                        ColumnPath::from(field.name().as_str()),
                        false,
                    );
                }
            }
            properties = builder.build();
        }
        let (writer, columns) =
            ArrowWriter::try_new(Vec::new(), self.schema.clone(), Some(properties))?
                .into_serialized_writer()?;
        self.started.push(path.clone());
        Ok(OpenFile {
            path,
            partition_values,
            writer,
            columns,
            schema: self.schema.clone(),
            sink,
            uploaded: 0,
            rows: 0,
            finished: None,
        })
    }

    /// Closes files until another may be opened: first those with no rows waiting, then
    /// the largest. `assembling` files, taken out for the round being assembled, count as
    /// open.
    async fn make_room(&mut self, assembling: usize) -> Result<()> {
        while self.open.len() + assembling >= self.options.max_open_files {
            let victim = self
                .open
                .iter()
                .max_by_key(|(dir, f)| {
                    (
                        !self.pending.contains_key(*dir),
                        f.uploaded as usize + f.buffered_bytes(),
                    )
                })
                .map(|(k, _)| k.clone());
            match victim {
                Some(dir) => self.close(&dir).await?,
                None => break,
            }
        }
        Ok(())
    }

    /// Finishes, uploads and completes one open file.
    async fn close(&mut self, dir: &str) -> Result<()> {
        if let Some(file) = self.open.get_mut(dir) {
            file.finish()?;
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
        crate::failpoint::hit("write:after-file");
        Ok(())
    }

    /// Closes every open file and returns the entries of all files written.
    pub async fn finish(&mut self) -> Result<Vec<FileEntry>> {
        while !self.pending.is_empty() || self.in_flight.is_some() {
            self.step(true).await?;
        }
        let dirs: Vec<String> = self.open.keys().cloned().collect();
        for dir in dirs {
            self.close(&dir).await?;
        }
        Ok(std::mem::take(&mut self.done))
    }

    /// After writing ended with `written`: the entries of every file when it succeeded
    /// and the files close; otherwise the files written so far are deleted and the error
    /// returned.
    pub async fn conclude(&mut self, written: Result<()>) -> Result<Vec<FileEntry>> {
        let finished = match written {
            Ok(()) => self.finish().await,
            Err(e) => Err(e),
        };
        if finished.is_err() {
            self.abort().await;
        }
        finished
    }

    /// Deletes the files written so far (after a failure; they were never committed).
    pub async fn abort(&mut self) {
        if let Some(round) = self.in_flight.take() {
            // Let the encoding tasks end before the files are deleted.
            let _ = round.receiver.await;
        }
        self.pending.clear();
        self.open.clear();
        self.done.clear();
        let paths = std::mem::take(&mut self.started);
        delete_files(self.log, paths.iter().map(String::as_str)).await;
    }
}

/// The error when an encoding task ended without answering (it panicked).
fn stopped() -> Error {
    Error::InvalidArgument("a Parquet encoding task stopped".into())
}

/// The first `max_rows` rows of `batches`, as one batch.
fn sample_rows(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    max_rows: usize,
) -> Result<RecordBatch> {
    let mut parts = Vec::new();
    let mut wanted = max_rows;
    for batch in batches {
        if wanted == 0 {
            break;
        }
        let take = batch.num_rows().min(wanted);
        parts.push(batch.slice(0, take));
        wanted -= take;
    }
    Ok(concat_batches(schema, &parts)?)
}

/// Whether dictionary encoding pays for a column, judged on a sample of its values: it
/// does when at most half of them are distinct. Mostly-distinct columns (keys, prices,
/// free text) would only fill a dictionary that the encoder abandons, at the cost of
/// hashing every value, and they compress better without one.
fn dictionary_pays(sample: &ArrayRef) -> bool {
    if sample.len() < 2 {
        return true;
    }
    let Ok(converter) = RowConverter::new(vec![SortField::new(sample.data_type().clone())]) else {
        return true;
    };
    let Ok(rows) = converter.convert_columns(std::slice::from_ref(sample)) else {
        return true;
    };
    let mut distinct = HashSet::with_capacity_and_hasher(rows.num_rows(), RandomState::default());
    distinct.extend(rows.iter().map(|row| row.data()));
    distinct.len() * 2 <= sample.len()
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
    let converter = RowConverter::new(
        keys.iter()
            .map(|k| SortField::new(k.data_type().clone()))
            .collect(),
    )?;
    let key_rows = converter.convert_columns(&keys)?;
    let mut groups: HashMap<&[u8], Vec<u32>, RandomState> = HashMap::default();
    for (i, row) in key_rows.iter().enumerate() {
        groups.entry(row.data()).or_default().push(i as u32);
    }
    let data = data_columns(batch)?;
    let mut out = Vec::with_capacity(groups.len());
    for indices in groups.into_values() {
        let first = indices[0] as usize;
        let values = keys
            .iter()
            .map(|k| Scalar::from_array(k.as_ref(), first))
            .collect::<Result<Vec<_>>>()?;
        let rows = if indices.len() == data.num_rows() {
            data.clone()
        } else {
            take_record_batch(&data, &UInt32Array::from(indices))?
        };
        out.push((values, rows));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};

    fn ids(range: std::ops::Range<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(range))]).unwrap()
    }

    fn values(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn pending_rows_come_out_in_order_and_go_back_in_front() {
        let mut pending = Pending::new(Vec::new());
        pending.push(ids(0..10));
        pending.push(ids(10..25));
        assert_eq!(pending.rows, 25);
        let first = pending.take(12);
        assert_eq!(values(&first), (0..12).collect::<Vec<_>>());
        assert_eq!(pending.rows, 13);
        pending.put_back(first);
        assert_eq!(pending.rows, 25);
        let all = pending.take(usize::MAX);
        assert_eq!(values(&all), (0..25).collect::<Vec<_>>());
        assert_eq!((pending.rows, pending.bytes), (0, 0));
    }

    #[test]
    fn dictionaries_pay_for_repeated_values_only() {
        let repeated: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..1000).map(|i| format!("v{}", i % 10)),
        ));
        let distinct: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..1000).map(|i| format!("v{i}")),
        ));
        assert!(dictionary_pays(&repeated));
        assert!(!dictionary_pays(&distinct));
        assert!(dictionary_pays(&distinct.slice(0, 1)));
    }
}
