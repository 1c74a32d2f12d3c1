//! The native scan: plans from the file index (partition and statistics pruning without
//! listing directories), prunes row groups from each footer, applies the residual filter
//! exactly, and streams Arrow record batches with the partition columns typed.

use std::collections::HashMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::{BatchCoalescer, filter_record_batch};
use arrow::datatypes::{Schema, SchemaRef};
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{FutureExt, SinkExt, StreamExt, TryStreamExt, future};
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{
    ArrowReaderBuilder, ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
use parquet::file::metadata::{PageIndexPolicy, RowGroupMetaData};

use crate::conform::cast_exact;
use crate::decode;
use crate::engine::{ScanEngine, ScanFile, ScanRequest, panic_message};
use crate::error::{Error, Result};
use crate::filter::Expr;
use crate::log::LogStore;
use crate::merge::KeyProbe;
use crate::scalar::Scalar;
use crate::snapshot::{FileEntry, Snapshot};
use crate::stats::{ColumnStats, StatsView, row_group_stats};

/// A stream of record batches.
pub type RecordBatchStream = BoxStream<'static, Result<RecordBatch>>;

/// Builds a scan of one dataset version. Made by [`crate::Dataset::scan`].
#[derive(Clone)]
pub struct ScanBuilder {
    log: LogStore,
    snapshot: Arc<Snapshot>,
    columns: Option<Vec<String>>,
    filter: Option<Expr>,
    limit: Option<usize>,
    batch_size: usize,
    /// Files read at once, when the caller set it.
    concurrency: Option<usize>,
    /// Only these files of the snapshot (a rewrite reads the files it replaces).
    files: Option<Vec<FileEntry>>,
    /// Only row groups that may hold one of these keys (a merge matching keys).
    probe: Option<Arc<KeyProbe>>,
    /// Where the dataset is, for engines that read its files themselves.
    url: Option<String>,
}

impl fmt::Debug for ScanBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScanBuilder")
            .field("version", &self.snapshot.version())
            .field("columns", &self.columns)
            .field("filter", &self.filter.as_ref().map(ToString::to_string))
            .field("limit", &self.limit)
            .finish()
    }
}

/// Which files a scan reads, after pruning by partition values and file statistics.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    /// The schema of the batches the scan returns.
    pub schema: SchemaRef,
    /// The files to read.
    pub files: Vec<FileEntry>,
    /// Files in the version.
    pub files_total: usize,
    /// Files skipped by their partition values.
    pub files_pruned_by_partition: usize,
    /// Files skipped by their column statistics.
    pub files_pruned_by_stats: usize,
    /// The filter, bound to the schema.
    pub filter: Option<Expr>,
}

/// What a scan would read, down to row groups (footers of the kept files are read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanExplain {
    /// The version scanned.
    pub version: u64,
    /// The filter as bound, in SQL form.
    pub filter: Option<String>,
    /// Files in the version.
    pub files_total: usize,
    /// Files skipped by their partition values.
    pub files_pruned_by_partition: usize,
    /// Files skipped by their column statistics.
    pub files_pruned_by_stats: usize,
    /// Files read.
    pub files_kept: usize,
    /// Row groups in the files read.
    pub row_groups_total: usize,
    /// Row groups read.
    pub row_groups_kept: usize,
    /// Rows in the version.
    pub rows_total: u64,
    /// Rows in the row groups read.
    pub rows_kept: u64,
    /// Rows in the pages read, after page-index pruning.
    pub rows_selected: u64,
    /// Bytes of the files read.
    pub bytes_kept: u64,
}

impl fmt::Display for ScanExplain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "version:     {}", self.version)?;
        if let Some(filter) = &self.filter {
            writeln!(f, "filter:      {filter}")?;
        }
        writeln!(
            f,
            "files:       {} of {} read ({} pruned by partition, {} by statistics)",
            self.files_kept,
            self.files_total,
            self.files_pruned_by_partition,
            self.files_pruned_by_stats
        )?;
        writeln!(
            f,
            "row groups:  {} of {} read in those files",
            self.row_groups_kept, self.row_groups_total
        )?;
        writeln!(
            f,
            "rows:        {} of {} in the row groups read ({} bytes of files)",
            self.rows_kept, self.rows_total, self.bytes_kept
        )?;
        write!(
            f,
            "pages:       {} rows in the pages read after page-index pruning",
            self.rows_selected
        )
    }
}

impl ScanBuilder {
    pub(crate) fn new(log: LogStore, snapshot: Arc<Snapshot>) -> Self {
        ScanBuilder {
            log,
            snapshot,
            columns: None,
            filter: None,
            limit: None,
            batch_size: 8192,
            concurrency: None,
            files: None,
            probe: None,
            url: None,
        }
    }

    /// Records where the dataset is (for [`ScanBuilder::request`]).
    pub(crate) fn with_url(mut self, url: &str) -> Self {
        self.url = Some(url.to_string());
        self
    }

    /// The planned scan, for an engine to execute: files pruned by partition values and
    /// statistics, with their locations.
    pub fn request(&self) -> Result<ScanRequest> {
        let plan = self.plan()?;
        let dataset = self.url.clone().unwrap_or_default();
        let local_root: Option<std::path::PathBuf> = if dataset.starts_with("file://") {
            url::Url::parse(&dataset)
                .ok()
                .and_then(|u| u.to_file_path().ok())
        } else if !dataset.contains("://") && !dataset.is_empty() {
            Some(std::path::PathBuf::from(&dataset))
        } else {
            None
        };
        let filter = plan
            .filter
            .and_then(|filter| self.engine_filter(&filter, &plan.files));
        let files = plan
            .files
            .into_iter()
            .map(|entry| ScanFile {
                location: match &local_root {
                    Some(root) => root.join(&entry.path).display().to_string(),
                    None => format!("{}/{}", dataset.trim_end_matches('/'), entry.path),
                },
                entry,
            })
            .collect();
        Ok(ScanRequest {
            local: local_root.is_some(),
            dataset,
            files,
            schema_since: self.snapshot.schema_since(),
            data_schema: self.snapshot.data_schema().clone(),
            partitioning: self.snapshot.partitioning().to_vec(),
            output_schema: plan.schema,
            filter,
            limit: self.limit,
            native: self.clone(),
        })
    }

