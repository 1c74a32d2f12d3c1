//! Fitting input batches to a dataset's schema. Only lossless casts are made: a value
//! that would change is a typed error naming the column and both types.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, new_null_array};
use arrow::compute::kernels::cmp::distinct;
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::{Error, Result};
use crate::options::SchemaMode;

/// Whether every value of type `from` is exactly representable in type `to`.
pub fn widens(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    if from == to {
        return true;
    }
    match (from, to) {
        (Null, _) => true,
        (Int8, Int16 | Int32 | Int64 | Float32 | Float64) => true,
        (Int16, Int32 | Int64 | Float32 | Float64) => true,
        (Int32, Int64 | Float64) => true,
        (UInt8, UInt16 | UInt32 | UInt64 | Int16 | Int32 | Int64 | Float32 | Float64) => true,
        (UInt16, UInt32 | UInt64 | Int32 | Int64 | Float32 | Float64) => true,
        (UInt32, UInt64 | Int64 | Float64) => true,
        (Float16, Float32 | Float64) => true,
        (Float32, Float64) => true,
        (Utf8, LargeUtf8 | Utf8View)
        | (LargeUtf8, Utf8 | Utf8View)
        | (Utf8View, Utf8 | LargeUtf8) => true,
        (Binary, LargeBinary | BinaryView)
        | (LargeBinary, Binary | BinaryView)
        | (BinaryView, Binary | LargeBinary) => true,
        (Dictionary(_, values), to) => widens(values, to),
        (Date32, Date64) => true,
        (Timestamp(a, tz_a), Timestamp(b, tz_b)) => tz_a == tz_b && b >= a,
        (Decimal128(p1, s1), Decimal128(p2, s2)) => {
            s2 >= s1 && i16::from(*p2) - i16::from(*s2) >= i16::from(*p1) - i16::from(*s1)
        }
        (Int8 | Int16 | Int32 | Int64, Decimal128(p, s)) => {
            let digits = match from {
                Int8 => 3,
                Int16 => 5,
                Int32 => 10,
                _ => 19,
            };
            i16::from(*p) - i16::from(*s) >= digits
        }
        _ => false,
    }
}

/// Whether values of type `from` can be stored as `to` when they fit: both hold the same
/// kind of value (integers, floats, timestamps of one time zone, dates, decimals, or
/// strings into a dictionary of strings), so that [`cast_exact`] can check each value.
pub fn narrows(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let string = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    match (from, to) {
        (a, b) if a.is_integer() && b.is_integer() => true,
        (a, b) if a.is_floating() && b.is_floating() => true,
        (Timestamp(_, a), Timestamp(_, b)) => a == b,
        (Date64, Date32) | (Decimal128(..), Decimal128(..)) => true,
        (a, Dictionary(key, values)) => string(a) && key.is_integer() && string(values),
        _ => false,
    }
}

/// `array` (the values of `column`) cast to `to`, provided no value changes: a widening
/// cast is made as it is; a narrowing one (see [`narrows`]) is cast back and compared, and
/// the first value that does not come back equal is a [`Error::ValueDoesNotFit`] naming
/// it. Types that hold different kinds of value are a [`Error::SchemaMismatch`].
pub fn cast_exact(column: &str, array: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    let from = array.data_type();
    if from == to {
        return Ok(array.clone());
    }
    if widens(from, to) {
        return Ok(cast_with_options(array, to, &CastOptions::default())?);
    }
    if !narrows(from, to) {
        return Err(Error::SchemaMismatch {
            column: column.to_string(),
            expected: to.to_string(),
            found: from.to_string(),
        });
    }
    // A safe cast turns what does not fit into nulls, which the round trip then shows.
    let narrowed = cast_with_options(array, to, &CastOptions::default())?;
    let back = cast_with_options(&narrowed, from, &CastOptions::default())?;
    let changed = distinct(array, &back)?;
    if let Some(row) = changed.values().set_indices().next() {
        let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
        return Err(Error::ValueDoesNotFit {
            column: column.to_string(),
            value: formatter.value(row).to_string(),
            data_type: to.to_string(),
        });
    }
    Ok(narrowed)
}

