//! Single typed values: partition values, column statistics and filter literals.
//!
//! A [`Scalar`] is stored in the log as a plain JSON value and read back with the
//! column's Arrow type, so the log stays small and readable.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
    LargeBinaryArray, StringArray, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, TimestampSecondArray, UInt64Array, new_null_array,
};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value;

use crate::error::{Error, Result};

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// One typed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// SQL null.
    Null,
    /// A boolean.
    Boolean(bool),
    /// A signed integer of any width.
    Int(i64),
    /// An unsigned integer of any width.
    UInt(u64),
    /// A floating point number of any width.
    Float(f64),
    /// A decimal: unscaled value, precision and scale.
    Decimal {
        /// The unscaled value.
        value: i128,
        /// Total digits.
        precision: u8,
        /// Digits after the point.
        scale: i8,
    },
    /// A string.
    Utf8(String),
    /// Bytes.
    Binary(Vec<u8>),
    /// A date, as days since 1970-01-01.
    Date(i32),
    /// A timestamp in a unit, with an optional time zone.
    Timestamp {
        /// Ticks since the epoch.
        value: i64,
        /// The tick unit.
        unit: TimeUnit,
        /// The time zone, if the column has one.
        tz: Option<Arc<str>>,
    },
}

impl Scalar {
    /// Bytes this value holds on the heap (a string's or binary's buffer).
    pub fn heap_size(&self) -> usize {
        match self {
            Scalar::Utf8(s) => s.capacity(),
            Scalar::Binary(b) => b.capacity(),
            _ => 0,
        }
    }