    /// What an engine still has to apply of the bound `filter` to `files`: the conditions
    /// on partition columns alone that the partition values of every file satisfy are
    /// dropped (`year = 1995` once only that year's files are left), so that the engine
    /// neither evaluates them nor reads partition values for them. `None` when nothing is
    /// left to apply.
    fn engine_filter(&self, filter: &Expr, files: &[FileEntry]) -> Option<Expr> {
        let partitioning = self.snapshot.partitioning();
        let decided = |condition: &Expr| {
            let on_partitions =
                (condition.columns().iter()).all(|c| partitioning.iter().any(|p| &p.name == c));
            on_partitions
                && files
                    .iter()
                    .all(|f| condition.must_match(&self.snapshot.stats_view(f, true)))
        };
        (filter.conjuncts().into_iter())
            .filter(|condition| !decided(condition))
            .cloned()
            .reduce(Expr::and)
    }

    /// Runs the scan on `engine`.
    pub fn stream_on(&self, engine: &dyn ScanEngine) -> Result<RecordBatchStream> {
        engine.scan(self.request()?)
    }

    /// Reads only row groups whose statistics may hold one of `probe`'s keys.
    pub(crate) fn with_key_probe(mut self, probe: Arc<KeyProbe>) -> Self {
        self.probe = Some(probe);
        self
    }

    /// Reads only `files` (entries of the snapshot), in this order.
    pub fn with_files(mut self, files: Vec<FileEntry>) -> Self {
        self.files = Some(files);
        self
    }

    /// Returns only these columns, in this order (data or partition columns).
    pub fn with_columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Returns only rows for which `filter` is true.
    pub fn with_filter(mut self, filter: Expr) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Parses `filter` (SQL-like, see [`Expr::parse`]) and returns only rows where it is true.
    pub fn with_filter_str(self, filter: &str) -> Result<Self> {
        Ok(self.with_filter(Expr::parse(filter)?))
    }

    /// Returns at most `limit` rows.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Rows per batch (default 8192).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Files read at once (by default 4, or 16 when every file is at most 1 MiB, small
    /// local files counting in runs of up to 64). Each may be decoded up to 65 536 rows
    /// ahead of the consumer.
    pub fn with_concurrency(mut self, files: usize) -> Self {
        self.concurrency = Some(files.max(1));
        self
    }

    /// The snapshot this scan reads.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// The schema of the batches the scan returns (no pruning is done).
    pub fn output_schema(&self) -> Result<SchemaRef> {
        let full = self.snapshot.schema();
        Ok(match &self.columns {
            Some(columns) => Arc::new(project_schema(&full, columns)?),
            None => full,
        })
    }

    /// Prunes files by partition values and statistics, without reading any file.
    pub fn plan(&self) -> Result<ScanPlan> {
        let full = self.snapshot.schema();
        let schema = self.output_schema()?;
        let filter = self.filter.as_ref().map(|f| f.bind(&full)).transpose()?;
        let mut plan = ScanPlan {
            schema,
            files: Vec::new(),
            files_total: self
                .files
                .as_ref()
                .map_or(self.snapshot.files().len(), Vec::len),
            files_pruned_by_partition: 0,
            files_pruned_by_stats: 0,
            filter: filter.clone(),
        };
        // Which passes can prune at all: partition values, and data column statistics.
        let columns = filter.as_ref().map(Expr::columns).unwrap_or_default();
        let partition_pass =
            (self.snapshot.partitioning().iter()).any(|p| columns.contains(&p.name));
        let stats_pass =
            (self.snapshot.data_schema().fields().iter()).any(|f| columns.contains(f.name()));
        let files: Box<dyn Iterator<Item = &FileEntry>> = match &self.files {
            Some(files) => Box::new(files.iter()),
            None => Box::new(self.snapshot.files()),
        };
        for file in files {
            if let Some(filter) = &filter {
                if partition_pass && !filter.may_match(&self.snapshot.stats_view(file, true)) {
                    plan.files_pruned_by_partition += 1;
                    continue;
                }
                if stats_pass && !filter.may_match(&self.snapshot.stats_view(file, false)) {
                    plan.files_pruned_by_stats += 1;
                    continue;
                }
            }
            plan.files.push(file.clone());
        }
        Ok(plan)
    }

    /// Reports what the scan reads, down to row groups.
    pub async fn explain(&self) -> Result<ScanExplain> {
        let plan = self.plan()?;
        let context = self.context(&plan)?;
        let mut explain = ScanExplain {
            version: self.snapshot.version(),
            filter: plan.filter.as_ref().map(ToString::to_string),
            files_total: plan.files_total,
            files_pruned_by_partition: plan.files_pruned_by_partition,
            files_pruned_by_stats: plan.files_pruned_by_stats,
            files_kept: plan.files.len(),
            rows_total: self.snapshot.rows(),
            ..Default::default()
        };
        let footers: Vec<_> = stream::iter(plan.files.clone())
            .map(move |file| {
                let context = context.clone();
                async move {
                    let metadata = load_metadata(&context, &file).await?;
                    let kept = context.keep_row_groups(&file, &metadata)?;
                    let selected = context
                        .select_pages(&file, &metadata, &kept)
                        .map(|s| s.row_count() as u64);
                    Ok::<_, Error>((file.size, metadata, kept, selected))
                }
            })
            .buffered(self.concurrency.unwrap_or(FILES_AT_ONCE).max(8))
            .try_collect()
            .await?;
        for (size, metadata, kept, selected) in footers {
            let groups = metadata.metadata().row_groups();
            explain.row_groups_total += groups.len();
            explain.row_groups_kept += kept.len();
            let rows_kept = kept
                .iter()
                .map(|&i| groups[i].num_rows().max(0) as u64)
                .sum::<u64>();
            explain.rows_kept += rows_kept;
            explain.rows_selected += selected.unwrap_or(rows_kept);
            explain.bytes_kept += size;
        }
        Ok(explain)
    }