/// The data schema a dataset has after a write whose input has the columns of `input`
/// (partition columns, named in `partitions`, are left out). Under [`SchemaMode::Strict`]
/// it is `current`; under [`SchemaMode::Merge`], `current` with columns widened to the
/// input's types and the input's new columns added at the end (nullable). A column whose
/// types neither widens into the other is an error naming it.
pub(crate) fn evolve(
    current: &SchemaRef,
    input: &Schema,
    partitions: &[String],
    mode: SchemaMode,
) -> Result<SchemaRef> {
    if mode == SchemaMode::Strict {
        return Ok(current.clone());
    }
    let mut fields = Vec::with_capacity(current.fields().len());
    for field in current.fields() {
        match input.field_with_name(field.name()) {
            Ok(new) if widens(new.data_type(), field.data_type()) => fields.push(field.clone()),
            Ok(new) if widens(field.data_type(), new.data_type()) => fields.push(Arc::new(
                field
                    .as_ref()
                    .clone()
                    .with_data_type(new.data_type().clone()),
            )),
            Ok(new) => {
                return Err(Error::SchemaMismatch {
                    column: field.name().clone(),
                    expected: field.data_type().to_string(),
                    found: new.data_type().to_string(),
                });
            }
            Err(_) => fields.push(field.clone()),
        }
    }
    for field in input.fields() {
        if !partitions.contains(field.name()) && current.field_with_name(field.name()).is_err() {
            fields.push(Arc::new(field.as_ref().clone().with_nullable(true)));
        }
    }
    if fields.len() == current.fields().len()
        && fields.iter().zip(current.fields()).all(|(a, b)| a == b)
    {
        return Ok(current.clone());
    }
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        current.metadata().clone(),
    )))
}