    /// Whether this is [`Scalar::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Scalar::Null)
    }

    /// Reads row `row` of `array`.
    pub fn from_array(array: &dyn Array, row: usize) -> Result<Scalar> {
        use arrow::array::AsArray;
        use arrow::datatypes::*;
        if array.is_null(row) {
            return Ok(Scalar::Null);
        }
        let s = match array.data_type() {
            DataType::Null => Scalar::Null,
            DataType::Boolean => Scalar::Boolean(array.as_boolean().value(row)),
            DataType::Int8 => Scalar::Int(array.as_primitive::<Int8Type>().value(row) as i64),
            DataType::Int16 => Scalar::Int(array.as_primitive::<Int16Type>().value(row) as i64),
            DataType::Int32 => Scalar::Int(array.as_primitive::<Int32Type>().value(row) as i64),
            DataType::Int64 => Scalar::Int(array.as_primitive::<Int64Type>().value(row)),
            DataType::UInt8 => Scalar::UInt(array.as_primitive::<UInt8Type>().value(row) as u64),
            DataType::UInt16 => Scalar::UInt(array.as_primitive::<UInt16Type>().value(row) as u64),
            DataType::UInt32 => Scalar::UInt(array.as_primitive::<UInt32Type>().value(row) as u64),
            DataType::UInt64 => Scalar::UInt(array.as_primitive::<UInt64Type>().value(row)),
            DataType::Float16 => {
                Scalar::Float(array.as_primitive::<Float16Type>().value(row).to_f64())
            }
            DataType::Float32 => {
                Scalar::Float(array.as_primitive::<Float32Type>().value(row) as f64)
            }
            DataType::Float64 => Scalar::Float(array.as_primitive::<Float64Type>().value(row)),
            DataType::Decimal128(p, s) => Scalar::Decimal {
                value: array.as_primitive::<Decimal128Type>().value(row),
                precision: *p,
                scale: *s,
            },
            DataType::Utf8 => Scalar::Utf8(array.as_string::<i32>().value(row).to_string()),
            DataType::LargeUtf8 => Scalar::Utf8(array.as_string::<i64>().value(row).to_string()),
            DataType::Utf8View => Scalar::Utf8(array.as_string_view().value(row).to_string()),
            DataType::Binary => Scalar::Binary(array.as_binary::<i32>().value(row).to_vec()),
            DataType::LargeBinary => Scalar::Binary(array.as_binary::<i64>().value(row).to_vec()),
            DataType::BinaryView => Scalar::Binary(array.as_binary_view().value(row).to_vec()),
            DataType::FixedSizeBinary(_) => {
                Scalar::Binary(array.as_fixed_size_binary().value(row).to_vec())
            }
            DataType::Date32 => Scalar::Date(array.as_primitive::<Date32Type>().value(row)),
            DataType::Date64 => Scalar::Date(
                (array.as_primitive::<Date64Type>().value(row)).div_euclid(86_400_000) as i32,
            ),
            DataType::Timestamp(unit, tz) => {
                let value = match unit {
                    TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row),
                    TimeUnit::Millisecond => {
                        array.as_primitive::<TimestampMillisecondType>().value(row)
                    }
                    TimeUnit::Microsecond => {
                        array.as_primitive::<TimestampMicrosecondType>().value(row)
                    }
                    TimeUnit::Nanosecond => {
                        array.as_primitive::<TimestampNanosecondType>().value(row)
                    }
                };
                Scalar::Timestamp {
                    value,
                    unit: *unit,
                    tz: tz.clone(),
                }
            }
            DataType::Dictionary(_, _) => {
                let dict = array.as_any_dictionary();
                let key = match Scalar::from_array(dict.keys(), row)? {
                    Scalar::Int(k) => usize::try_from(k).ok(),
                    Scalar::UInt(k) => usize::try_from(k).ok(),
                    _ => None,
                };
                let key = key.ok_or_else(|| {
                    Error::InvalidArgument(format!("invalid dictionary key at row {row}"))
                })?;
                Scalar::from_array(dict.values().as_ref(), key)?
            }
            other => {
                return Err(Error::Unsupported(format!("values of type {other}")));
            }
        };
        Ok(s)
    }

    /// A one-row array of `data_type` holding this value.
    ///
    /// A timestamp's value is an instant in UTC, with or without a zone (a literal without
    /// an offset is read as UTC), so it keeps its instant in a column of any zone, and a
    /// date becomes its midnight in UTC; Arrow's cast would read a value without a zone as
    /// local time in the column's.
    pub fn to_array(&self, data_type: &DataType) -> Result<ArrayRef> {
        if let DataType::Dictionary(_, values) = data_type {
            // The value in the dictionary's value type (the rules below hold there), then
            // packed.
            let value = self.to_array(values)?;
            return Ok(cast_with_options(&value, data_type, &exact_cast())?);
        }
        if let (Scalar::Date(days), DataType::Timestamp(unit, Some(zone))) = (self, data_type) {
            let per_day: i64 = match unit {
                TimeUnit::Second => 86_400,
                TimeUnit::Millisecond => 86_400_000,
                TimeUnit::Microsecond => 86_400_000_000,
                TimeUnit::Nanosecond => 86_400_000_000_000,
            };
            let value = i64::from(*days).checked_mul(per_day).ok_or_else(|| {
                Error::InvalidArgument(format!("date {self} does not fit type {data_type}"))
            })?;
            let midnight = Scalar::Timestamp {
                value,
                unit: *unit,
                tz: Some(zone.clone()),
            };
            return midnight.to_array(data_type);
        }
        if let (Scalar::Timestamp { value, unit, tz }, DataType::Timestamp(_, Some(zone))) =
            (self, data_type)
            && tz.as_ref() != Some(zone)
        {
            let zoned = Scalar::Timestamp {
                value: *value,
                unit: *unit,
                tz: Some(zone.clone()),
            };
            return zoned.to_array(data_type);
        }
        let canonical: ArrayRef = match self {
            Scalar::Null => return Ok(new_null_array(data_type, 1)),
            Scalar::Boolean(b) => Arc::new(BooleanArray::from(vec![*b])),
            Scalar::Int(v) => Arc::new(Int64Array::from(vec![*v])),
            Scalar::UInt(v) => Arc::new(UInt64Array::from(vec![*v])),
            Scalar::Float(v) => Arc::new(Float64Array::from(vec![*v])),
            Scalar::Decimal {
                value,
                precision,
                scale,
            } => Arc::new(
                Decimal128Array::from(vec![*value]).with_precision_and_scale(*precision, *scale)?,
            ),
            Scalar::Utf8(s) => Arc::new(StringArray::from(vec![s.as_str()])),
            Scalar::Binary(b) => Arc::new(LargeBinaryArray::from(vec![b.as_slice()])),
            Scalar::Date(d) => Arc::new(Date32Array::from(vec![*d])),
            Scalar::Timestamp { value, unit, tz } => match unit {
                TimeUnit::Second => {
                    Arc::new(TimestampSecondArray::from(vec![*value]).with_timezone_opt(tz.clone()))
                }
                TimeUnit::Millisecond => Arc::new(
                    TimestampMillisecondArray::from(vec![*value]).with_timezone_opt(tz.clone()),
                ),
                TimeUnit::Microsecond => Arc::new(
                    TimestampMicrosecondArray::from(vec![*value]).with_timezone_opt(tz.clone()),
                ),
                TimeUnit::Nanosecond => Arc::new(
                    TimestampNanosecondArray::from(vec![*value]).with_timezone_opt(tz.clone()),
                ),
            },
        };
        if canonical.data_type() == data_type {
            return Ok(canonical);
        }
        Ok(cast_with_options(&canonical, data_type, &exact_cast())?)
    }

    /// Converts this value to `data_type`'s domain, failing if it does not fit exactly.
    ///
    /// `'2024-03-01'` becomes a date for a date column, `'7'` an integer for an integer column.
    pub fn coerce_to(&self, data_type: &DataType) -> Result<Scalar> {
        if self.is_null() {
            return Ok(Scalar::Null);
        }
        if let Scalar::Utf8(text) = self {
            if !is_string_type(data_type) {
                return Scalar::parse(text, data_type);
            }
            return Ok(self.clone());
        }
        let array = self.to_array(data_type).map_err(|_| {
            Error::InvalidArgument(format!("value {self} does not fit type {data_type}"))
        })?;
        let back = Scalar::from_array(array.as_ref(), 0)?;
        if back.compare(self) != Some(Ordering::Equal) {
            return Err(Error::InvalidArgument(format!(
                "value {self} does not fit type {data_type} exactly"
            )));
        }
        Ok(back)
    }

    /// Parses `text` as a value of `data_type` (partition values, strings compared with a
    /// column). A value the type cannot hold exactly is refused: an integer out of its range,
    /// a time finer than its unit.
    pub fn parse(text: &str, data_type: &DataType) -> Result<Scalar> {
        let bad = || Error::InvalidArgument(format!("cannot read {text:?} as {data_type}"));
        let value = match data_type {
            DataType::Null => Scalar::Null,
            DataType::Boolean => match text.to_ascii_lowercase().as_str() {
                "true" => Scalar::Boolean(true),
                "false" => Scalar::Boolean(false),
                _ => return Err(bad()),
            },
            DataType::Int8 => Scalar::Int(parse_number::<i8>(text).ok_or_else(bad)?.into()),
            DataType::Int16 => Scalar::Int(parse_number::<i16>(text).ok_or_else(bad)?.into()),
            DataType::Int32 => Scalar::Int(parse_number::<i32>(text).ok_or_else(bad)?.into()),
            DataType::Int64 => Scalar::Int(parse_number(text).ok_or_else(bad)?),
            DataType::UInt8 => Scalar::UInt(parse_number::<u8>(text).ok_or_else(bad)?.into()),
            DataType::UInt16 => Scalar::UInt(parse_number::<u16>(text).ok_or_else(bad)?.into()),
            DataType::UInt32 => Scalar::UInt(parse_number::<u32>(text).ok_or_else(bad)?.into()),
            DataType::UInt64 => Scalar::UInt(parse_number(text).ok_or_else(bad)?),
            DataType::Float16 | DataType::Float32 | DataType::Float64 => {
                Scalar::Float(parse_number(text).ok_or_else(bad)?)
            }
            DataType::Decimal128(..) => {
                let array: ArrayRef = Arc::new(StringArray::from(vec![text]));
                let cast =
                    cast_with_options(&array, data_type, &exact_cast()).map_err(|_| bad())?;
                Scalar::from_array(cast.as_ref(), 0)?
            }
            DataType::Date32 | DataType::Date64 => Scalar::Date(parse_date(text).ok_or_else(bad)?),
            DataType::Timestamp(unit, tz) => {
                let value = Scalar::Timestamp {
                    value: parse_timestamp(text, *unit).ok_or_else(bad)?,
                    unit: *unit,
                    tz: tz.clone(),
                };
                // The unit must hold the time written, not a time cut to it.
                let written = parse_timestamp_scalar(text).ok_or_else(bad)?;
                if value.compare(&written) != Some(Ordering::Equal) {
                    return Err(Error::InvalidArgument(format!(
                        "cannot read {text:?} as {data_type}: the time is finer than its unit"
                    )));
                }
                value
            }
            DataType::Dictionary(_, value_type) => return Scalar::parse(text, value_type),
            t if is_string_type(t) => Scalar::Utf8(text.to_string()),
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
                Scalar::Binary(text.as_bytes().to_vec())
            }
            _ => return Err(bad()),
        };
        Ok(value)
    }

    /// Orders two values. Numbers compare across widths and kinds, timestamps across
    /// units; values of unrelated kinds, and nulls, do not compare.
    pub fn compare(&self, other: &Scalar) -> Option<Ordering> {
        use Scalar::*;
        match (self, other) {
            (Null, _) | (_, Null) => None,
            (Boolean(a), Boolean(b)) => Some(a.cmp(b)),
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (UInt(a), UInt(b)) => Some(a.cmp(b)),
            (Int(a), UInt(b)) => Some((*a as i128).cmp(&(*b as i128))),
            (UInt(a), Int(b)) => Some((*a as i128).cmp(&(*b as i128))),
            (Float(a), Float(b)) => compare_f64(*a, *b),
            (Int(a), Float(b)) => compare_f64(*a as f64, *b),
            (Float(a), Int(b)) => compare_f64(*a, *b as f64),
            (UInt(a), Float(b)) => compare_f64(*a as f64, *b),
            (Float(a), UInt(b)) => compare_f64(*a, *b as f64),
            (Decimal { .. }, _) | (_, Decimal { .. }) => {
                compare_f64(self.as_f64()?, other.as_f64()?)
            }
            (Utf8(a), Utf8(b)) => Some(a.cmp(b)),
            (Binary(a), Binary(b)) => Some(a.cmp(b)),
            (Date(a), Date(b)) => Some(a.cmp(b)),
            (Timestamp { .. }, Timestamp { .. })
            | (Date(_), Timestamp { .. })
            | (Timestamp { .. }, Date(_)) => Some(self.as_nanos()?.cmp(&other.as_nanos()?)),
            _ => None,
        }
    }

    /// The calendar day (UTC) of a date or a timestamp.
    pub fn to_date(&self) -> Option<chrono::NaiveDate> {
        let seconds = i64::try_from(self.as_nanos()?.div_euclid(1_000_000_000)).ok()?;
        Some(chrono::DateTime::from_timestamp(seconds, 0)?.date_naive())
    }

    /// A number's value as a float (integers, floats, decimals).
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Scalar::Int(v) => Some(*v as f64),
            Scalar::UInt(v) => Some(*v as f64),
            Scalar::Float(v) => Some(*v),
            Scalar::Decimal { value, scale, .. } => {
                Some(*value as f64 / 10f64.powi(i32::from(*scale)))
            }
            _ => None,
        }
    }

    fn as_nanos(&self) -> Option<i128> {
        match self {
            Scalar::Date(d) => Some(i128::from(*d) * 86_400 * 1_000_000_000),
            Scalar::Timestamp { value, unit, .. } => {
                let factor: i128 = match unit {
                    TimeUnit::Second => 1_000_000_000,
                    TimeUnit::Millisecond => 1_000_000,
                    TimeUnit::Microsecond => 1_000,
                    TimeUnit::Nanosecond => 1,
                };
                Some(i128::from(*value) * factor)
            }
            _ => None,
        }
    }

    /// The value as it appears in a hive directory name (before escaping).
    pub fn to_partition_text(&self) -> Option<String> {
        match self {
            Scalar::Null => None,
            Scalar::Utf8(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// The value as a JSON value for the log (read back with [`Scalar::from_json`]).
    pub fn to_json(&self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Boolean(b) => Value::Bool(*b),
            Scalar::Int(v) => Value::from(*v),
            Scalar::UInt(v) => Value::from(*v),
            Scalar::Float(v) if v.is_finite() => Value::from(*v),
            Scalar::Float(v) => Value::String(v.to_string()),
            Scalar::Decimal { value, .. } => Value::String(value.to_string()),
            Scalar::Utf8(s) => Value::String(s.clone()),
            Scalar::Binary(b) => Value::String(hex(b)),
            Scalar::Date(d) => match date_from_days(*d) {
                Some(date) => Value::String(date.to_string()),
                None => Value::from(*d),
            },
            Scalar::Timestamp { value, .. } => Value::from(*value),
        }
    }

    /// Reads a value written by [`Scalar::to_json`] for a column of `data_type`, as
    /// [`Scalar::from_json_text`] reads its text.
    pub fn from_json(value: &Value, data_type: &DataType) -> Result<Scalar> {
        Scalar::from_json_text(&value.to_string(), data_type)
    }

    /// Reads a value written by [`Scalar::to_json`] for a column of `data_type` from its
    /// JSON text, without building a JSON value first. `text` is one JSON value, as a parser
    /// checked it; the error of a value the type cannot hold names the text and the type.
    pub fn from_json_text(text: &str, data_type: &DataType) -> Result<Scalar> {
        let bad = || Error::InvalidArgument(format!("cannot read JSON {text} as {data_type}"));
        if text == "null" {
            return Ok(Scalar::Null);
        }
        let string = json_string(text);
        // A JSON number's text (the parser checked it is one).
        let number = || {
            (string.is_none() && text.starts_with(|c: char| c == '-' || c.is_ascii_digit()))
                .then_some(text)
        };
        // serde_json reads `-0` as the float -0.0, which the parsed form refuses as an
        // integer: so is its text.
        let integer = || {
            number()
                .filter(|t| *t != "-0")
                .and_then(|t| t.parse::<i64>().ok())
                .ok_or_else(bad)
        };
        let scalar = match data_type {
            DataType::Boolean => Scalar::Boolean(match text {
                "true" => true,
                "false" => false,
                _ => return Err(bad()),
            }),
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                Scalar::Int(integer()?)
            }
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
                Scalar::UInt(number().and_then(|t| t.parse().ok()).ok_or_else(bad)?)
            }
            DataType::Float16 | DataType::Float32 | DataType::Float64 => Scalar::Float(
                string
                    .as_deref()
                    .or_else(number)
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(bad)?,
            ),
            DataType::Decimal128(p, s) => Scalar::Decimal {
                value: string
                    .as_deref()
                    .ok_or_else(bad)?
                    .parse()
                    .map_err(|_| bad())?,
                precision: *p,
                scale: *s,
            },
            DataType::Date32 | DataType::Date64 => match string.as_deref() {
                Some(s) => Scalar::Date(parse_date(s).ok_or_else(bad)?),
                None => Scalar::Date(integer()? as i32),
            },
            DataType::Timestamp(unit, tz) => Scalar::Timestamp {
                value: integer()?,
                unit: *unit,
                tz: tz.clone(),
            },
            DataType::Dictionary(_, inner) => return Scalar::from_json_text(text, inner),
            t if is_string_type(t) => Scalar::Utf8(string.ok_or_else(bad)?.into_owned()),
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => {
                Scalar::Binary(unhex(string.as_deref().ok_or_else(bad)?).ok_or_else(bad)?)
            }
            _ => return Err(bad()),
        };
        Ok(scalar)
    }
}