    fn context(&self, plan: &ScanPlan) -> Result<Arc<ReadContext>> {
        let data_schema = self.snapshot.data_schema().clone();
        let filter_columns = plan.filter.as_ref().map(Expr::columns).unwrap_or_default();
        let output: Vec<String> = plan
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let data_needed: Vec<usize> = data_schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| output.contains(f.name()) || filter_columns.contains(f.name()))
            .map(|(i, _)| i)
            .collect();
        Ok(Arc::new(ReadContext {
            store: self.log.store().clone(),
            log: self.log.clone(),
            snapshot: self.snapshot.clone(),
            data_columns: data_schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name().clone(), i))
                .collect(),
            data_schema,
            full_schema: self.snapshot.schema(),
            data_needed,
            output: plan.schema.clone(),
            filter: plan.filter.clone(),
            probe: self.probe.clone(),
            batch_size: self.batch_size,
            limit: self.limit,
        }))
    }

    /// Runs the scan, returning batches as the files are read.
    pub fn stream(&self) -> Result<RecordBatchStream> {
        let plan = self.plan()?;
        let context = self.context(&plan)?;
        // Small files are read whole, each in a task of its own: reading further ahead
        // keeps the cores busy where each file is a few requests and little decoding.
        let concurrency = match (
            self.concurrency,
            plan.files.iter().all(|f| f.size <= WHOLE_FILE_BYTES),
        ) {
            (Some(files), _) => files,
            (None, true) => SMALL_FILES_AHEAD,
            (None, false) => FILES_AT_ONCE,
        };
        // Each reader starts when `buffered` takes it from the iterator, which it does for
        // `concurrency` of them at once: a reader started inside the future would start only
        // when that future is polled, which `flatten` does once the stream before it ends,
        // so files would be read one at a time.
        let files = stream::iter(read_units(&context, plan.files))
            .map(move |unit| {
                let batches = match unit {
                    ReadUnit::File(file) => spawn_file_reader(context.clone(), file),
                    ReadUnit::LocalSmallFiles(files) => {
                        spawn_local_small_reader(context.clone(), files)
                    }
                };
                future::ready(batches)
            })
            .buffered(concurrency)
            .flatten();
        let limited: RecordBatchStream = match self.limit {
            None => files.boxed(),
            Some(limit) => apply_limit(files.boxed(), limit),
        };
        Ok(limited)
    }

    /// Runs the scan and collects every batch.
    pub async fn collect(&self) -> Result<Vec<RecordBatch>> {
        self.stream()?.try_collect().await
    }

    /// Runs the scan and counts the rows.
    pub async fn count_rows(&self) -> Result<u64> {
        let mut stream = self.stream()?;
        let mut rows = 0u64;
        while let Some(batch) = stream.next().await {
            rows += batch?.num_rows() as u64;
        }
        Ok(rows)
    }
}

fn apply_limit(stream: RecordBatchStream, limit: usize) -> RecordBatchStream {
    stream
        .scan(limit, |left, batch| {
            let out = match batch {
                Err(e) => Some(Err(e)),
                Ok(_) if *left == 0 => None,
                Ok(b) => {
                    let take = b.num_rows().min(*left);
                    *left -= take;
                    Some(Ok(b.slice(0, take)))
                }
            };
            futures::future::ready(out)
        })
        .boxed()
}

