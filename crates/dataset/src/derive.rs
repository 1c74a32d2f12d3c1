//! Partition columns derived from a timestamp (or date) column on write: `year`, `month`,
//! `week` (ISO 8601 week of the year), `day` (of the month), `hour` (all `Int32`) and
//! `date` (`Date32`). Parts are taken in the column's time zone when it has one.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::cast;
use arrow::compute::kernels::temporal::{DatePart, date_part};
use arrow::datatypes::{DataType, Field, Schema};

use crate::error::{Error, Result};

/// The dataset property that records the column partitions are derived from, so that
/// later writes derive them too.
pub const TIMESTAMP_COLUMN_PROPERTY: &str = "partition.timestamp_column";

/// The part of a timestamp a partition column named `name` holds, if dala derives it.
fn part(name: &str) -> Option<Option<DatePart>> {
    Some(match name {
        "year" => Some(DatePart::Year),
        "month" => Some(DatePart::Month),
        "week" => Some(DatePart::WeekISO),
        "day" => Some(DatePart::Day),
        "hour" => Some(DatePart::Hour),
        "date" => None,
        _ => return None,
    })
}

/// `batch` with the partition columns in `names` that it lacks and that are parts of a
/// timestamp derived from `timestamp_column`.
pub(crate) fn derive_partitions(
    batch: &RecordBatch,
    names: &[String],
    timestamp_column: &str,
) -> Result<RecordBatch> {
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| batch.column_by_name(n).is_none() && part(n).is_some())
        .collect();
    if missing.is_empty() {
        return Ok(batch.clone());
    }
    let source = batch
        .column_by_name(timestamp_column)
        .ok_or_else(|| Error::UnknownColumn {
            column: timestamp_column.to_string(),
            context: Some("the timestamp column partitions are derived from".into()),
        })?;
    if !matches!(
        source.data_type(),
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
    ) {
        return Err(Error::InvalidArgument(format!(
            "partitions are derived from `{timestamp_column}`, which is {} (a timestamp or \
             date is needed)",
            source.data_type()
        )));
    }
    let schema = batch.schema();
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for name in missing {
        let values = match part(name).flatten() {
            Some(part) => date_part(source.as_ref(), part)?,
            None => cast(source.as_ref(), &DataType::Date32)?,
        };
        fields.push(Arc::new(Field::new(
            name.as_str(),
            values.data_type().clone(),
            source.is_nullable(),
        )));
        columns.push(values);
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
        columns,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Date32Type, Int32Type};

    #[test]
    fn parts_of_a_timestamp_in_its_time_zone() {
        // 2024-12-30T23:30:00Z is 2024-12-31 00:30 in Oslo (UTC+1), ISO week 1 of 2025.
        let ts = TimestampMicrosecondArray::from(vec![Some(1_735_601_400_000_000), None])
            .with_timezone("Europe/Oslo");
        let schema = Arc::new(Schema::new(vec![Field::new(
            "ts",
            ts.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(ts)]).unwrap();
        let names: Vec<String> = ["year", "month", "week", "day", "hour", "date"]
            .map(String::from)
            .to_vec();
        let out = derive_partitions(&batch, &names, "ts").unwrap();
        let int = |name: &str| {
            out.column_by_name(name)
                .unwrap()
                .as_primitive::<Int32Type>()
                .value(0)
        };
        assert_eq!(
            (
                int("year"),
                int("month"),
                int("week"),
                int("day"),
                int("hour")
            ),
            (2024, 12, 1, 31, 0)
        );
        let date = out
            .column_by_name("date")
            .unwrap()
            .as_primitive::<Date32Type>();
        assert_eq!(date.value(0), 20088); // 2024-12-31
        assert!(date.is_null(1));
        assert!(matches!(
            derive_partitions(&batch, &names, "nope"),
            Err(Error::UnknownColumn { .. })
        ));
    }
}