/// The content of a JSON string's text (borrowed when it holds no escapes); `None` when
/// `text` is another kind of JSON value.
fn json_string(text: &str) -> Option<std::borrow::Cow<'_, str>> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    match inner.contains('\\') {
        false => Some(std::borrow::Cow::Borrowed(inner)),
        true => serde_json::from_str::<String>(text)
            .ok()
            .map(std::borrow::Cow::Owned),
    }
}

/// Orders two floats as SQL engines do (DuckDB, Polars): `-0.0` equals `0.0`, and every NaN
/// equals every other and is greater than any number.
fn compare_f64(a: f64, b: f64) -> Option<Ordering> {
    Some(sql_float(a).total_cmp(&sql_float(b)))
}

/// `value` as SQL engines compare it: `0.0` for `-0.0`, one NaN for every NaN. (In IEEE
/// arithmetic `-0.0 + 0.0` is `0.0`.)
pub(crate) fn sql_float(value: f64) -> f64 {
    if value.is_nan() {
        f64::NAN
    } else {
        value + 0.0
    }
}

/// Whether `data_type` holds strings (of any layout, or dictionary-encoded strings).
pub fn is_string_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_string_type(v),
        _ => false,
    }
}

/// Whether dala keeps min/max statistics for columns of `data_type`.
pub fn has_statistics(data_type: &DataType) -> bool {
    match data_type {
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(..)
        | DataType::Date32
        | DataType::Timestamp(..)
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => has_statistics(v),
        _ => false,
    }
}