fn project_schema(full: &Schema, columns: &[String]) -> Result<Schema> {
    let fields = columns
        .iter()
        .map(|c| {
            full.field_with_name(c)
                .cloned()
                .map_err(|_| Error::UnknownColumn {
                    column: c.clone(),
                    context: Some("in the column list".into()),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Schema::new(fields))
}

/// What every file read of one scan shares.
struct ReadContext {
    store: Arc<dyn ObjectStore>,
    log: LogStore,
    snapshot: Arc<Snapshot>,
    data_schema: SchemaRef,
    /// Position of each data column, by name.
    data_columns: HashMap<String, usize>,
    full_schema: SchemaRef,
    /// Data columns to read (projection plus filter columns), by position.
    data_needed: Vec<usize>,
    output: SchemaRef,
    filter: Option<Expr>,
    probe: Option<Arc<KeyProbe>>,
    batch_size: usize,
    limit: Option<usize>,
}

impl ReadContext {
    /// Row groups of a file that may hold matching rows.
    fn keep_row_groups(
        &self,
        file: &FileEntry,
        metadata: &ArrowReaderMetadata,
    ) -> Result<Vec<usize>> {
        let groups: Vec<&RowGroupMetaData> = metadata.metadata().row_groups().iter().collect();
        let all: Vec<usize> = (0..groups.len()).collect();
        if self.filter.is_none() && self.probe.is_none() {
            return Ok(all);
        }
        let file_schema = metadata.schema();
        let data_columns = &self.data_columns;
        // Statistics per row group for the data columns the filter and probe name.
        let mut columns = self.filter.as_ref().map(Expr::columns).unwrap_or_default();
        if let Some(probe) = &self.probe {
            columns.extend(probe.columns().map(str::to_string));
        }
        let mut per_group: Vec<Vec<Option<ColumnStats>>> =
            vec![vec![None; self.data_schema.fields().len()]; groups.len()];
        for column in columns {
            let Some(&i) = data_columns.get(&column) else {
                continue;
            };
            if file_schema.field_with_name(&column).is_err() {
                continue;
            }
            let Ok(stats) = row_group_stats(metadata.metadata(), file_schema, &column, &groups)
            else {
                continue;
            };
            for (g, (s, _)) in stats.into_iter().enumerate() {
                per_group[g][i] = Some(s);
            }
        }
        Ok(all
            .into_iter()
            .filter(|&g| {
                let view = StatsView {
                    data_columns,
                    partitioning: self.snapshot.partitioning(),
                    stats: &per_group[g],
                    partition_values: &file.partition_values,
                    rows: groups[g].num_rows().max(0) as u64,
                    partitions_only: false,
                };
                self.filter.as_ref().is_none_or(|f| f.may_match(&view))
                    && self.probe.as_ref().is_none_or(|p| p.may_hold(&view))
            })
            .collect())
    }

    /// Whether the filter names data columns, so that page statistics can help.
    fn uses_page_index(&self) -> bool {
        self.filter.as_ref().is_some_and(|f| {
            f.columns()
                .iter()
                .any(|c| self.data_schema.field_with_name(c).is_ok())
        })
    }

    /// Selects the rows of `row_groups` whose pages may hold matching rows, from the page
    /// index. Each filter column gives a selection from its own pages (the filter judged
    /// with only that column's page statistics known); their intersection is kept.
    fn select_pages(
        &self,
        file: &FileEntry,
        metadata: &ArrowReaderMetadata,
        row_groups: &[usize],
    ) -> Option<RowSelection> {
        let filter = self.filter.as_ref()?;
        let md = metadata.metadata();
        let (Some(column_index), Some(offset_index)) = (md.column_index(), md.offset_index())
        else {
            return None;
        };
        let file_schema = metadata.schema();
        let parquet_schema = md.file_metadata().schema_descr();
        let mut selection: Option<RowSelection> = None;
        for column in filter.columns() {
            let Some(&position) = self.data_columns.get(&column) else {
                continue;
            };
            let Ok(converter) = StatisticsConverter::try_new(&column, file_schema, parquet_schema)
            else {
                continue;
            };
            let mut selectors = Vec::new();
            for &group in row_groups {
                let group_rows = md.row_group(group).num_rows().max(0) as usize;
                let pages = (|| {
                    let mins = converter
                        .data_page_mins(column_index, offset_index, [&group])
                        .ok()?;
                    let maxes = converter
                        .data_page_maxes(column_index, offset_index, [&group])
                        .ok()?;
                    let nulls = converter
                        .data_page_null_counts(column_index, offset_index, [&group])
                        .ok()?;
                    let rows = converter
                        .data_page_row_counts(offset_index, md.row_groups(), [&group])
                        .ok()??;
                    Some((mins, maxes, nulls, rows))
                })();
                let Some((mins, maxes, nulls, rows)) = pages else {
                    selectors.push(RowSelector::select(group_rows));
                    continue;
                };
                for page in 0..rows.len() {
                    let page_rows = rows.value(page);
                    let scalar = |a: &ArrayRef| {
                        Scalar::from_array(a.as_ref(), page)
                            .ok()
                            .filter(|s| !s.is_null())
                    };
                    let mut stats = vec![None; self.data_schema.fields().len()];
                    stats[position] = Some(ColumnStats {
                        min: scalar(&mins),
                        max: scalar(&maxes),
                        null_count: (!nulls.is_null(page)).then(|| nulls.value(page)),
                    });
                    let view = StatsView {
                        data_columns: &self.data_columns,
                        partitioning: self.snapshot.partitioning(),
                        stats: &stats,
                        partition_values: &file.partition_values,
                        rows: page_rows,
                        partitions_only: false,
                    };
                    let n = page_rows as usize;
                    selectors.push(if filter.may_match(&view) {
                        RowSelector::select(n)
                    } else {
                        RowSelector::skip(n)
                    });
                }
            }
            let column_selection = RowSelection::from(selectors);
            selection = Some(match selection {
                None => column_selection,
                Some(previous) => previous.intersection(&column_selection),
            });
        }
        selection
    }

    /// Adds partition columns, applies the filter and projects one batch read from `file`.
    fn finish_batch(&self, file: &FileEntry, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        let rows = batch.num_rows();
        let mut columns: HashMap<&str, ArrayRef> = HashMap::new();
        for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
            let Ok(expected) = self.data_schema.field_with_name(field.name()) else {
                continue;
            };
            let array = if array.data_type() == expected.data_type() {
                array.clone()
            } else {
                cast_exact(expected.name(), array, expected.data_type())
                    .map_err(|e| contradicts_log(&file.path, e))?
            };
            columns.insert(expected.name().as_str(), array);
        }
        for &i in &self.data_needed {
            let field = self.data_schema.field(i);
            if !columns.contains_key(field.name().as_str()) && field.is_nullable() {
                columns.insert(
                    field.name().as_str(),
                    arrow::array::new_null_array(field.data_type(), rows),
                );
            }
        }
        let repeat = UInt32Array::from(vec![0u32; rows]);
        for (field, value) in self
            .snapshot
            .partitioning()
            .iter()
            .zip(&file.partition_values)
        {
            let single = value.to_array(&field.data_type)?;
            columns.insert(
                field.name.as_str(),
                arrow::compute::take(single.as_ref(), &repeat, None)?,
            );
        }
        // Everything read, in the dataset's column order; the filter sees it all.
        let (fields, arrays): (Vec<_>, Vec<_>) = self
            .full_schema
            .fields()
            .iter()
            .filter_map(|f| Some((f.clone(), columns.get(f.name().as_str())?.clone())))
            .unzip();
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
        let mut working =
            RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)?;
        if let Some(filter) = &self.filter {
            let mask = filter.evaluate(&working)?;
            working = filter_record_batch(&working, &mask)?;
        }
        if working.num_rows() == 0 {
            return Ok(None);
        }
        let output_columns = self
            .output
            .fields()
            .iter()
            .map(|f| {
                working
                    .column_by_name(f.name())
                    .cloned()
                    .ok_or_else(|| Error::CorruptFile {
                        path: file.path.clone(),
                        message: format!(
                            "it lacks column `{}` ({}), which the log says it has",
                            f.name(),
                            f.data_type()
                        ),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let options =
            arrow::array::RecordBatchOptions::new().with_row_count(Some(working.num_rows()));
        Ok(Some(RecordBatch::try_new_with_options(
            self.output.clone(),
            output_columns,
            &options,
        )?))
    }
}

/// The footer of the data file at `location` (of `size` bytes), naming the file in errors:
/// from the log store's cache when it holds it decoded, else read (and kept there).
pub(crate) async fn load_metadata_at(
    log: &LogStore,
    location: &object_store::path::Path,
    size: u64,
    page_index: bool,
) -> Result<ArrowReaderMetadata> {
    log.footer(location, size, page_index, async {
        let mut reader =
            ParquetObjectReader::new(log.store().clone(), location.clone()).with_file_size(size);
        ArrowReaderMetadata::load_async(&mut reader, reader_options(page_index))
            .await
            .map_err(|e| file_error(location, e))
    })
    .await
}

async fn load_metadata(context: &ReadContext, file: &FileEntry) -> Result<ArrowReaderMetadata> {
    load_metadata_at(
        &context.log,
        &context.log.child(&file.path)?,
        file.size,
        context.uses_page_index(),
    )
    .await
}

/// Footer reading options: with the page index when the scan prunes pages with it.
fn reader_options(page_index: bool) -> ArrowReaderOptions {
    let policy = if page_index {
        PageIndexPolicy::Optional
    } else {
        PageIndexPolicy::Skip
    };
    ArrowReaderOptions::new().with_page_index_policy(policy)
}

/// A data file the log names but the store does not have.
fn missing_file(location: &object_store::path::Path) -> Error {
    Error::NotFound {
        what: format!("data file {location} named by the log"),
    }
}

/// The error of reading the data file at `location` from the store.
fn read_error(location: &object_store::path::Path, source: object_store::Error) -> Error {
    match source {
        object_store::Error::NotFound { .. } => missing_file(location),
        source => Error::Store {
            path: location.to_string(),
            source,
        },
    }
}

fn file_error(location: &object_store::path::Path, e: parquet::errors::ParquetError) -> Error {
    if let parquet::errors::ParquetError::External(inner) = &e
        && let Some(store_error) = inner.downcast_ref::<object_store::Error>()
    {
        return match store_error {
            object_store::Error::NotFound { .. } => missing_file(location),
            other => Error::Store {
                path: location.to_string(),
                source: object_store::Error::Generic {
                    store: "dataset",
                    source: other.to_string().into(),
                },
            },
        };
    }
    Error::CorruptFile {
        path: location.to_string(),
        message: e.to_string(),
    }
}

/// A column of data file `path` whose type contradicts the log: the file is corrupt (the
/// error names it), not the caller's input.
fn contradicts_log(path: &str, error: Error) -> Error {
    match error {
        Error::SchemaMismatch {
            column,
            expected,
            found,
        } => Error::CorruptFile {
            path: path.to_string(),
            message: format!("its column `{column}` is {found}, the log says {expected}"),
        },
        other => other,
    }
}

/// What one reading task reads: a file, or a run of small files on the local disk.
enum ReadUnit {
    File(FileEntry),
    LocalSmallFiles(Vec<LocalFile>),
}

/// A small file on the local disk: its entry, its location in the store and its path.
struct LocalFile {
    file: FileEntry,
    location: object_store::path::Path,
    path: std::path::PathBuf,
}

/// Small files on the local disk read by one task, at most.
const LOCAL_SMALL_FILES_PER_TASK: usize = 64;

/// Bytes of small local files read by one task, at most.
const LOCAL_SMALL_BYTES_PER_TASK: u64 = 8 * WHOLE_FILE_BYTES;

/// `files` in the order given, cut into what one task reads each: consecutive small files
/// on the local disk go together (a thread switch, a channel and a batch of their own per
/// file would cost more than decoding a file of a few rows), any other file alone.
fn read_units(context: &ReadContext, files: Vec<FileEntry>) -> Vec<ReadUnit> {
    let mut units = Vec::new();
    let mut run: Vec<LocalFile> = Vec::new();
    let mut run_bytes = 0u64;
    for file in files {
        let local = (file.size <= WHOLE_FILE_BYTES)
            .then(|| context.log.child(&file.path).ok())
            .flatten()
            .and_then(|location| {
                let path = context.log.local_path(&location)?;
                Some((location, path))
            });
        let Some((location, path)) = local else {
            if !run.is_empty() {
                units.push(ReadUnit::LocalSmallFiles(std::mem::take(&mut run)));
                run_bytes = 0;
            }
            units.push(ReadUnit::File(file));
            continue;
        };
        if !run.is_empty()
            && (run.len() >= LOCAL_SMALL_FILES_PER_TASK
                || run_bytes + file.size > LOCAL_SMALL_BYTES_PER_TASK)
        {
            units.push(ReadUnit::LocalSmallFiles(std::mem::take(&mut run)));
            run_bytes = 0;
        }
        run_bytes += file.size;
        run.push(LocalFile {
            file,
            location,
            path,
        });
    }
    if !run.is_empty() {
        units.push(ReadUnit::LocalSmallFiles(run));
    }
    units
}

/// Starts reading a run of small files on the local disk on one blocking thread; returns
/// the stream of their batches, in order, joined up to the scan's batch size (rows of
/// different files share a batch).
fn spawn_local_small_reader(context: Arc<ReadContext>, files: Vec<LocalFile>) -> RecordBatchStream {
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<RecordBatch>>(2);
    // Batches are joined up to the rows the files hold at most, so that the joined
    // batch's buffers have room for the rows read, not for a whole batch.
    let rows: u64 = files.iter().map(|f| f.file.rows).sum();
    let batch_size = context
        .batch_size
        .min(usize::try_from(rows).unwrap_or(usize::MAX))
        .max(1);
    tokio::task::spawn_blocking(move || {
        // A panic would otherwise end the run's batches early, as if it had no more rows.
        let read = std::panic::catch_unwind(AssertUnwindSafe(|| {
            read_local_small_files(&context, &files, batch_size, &mut tx)
        }));
        if let Err(panic) = read {
            let path = files
                .first()
                .map(|f| f.file.path.as_str())
                .unwrap_or_default();
            let _ = futures::executor::block_on(tx.send(Err(panicked(path, panic))));
        }
    });
    rx.boxed()
}

/// Reads `files` (small files on the local disk) in order, sending their batches to `tx`
/// joined up to `batch_size` rows; stops when the consumer does.
fn read_local_small_files(
    context: &ReadContext,
    files: &[LocalFile],
    batch_size: usize,
    tx: &mut futures::channel::mpsc::Sender<Result<RecordBatch>>,
) {
    let mut joined: Option<BatchCoalescer> = None;
    for local in files {
        let mut open = true;
        let result = read_local_small_file(context, local, &mut |batch| {
            // A batch of another schema than the rows waiting (it does not happen: every
            // batch has the scan's output schema) closes the joined batch first.
            if joined
                .as_ref()
                .is_some_and(|j| j.schema() != batch.schema())
                && let Some(mut j) = joined.take()
            {
                j.finish_buffered_batch()
                    .map_err(|e| join_error(&local.location, e))?;
                open = hand_on(&mut j, tx);
                if !open {
                    return Ok(false);
                }
            }
            let j = joined.get_or_insert_with(|| BatchCoalescer::new(batch.schema(), batch_size));
            j.push_batch(batch)
                .map_err(|e| join_error(&local.location, e))?;
            open = hand_on(j, tx);
            Ok(open)
        });
        if let Err(e) = result {
            let _ = futures::executor::block_on(tx.send(Err(e)));
            return;
        }
        if !open {
            return; // the consumer stopped reading
        }
    }
    if let Some(mut j) = joined {
        match j.finish_buffered_batch() {
            Ok(()) => {
                hand_on(&mut j, tx);
            }
            Err(e) => {
                let location = files.last().map(|f| f.location.clone()).unwrap_or_default();
                let _ = futures::executor::block_on(tx.send(Err(join_error(&location, e))));
            }
        }
    }
}

/// Sends the batches `joined` has completed to `tx`; false once the consumer stopped
/// reading.
fn hand_on(
    joined: &mut BatchCoalescer,
    tx: &mut futures::channel::mpsc::Sender<Result<RecordBatch>>,
) -> bool {
    while let Some(done) = joined.next_completed_batch() {
        if futures::executor::block_on(tx.send(Ok(done))).is_err() {
            return false;
        }
    }
    true
}

/// The error of joining a file's batches with others' (their schemas disagree).
fn join_error(location: &object_store::path::Path, e: arrow::error::ArrowError) -> Error {
    Error::CorruptFile {
        path: location.to_string(),
        message: format!("its rows do not join those of the files before it: {e}"),
    }
}

/// Rows a file's reader decodes ahead of the consumer (in batches, at least two, and one
/// more that the channel holds for its sender).
/// With two batches, the readers of the files after the one being consumed stopped after
/// a few thousand rows each, and a full scan used one core of two: 185 against 134 ms for
/// two columns of 6 M rows at 65 536 rows, for 20 MB more at the peak of a scan of every
/// column.
const ROWS_AHEAD: usize = 65_536;

/// Starts reading one file on its own task; returns the stream of its batches.
fn spawn_file_reader(context: Arc<ReadContext>, file: FileEntry) -> RecordBatchStream {
    // The reader runs up to ROWS_AHEAD rows ahead of the consumer.
    let ahead = (ROWS_AHEAD / context.batch_size.max(1)).max(2);
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<RecordBatch>>(ahead);
    tokio::spawn(async move {
        // A panic would otherwise end the file's batches early, as if it had no more rows.
        let result = AssertUnwindSafe(read_file(&context, &file, &mut tx))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(panicked(&file.path, panic)));
        if let Err(e) = result {
            let _ = tx.send(Err(e)).await;
        }
    });
    rx.boxed()
}

/// The error of a panic while reading the file at `path` (relative to the dataset).
fn panicked(path: &str, panic: Box<dyn std::any::Any + Send>) -> Error {
    Error::CorruptFile {
        path: path.to_string(),
        message: format!("reading it panicked: {}", panic_message(panic.as_ref())),
    }
}

impl ReadContext {
    /// `builder` (over `file`, with its footer) set to read the row groups, pages and
    /// columns this scan keeps, up to its limit; `None` when it keeps none.
    fn configure<T>(
        &self,
        file: &FileEntry,
        metadata: &ArrowReaderMetadata,
        builder: ArrowReaderBuilder<T>,
    ) -> Result<Option<ArrowReaderBuilder<T>>> {
        let Some(read) = self.file_read(file, metadata)? else {
            return Ok(None);
        };
        Ok(Some(read.configure(builder, self.batch_size)))
    }

    /// The row groups, pages and columns of `file` (with its footer) this scan reads, up to
    /// its limit; `None` when it keeps none.
    fn file_read(
        &self,
        file: &FileEntry,
        metadata: &ArrowReaderMetadata,
    ) -> Result<Option<FileRead>> {
        let row_groups = self.keep_row_groups(file, metadata)?;
        if row_groups.is_empty() {
            return Ok(None);
        }
        let mask = self.projection(file, metadata)?;
        let selection = self.select_pages(file, metadata, &row_groups);
        if selection.as_ref().is_some_and(|s| !s.selects_any()) {
            return Ok(None);
        }
        let limit = match &self.filter {
            None => self.limit,
            Some(_) => None,
        };
        let row_group_rows = metadata.metadata().row_groups();
        let rows = row_groups
            .iter()
            .filter_map(|&i| row_group_rows.get(i))
            .map(|rg| usize::try_from(rg.num_rows()).unwrap_or(0))
            .sum();
        Ok(Some(FileRead {
            row_groups,
            mask,
            selection,
            limit,
            rows,
        }))
    }

    /// The file's columns this scan reads.
    fn projection(
        &self,
        file: &FileEntry,
        metadata: &ArrowReaderMetadata,
    ) -> Result<ProjectionMask> {
        let file_schema = metadata.schema().clone();
        let mut roots = Vec::new();
        for &i in &self.data_needed {
            let field = self.data_schema.field(i);
            match file_schema.index_of(field.name()) {
                Ok(j) => roots.push(j),
                // A column added to the dataset after this file was written: nulls.
                Err(_) if field.is_nullable() => {}
                Err(_) => {
                    return Err(Error::CorruptFile {
                        path: file.path.clone(),
                        message: format!(
                            "it lacks column `{}` ({}), which the log says it has",
                            field.name(),
                            field.data_type()
                        ),
                    });
                }
            }
        }
        Ok(ProjectionMask::roots(metadata.parquet_schema(), roots))
    }
}

/// [`read_file`] for a small file: one request for the whole file, then a decode from
/// memory.
async fn read_small_file(
    context: &ReadContext,
    file: &FileEntry,
    location: &object_store::path::Path,
    tx: &mut futures::channel::mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    let store_error = |source| read_error(location, source);
    let bytes = context
        .store
        .get(location)
        .await
        .map_err(store_error)?
        .bytes()
        .await
        .map_err(store_error)?;
    let Some(mut batches) = MemoryBatches::new(context, file, location, bytes).await? else {
        return Ok(());
    };
    while let Some(out) = batches.next_batch()? {
        if tx.send(Ok(out)).await.is_err() {
            return Ok(()); // the consumer stopped reading
        }
    }
    Ok(())
}

/// [`read_small_file`] for a file on the local disk, on a blocking thread: hands each
/// batch to `keep`, which says whether to go on.
fn read_local_small_file(
    context: &ReadContext,
    local: &LocalFile,
    keep: &mut dyn FnMut(RecordBatch) -> Result<bool>,
) -> Result<()> {
    let LocalFile {
        file,
        location,
        path,
    } = local;
    let bytes = match std::fs::read(path) {
        Ok(bytes) => Bytes::from(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing_file(location)),
        Err(e) => {
            return Err(Error::Store {
                path: location.to_string(),
                source: object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: Box::new(e),
                },
            });
        }
    };
    let batches = MemoryBatches::new(context, file, location, bytes);
    let Some(mut batches) = futures::executor::block_on(batches)? else {
        return Ok(());
    };
    while let Some(out) = batches.next_batch()? {
        if !keep(out)? {
            return Ok(()); // the consumer stopped reading
        }
    }
    Ok(())
}

/// The batches a scan keeps of a file held in memory (whole, or the ranges of a row group
/// that [`read_row_groups`] fetched), decoded one at a time.
struct MemoryBatches<'a> {
    context: &'a ReadContext,
    file: &'a FileEntry,
    location: &'a object_store::path::Path,
    reader: ParquetRecordBatchReader,
    /// Rows still wanted (a limit without a filter stops the read early).
    left: usize,
}

impl<'a> MemoryBatches<'a> {
    /// The reader of `bytes` (the whole file) with the scan's row groups, pages and
    /// columns; `None` when the scan keeps nothing of the file.
    async fn new(
        context: &'a ReadContext,
        file: &'a FileEntry,
        location: &'a object_store::path::Path,
        bytes: Bytes,
    ) -> Result<Option<Self>> {
        let page_index = context.uses_page_index();
        let metadata = context
            .log
            .footer(location, file.size, page_index, async {
                ArrowReaderMetadata::load(&bytes, reader_options(page_index))
                    .map_err(|e| file_error(location, e))
            })
            .await?;
        let Some(read) = context.file_read(file, &metadata)? else {
            return Ok(None);
        };
        let left = read.limit.unwrap_or(usize::MAX);
        let reader = match decode::applies(metadata.metadata()) {
            true => {
                let batch_size = read.batch_size(context.batch_size);
                decode::reader(
                    decode::FileBytes::Whole(bytes),
                    &metadata,
                    read.row_groups,
                    read.mask,
                    read.selection,
                    batch_size,
                )
            }
            false => read
                .configure(
                    ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, metadata),
                    context.batch_size,
                )
                .build(),
        };
        Ok(Some(MemoryBatches {
            context,
            file,
            location,
            reader: reader.map_err(|e| file_error(location, e))?,
            left,
        }))
    }

    /// The next batch the scan keeps, or `None` at the end.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        while self.left > 0 {
            let Some(batch) = self.reader.next() else {
                return Ok(None);
            };
            let mut batch = batch.map_err(|e| Error::CorruptFile {
                path: self.location.to_string(),
                message: e.to_string(),
            })?;
            if batch.num_rows() > self.left {
                batch = batch.slice(0, self.left);
            }
            self.left -= batch.num_rows();
            if let Some(out) = self.context.finish_batch(self.file, batch)? {
                return Ok(Some(out));
            }
        }
        Ok(None)
    }
}

