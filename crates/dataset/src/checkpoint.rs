//! Checkpoints: the whole file index at one version as a Parquet file, so that opening a
//! dataset reads one checkpoint plus at most K commits, never the whole history.
//!
//! Columns: `path`, `rows`, `size`, `added_version`, one `partition.<col>` column per
//! partition column (typed), and for each data column with statistics `min.<col>`,
//! `max.<col>` (the column's type) and `nulls.<col>`. The snapshot's schema,
//! partitioning and properties are kept in the file's key-value metadata.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, UInt64Type};
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layout::PartitionField;
use crate::log::LogStore;
use crate::scalar::{Scalar, has_statistics, scalars_to_array};
use crate::snapshot::{FileEntry, Snapshot};
use crate::stats::ColumnStats;

const METADATA_KEY: &str = "dala.snapshot";
/// The key of [`Snapshot::schema_since`], apart from [`METADATA_KEY`] so that checkpoints
/// stay readable by versions of dala that do not know it (they read it as unknown).
const SCHEMA_SINCE_KEY: &str = "dala.schema_since";

/// Index entries per row group of a checkpoint, and per batch its writer holds.
const CHUNK_FILES: usize = 8192;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointMeta {
    version: u64,
    timestamp: i64,
    schema: Schema,
    partitioning: Vec<PartitionField>,
    properties: BTreeMap<String, String>,
}

fn stats_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Dictionary(_, v) => v.as_ref().clone(),
        other => other.clone(),
    }
}

/// Writes the checkpoint of `snapshot` and updates the `_last_checkpoint` hint.
pub async fn write_checkpoint(log: &LogStore, snapshot: &Snapshot) -> Result<()> {
    let meta = CheckpointMeta {
        version: snapshot.version(),
        timestamp: snapshot.timestamp(),
        schema: snapshot.data_schema().as_ref().clone(),
        partitioning: snapshot.partitioning().to_vec(),
        properties: snapshot.properties().clone(),
    };
    let meta = serde_json::to_string(&meta)
        .map_err(|e| Error::InvalidArgument(format!("cannot encode checkpoint: {e}")))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(CHUNK_FILES))
        .set_key_value_metadata(Some(
            std::iter::once(KeyValue::new(METADATA_KEY.to_string(), meta))
                .chain(
                    snapshot
                        .schema_since()
                        .map(|v| KeyValue::new(SCHEMA_SINCE_KEY.to_string(), v.to_string())),
                )
                .collect(),
        ))
        .build();
    // The index goes out a chunk of entries at a time, each chunk one row group, so
    // that a checkpoint of many files holds one chunk in Arrow form, not all of them.
    let files: Vec<&FileEntry> = snapshot.files().collect();
    let schema = to_batch(snapshot, &[])?.schema();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, schema, Some(props))?;
    for chunk in files.chunks(CHUNK_FILES) {
        writer.write(&to_batch(snapshot, chunk)?)?;
    }
    writer.close()?;
    let path = log.checkpoint_path(snapshot.version());
    log.store()
        .put(&path, PutPayload::from(buffer))
        .await
        .map_err(|e| Error::store(&path, e))?;
    crate::failpoint::hit("checkpoint:after-data");
    log.write_last_checkpoint_hint(snapshot.version()).await
}