/// Days since the epoch for a `YYYY-MM-DD` text.
pub fn parse_date(text: &str) -> Option<i32> {
    let text = text.trim();
    let date = match plain_date(text) {
        Some(date) => date,
        None => NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?,
    };
    Some(chrono::Datelike::num_days_from_ce(&date) - UNIX_EPOCH_DAYS_FROM_CE)
}

/// A date written with exactly four, two and two digits (what dala writes), without a
/// format parser; `None` for anything else.
fn plain_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number = |digits: &[u8]| -> Option<u32> {
        digits.iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(number(&b[0..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, number(&b[5..7])?, number(&b[8..10])?)
}

fn date_from_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(UNIX_EPOCH_DAYS_FROM_CE)?)
}

/// Ticks of `unit` since the epoch for an ISO-8601-like timestamp text (UTC when no offset).
pub fn parse_timestamp(text: &str, unit: TimeUnit) -> Option<i64> {
    let text = text.trim();
    let utc = if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        t.naive_utc()
    } else {
        let formats = [
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M",
        ];
        let parsed = formats
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok());
        match parsed {
            Some(t) => t,
            None => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()?
                .and_hms_opt(0, 0, 0)?,
        }
    };
    let utc = utc.and_utc();
    match unit {
        TimeUnit::Second => Some(utc.timestamp()),
        TimeUnit::Millisecond => Some(utc.timestamp_millis()),
        TimeUnit::Microsecond => Some(utc.timestamp_micros()),
        TimeUnit::Nanosecond => utc.timestamp_nanos_opt(),
    }
}