/// What a scan reads of one file.
struct FileRead {
    row_groups: Vec<usize>,
    mask: ProjectionMask,
    selection: Option<RowSelection>,
    /// Rows to stop after (a limit without a filter).
    limit: Option<usize>,
    /// Rows in the row groups read.
    rows: usize,
}

impl FileRead {
    /// `batch_size`, or fewer when the row groups read hold fewer rows: the reader sizes
    /// its buffers by the batch size, and a small file's batches would otherwise keep
    /// (and carry into a writer's memory) room for rows that do not exist.
    fn batch_size(&self, batch_size: usize) -> usize {
        batch_size.min(self.rows).max(1)
    }

    /// `builder` set to read this, in batches of `batch_size` rows.
    fn configure<T>(
        self,
        builder: ArrowReaderBuilder<T>,
        batch_size: usize,
    ) -> ArrowReaderBuilder<T> {
        let batch_size = self.batch_size(batch_size);
        let mut builder = builder
            .with_row_groups(self.row_groups)
            .with_projection(self.mask)
            .with_batch_size(batch_size);
        if let Some(selection) = self.selection {
            builder = builder.with_row_selection(selection);
        }
        if let Some(limit) = self.limit {
            builder = builder.with_limit(limit);
        }
        builder
    }
}

/// Files read at once by default.
const FILES_AT_ONCE: usize = 4;