/// `batch` with exactly the columns of `target`, in its order, each cast to its type where
/// that is lossless. A missing column (unless `missing_as_null` and the column is
/// nullable: then it is filled with nulls), an extra column, a narrowing type or a null in
/// a non-nullable column is an error naming the column. Columns named in `partitions` are
/// cast like partition values are (checked per value, not per type).
pub(crate) fn conform(
    batch: &RecordBatch,
    target: &SchemaRef,
    partitions: &[String],
    missing_as_null: bool,
) -> Result<RecordBatch> {
    if batch.schema() == *target {
        return Ok(batch.clone());
    }
    let source = batch.schema();
    if let Some(extra) = source
        .fields()
        .iter()
        .find(|f| target.field_with_name(f.name()).is_err())
    {
        return Err(Error::SchemaMismatch {
            column: extra.name().clone(),
            expected: "absent".into(),
            found: extra.data_type().to_string(),
        });
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let column = match batch.column_by_name(field.name()) {
            Some(column) => column,
            None if missing_as_null && field.is_nullable() => {
                columns.push(new_null_array(field.data_type(), batch.num_rows()));
                continue;
            }
            None => {
                return Err(Error::SchemaMismatch {
                    column: field.name().clone(),
                    expected: field.data_type().to_string(),
                    found: "absent".into(),
                });
            }
        };
        let column = if column.data_type() == field.data_type() {
            column.clone()
        } else if partitions.contains(field.name()) {
            let options = CastOptions {
                safe: false,
                ..Default::default()
            };
            cast_with_options(column, field.data_type(), &options).map_err(|e| {
                Error::InvalidPartition {
                    column: field.name().clone(),
                    value: column.data_type().to_string(),
                    reason: format!("cannot be stored as {}: {e}", field.data_type()),
                }
            })?
        } else if widens(column.data_type(), field.data_type()) {
            cast_with_options(column, field.data_type(), &CastOptions::default())?
        } else {
            return Err(Error::SchemaMismatch {
                column: field.name().clone(),
                expected: field.data_type().to_string(),
                found: column.data_type().to_string(),
            });
        };
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(Error::InvalidArgument(format!(
                "column `{}` is not nullable but the input has {} nulls in it",
                field.name(),
                column.null_count()
            )));
        }
        columns.push(column);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        target.clone(),
        columns,
        &options,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array, StringArray};
    use arrow::datatypes::Schema;
    use arrow::datatypes::{Field, TimeUnit};
    use std::sync::Arc;

    #[test]
    fn widening_is_lossless_only() {
        assert!(widens(&DataType::Int8, &DataType::Int64));
        assert!(widens(&DataType::Int32, &DataType::Float64));
        assert!(!widens(&DataType::Int64, &DataType::Float64));
        assert!(!widens(&DataType::Int64, &DataType::Int32));
        assert!(widens(&DataType::Float32, &DataType::Float64));
        assert!(!widens(&DataType::Float64, &DataType::Float32));
        assert!(widens(&DataType::Utf8, &DataType::LargeUtf8));
        let ms = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let us = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        assert!(widens(&ms, &us));
        assert!(!widens(&us, &ms));
        assert!(widens(
            &DataType::Decimal128(10, 2),
            &DataType::Decimal128(12, 2)
        ));
        assert!(!widens(
            &DataType::Decimal128(10, 2),
            &DataType::Decimal128(10, 3)
        ));
    }

    #[test]
    fn exact_casts_keep_every_value_or_name_the_first_that_changes() {
        let longs: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(255)]));
        let bytes = cast_exact("n", &longs, &DataType::UInt8).unwrap();
        assert_eq!(bytes.data_type(), &DataType::UInt8);
        assert_eq!(bytes.null_count(), 1);
        let error = cast_exact("n", &longs, &DataType::Int8).unwrap_err();
        assert!(
            matches!(&error, Error::ValueDoesNotFit { column, value, data_type }
                if column == "n" && value == "255" && data_type == "Int8"),
            "{error}"
        );
        let floats: ArrayRef = Arc::new(arrow::array::Float64Array::from(vec![0.5, 0.1]));
        let error = cast_exact("f", &floats, &DataType::Float32).unwrap_err();
        assert!(error.to_string().contains("0.1"), "{error}");
        let nanos: ArrayRef = Arc::new(arrow::array::TimestampNanosecondArray::from(vec![
            2_000_000_000,
            2_000_000_001,
        ]));
        let seconds = DataType::Timestamp(TimeUnit::Second, None);
        assert!(cast_exact("t", &nanos, &seconds).is_err());
        let words: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "a"]));
        let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        assert_eq!(
            cast_exact("s", &words, &dictionary).unwrap().data_type(),
            &dictionary
        );
        assert!(matches!(
            cast_exact("s", &words, &DataType::Int32),
            Err(Error::SchemaMismatch { .. })
        ));
    }

    #[test]
    fn conform_casts_reorders_and_names_the_offending_column() {
        let target = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let input = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("name", DataType::Utf8, true),
                Field::new("id", DataType::Int32, true),
            ])),
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(Int32Array::from(vec![1, 2])),
            ],
        )
        .unwrap();
        let out = conform(&input, &target, &[], false).unwrap();
        assert_eq!(out.schema(), target);
        assert_eq!(
            out.column(0).as_any().downcast_ref::<Int64Array>().unwrap(),
            &Int64Array::from(vec![1, 2])
        );

        let narrow = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let wide = conform(&out, &narrow, &[], false).unwrap_err();
        assert!(
            matches!(&wide, Error::SchemaMismatch { column, expected, found }
                if column == "id" && expected == "Int32" && found == "Int64"),
            "{wide}"
        );

        let with_null = RecordBatch::try_new(
            input.schema(),
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(Int32Array::from(vec![Some(1), None])),
            ],
        )
        .unwrap();
        let error = conform(&with_null, &target, &[], false).unwrap_err();
        assert!(error.to_string().contains("`id`"), "{error}");
    }
}