/// A timestamp text (see [`parse_timestamp`]) as a time without a zone, to the precision
/// it is written in: nanoseconds when it has digits below a microsecond, microseconds
/// otherwise (which reach past the year 2262, where nanoseconds end).
pub fn parse_timestamp_scalar(text: &str) -> Option<Scalar> {
    let (value, unit) = match parse_timestamp(text, TimeUnit::Nanosecond) {
        Some(nanos) if nanos % 1_000 != 0 => (nanos, TimeUnit::Nanosecond),
        _ => (
            parse_timestamp(text, TimeUnit::Microsecond)?,
            TimeUnit::Microsecond,
        ),
    };
    Some(Scalar::Timestamp {
        value,
        unit,
        tz: None,
    })
}

/// Cast options that fail on a value the target type cannot hold, instead of making it null.
fn exact_cast() -> CastOptions<'static> {
    CastOptions {
        safe: false,
        ..Default::default()
    }
}

/// `text` as a number of type `T`, white space around it ignored.
fn parse_number<T: std::str::FromStr>(text: &str) -> Option<T> {
    text.trim().parse().ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Null => write!(f, "NULL"),
            Scalar::Boolean(b) => write!(f, "{b}"),
            Scalar::Int(v) => write!(f, "{v}"),
            Scalar::UInt(v) => write!(f, "{v}"),
            Scalar::Float(v) => write!(f, "{v}"),
            Scalar::Decimal { value, scale, .. } => {
                if *scale <= 0 {
                    // The digits, then a zero for each place of a negative scale (a
                    // multiplication could overflow).
                    let zeros = if *value == 0 {
                        0
                    } else {
                        scale.unsigned_abs() as usize
                    };
                    return write!(f, "{value}{}", "0".repeat(zeros));
                }
                let scale = *scale as usize;
                let sign = if *value < 0 { "-" } else { "" };
                let digits = format!("{:0>width$}", value.unsigned_abs(), width = scale + 1);
                let (int, frac) = digits.split_at(digits.len() - scale);
                write!(f, "{sign}{int}.{frac}")
            }
            Scalar::Utf8(s) => write!(f, "{s}"),
            Scalar::Binary(b) => write!(f, "0x{}", hex(b)),
            Scalar::Date(d) => match date_from_days(*d) {
                Some(date) => write!(f, "{date}"),
                None => write!(f, "{d}"),
            },
            Scalar::Timestamp { value, unit, .. } => {
                // Per unit, so that times past 2262 (where nanoseconds overflow) print too.
                let time = match unit {
                    TimeUnit::Second => DateTime::from_timestamp(*value, 0),
                    TimeUnit::Millisecond => DateTime::from_timestamp_millis(*value),
                    TimeUnit::Microsecond => DateTime::from_timestamp_micros(*value),
                    TimeUnit::Nanosecond => Some(DateTime::from_timestamp_nanos(*value)),
                };
                match time {
                    Some(t) => write!(f, "{}", t.naive_utc()),
                    None => write!(f, "{value}"),
                }
            }
        }
    }
}

