//! Per-file and per-row-group column statistics: min, max and null count.
//!
//! Statistics come from the Parquet footer a writer just produced (or that adoption
//! read), are kept in the file index, and let a scan skip files and row groups.

use std::collections::HashMap;

use arrow::array::Array;
use arrow::datatypes::Schema;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::file::metadata::{ParquetMetaData, RowGroupMetaData};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::filter::StatsSource;
use crate::layout::PartitionField;
use crate::scalar::{Scalar, has_statistics};

/// Statistics of one column over a file or a row group. `None` means unknown.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ColumnStats {
    /// The smallest non-null value.
    pub min: Option<Scalar>,
    /// The largest non-null value.
    pub max: Option<Scalar>,
    /// How many values are null.
    pub null_count: Option<u64>,
}

/// Statistics of one column as the log stores them: `{"max": .., "min": .., "nulls": ..}`,
/// each optional, the values in the JSON form of the column's type.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogColumnStats {
    /// The largest non-null value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Value>,
    /// The smallest non-null value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Value>,
    /// How many values are null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nulls: Option<u64>,
}

impl ColumnStats {
    /// The statistics in the log's form.
    pub fn to_log(&self) -> LogColumnStats {
        LogColumnStats {
            max: self.max.as_ref().map(Scalar::to_json),
            min: self.min.as_ref().map(Scalar::to_json),
            nulls: self.null_count,
        }
    }

    /// Reads statistics written by [`ColumnStats::to_log`] for a column of `data_type`.
    pub fn from_log(
        stats: &LogColumnStats,
        data_type: &arrow::datatypes::DataType,
    ) -> Result<Self> {
        let scalar = |value: &Option<Value>| -> Result<Option<Scalar>> {
            match value {
                None | Some(Value::Null) => Ok(None),
                Some(v) => Scalar::from_json(v, data_type).map(Some),
            }
        };
        Ok(ColumnStats {
            min: scalar(&stats.min)?,
            max: scalar(&stats.max)?,
            null_count: stats.nulls,
        })
    }

    /// Reads statistics from the log's JSON text (see [`Scalar::from_json_text`]), as
    /// [`ColumnStats::from_log`] reads them parsed.
    pub(crate) fn from_log_text(
        stats: &crate::log::LogStatsText<'_>,
        data_type: &arrow::datatypes::DataType,
    ) -> Result<Self> {
        let scalar = |value: Option<&serde_json::value::RawValue>| -> Result<Option<Scalar>> {
            match value.map(|v| v.get()) {
                None | Some("null") => Ok(None),
                Some(text) => Scalar::from_json_text(text, data_type).map(Some),
            }
        };
        Ok(ColumnStats {
            min: scalar(stats.min)?,
            max: scalar(stats.max)?,
            null_count: stats.nulls,
        })
    }
}

/// Statistics of every data column of one file, aligned with the dataset's data schema.
pub type FileStats = Vec<Option<ColumnStats>>;

/// Computes file-level statistics from a Parquet footer for the columns of
/// `data_schema` (aligned with it), reading the footer through the file's own Arrow schema.
pub fn file_stats(
    metadata: &ParquetMetaData,
    file_schema: &Schema,
    data_schema: &Schema,
) -> FileStats {
    let row_groups: Vec<&RowGroupMetaData> = metadata.row_groups().iter().collect();
    data_schema
        .fields()
        .iter()
        .map(|field| {
            if !has_statistics(field.data_type()) {
                return None;
            }
            let per_group =
                row_group_stats(metadata, file_schema, field.name(), &row_groups).ok()?;
            Some(merge(&per_group))
        })
        .collect()
}