/// Files (or runs of small local files) read at once by default when every file of the
/// scan is read whole.
const SMALL_FILES_AHEAD: usize = 16;

/// Files up to this size are read whole, with one request, and decoded from memory: a
/// footer read and a data read would cost two round trips for what one brings.
const WHOLE_FILE_BYTES: u64 = 1 << 20;

async fn read_file(
    context: &ReadContext,
    file: &FileEntry,
    tx: &mut futures::channel::mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    let location = context.log.child(&file.path)?;
    if file.size <= WHOLE_FILE_BYTES {
        return read_small_file(context, file, &location, tx).await;
    }
    let metadata = load_metadata(context, file).await?;
    if decode::applies(metadata.metadata()) {
        let Some(read) = context.file_read(file, &metadata)? else {
            return Ok(());
        };
        return read_row_groups(context, file, &location, &metadata, read, tx).await;
    }
    let reader =
        ParquetObjectReader::new(context.store.clone(), location.clone()).with_file_size(file.size);
    let Some(builder) = context.configure(
        file,
        &metadata,
        ParquetRecordBatchStreamBuilder::new_with_metadata(reader, metadata.clone()),
    )?
    else {
        return Ok(());
    };
    let mut stream = builder.build().map_err(|e| file_error(&location, e))?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| file_error(&location, e))?;
        if let Some(out) = context.finish_batch(file, batch)?
            && tx.send(Ok(out)).await.is_err()
        {
            return Ok(()); // the consumer stopped reading
        }
    }
    Ok(())
}