/// Builds an array of `data_type` from values (`None` and [`Scalar::Null`] become nulls).
///
/// Values are gathered in a wide array of their kind, then cast to `data_type`.
pub fn scalars_to_array(values: &[Option<&Scalar>], data_type: &DataType) -> Result<ArrayRef> {
    use arrow::array::{
        BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder,
        Int64Builder, StringBuilder, UInt64Builder,
    };
    let value_type = match data_type {
        DataType::Dictionary(_, v) => v.as_ref(),
        other => other,
    };
    let mismatch = |s: &Scalar| {
        Error::InvalidArgument(format!(
            "value {s} cannot be stored in a {data_type} column"
        ))
    };
    let wide: ArrayRef = match value_type {
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(values.len());
            for v in values {
                match v {
                    Some(Scalar::Boolean(x)) => b.append_value(*x),
                    None | Some(Scalar::Null) => b.append_null(),
                    Some(s) => return Err(mismatch(s)),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let mut b = Int64Builder::with_capacity(values.len());
            for v in values {
                match v {
                    Some(Scalar::Int(x)) => b.append_value(*x),
                    Some(Scalar::UInt(x)) => b.append_value(i64::try_from(*x).map_err(|_| {
                        Error::InvalidArgument(format!("{x} does not fit {data_type}"))
                    })?),
                    None | Some(Scalar::Null) => b.append_null(),
                    Some(s) => return Err(mismatch(s)),
                }
            }
            Arc::new(b.finish())
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            let mut b = UInt64Builder::with_capacity(values.len());
            for v in values {
                match v {
                    Some(Scalar::UInt(x)) => b.append_value(*x),
                    Some(Scalar::Int(x)) => b.append_value(u64::try_from(*x).map_err(|_| {
                        Error::InvalidArgument(format!("{x} does not fit {data_type}"))
                    })?),
                    None | Some(Scalar::Null) => b.append_null(),
                    Some(s) => return Err(mismatch(s)),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let mut b = Float64Builder::with_capacity(values.len());
            for v in values {
                match v {
                    Some(Scalar::Float(x)) => b.append_value(*x),
                    Some(Scalar::Int(x)) => b.append_value(*x as f64),
                    Some(Scalar::UInt(x)) => b.append_value(*x as f64),
                    None | Some(Scalar::Null) => b.append_null(),
                    Some(s) => return Err(mismatch(s)),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Decimal128(p, s) => {
            let mut b = Decimal128Builder::with_capacity(values.len());
            for v in values {
                match v {
                    Some(Scalar::Decimal { value, .. }) => b.append_value(*value),
                    None | Some(Scalar::Null) => b.append_null(),
                    Some(s) => return Err(mismatch(s)),
                }
            }
            Arc::new(b.finish().with_precision_and_scale(*p, *s)?)
        }
        DataType::Date32 | DataType::Date64 => {
            let mut b = Date32Builder::with_capacity(values.len());
            for v in values {
                match v {
                    Some(Scalar::Date(x)) => b.append_value(*x),
                    None | Some(Scalar::Null) => b.append_null(),
                    Some(s) => return Err(mismatch(s)),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Timestamp(unit, tz) => {
            let raw: Vec<Option<i64>> = values
                .iter()
                .map(|v| match v {
                    Some(Scalar::Timestamp { value, .. }) => Ok(Some(*value)),
                    None | Some(Scalar::Null) => Ok(None),
                    Some(s) => Err(mismatch(s)),
                })
                .collect::<Result<_>>()?;
            match unit {
                TimeUnit::Second => {
                    Arc::new(TimestampSecondArray::from(raw).with_timezone_opt(tz.clone()))
                }
                TimeUnit::Millisecond => {
                    Arc::new(TimestampMillisecondArray::from(raw).with_timezone_opt(tz.clone()))
                }
                TimeUnit::Microsecond => {
                    Arc::new(TimestampMicrosecondArray::from(raw).with_timezone_opt(tz.clone()))
                }
                TimeUnit::Nanosecond => {
                    Arc::new(TimestampNanosecondArray::from(raw).with_timezone_opt(tz.clone()))
                }
            }
        }
        t if is_string_type(t) => {
            let mut b = StringBuilder::with_capacity(values.len(), values.len() * 8);
            for v in values {
                match v {
                    Some(Scalar::Utf8(x)) => b.append_value(x),
                    None | Some(Scalar::Null) => b.append_null(),
                    Some(s) => return Err(mismatch(s)),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => {
            let mut b = BinaryBuilder::new();
            for v in values {
                match v {
                    Some(Scalar::Binary(x)) => b.append_value(x),
                    None | Some(Scalar::Null) => b.append_null(),
                    Some(s) => return Err(mismatch(s)),
                }
            }
            Arc::new(b.finish())
        }
        other => return Err(Error::Unsupported(format!("arrays of type {other}"))),
    };
    if wide.data_type() == data_type {
        return Ok(wide);
    }
    Ok(cast_with_options(&wide, data_type, &exact_cast())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_the_same_with_and_without_the_fast_path() {
        for text in [
            "1970-01-01",
            "1992-01-02",
            "2024-02-29",
            "0001-01-01",
            "9999-12-31",
        ] {
            let slow = NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
            assert_eq!(plain_date(text), Some(slow), "{text}");
        }
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date(" 1969-12-31 "), Some(-1));
        assert_eq!(parse_date("2024-3-5"), parse_date("2024-03-05"));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024/01/01",
            "20x4-01-01",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_text_is_read_by_the_column_type() {
        use arrow::datatypes::Field;
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int32, true)));
        let decimal = |value| Scalar::Decimal {
            value,
            precision: 15,
            scale: 2,
        };
        let read: [(&str, DataType, Option<Scalar>); 26] = [
            ("null", DataType::Int64, Some(Scalar::Null)),
            ("true", DataType::Boolean, Some(Scalar::Boolean(true))),
            ("1", DataType::Boolean, None),
            ("-5", DataType::Int32, Some(Scalar::Int(-5))),
            ("1.5", DataType::Int64, None),
            ("1e2", DataType::Int64, None),
            ("\"5\"", DataType::Int64, None),
            ("true", DataType::Int64, None),
            (
                "18446744073709551615",
                DataType::UInt64,
                Some(Scalar::UInt(u64::MAX)),
            ),
            ("-1", DataType::UInt64, None),
            ("-2.5e3", DataType::Float64, Some(Scalar::Float(-2500.0))),
            ("42", DataType::Float64, Some(Scalar::Float(42.0))),
            (
                "\"-inf\"",
                DataType::Float64,
                Some(Scalar::Float(f64::NEG_INFINITY)),
            ),
            (
                "\"12345\"",
                DataType::Decimal128(15, 2),
                Some(decimal(12345)),
            ),
            ("12345", DataType::Decimal128(15, 2), None),
            ("\"1970-01-02\"", DataType::Date32, Some(Scalar::Date(1))),
            ("-1", DataType::Date32, Some(Scalar::Date(-1))),
            ("\"2024-2-30\"", DataType::Date32, None),
            (
                "1700",
                utc.clone(),
                Some(Scalar::Timestamp {
                    value: 1700,
                    unit: TimeUnit::Microsecond,
                    tz: Some("UTC".into()),
                }),
            ),
            (
                r#""caf\u00e9 \"quoted\" \\ tab\t""#,
                DataType::Utf8,
                Some(Scalar::Utf8("café \"quoted\" \\ tab\t".into())),
            ),
            (
                "\"ünïcödé ✓\"",
                DataType::Utf8View,
                Some(Scalar::Utf8("ünïcödé ✓".into())),
            ),
            ("\"zz\"", dictionary, Some(Scalar::Utf8("zz".into()))),
            ("7", DataType::Utf8, None),
            (
                "\"00ff10\"",
                DataType::Binary,
                Some(Scalar::Binary(vec![0, 255, 16])),
            ),
            ("\"0g\"", DataType::Binary, None),
            ("[1]", list, None),
        ];
        for (text, data_type, expected) in read {
            // The text as the log holds it, and the value a parser made of it.
            let value: Value = serde_json::from_str(text).unwrap();
            for (got, shown) in [
                (Scalar::from_json_text(text, &data_type), text.to_string()),
                (Scalar::from_json(&value, &data_type), value.to_string()),
            ] {
                match &expected {
                    Some(expected) => assert_eq!(&got.unwrap(), expected, "{text} as {data_type}"),
                    None => {
                        let message = got.expect_err(text).to_string();
                        assert!(message.contains(&data_type.to_string()), "{message}");
                        assert!(message.contains(&shown), "{text}: {message}");
                    }
                }
            }
        }
        let nan = Scalar::from_json_text("\"NaN\"", &DataType::Float64).unwrap();
        assert!(matches!(nan, Scalar::Float(v) if v.is_nan()));
    }

    #[test]
    fn json_round_trip_by_type() {
        let cases = [
            (Scalar::Int(-5), DataType::Int16),
            (Scalar::UInt(7), DataType::UInt32),
            (Scalar::Float(1.5), DataType::Float64),
            (Scalar::Float(f64::NAN), DataType::Float64),
            (Scalar::Utf8("a=b/c".into()), DataType::Utf8),
            (Scalar::Date(19_000), DataType::Date32),
            (
                Scalar::Decimal {
                    value: 12345,
                    precision: 10,
                    scale: 2,
                },
                DataType::Decimal128(10, 2),
            ),
            (Scalar::Binary(vec![0, 255, 16]), DataType::Binary),
        ];
        for (scalar, data_type) in cases {
            let back = Scalar::from_json(&scalar.to_json(), &data_type).unwrap();
            match (&scalar, &back) {
                (Scalar::Float(a), Scalar::Float(b)) if a.is_nan() => assert!(b.is_nan()),
                _ => assert_eq!(scalar, back, "{data_type}"),
            }
        }
    }

    #[test]
    fn compares_across_numeric_kinds_and_time_units() {
        assert_eq!(
            Scalar::Int(3).compare(&Scalar::Float(3.5)),
            Some(Ordering::Less)
        );
        assert_eq!(
            Scalar::UInt(u64::MAX).compare(&Scalar::Int(-1)),
            Some(Ordering::Greater)
        );
        let day = Scalar::Date(1);
        let ts = Scalar::Timestamp {
            value: 86_400_000,
            unit: TimeUnit::Millisecond,
            tz: None,
        };
        assert_eq!(day.compare(&ts), Some(Ordering::Equal));
        assert_eq!(Scalar::Utf8("a".into()).compare(&Scalar::Int(1)), None);
    }

    #[test]
    fn a_time_keeps_its_instant_in_a_zoned_column_plain_or_dictionary() {
        let berlin = DataType::Timestamp(TimeUnit::Microsecond, Some("Europe/Berlin".into()));
        let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(berlin.clone()));
        let noon_utc = Scalar::Timestamp {
            value: 43_200_000_000,
            unit: TimeUnit::Microsecond,
            tz: None,
        };
        for data_type in [&berlin, &dictionary] {
            let array = noon_utc.to_array(data_type).unwrap();
            assert_eq!(array.data_type(), data_type);
            let back = Scalar::from_array(array.as_ref(), 0).unwrap();
            assert_eq!(
                back.compare(&noon_utc),
                Some(Ordering::Equal),
                "{data_type}"
            );
            assert_eq!(noon_utc.coerce_to(data_type).unwrap(), back);
        }
    }

    #[test]
    fn parses_and_coerces_text() {
        assert_eq!(
            Scalar::Utf8("1995-03-15".into())
                .coerce_to(&DataType::Date32)
                .unwrap(),
            Scalar::Date(parse_date("1995-03-15").unwrap())
        );
        assert_eq!(
            Scalar::Int(5).coerce_to(&DataType::Int8).unwrap(),
            Scalar::Int(5)
        );
        assert!(Scalar::Int(500).coerce_to(&DataType::Int8).is_err());
        assert!(Scalar::parse("x", &DataType::Int32).is_err());
        assert_eq!(
            Scalar::parse(" -128 ", &DataType::Int8).unwrap(),
            Scalar::Int(-128)
        );
        assert!(Scalar::parse("300", &DataType::Int8).is_err());
        assert!(Scalar::parse("-1", &DataType::UInt32).is_err());
        assert!(
            Scalar::Utf8("70000".into())
                .coerce_to(&DataType::UInt16)
                .is_err()
        );
        let seconds = DataType::Timestamp(TimeUnit::Second, None);
        assert_eq!(
            Scalar::parse("2024-01-01 00:00:01", &seconds).unwrap(),
            Scalar::Timestamp {
                value: 1_704_067_201,
                unit: TimeUnit::Second,
                tz: None
            }
        );
        let error = Scalar::parse("2024-01-01 00:00:01.5", &seconds).unwrap_err();
        assert!(error.to_string().contains("finer than its unit"), "{error}");
        let berlin_ms = DataType::Timestamp(TimeUnit::Millisecond, Some("Europe/Berlin".into()));
        assert_eq!(
            Scalar::parse("2024-01-01T00:00:00.123Z", &berlin_ms).unwrap(),
            Scalar::Timestamp {
                value: 1_704_067_200_123,
                unit: TimeUnit::Millisecond,
                tz: Some("Europe/Berlin".into())
            }
        );
        assert!(Scalar::parse("2024-01-01 00:00:00.1234", &berlin_ms).is_err());
        assert_eq!(Scalar::Date(0).to_string(), "1970-01-01");
        let d = Scalar::Decimal {
            value: -5,
            precision: 5,
            scale: 2,
        };
        assert_eq!(d.to_string(), "-0.05");
        let shown = |value, scale| {
            let precision = 38;
            (Scalar::Decimal {
                value,
                precision,
                scale,
            })
            .to_string()
        };
        assert_eq!(shown(-5, -2), "-500");
        assert_eq!(shown(0, -2), "0");
        assert_eq!(shown(7, 0), "7");
        assert!(shown(i128::MAX, -10).ends_with("0000000000"));
    }
}