/// Statistics of one column in each of `row_groups`.
pub fn row_group_stats(
    metadata: &ParquetMetaData,
    schema: &Schema,
    column: &str,
    row_groups: &[&RowGroupMetaData],
) -> Result<Vec<(ColumnStats, u64)>> {
    let parquet_schema = metadata.file_metadata().schema_descr();
    let converter = StatisticsConverter::try_new(column, schema, parquet_schema)?;
    let mins = converter.row_group_mins(row_groups.iter().copied())?;
    let maxes = converter.row_group_maxes(row_groups.iter().copied())?;
    let nulls = converter.row_group_null_counts(row_groups.iter().copied())?;
    let mut out = Vec::with_capacity(row_groups.len());
    for (i, group) in row_groups.iter().enumerate() {
        let rows = group.num_rows().max(0) as u64;
        let null_count = (!nulls.is_null(i)).then(|| nulls.value(i));
        let min = Scalar::from_array(mins.as_ref(), i)?;
        let max = Scalar::from_array(maxes.as_ref(), i)?;
        out.push((
            ColumnStats {
                min: (!min.is_null()).then_some(min),
                max: (!max.is_null()).then_some(max),
                null_count,
            },
            rows,
        ));
    }
    Ok(out)
}

/// Combines row-group statistics into file statistics. A bound is known only if it is
/// known for every row group that has non-null values.
fn merge(groups: &[(ColumnStats, u64)]) -> ColumnStats {
    let mut min: Option<Scalar> = None;
    let mut max: Option<Scalar> = None;
    let mut null_count = Some(0u64);
    let mut bounds_known = true;
    for (stats, rows) in groups {
        null_count = match (null_count, stats.null_count) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        let all_null = stats.null_count == Some(*rows);
        if all_null {
            continue;
        }
        match (&stats.min, &stats.max) {
            (Some(lo), Some(hi)) => {
                if min
                    .as_ref()
                    .is_none_or(|m| lo.compare(m) == Some(std::cmp::Ordering::Less))
                {
                    min = Some(lo.clone());
                }
                if max
                    .as_ref()
                    .is_none_or(|m| hi.compare(m) == Some(std::cmp::Ordering::Greater))
                {
                    max = Some(hi.clone());
                }
            }
            _ => bounds_known = false,
        }
    }
    if !bounds_known {
        min = None;
        max = None;
    }
    ColumnStats {
        min,
        max,
        null_count,
    }
}

/// Looks statistics up by column name: data columns from [`FileStats`], partition
/// columns from the file's partition values (min = max = value).
pub struct StatsView<'a> {
    /// Position of each data column in `stats`, by name.
    pub data_columns: &'a HashMap<String, usize>,
    /// The partition columns.
    pub partitioning: &'a [PartitionField],
    /// Statistics of the data columns, aligned with the data schema.
    pub stats: &'a [Option<ColumnStats>],
    /// The partition values, aligned with `partitioning`.
    pub partition_values: &'a [Scalar],
    /// Rows in the file (or row group).
    pub rows: u64,
    /// When true, data column statistics are hidden (to count partition pruning apart).
    pub partitions_only: bool,
}

impl StatsView<'_> {
    fn partition_value(&self, column: &str) -> Option<&Scalar> {
        self.partitioning
            .iter()
            .position(|f| f.name == column)
            .and_then(|i| self.partition_values.get(i))
    }

    fn data_stats(&self, column: &str) -> Option<&ColumnStats> {
        if self.partitions_only {
            return None;
        }
        let i = *self.data_columns.get(column)?;
        self.stats.get(i)?.as_ref()
    }
}

impl StatsSource for StatsView<'_> {
    fn min(&self, column: &str) -> Option<Scalar> {
        match self.partition_value(column) {
            Some(v) if !v.is_null() => Some(v.clone()),
            Some(_) => None,
            None => self.data_stats(column)?.min.clone(),
        }
    }

    fn max(&self, column: &str) -> Option<Scalar> {
        match self.partition_value(column) {
            Some(v) if !v.is_null() => Some(v.clone()),
            Some(_) => None,
            None => self.data_stats(column)?.max.clone(),
        }
    }

    fn null_count(&self, column: &str) -> Option<u64> {
        match self.partition_value(column) {
            Some(v) => Some(if v.is_null() { self.rows } else { 0 }),
            None => self.data_stats(column)?.null_count,
        }
    }

    fn row_count(&self) -> Option<u64> {
        Some(self.rows)
    }
}