/// [`read_file`] for a file whose column chunks dala decodes itself (see [`decode`]): a
/// row group at a time, the byte ranges it needs fetched with one `get_ranges` (which
/// joins near ones into one request), then decoded from memory.
async fn read_row_groups(
    context: &ReadContext,
    file: &FileEntry,
    location: &object_store::path::Path,
    metadata: &ArrowReaderMetadata,
    read: FileRead,
    tx: &mut futures::channel::mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    let parquet = metadata.metadata();
    let FileRead {
        row_groups,
        mask,
        mut selection,
        limit,
        ..
    } = read;
    // Rows still wanted (a limit without a filter stops the read early).
    let mut left = limit.unwrap_or(usize::MAX);
    for row_group in row_groups {
        // Stopped by the limit, or by the consumer (which a filter that keeps nothing
        // would not notice by sending).
        if left == 0 || tx.is_closed() {
            break;
        }
        let rows = usize::try_from(parquet.row_group(row_group).num_rows()).unwrap_or(0);
        let selected = selection.as_mut().map(|s| s.split_off(rows));
        if rows == 0 || selected.as_ref().is_some_and(|s| !s.selects_any()) {
            continue;
        }
        let ranges = decode::ranges(parquet, row_group, &mask, selected.as_ref(), file.size)
            .map_err(|e| file_error(location, e))?;
        let fetched = match ranges.is_empty() {
            true => Vec::new(),
            false => context
                .store
                .get_ranges(location, &ranges)
                .await
                .map_err(|source| read_error(location, source))?,
        };
        let bytes =
            decode::FileBytes::ranges(file.size, ranges.iter().map(|r| r.start).zip(fetched));
        let batch_size = context.batch_size.min(rows).max(1);
        let reader = decode::reader(
            bytes,
            metadata,
            vec![row_group],
            mask.clone(),
            selected,
            batch_size,
        )
        .map_err(|e| file_error(location, e))?;
        let mut batches = MemoryBatches {
            context,
            file,
            location,
            reader,
            left,
        };
        while let Some(out) = batches.next_batch()? {
            if tx.send(Ok(out)).await.is_err() {
                return Ok(()); // the consumer stopped reading
            }
        }
        left = batches.left;
    }
    Ok(())
}