/// The entries of `files` (of `snapshot`) as rows of the checkpoint.
fn to_batch(snapshot: &Snapshot, files: &[&FileEntry]) -> Result<RecordBatch> {
    let mut fields = vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("size", DataType::UInt64, false),
        Field::new("added_version", DataType::UInt64, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(files.iter().map(|f| &f.path))),
        Arc::new(UInt64Array::from_iter_values(files.iter().map(|f| f.rows))),
        Arc::new(UInt64Array::from_iter_values(files.iter().map(|f| f.size))),
        Arc::new(UInt64Array::from_iter_values(
            files.iter().map(|f| f.added_version),
        )),
    ];
    for (i, field) in snapshot.partitioning().iter().enumerate() {
        let values: Vec<Option<&Scalar>> =
            files.iter().map(|f| f.partition_values.get(i)).collect();
        fields.push(Field::new(
            format!("partition.{}", field.name),
            field.data_type.clone(),
            true,
        ));
        columns.push(scalars_to_array(&values, &field.data_type)?);
    }
    for (i, field) in snapshot.data_schema().fields().iter().enumerate() {
        if !has_statistics(field.data_type()) {
            continue;
        }
        let data_type = stats_type(field.data_type());
        let stats: Vec<Option<&ColumnStats>> = files
            .iter()
            .map(|f| f.stats.get(i).and_then(Option::as_ref))
            .collect();
        let mins: Vec<Option<&Scalar>> = stats
            .iter()
            .map(|s| s.and_then(|s| s.min.as_ref()))
            .collect();
        let maxes: Vec<Option<&Scalar>> = stats
            .iter()
            .map(|s| s.and_then(|s| s.max.as_ref()))
            .collect();
        let nulls: UInt64Array = stats.iter().map(|s| s.and_then(|s| s.null_count)).collect();
        fields.push(Field::new(
            format!("min.{}", field.name()),
            data_type.clone(),
            true,
        ));
        columns.push(scalars_to_array(&mins, &data_type)?);
        fields.push(Field::new(
            format!("max.{}", field.name()),
            data_type.clone(),
            true,
        ));
        columns.push(scalars_to_array(&maxes, &data_type)?);
        fields.push(Field::new(
            format!("nulls.{}", field.name()),
            DataType::UInt64,
            true,
        ));
        columns.push(Arc::new(nulls));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// Reads the checkpoint of `version` (under its present name, else its former one).
pub async fn read_checkpoint(log: &LogStore, version: u64) -> Result<Snapshot> {
    let mut path = log.checkpoint_path(version);
    let bytes = match log.read_bytes(&path).await {
        Err(Error::NotFound { .. }) => {
            path = log.legacy_checkpoint_path(version);
            log.read_bytes(&path).await?
        }
        read => read?,
    };
    let corrupt = |message: String| Error::CorruptLog {
        path: path.to_string(),
        message,
    };
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| corrupt(e.to_string()))?;
    let value_of = |key: &str| {
        builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|k| k.key == key))
            .and_then(|k| k.value.clone())
    };
    let meta_text = value_of(METADATA_KEY).ok_or_else(|| corrupt("no snapshot metadata".into()))?;
    // Advisory: a value this version cannot read is taken as unknown, not as corruption.
    let schema_since = value_of(SCHEMA_SINCE_KEY).and_then(|text| {
        let version = text.parse::<u64>().ok();
        if version.is_none() {
            tracing::warn!(path = %path, value = %text, "checkpoint's {SCHEMA_SINCE_KEY} ignored");
        }
        version
    });
    let meta: CheckpointMeta =
        serde_json::from_str(&meta_text).map_err(|e| corrupt(e.to_string()))?;
    if meta.version != version {
        return Err(corrupt(format!("holds version {}", meta.version)));
    }
    let reader = builder
        .with_batch_size(65_536)
        .build()
        .map_err(|e| corrupt(e.to_string()))?;
    let mut files = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(e.to_string()))?;
        read_batch(&batch, &meta, &mut files).map_err(|e| corrupt(e.to_string()))?;
    }
    Ok(Snapshot::from_parts(
        meta.version,
        meta.timestamp,
        Arc::new(meta.schema),
        meta.partitioning,
        meta.properties,
        files,
        schema_since,
    ))
}

fn read_batch(batch: &RecordBatch, meta: &CheckpointMeta, out: &mut Vec<FileEntry>) -> Result<()> {
    let column = |name: &str| -> Result<&ArrayRef> {
        batch
            .column_by_name(name)
            .ok_or_else(|| Error::InvalidArgument(format!("missing column {name}")))
    };
    let u64s = |name: &str| -> Result<&UInt64Array> {
        column(name)?
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| Error::InvalidArgument(format!("column {name} is not UInt64")))
    };
    let paths = column("path")?
        .as_string_opt::<i32>()
        .ok_or_else(|| Error::InvalidArgument("column path is not Utf8".into()))?;
    let rows = u64s("rows")?;
    let sizes = u64s("size")?;
    let added = u64s("added_version")?;
    let partitions = meta
        .partitioning
        .iter()
        .map(|f| column(&format!("partition.{}", f.name)))
        .collect::<Result<Vec<_>>>()?;
    type StatColumns<'a> = Option<(&'a ArrayRef, &'a ArrayRef, &'a UInt64Array)>;
    let stats: Vec<StatColumns> = meta
        .schema
        .fields()
        .iter()
        .map(|f| {
            if !has_statistics(f.data_type()) {
                return Ok(None);
            }
            Ok(Some((
                column(&format!("min.{}", f.name()))?,
                column(&format!("max.{}", f.name()))?,
                u64s(&format!("nulls.{}", f.name()))?,
            )))
        })
        .collect::<Result<_>>()?;
    for row in 0..batch.num_rows() {
        let path = paths.value(row);
        if let Err(reason) = crate::layout::check_relative_path(path) {
            return Err(Error::InvalidArgument(format!(
                "names {path:?}, not a file inside the dataset: {reason}"
            )));
        }
        let partition_values = partitions
            .iter()
            .map(|a| Scalar::from_array(a.as_ref(), row))
            .collect::<Result<Vec<_>>>()?;
        let file_stats = stats
            .iter()
            .map(|s| -> Result<Option<ColumnStats>> {
                let Some((min, max, nulls)) = s else {
                    return Ok(None);
                };
                let min = Scalar::from_array(min.as_ref(), row)?;
                let max = Scalar::from_array(max.as_ref(), row)?;
                let null_count = (!nulls.is_null(row)).then(|| nulls.value(row));
                if min.is_null() && max.is_null() && null_count.is_none() {
                    return Ok(None);
                }
                Ok(Some(ColumnStats {
                    min: (!min.is_null()).then_some(min),
                    max: (!max.is_null()).then_some(max),
                    null_count,
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(FileEntry {
            path: path.to_string(),
            partition_values,
            rows: rows.value(row),
            size: sizes.value(row),
            stats: file_stats,
            added_version: added.value(row),
        });
    }
    Ok(())
}
