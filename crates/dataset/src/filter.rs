//! Filter expressions: a small SQL-like predicate language over columns.
//!
//! An [`Expr`] is parsed from text ([`Expr::parse`]) or built in code ([`col`], [`lit`] and
//! the builder methods), checked against a schema ([`Expr::bind`]), evaluated exactly on a
//! [`RecordBatch`] ([`Expr::evaluate`]) and used to skip partitions, files and row groups
//! from their statistics ([`Expr::may_match`]).
//!
//! Evaluation follows SQL three-valued logic: a null in the result means "unknown", and
//! callers keep only the rows where the filter is true. `Display` writes SQL that DuckDB
//! accepts and that [`Expr::parse`] reads back.
//!
//! `LIKE` patterns use `%` and `_` as wildcards; as in DuckDB there is no escape character.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Datum, RecordBatch, StringArray};
use arrow::compute::kernels::cmp;
use arrow::compute::kernels::comparison::{ilike, like, nilike, nlike};
use arrow::compute::{and_kleene, cast, is_not_null, is_null, not, or_kleene};
use arrow::datatypes::{DataType, Schema, TimeUnit};

use crate::error::{Error, Result};
use crate::scalar::{Scalar, is_string_type, parse_date, parse_timestamp_scalar, sql_float};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
}

impl CompareOp {
    /// The operator with its operands swapped: `a < b` is `b > a`.
    pub fn flip(self) -> CompareOp {
        use CompareOp::*;
        match self {
            Eq => Eq,
            NotEq => NotEq,
            Lt => Gt,
            LtEq => GtEq,
            Gt => Lt,
            GtEq => LtEq,
        }
    }

    /// The operator that holds exactly when this one does not (for non-null operands).
    pub fn negate(self) -> CompareOp {
        use CompareOp::*;
        match self {
            Eq => NotEq,
            NotEq => Eq,
            Lt => GtEq,
            LtEq => Gt,
            Gt => LtEq,
            GtEq => Lt,
        }
    }

    /// Whether `a op b` holds when `a` compares to `b` as `ordering`.
    fn holds(self, ordering: Ordering) -> bool {
        use CompareOp::*;
        match self {
            Eq => ordering == Ordering::Equal,
            NotEq => ordering != Ordering::Equal,
            Lt => ordering == Ordering::Less,
            LtEq => ordering != Ordering::Greater,
            Gt => ordering == Ordering::Greater,
            GtEq => ordering != Ordering::Less,
        }
    }

    /// `left op right` by Arrow's comparison kernel for this operator; floats compare as SQL
    /// engines compare them (see [`sql_floats`]).
    fn kernel(self, left: &dyn Datum, right: &dyn Datum) -> Result<BooleanArray> {
        let ((left_array, left_scalar), (right_array, right_scalar)) = (left.get(), right.get());
        let (Some(left_floats), Some(right_floats)) =
            (sql_floats(left_array), sql_floats(right_array))
        else {
            return self.arrow_kernel(left, right);
        };
        let datum = |array: ArrayRef, scalar: bool| -> Box<dyn Datum> {
            match scalar {
                true => Box::new(arrow::array::Scalar::new(array)),
                false => Box::new(array),
            }
        };
        let left = datum(left_floats, left_scalar);
        let right = datum(right_floats, right_scalar);
        self.arrow_kernel(left.as_ref(), right.as_ref())
    }

    /// `left op right` by Arrow's comparison kernel for this operator.
    fn arrow_kernel(self, left: &dyn Datum, right: &dyn Datum) -> Result<BooleanArray> {
        use CompareOp::*;
        let result = match self {
            Eq => cmp::eq(left, right),
            NotEq => cmp::neq(left, right),
            Lt => cmp::lt(left, right),
            LtEq => cmp::lt_eq(left, right),
            Gt => cmp::gt(left, right),
            GtEq => cmp::gt_eq(left, right),
        };
        Ok(result?)
    }

    fn from_symbol(symbol: &str) -> Option<CompareOp> {
        use CompareOp::*;
        Some(match symbol {
            "=" | "==" => Eq,
            "!=" | "<>" => NotEq,
            "<" => Lt,
            "<=" => LtEq,
            ">" => Gt,
            ">=" => GtEq,
            _ => return None,
        })
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CompareOp::*;
        f.write_str(match self {
            Eq => "=",
            NotEq => "<>",
            Lt => "<",
            LtEq => "<=",
            Gt => ">",
            GtEq => ">=",
        })
    }
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A column, by name. As a condition on its own it must be boolean.
    Column(String),
    /// A constant.
    Literal(Scalar),
    /// `left op right`; the parser puts the column on the left where there is one.
    Compare {
        /// The left operand (a column or literal).
        left: Box<Expr>,
        /// The operator.
        op: CompareOp,
        /// The right operand (a column or literal).
        right: Box<Expr>,
    },
    /// `expr [NOT] IN (list)`.
    InList {
        /// The tested value (a column or literal).
        expr: Box<Expr>,
        /// The candidate values.
        list: Vec<Scalar>,
        /// Whether this is `NOT IN`.
        negated: bool,
    },
    /// `expr [NOT] BETWEEN low AND high`, bounds included.
    Between {
        /// The tested value (a column or literal).
        expr: Box<Expr>,
        /// The lower bound.
        low: Scalar,
        /// The upper bound.
        high: Scalar,
        /// Whether this is `NOT BETWEEN`.
        negated: bool,
    },
    /// `expr [NOT] LIKE pattern` or `ILIKE`.
    Like {
        /// The tested string (a column or literal).
        expr: Box<Expr>,
        /// The pattern, with `%` and `_` wildcards.
        pattern: String,
        /// Whether this is `NOT LIKE`.
        negated: bool,
        /// Whether this is `ILIKE`.
        case_insensitive: bool,
    },
    /// `expr IS [NOT] NULL`.
    IsNull {
        /// The tested value (a column or literal).
        expr: Box<Expr>,
        /// Whether this is `IS NOT NULL`.
        negated: bool,
    },
    /// Both conditions.
    And(Box<Expr>, Box<Expr>),
    /// Either condition.
    Or(Box<Expr>, Box<Expr>),
    /// The negated condition.
    Not(Box<Expr>),
}

/// A column reference.
pub fn col(name: impl Into<String>) -> Expr {
    Expr::Column(name.into())
}

/// A literal value.
pub fn lit(value: impl Into<Scalar>) -> Expr {
    Expr::Literal(value.into())
}

impl From<i64> for Scalar {
    fn from(value: i64) -> Self {
        Scalar::Int(value)
    }
}

impl From<i32> for Scalar {
    fn from(value: i32) -> Self {
        Scalar::Int(i64::from(value))
    }
}

impl From<u64> for Scalar {
    fn from(value: u64) -> Self {
        Scalar::UInt(value)
    }
}

impl From<f64> for Scalar {
    fn from(value: f64) -> Self {
        Scalar::Float(value)
    }
}

impl From<bool> for Scalar {
    fn from(value: bool) -> Self {
        Scalar::Boolean(value)
    }
}

impl From<&str> for Scalar {
    fn from(value: &str) -> Self {
        Scalar::Utf8(value.to_string())
    }
}

impl From<String> for Scalar {
    fn from(value: String) -> Self {
        Scalar::Utf8(value)
    }
}

/// Where statistics for pruning come from: a partition, a file or a row group.
pub trait StatsSource {
    /// The smallest non-null value of `column`; `None` when unknown.
    fn min(&self, column: &str) -> Option<Scalar>;
    /// The largest non-null value of `column`; `None` when unknown.
    fn max(&self, column: &str) -> Option<Scalar>;
    /// How many values of `column` are null; `None` when unknown.
    fn null_count(&self, column: &str) -> Option<u64>;
    /// How many rows there are; `None` when unknown.
    fn row_count(&self) -> Option<u64>;
}

impl Expr {
    /// `self = other`.
    pub fn eq(self, other: Expr) -> Expr {
        compare(self, CompareOp::Eq, other)
    }

    /// `self <> other`.
    pub fn not_eq(self, other: Expr) -> Expr {
        compare(self, CompareOp::NotEq, other)
    }

    /// `self < other`.
    pub fn lt(self, other: Expr) -> Expr {
        compare(self, CompareOp::Lt, other)
    }

    /// `self <= other`.
    pub fn lt_eq(self, other: Expr) -> Expr {
        compare(self, CompareOp::LtEq, other)
    }

    /// `self > other`.
    pub fn gt(self, other: Expr) -> Expr {
        compare(self, CompareOp::Gt, other)
    }

    /// `self >= other`.
    pub fn gt_eq(self, other: Expr) -> Expr {
        compare(self, CompareOp::GtEq, other)
    }

    /// `self AND other`.
    pub fn and(self, other: Expr) -> Expr {
        Expr::And(Box::new(self), Box::new(other))
    }

    /// `self OR other`.
    pub fn or(self, other: Expr) -> Expr {
        Expr::Or(Box::new(self), Box::new(other))
    }

    /// `NOT self`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }

    /// `self IS NULL`.
    pub fn is_null(self) -> Expr {
        Expr::IsNull {
            expr: Box::new(self),
            negated: false,
        }
    }

    /// `self IS NOT NULL`.
    pub fn is_not_null(self) -> Expr {
        Expr::IsNull {
            expr: Box::new(self),
            negated: true,
        }
    }

    /// `self IN (list)`, or `NOT IN` when `negated`.
    pub fn in_list(self, list: Vec<Scalar>, negated: bool) -> Expr {
        Expr::InList {
            expr: Box::new(self),
            list,
            negated,
        }
    }

    /// `self BETWEEN low AND high`.
    pub fn between(self, low: Scalar, high: Scalar) -> Expr {
        Expr::Between {
            expr: Box::new(self),
            low,
            high,
            negated: false,
        }
    }

    /// `self LIKE pattern`.
    pub fn like(self, pattern: &str) -> Expr {
        Expr::Like {
            expr: Box::new(self),
            pattern: pattern.to_string(),
            negated: false,
            case_insensitive: false,
        }
    }

    /// Parses filter text such as `year = 2024 AND name LIKE 'a%'`.
    ///
    /// Errors are [`Error::InvalidFilter`] with the byte offset of the offending token.
    pub fn parse(text: &str) -> Result<Expr> {
        let mut parser = Parser {
            text,
            tokens: tokenize(text)?,
            pos: 0,
        };
        parser.parse_all()
    }

    /// The conditions that must all hold: the operands of nested `AND`s, in order (the
    /// expression itself when it is no `AND`).
    pub fn conjuncts(&self) -> Vec<&Expr> {
        match self {
            Expr::And(left, right) => {
                let mut all = left.conjuncts();
                all.extend(right.conjuncts());
                all
            }
            other => vec![other],
        }
    }

    /// The names of all columns the expression refers to.
    pub fn columns(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        self.collect_columns(&mut names);
        names
    }

    fn collect_columns(&self, names: &mut BTreeSet<String>) {
        match self {
            Expr::Column(name) => {
                names.insert(name.clone());
            }
            Expr::Literal(_) => {}
            Expr::Compare { left, right, .. } | Expr::And(left, right) | Expr::Or(left, right) => {
                left.collect_columns(names);
                right.collect_columns(names);
            }
            Expr::InList { expr, .. }
            | Expr::Between { expr, .. }
            | Expr::Like { expr, .. }
            | Expr::IsNull { expr, .. }
            | Expr::Not(expr) => expr.collect_columns(names),
        }
    }

    /// Every literal value of the expression, in order (list items and bounds included).
    pub fn literals(&self) -> Vec<&Scalar> {
        let mut values = Vec::new();
        self.collect_literals(&mut values);
        values
    }

    fn collect_literals<'e>(&'e self, values: &mut Vec<&'e Scalar>) {
        match self {
            Expr::Column(_) => {}
            Expr::Literal(value) => values.push(value),
            Expr::Compare { left, right, .. } | Expr::And(left, right) | Expr::Or(left, right) => {
                left.collect_literals(values);
                right.collect_literals(values);
            }
            Expr::InList { expr, list, .. } => {
                expr.collect_literals(values);
                values.extend(list);
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                expr.collect_literals(values);
                values.extend([low, high]);
            }
            Expr::Like { expr, .. } | Expr::IsNull { expr, .. } | Expr::Not(expr) => {
                expr.collect_literals(values)
            }
        }
    }

    /// Checks the expression against `schema` and converts each literal to the type of the
    /// column it is compared with (`d = '1995-03-15'` on a date column gives a date).
    ///
    /// A number that does not fit the column's type exactly (`int8_col < 1000`) is kept as
    /// it is; evaluation then compares in a wider type.
    pub fn bind(&self, schema: &Schema) -> Result<Expr> {
        self.bind_node(schema).map_err(|e| self.in_context(e))
    }

    /// The value of an expression that reads no column: true, false or null.
    fn constant(&self) -> Result<Scalar> {
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(1));
        let batch = RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options)?;
        let value = self.eval(&batch)?;
        Ok(match value.is_null(0) {
            true => Scalar::Null,
            false => Scalar::Boolean(value.value(0)),
        })
    }

    /// Evaluates the expression on every row of `batch`: true, false, or null for unknown.
    ///
    /// Meant for a bound expression, but literals are converted here too if needed.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        self.eval(batch).map_err(|e| self.in_context(e))
    }

    /// Whether some row described by `stats` may satisfy the filter. `false` only when it is
    /// certain that none does, so the partition, file or row group can be skipped.
    pub fn may_match(&self, stats: &dyn StatsSource) -> bool {
        self.may_be_true(stats)
    }

    /// Whether every row described by `stats` satisfies the filter (true, not null). `true`
    /// only when it is certain, so that a whole file can be dropped without being read.
    pub fn must_match(&self, stats: &dyn StatsSource) -> bool {
        !self.may_be_false(stats)
            && !self.has_null_literal()
            && self
                .columns()
                .iter()
                .all(|c| stats.null_count(c) == Some(0))
    }

    /// Whether a null literal appears anywhere (it makes comparisons unknown).
    fn has_null_literal(&self) -> bool {
        self.literals().into_iter().any(Scalar::is_null)
    }

    fn in_context(&self, error: Error) -> Error {
        match error {
            Error::UnknownColumn {
                column,
                context: None,
            } => Error::UnknownColumn {
                column,
                context: Some(format!("in filter `{self}`")),
            },
            other => other,
        }
    }
}

impl FromStr for Expr {
    type Err = Error;

    fn from_str(text: &str) -> Result<Expr> {
        Expr::parse(text)
    }
}

/// `left op right` with a column on the left where there is one.
fn compare(left: Expr, op: CompareOp, right: Expr) -> Expr {
    let (left, op, right) = match (&left, &right) {
        (Expr::Literal(_), Expr::Column(_)) => (right, op.flip(), left),
        _ => (left, op, right),
    };
    Expr::Compare {
        left: Box::new(left),
        op,
        right: Box::new(right),
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidFilter {
        position: 0,
        message: message.into(),
    }
}

fn unknown_column(name: &str) -> Error {
    Error::UnknownColumn {
        column: name.to_string(),
        context: None,
    }
}

/// The type of the values, looking through dictionary encoding.
pub fn value_type(data_type: &DataType) -> &DataType {
    match data_type {
        DataType::Dictionary(_, values) => values,
        other => other,
    }
}

/// The type dala's reader compares two columns of types `a` and `b` in, if they compare.
/// Engines that compare in their own types cast both columns to it.
pub fn common_type(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    let fits_i64 = |t: &DataType| t.is_signed_integer() || matches!(t, UInt8 | UInt16 | UInt32);
    let finer = |x: &TimeUnit, y: &TimeUnit| {
        let rank = |u: &TimeUnit| match u {
            TimeUnit::Second => 0,
            TimeUnit::Millisecond => 1,
            TimeUnit::Microsecond => 2,
            TimeUnit::Nanosecond => 3,
        };
        if rank(x) >= rank(y) { *x } else { *y }
    };
    Some(match (a, b) {
        _ if a == b => a.clone(),
        _ if is_string_type(a) && is_string_type(b) => Utf8,
        _ if fits_i64(a) && fits_i64(b) => Int64,
        _ if a.is_integer() && b.is_integer() => Decimal128(38, 0),
        (Decimal128(_, s), i) | (i, Decimal128(_, s)) if i.is_integer() && (0..=18).contains(s) => {
            Decimal128(38, *s)
        }
        _ if a.is_numeric() && b.is_numeric() => Float64,
        (Date32 | Date64, Date32 | Date64) => Date32,
        (Timestamp(unit, tz), Date32 | Date64) | (Date32 | Date64, Timestamp(unit, tz)) => {
            Timestamp(*unit, tz.clone())
        }
        (Timestamp(x, x_tz), Timestamp(y, y_tz))
            if x_tz == y_tz || x_tz.is_none() || y_tz.is_none() =>
        {
            Timestamp(finer(x, y), x_tz.clone().or_else(|| y_tz.clone()))
        }
        _ => return None,
    })
}

/// Whether two columns hold times that only one of them places in a zone, or in different
/// zones: the engines would each compare them in a zone of their own choosing (Arrow's
/// cast reads a time without a zone as local time in the other's).
fn zones_differ(a: &DataType, b: &DataType) -> bool {
    use DataType::*;
    match (a, b) {
        (Timestamp(_, x), Timestamp(_, y)) => x != y,
        (Timestamp(_, Some(_)), Date32 | Date64) | (Date32 | Date64, Timestamp(_, Some(_))) => true,
        _ => false,
    }
}

/// The type to compare a column of `column` type with `value` in when `value` does not fit
/// the column's type exactly.
/// Engines that compare in their own types use it to widen a column as dala's reader does
/// (a column of milliseconds to the microseconds of `TIMESTAMP '… 00:00:00.0105'`).
pub fn wider_type(column: &DataType, value: &Scalar) -> Option<DataType> {
    let literal = match value {
        Scalar::Int(_) => DataType::Int64,
        Scalar::UInt(_) => DataType::UInt64,
        Scalar::Float(_) => DataType::Float64,
        Scalar::Decimal {
            precision, scale, ..
        } => DataType::Decimal128(*precision, *scale),
        Scalar::Date(_) => DataType::Date32,
        Scalar::Timestamp { unit, tz, .. } => DataType::Timestamp(*unit, tz.clone()),
        _ => return None,
    };
    common_type(value_type(column), &literal)
}

// ---------------------------------------------------------------------------------------
// Binding

fn column_type<'s>(schema: &'s Schema, name: &str) -> Result<&'s DataType> {
    schema
        .field_with_name(name)
        .map(|field| field.data_type())
        .map_err(|_| unknown_column(name))
}

/// `value` as a column of `data_type` (`what`, for the error) compares with it: a string
/// compared with a time column is read as a time to the precision it is written in, so that
/// one finer than the column's unit is compared as it is, not cut to the unit.
fn time_from_text<'v>(
    value: &'v Scalar,
    data_type: &DataType,
    what: &str,
) -> Result<Cow<'v, Scalar>> {
    match (value, data_type) {
        (Scalar::Utf8(text), DataType::Timestamp(..)) => {
            parse_timestamp_scalar(text).map(Cow::Owned).ok_or_else(|| {
                invalid(format!(
                    "cannot compare {what} of type {data_type} with {}: not a time",
                    SqlLiteral(value)
                ))
            })
        }
        _ => Ok(Cow::Borrowed(value)),
    }
}

/// The literal converted to `column`'s type, kept as it is if it can only be compared in a
/// wider type, or an error if it cannot be compared at all.
///
/// A string compared with a time column is read as a time (see [`time_from_text`]). A
/// time kept as it is takes the zone of the column it meets (the same instant: a time
/// without a zone is UTC to dala), so that no engine reads it in a zone of its own.
fn bind_literal(schema: &Schema, column: &str, value: &Scalar) -> Result<Scalar> {
    let data_type = value_type(column_type(schema, column)?);
    let value = &*time_from_text(value, data_type, &format!("column `{column}`"))?;
    match value.coerce_to(data_type) {
        Ok(coerced) => Ok(coerced),
        Err(_) if wider_type(data_type, value).is_some() => Ok(match (value, data_type) {
            (
                Scalar::Timestamp {
                    value,
                    unit,
                    tz: None,
                },
                DataType::Timestamp(_, Some(zone)),
            ) => Scalar::Timestamp {
                value: *value,
                unit: *unit,
                tz: Some(zone.clone()),
            },
            _ => value.clone(),
        }),
        Err(_) => Err(invalid(format!(
            "cannot compare column `{column}` of type {data_type} with {}",
            SqlLiteral(value)
        ))),
    }
}

/// Binds the literals compared with `expr` (a column or literal) and checks the column.
fn bind_values(schema: &Schema, expr: &Expr, values: &[&Scalar]) -> Result<Vec<Scalar>> {
    match expr {
        Expr::Column(name) => values
            .iter()
            .map(|v| bind_literal(schema, name, v))
            .collect(),
        Expr::Literal(_) => Ok(values.iter().map(|v| (*v).clone()).collect()),
        other => Err(invalid(format!("`{other}` is not a column or a literal"))),
    }
}

impl Expr {
    fn bind_node(&self, schema: &Schema) -> Result<Expr> {
        let leaf = !matches!(
            self,
            Expr::Column(_) | Expr::Literal(_) | Expr::And(..) | Expr::Or(..) | Expr::Not(_)
        );
        if leaf && self.columns().is_empty() {
            // A condition on values alone (`'1' = 1`, `2 IN (1, 2)`) is decided here, as dala's
            // reader decides it, so that no engine answers it by rules of its own.
            return Ok(Expr::Literal(self.constant()?));
        }
        let bound = match self {
            Expr::Column(name) => {
                let data_type = column_type(schema, name)?;
                if value_type(data_type) != &DataType::Boolean {
                    return Err(invalid(format!(
                        "column `{name}` of type {data_type} is not a condition"
                    )));
                }
                self.clone()
            }
            Expr::Literal(value) => {
                if !matches!(value, Scalar::Null | Scalar::Boolean(_)) {
                    return Err(invalid(format!("{} is not a condition", SqlLiteral(value))));
                }
                self.clone()
            }
            Expr::Compare { left, op, right } => match (left.as_ref(), right.as_ref()) {
                (Expr::Column(name), Expr::Literal(value)) => Expr::Compare {
                    left: left.clone(),
                    op: *op,
                    right: Box::new(Expr::Literal(bind_literal(schema, name, value)?)),
                },
                (Expr::Literal(value), Expr::Column(name)) => Expr::Compare {
                    left: Box::new(Expr::Literal(bind_literal(schema, name, value)?)),
                    op: *op,
                    right: right.clone(),
                },
                (Expr::Column(a), Expr::Column(b)) => {
                    let (a_type, b_type) = (column_type(schema, a)?, column_type(schema, b)?);
                    if zones_differ(value_type(a_type), value_type(b_type)) {
                        return Err(invalid(format!(
                            "cannot compare column `{a}` of type {a_type} with column `{b}` of \
                             type {b_type}: they are not times in one zone (compare each with a \
                             TIMESTAMP value instead)"
                        )));
                    }
                    if common_type(value_type(a_type), value_type(b_type)).is_none() {
                        return Err(invalid(format!(
                            "cannot compare column `{a}` of type {a_type} with column `{b}` of type {b_type}"
                        )));
                    }
                    self.clone()
                }
                (Expr::Literal(_), Expr::Literal(_)) => self.clone(),
                _ => {
                    return Err(invalid(format!(
                        "`{self}` compares something other than columns and literals"
                    )));
                }
            },
            Expr::InList {
                expr,
                list,
                negated,
            } => Expr::InList {
                expr: expr.clone(),
                list: bind_values(schema, expr, &list.iter().collect::<Vec<_>>())?,
                negated: *negated,
            },
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let mut bounds = bind_values(schema, expr, &[low, high])?.into_iter();
                Expr::Between {
                    expr: expr.clone(),
                    low: bounds.next().unwrap_or(Scalar::Null),
                    high: bounds.next().unwrap_or(Scalar::Null),
                    negated: *negated,
                }
            }
            Expr::Like { expr, .. } => {
                if let Expr::Column(name) = expr.as_ref() {
                    let data_type = column_type(schema, name)?;
                    if !is_string_type(data_type) {
                        return Err(invalid(format!(
                            "LIKE needs a string column, but `{name}` has type {data_type}"
                        )));
                    }
                } else {
                    bind_values(schema, expr, &[])?;
                }
                self.clone()
            }
            Expr::IsNull { expr, .. } => {
                if let Expr::Column(name) = expr.as_ref() {
                    column_type(schema, name)?;
                } else {
                    bind_values(schema, expr, &[])?;
                }
                self.clone()
            }
            Expr::And(a, b) => a.bind_node(schema)?.and(b.bind_node(schema)?),
            Expr::Or(a, b) => a.bind_node(schema)?.or(b.bind_node(schema)?),
            Expr::Not(a) => a.bind_node(schema)?.not(),
        };
        Ok(bound)
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation

/// A comparison operand: a column's values or one literal.
enum Operand<'a> {
    Array(ArrayRef),
    Value(&'a Scalar),
}

fn operand<'a>(expr: &'a Expr, batch: &RecordBatch) -> Result<Operand<'a>> {
    match expr {
        Expr::Column(name) => batch
            .column_by_name(name)
            .cloned()
            .map(Operand::Array)
            .ok_or_else(|| unknown_column(name)),
        Expr::Literal(value) => Ok(Operand::Value(value)),
        other => Err(invalid(format!("`{other}` is not a column or a literal"))),
    }
}

/// A float array as SQL engines compare it (DuckDB, Polars): `-0.0` as `0.0`, every NaN as
/// one NaN, which is greater than any number. Arrow's kernels order floats totally, where
/// `-0.0 < 0.0` and a NaN with its sign bit set is less than any number. `None` for arrays
/// of other types.
fn sql_floats(array: &dyn Array) -> Option<ArrayRef> {
    use arrow::datatypes::{Float32Type, Float64Type};
    Some(match array.data_type() {
        DataType::Float64 => {
            Arc::new((array.as_primitive::<Float64Type>()).unary::<_, Float64Type>(sql_float))
        }
        // Through f64 and back: every f32 is exactly an f64.
        DataType::Float32 => Arc::new(
            (array.as_primitive::<Float32Type>())
                .unary::<_, Float32Type>(|v| sql_float(f64::from(v)) as f32),
        ),
        _ => return None,
    })
}

/// `len` copies of `value` (`None` is null).
fn constant(value: Option<bool>, len: usize) -> BooleanArray {
    BooleanArray::from(vec![value; len])
}

fn negate_if(result: BooleanArray, negated: bool) -> Result<BooleanArray> {
    Ok(if negated { not(&result)? } else { result })
}

fn compare_operands(
    left: &Operand,
    op: CompareOp,
    right: &Operand,
    rows: usize,
) -> Result<BooleanArray> {
    match (left, right) {
        (Operand::Array(array), Operand::Value(value)) => compare_with_value(array, op, value),
        (Operand::Value(value), Operand::Array(array)) => {
            compare_with_value(array, op.flip(), value)
        }
        (Operand::Array(a), Operand::Array(b)) => {
            let (a_type, b_type) = (value_type(a.data_type()), value_type(b.data_type()));
            if a_type == b_type {
                return op.kernel(a, b);
            }
            if zones_differ(a_type, b_type) {
                // Refused as binding refuses it: a cast would read one side in the other's zone.
                return Err(invalid(format!(
                    "cannot compare {a_type} with {b_type}: they are not times in one zone"
                )));
            }
            let common = common_type(a_type, b_type)
                .ok_or_else(|| invalid(format!("cannot compare {a_type} with {b_type}")))?;
            op.kernel(&cast(a, &common)?, &cast(b, &common)?)
        }
        (Operand::Value(a), Operand::Value(b)) => {
            Ok(constant(a.compare(b).map(|o| op.holds(o)), rows))
        }
    }
}

/// `array op value`, in the column's type if `value` fits it, else in a wider type.
fn compare_with_value(array: &ArrayRef, op: CompareOp, value: &Scalar) -> Result<BooleanArray> {
    if value.is_null() {
        return Ok(constant(None, array.len()));
    }
    let data_type = value_type(array.data_type());
    let value = &*time_from_text(value, data_type, "a column")?;
    if let Ok(coerced) = value.coerce_to(data_type) {
        let literal = arrow::array::Scalar::new(coerced.to_array(data_type)?);
        return op.kernel(array, &literal);
    }
    let wide = wider_type(data_type, value).ok_or_else(|| {
        invalid(format!(
            "cannot compare a column of type {data_type} with {}",
            SqlLiteral(value)
        ))
    })?;
    let literal = arrow::array::Scalar::new(value.to_array(&wide)?);
    op.kernel(&cast(array, &wide)?, &literal)
}

/// `value [NOT] [I]LIKE pattern`.
fn evaluate_like(
    value: Operand,
    pattern: &str,
    negated: bool,
    case_insensitive: bool,
    rows: usize,
) -> Result<BooleanArray> {
    let kernel = match (negated, case_insensitive) {
        (false, false) => like,
        (true, false) => nlike,
        (false, true) => ilike,
        (true, true) => nilike,
    };
    // Arrow treats `\` as an escape character; DuckDB (without ESCAPE) does not.
    let pattern = Scalar::Utf8(pattern.replace('\\', "\\\\"));
    match value {
        Operand::Array(array) => {
            let data_type = value_type(array.data_type());
            if !is_string_type(data_type) {
                return Err(invalid(format!("LIKE needs strings, not {data_type}")));
            }
            let pattern = arrow::array::Scalar::new(pattern.to_array(data_type)?);
            Ok(kernel(&array, &pattern)?)
        }
        Operand::Value(Scalar::Null) => Ok(constant(None, rows)),
        Operand::Value(Scalar::Utf8(text)) => {
            let one = StringArray::from(vec![text.as_str()]);
            let pattern = arrow::array::Scalar::new(pattern.to_array(&DataType::Utf8)?);
            let result = kernel(&one, &pattern)?;
            Ok(constant(result.is_valid(0).then(|| result.value(0)), rows))
        }
        Operand::Value(other) => Err(invalid(format!(
            "LIKE needs strings, not {}",
            SqlLiteral(other)
        ))),
    }
}

impl Expr {
    fn eval(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let rows = batch.num_rows();
        match self {
            Expr::Column(_) | Expr::Literal(_) => match operand(self, batch)? {
                Operand::Array(array) => array.as_boolean_opt().cloned().ok_or_else(|| {
                    invalid(format!(
                        "{self} of type {} is not a condition",
                        array.data_type()
                    ))
                }),
                Operand::Value(Scalar::Boolean(b)) => Ok(constant(Some(*b), rows)),
                Operand::Value(Scalar::Null) => Ok(constant(None, rows)),
                Operand::Value(other) => {
                    Err(invalid(format!("{} is not a condition", SqlLiteral(other))))
                }
            },
            Expr::Compare { left, op, right } => {
                compare_operands(&operand(left, batch)?, *op, &operand(right, batch)?, rows)
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let value = operand(expr, batch)?;
                let mut result = constant(Some(false), rows);
                for item in list {
                    let eq = compare_operands(&value, CompareOp::Eq, &Operand::Value(item), rows)?;
                    result = or_kleene(&result, &eq)?;
                }
                negate_if(result, *negated)
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let value = operand(expr, batch)?;
                let ge = compare_operands(&value, CompareOp::GtEq, &Operand::Value(low), rows)?;
                let le = compare_operands(&value, CompareOp::LtEq, &Operand::Value(high), rows)?;
                negate_if(and_kleene(&ge, &le)?, *negated)
            }
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => evaluate_like(
                operand(expr, batch)?,
                pattern,
                *negated,
                *case_insensitive,
                rows,
            ),
            Expr::IsNull { expr, negated } => match operand(expr, batch)? {
                Operand::Array(array) if *negated => Ok(is_not_null(&array)?),
                Operand::Array(array) => Ok(is_null(&array)?),
                Operand::Value(value) => Ok(constant(Some(value.is_null() != *negated), rows)),
            },
            Expr::And(a, b) => Ok(and_kleene(&a.eval(batch)?, &b.eval(batch)?)?),
            Expr::Or(a, b) => Ok(or_kleene(&a.eval(batch)?, &b.eval(batch)?)?),
            Expr::Not(a) => Ok(not(&a.eval(batch)?)?),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Pruning

/// Whether some row may make a condition true, and whether some row may make it false.
#[derive(Debug, Clone, Copy)]
struct Outcomes {
    may_be_true: bool,
    may_be_false: bool,
}

impl Outcomes {
    const UNKNOWN: Outcomes = Outcomes {
        may_be_true: true,
        may_be_false: true,
    };
    const NEITHER: Outcomes = Outcomes {
        may_be_true: false,
        may_be_false: false,
    };

    fn exactly(value: bool) -> Outcomes {
        Outcomes {
            may_be_true: value,
            may_be_false: !value,
        }
    }

    fn negate_if(self, negated: bool) -> Outcomes {
        if negated {
            Outcomes {
                may_be_true: self.may_be_false,
                may_be_false: self.may_be_true,
            }
        } else {
            self
        }
    }
}

/// Whether every value of `column` is null (so every comparison with it is unknown).
fn all_null(stats: &dyn StatsSource, column: &str) -> bool {
    matches!((stats.null_count(column), stats.row_count()), (Some(n), Some(r)) if n == r)
}

/// How `bound` (a min or max statistic) orders against `value`; `None` if unknown.
fn order(bound: &Option<Scalar>, value: &Scalar) -> Option<Ordering> {
    bound.as_ref()?.compare(value)
}

/// Outcomes of `column op value` given the column's statistics.
fn compare_outcomes(
    stats: &dyn StatsSource,
    column: &str,
    op: CompareOp,
    value: &Scalar,
) -> Outcomes {
    if value.is_null() || all_null(stats, column) {
        return Outcomes::NEITHER;
    }
    let (min, max) = (stats.min(column), stats.max(column));
    // Parquet's statistics leave NaN out of a float column's bounds, and a NaN compares as
    // greater than every number (and equal to a NaN): a column of floats may hold one
    // beside [min, max].
    let floats = matches!(min, Some(Scalar::Float(_))) || matches!(max, Some(Scalar::Float(_)));
    let nan = (floats.then(|| Scalar::Float(f64::NAN).compare(value))).flatten();
    // Whether some x in [min, max] may satisfy `x op value`.
    let in_range = |op: CompareOp| match op {
        CompareOp::Eq => {
            order(&min, value) != Some(Ordering::Greater)
                && order(&max, value) != Some(Ordering::Less)
        }
        CompareOp::NotEq => {
            !(order(&min, value) == Some(Ordering::Equal)
                && order(&max, value) == Some(Ordering::Equal))
        }
        CompareOp::Lt => order(&min, value).is_none_or(|o| o == Ordering::Less),
        CompareOp::LtEq => order(&min, value) != Some(Ordering::Greater),
        CompareOp::Gt => order(&max, value).is_none_or(|o| o == Ordering::Greater),
        CompareOp::GtEq => order(&max, value) != Some(Ordering::Less),
    };
    // … or a NaN.
    let may = |op: CompareOp| nan.is_some_and(|o| op.holds(o)) || in_range(op);
    Outcomes {
        may_be_true: may(op),
        may_be_false: may(op.negate()),
    }
}

/// Outcomes of `column LIKE pattern`: only the literal prefix before the first wildcard
/// is used.
fn like_outcomes(
    stats: &dyn StatsSource,
    column: &str,
    pattern: &str,
    case_insensitive: bool,
) -> Outcomes {
    if all_null(stats, column) {
        return Outcomes::NEITHER;
    }
    let prefix = pattern
        .find(['%', '_'])
        .map_or(pattern, |end| &pattern[..end]);
    if case_insensitive || prefix.is_empty() {
        return Outcomes::UNKNOWN;
    }
    let below = matches!(stats.max(column), Some(Scalar::Utf8(max)) if max.as_str() < prefix);
    // A minimum above the prefix that does not start with it is above every match.
    let above = matches!(stats.min(column), Some(Scalar::Utf8(min)) if min.as_str() > prefix && !min.starts_with(prefix));
    Outcomes {
        may_be_true: !below && !above,
        may_be_false: true,
    }
}

impl Expr {
    fn may_be_true(&self, stats: &dyn StatsSource) -> bool {
        match self {
            Expr::And(a, b) => a.may_be_true(stats) && b.may_be_true(stats),
            Expr::Or(a, b) => a.may_be_true(stats) || b.may_be_true(stats),
            Expr::Not(a) => a.may_be_false(stats),
            leaf => leaf.leaf_outcomes(stats).may_be_true,
        }
    }

    fn may_be_false(&self, stats: &dyn StatsSource) -> bool {
        match self {
            Expr::And(a, b) => a.may_be_false(stats) || b.may_be_false(stats),
            Expr::Or(a, b) => a.may_be_false(stats) && b.may_be_false(stats),
            Expr::Not(a) => a.may_be_true(stats),
            leaf => leaf.leaf_outcomes(stats).may_be_false,
        }
    }

    fn leaf_outcomes(&self, stats: &dyn StatsSource) -> Outcomes {
        match self {
            Expr::Column(name) => {
                compare_outcomes(stats, name, CompareOp::Eq, &Scalar::Boolean(true))
            }
            Expr::Literal(Scalar::Boolean(b)) => Outcomes::exactly(*b),
            Expr::Literal(Scalar::Null) => Outcomes::NEITHER,
            Expr::Compare { left, op, right } => match (left.as_ref(), right.as_ref()) {
                (Expr::Column(c), Expr::Literal(v)) => compare_outcomes(stats, c, *op, v),
                (Expr::Literal(v), Expr::Column(c)) => compare_outcomes(stats, c, op.flip(), v),
                (Expr::Column(a), Expr::Column(b)) if all_null(stats, a) || all_null(stats, b) => {
                    Outcomes::NEITHER
                }
                (Expr::Literal(a), Expr::Literal(b)) => match a.compare(b) {
                    Some(ordering) => Outcomes::exactly(op.holds(ordering)),
                    None => Outcomes::NEITHER,
                },
                _ => Outcomes::UNKNOWN,
            },
            Expr::InList {
                expr,
                list,
                negated,
            } => match expr.as_ref() {
                Expr::Column(c) => {
                    let each: Vec<Outcomes> = list
                        .iter()
                        .map(|v| compare_outcomes(stats, c, CompareOp::Eq, v))
                        .collect();
                    Outcomes {
                        may_be_true: each.iter().any(|o| o.may_be_true),
                        may_be_false: each.iter().all(|o| o.may_be_false),
                    }
                    .negate_if(*negated)
                }
                _ => Outcomes::UNKNOWN,
            },
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => match expr.as_ref() {
                Expr::Column(c) => {
                    let ge = compare_outcomes(stats, c, CompareOp::GtEq, low);
                    let le = compare_outcomes(stats, c, CompareOp::LtEq, high);
                    Outcomes {
                        may_be_true: ge.may_be_true && le.may_be_true,
                        may_be_false: ge.may_be_false || le.may_be_false,
                    }
                    .negate_if(*negated)
                }
                _ => Outcomes::UNKNOWN,
            },
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => match expr.as_ref() {
                Expr::Column(c) => {
                    like_outcomes(stats, c, pattern, *case_insensitive).negate_if(*negated)
                }
                _ => Outcomes::UNKNOWN,
            },
            Expr::IsNull { expr, negated } => match expr.as_ref() {
                Expr::Column(c) => {
                    let nulls = stats.null_count(c);
                    let outcomes = Outcomes {
                        may_be_true: nulls.is_none_or(|n| n > 0),
                        may_be_false: match (nulls, stats.row_count()) {
                            (Some(n), Some(rows)) => n < rows,
                            _ => true,
                        },
                    };
                    outcomes.negate_if(*negated)
                }
                Expr::Literal(v) => Outcomes::exactly(v.is_null()).negate_if(*negated),
                _ => Outcomes::UNKNOWN,
            },
            _ => Outcomes::UNKNOWN,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Display

/// Writes `text` between `quote`s, doubling any `quote` inside.
fn write_quoted(f: &mut fmt::Formatter<'_>, text: &str, quote: char) -> fmt::Result {
    let doubled: String = [quote, quote].iter().collect();
    write!(f, "{quote}{}{quote}", text.replace(quote, &doubled))
}

/// A scalar written as a SQL literal.
struct SqlLiteral<'a>(&'a Scalar);

impl fmt::Display for SqlLiteral<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Scalar::Null => f.write_str("NULL"),
            Scalar::Boolean(true) => f.write_str("TRUE"),
            Scalar::Boolean(false) => f.write_str("FALSE"),
            Scalar::Float(v) if v.is_finite() => write!(f, "{v:?}"),
            Scalar::Float(v) => write!(f, "'{v}'::DOUBLE"),
            Scalar::Utf8(s) => write_quoted(f, s, '\''),
            Scalar::Binary(b) => write_quoted(f, &String::from_utf8_lossy(b), '\''),
            Scalar::Date(_) => write!(f, "DATE '{}'", self.0),
            Scalar::Timestamp { .. } => write!(f, "TIMESTAMP '{}'", self.0),
            other => write!(f, "{other}"),
        }
    }
}

/// A filter written as SQL, each literal by `literal` where it gives text, else as
/// [`SqlLiteral`] writes it.
struct Sql<'a> {
    expr: &'a Expr,
    literal: &'a dyn Fn(&Scalar) -> Option<String>,
}

impl<'a> Sql<'a> {
    fn of(&self, expr: &'a Expr) -> Sql<'a> {
        Sql {
            expr,
            literal: self.literal,
        }
    }

    fn value(&self, value: &'a Scalar) -> SqlValue<'a> {
        SqlValue {
            value,
            text: (self.literal)(value),
        }
    }

    fn operand(&self, expr: &'a Expr) -> SqlOperand<'a> {
        SqlOperand(self.of(expr))
    }
}

/// A value as `literal` gave it, or as [`SqlLiteral`] writes it.
struct SqlValue<'a> {
    value: &'a Scalar,
    text: Option<String>,
}

impl fmt::Display for SqlValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.text {
            Some(text) => f.write_str(text),
            None => write!(f, "{}", SqlLiteral(self.value)),
        }
    }
}

/// An operand of a predicate; anything but a column or literal is parenthesised.
struct SqlOperand<'a>(Sql<'a>);

impl fmt::Display for SqlOperand<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.expr {
            Expr::Column(_) | Expr::Literal(_) => write!(f, "{}", self.0),
            _ => write!(f, "({})", self.0),
        }
    }
}

impl fmt::Display for Sql<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let not = |negated: &bool| if *negated { "NOT " } else { "" };
        match self.expr {
            Expr::Column(name) => write_quoted(f, name, '"'),
            Expr::Literal(value) => write!(f, "{}", self.value(value)),
            Expr::Compare { left, op, right } => {
                write!(f, "{} {op} {}", self.operand(left), self.operand(right))
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                write!(f, "{} {}IN (", self.operand(expr), not(negated))?;
                for (i, value) in list.iter().enumerate() {
                    let separator = if i == 0 { "" } else { ", " };
                    write!(f, "{separator}{}", self.value(value))?;
                }
                f.write_str(")")
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => write!(
                f,
                "{} {}BETWEEN {} AND {}",
                self.operand(expr),
                not(negated),
                self.value(low),
                self.value(high)
            ),
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => {
                let keyword = if *case_insensitive { "ILIKE" } else { "LIKE" };
                write!(f, "{} {}{keyword} ", self.operand(expr), not(negated))?;
                write_quoted(f, pattern, '\'')
            }
            Expr::IsNull { expr, negated } => {
                write!(f, "{} IS {}NULL", self.operand(expr), not(negated))
            }
            Expr::And(a, b) => write!(f, "({} AND {})", self.of(a), self.of(b)),
            Expr::Or(a, b) => write!(f, "({} OR {})", self.of(a), self.of(b)),
            Expr::Not(a) => write!(f, "NOT {}", self.of(a)),
        }
    }
}

impl Expr {
    /// The filter as SQL text, as [`Display`](fmt::Display) writes it, except each literal
    /// for which `literal` gives text (an engine's own spelling of a value).
    pub fn to_sql_with(&self, literal: &dyn Fn(&Scalar) -> Option<String>) -> String {
        Sql {
            expr: self,
            literal,
        }
        .to_string()
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sql = Sql {
            expr: self,
            literal: &|_| None,
        };
        write!(f, "{sql}")
    }
}

// ---------------------------------------------------------------------------------------
// Parsing

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A bare identifier or keyword.
    Word(String),
    /// A "double-quoted" identifier.
    Name(String),
    /// A 'single-quoted' string.
    Str(String),
    /// An unsigned number, as written.
    Number(String),
    /// An operator or punctuation.
    Symbol(&'static str),
    /// The end of the text.
    End,
}

#[derive(Debug, Clone)]
struct Spanned {
    token: Token,
    start: usize,
    end: usize,
}

static END: Spanned = Spanned {
    token: Token::End,
    start: 0,
    end: 0,
};

const SYMBOLS: [&str; 12] = [
    "==", "!=", "<>", "<=", ">=", "=", "<", ">", "(", ")", ",", "-",
];

/// Words that cannot be bare column names.
const RESERVED: [&str; 11] = [
    "AND", "OR", "NOT", "IN", "BETWEEN", "LIKE", "ILIKE", "IS", "NULL", "TRUE", "FALSE",
];

fn parse_error(position: usize, message: impl Into<String>) -> Error {
    Error::InvalidFilter {
        position,
        message: message.into(),
    }
}

fn tokenize(text: &str) -> Result<Vec<Spanned>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        let start = i;
        let token = if c.is_ascii_whitespace() {
            i += 1;
            continue;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while bytes
                .get(i)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
            {
                i += 1;
            }
            Token::Word(text[start..i].to_string())
        } else if c.is_ascii_digit()
            || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            i = scan_number(bytes, i);
            Token::Number(text[start..i].to_string())
        } else if c == b'\'' || c == b'"' {
            let (value, next) = scan_quoted(text, i).ok_or_else(|| {
                let what = if c == b'\'' { "string" } else { "quoted name" };
                parse_error(start, format!("unterminated {what}"))
            })?;
            i = next;
            if c == b'\'' {
                Token::Str(value)
            } else {
                Token::Name(value)
            }
        } else if let Some(symbol) = SYMBOLS.iter().find(|s| text[i..].starts_with(**s)) {
            i += symbol.len();
            Token::Symbol(symbol)
        } else {
            let found = text[i..].chars().next().unwrap_or_default();
            return Err(parse_error(
                start,
                format!("unexpected character `{found}`"),
            ));
        };
        tokens.push(Spanned {
            token,
            start,
            end: i,
        });
    }
    tokens.push(Spanned {
        token: Token::End,
        start: text.len(),
        end: text.len(),
    });
    Ok(tokens)
}

/// The end of the number starting at `i`: digits, an optional fraction and exponent.
fn scan_number(bytes: &[u8], mut i: usize) -> usize {
    let digits = |i: &mut usize| {
        while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
    };
    digits(&mut i);
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        digits(&mut i);
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if bytes.get(j).is_some_and(u8::is_ascii_digit) {
            i = j;
            digits(&mut i);
        }
    }
    i
}

/// The content of the quoted text starting at `start` (doubled quotes unescaped) and the
/// offset after its closing quote; `None` if it is not closed.
fn scan_quoted(text: &str, start: usize) -> Option<(String, usize)> {
    let bytes = text.as_bytes();
    let quote = *bytes.get(start)?;
    let mut value = String::new();
    let (mut i, mut from) = (start + 1, start + 1);
    loop {
        if *bytes.get(i)? == quote {
            value.push_str(text.get(from..i)?);
            if bytes.get(i + 1) == Some(&quote) {
                value.push(char::from(quote));
                i += 2;
                from = i;
            } else {
                return Some((value, i + 1));
            }
        } else {
            i += 1;
        }
    }
}

/// The number written as `digits`, negated if `negative`: an integer if it has no fraction
/// or exponent and fits 64 bits, else a float; `None` if it is beyond a float's range.
fn number(digits: &str, negative: bool) -> Option<Scalar> {
    if !digits.contains(['.', 'e', 'E'])
        && let Ok(magnitude) = digits.parse::<u64>()
    {
        return Some(match (negative, i64::try_from(magnitude)) {
            (false, Ok(v)) => Scalar::Int(v),
            (false, Err(_)) => Scalar::UInt(magnitude),
            (true, _) => match 0i64.checked_sub_unsigned(magnitude) {
                Some(v) => Scalar::Int(v),
                None => Scalar::Float(-(magnitude as f64)),
            },
        });
    }
    let value: f64 = digits.parse().ok().filter(|v: &f64| v.is_finite())?;
    Some(Scalar::Float(if negative { -value } else { value }))
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Spanned>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Spanned {
        self.tokens.get(self.pos).unwrap_or(&END)
    }

    fn advance(&mut self) -> Spanned {
        let token = self.peek().clone();
        if token.token != Token::End {
            self.pos += 1;
        }
        token
    }

    fn source(&self, token: &Spanned) -> &str {
        self.text.get(token.start..token.end).unwrap_or_default()
    }

    /// The current token, for messages.
    fn found(&self) -> String {
        match self.peek().token {
            Token::End => "end of filter".to_string(),
            _ => format!("`{}`", self.source(self.peek())),
        }
    }

    fn error(&self, message: impl Into<String>) -> Error {
        parse_error(self.peek().start, message)
    }

    fn expected_value(&self) -> Error {
        match self.pos.checked_sub(1).and_then(|p| self.tokens.get(p)) {
            Some(previous) => self.error(format!(
                "expected a value after `{}`",
                self.source(previous)
            )),
            None => self.error(format!("expected a value, found {}", self.found())),
        }
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(&self.peek().token, Token::Word(w) if w.eq_ignore_ascii_case(keyword))
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.at_keyword(keyword);
        if found {
            self.advance();
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<()> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(self.error(format!("expected `{keyword}`, found {}", self.found())))
        }
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        let found = matches!(self.peek().token, Token::Symbol(s) if s == symbol);
        if found {
            self.advance();
        }
        found
    }

    fn expect_symbol(&mut self, symbol: &str) -> Result<()> {
        if self.eat_symbol(symbol) {
            Ok(())
        } else {
            Err(self.error(format!("expected `{symbol}`, found {}", self.found())))
        }
    }

    fn parse_all(&mut self) -> Result<Expr> {
        if self.peek().token == Token::End {
            return Err(self.error("empty filter"));
        }
        let expr = self.parse_or()?;
        if self.peek().token != Token::End {
            return Err(self.error(format!("unexpected {}", self.found())));
        }
        Ok(expr)
    }

    fn parse_or(&mut self) -> Result<Expr> {
        let mut expr = self.parse_and()?;
        while self.eat_keyword("OR") {
            expr = expr.or(self.parse_and()?);
        }
        Ok(expr)
    }

    fn parse_and(&mut self) -> Result<Expr> {
        let mut expr = self.parse_not()?;
        while self.eat_keyword("AND") {
            expr = expr.and(self.parse_not()?);
        }
        Ok(expr)
    }

    fn parse_not(&mut self) -> Result<Expr> {
        if self.eat_keyword("NOT") {
            Ok(self.parse_not()?.not())
        } else {
            self.parse_predicate()
        }
    }

    fn parse_predicate(&mut self) -> Result<Expr> {
        if self.eat_symbol("(") {
            let expr = self.parse_or()?;
            self.expect_symbol(")")?;
            return Ok(expr);
        }
        let value = self.parse_value()?;
        if let Token::Symbol(symbol) = self.peek().token
            && let Some(op) = CompareOp::from_symbol(symbol)
        {
            self.advance();
            return Ok(compare(value, op, self.parse_value()?));
        }
        if self.eat_keyword("IS") {
            let negated = self.eat_keyword("NOT");
            self.expect_keyword("NULL")?;
            return Ok(Expr::IsNull {
                expr: Box::new(value),
                negated,
            });
        }
        let negated = self.eat_keyword("NOT");
        if self.eat_keyword("IN") {
            self.expect_symbol("(")?;
            let mut list = vec![self.parse_literal()?];
            while self.eat_symbol(",") {
                list.push(self.parse_literal()?);
            }
            self.expect_symbol(")")?;
            return Ok(value.in_list(list, negated));
        }
        if self.eat_keyword("BETWEEN") {
            let low = self.parse_literal()?;
            self.expect_keyword("AND")?;
            let high = self.parse_literal()?;
            return Ok(Expr::Between {
                expr: Box::new(value),
                low,
                high,
                negated,
            });
        }
        let case_insensitive = self.at_keyword("ILIKE");
        if self.eat_keyword("LIKE") || self.eat_keyword("ILIKE") {
            let token = self.advance();
            let Token::Str(pattern) = token.token else {
                return Err(parse_error(
                    token.start,
                    "expected a string pattern after LIKE",
                ));
            };
            return Ok(Expr::Like {
                expr: Box::new(value),
                pattern,
                negated,
                case_insensitive,
            });
        }
        if negated {
            return Err(self.error(format!(
                "expected IN, BETWEEN, LIKE or ILIKE after NOT, found {}",
                self.found()
            )));
        }
        Ok(value)
    }

    /// A column or literal.
    fn parse_value(&mut self) -> Result<Expr> {
        let token = self.peek().clone();
        let value = match &token.token {
            Token::Name(name) => col(name.as_str()),
            Token::Str(text) => lit(text.as_str()),
            Token::Number(digits) => Expr::Literal(self.number(digits, false, token.start)?),
            Token::Symbol("-") => {
                self.advance();
                let next = self.advance();
                return match &next.token {
                    Token::Number(digits) => {
                        Ok(Expr::Literal(self.number(digits, true, next.start)?))
                    }
                    _ => Err(parse_error(next.start, "expected a number after `-`")),
                };
            }
            Token::Word(word) => match word.to_ascii_uppercase().as_str() {
                "TRUE" => lit(true),
                "FALSE" => lit(false),
                "NULL" => Expr::Literal(Scalar::Null),
                kind @ ("DATE" | "TIMESTAMP")
                    if matches!(
                        self.tokens.get(self.pos + 1),
                        Some(Spanned {
                            token: Token::Str(_),
                            ..
                        })
                    ) =>
                {
                    self.advance();
                    return self.typed_literal(kind == "DATE");
                }
                upper if RESERVED.contains(&upper) => return Err(self.expected_value()),
                _ => col(word.as_str()),
            },
            _ => return Err(self.expected_value()),
        };
        self.advance();
        Ok(value)
    }

    fn number(&self, digits: &str, negative: bool, position: usize) -> Result<Scalar> {
        number(digits, negative).ok_or_else(|| {
            parse_error(
                position,
                format!("invalid number `{digits}` (or beyond a 64-bit float's range)"),
            )
        })
    }

    /// The string after `DATE` or `TIMESTAMP`, read as that type.
    fn typed_literal(&mut self, date: bool) -> Result<Expr> {
        let token = self.advance();
        let Token::Str(text) = &token.token else {
            return Err(parse_error(token.start, "expected a string"));
        };
        let value = if date {
            parse_date(text).map(Scalar::Date)
        } else {
            parse_timestamp_scalar(text)
        };
        let kind = if date { "date" } else { "timestamp" };
        value
            .map(Expr::Literal)
            .ok_or_else(|| parse_error(token.start, format!("invalid {kind} '{text}'")))
    }

    /// A literal (not a column), for IN lists and BETWEEN bounds.
    fn parse_literal(&mut self) -> Result<Scalar> {
        let start = self.peek().start;
        match self.parse_value()? {
            Expr::Literal(value) => Ok(value),
            other => Err(parse_error(
                start,
                format!("expected a literal value, found column {other}"),
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow::array::{
        Date32Array, Decimal128Array, DictionaryArray, Float64Array, Int8Array, Int32Array,
        Int64Array, StringViewArray,
    };
    use arrow::datatypes::{Field, Int32Type};
    use proptest::prelude::*;

    use super::*;

    fn parse(text: &str) -> Expr {
        Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn parse_error_of(text: &str) -> (usize, String) {
        match Expr::parse(text) {
            Err(Error::InvalidFilter { position, message }) => (position, message),
            other => panic!("{text}: expected an InvalidFilter error, got {other:?}"),
        }
    }

    fn day(text: &str) -> i32 {
        parse_date(text).unwrap()
    }

    fn compare_expr(left: Expr, op: CompareOp, right: Expr) -> Expr {
        Expr::Compare {
            left: Box::new(left),
            op,
            right: Box::new(right),
        }
    }

    #[test]
    fn parses_each_construct() {
        assert_eq!(parse("x = 1"), col("x").eq(lit(1)));
        assert_eq!(parse("x == 1"), col("x").eq(lit(1)));
        assert_eq!(parse("x != 1"), col("x").not_eq(lit(1)));
        assert_eq!(parse("x <> 1"), col("x").not_eq(lit(1)));
        assert_eq!(parse("x<1"), col("x").lt(lit(1)));
        assert_eq!(parse("x <= 1"), col("x").lt_eq(lit(1)));
        assert_eq!(parse("x > -1"), col("x").gt(lit(-1)));
        assert_eq!(parse("x >= 1.5e3"), col("x").gt_eq(lit(1500.0)));
        assert_eq!(parse("x = .5"), col("x").eq(lit(0.5)));
        assert_eq!(
            parse("x = 18446744073709551615"),
            col("x").eq(lit(u64::MAX))
        );
        assert_eq!(
            parse("x = -9223372036854775808"),
            col("x").eq(lit(i64::MIN))
        );
        assert_eq!(parse("x = 'it''s'"), col("x").eq(lit("it's")));
        assert_eq!(parse("x = TRUE"), col("x").eq(lit(true)));
        assert_eq!(parse("x = false"), col("x").eq(lit(false)));
        assert_eq!(parse("x = NULL"), col("x").eq(Expr::Literal(Scalar::Null)));
        assert_eq!(
            parse("d = DATE '1995-03-15'"),
            col("d").eq(Expr::Literal(Scalar::Date(day("1995-03-15"))))
        );
        assert_eq!(
            parse("t < timestamp '1970-01-01 00:00:01.5'"),
            col("t").lt(Expr::Literal(Scalar::Timestamp {
                value: 1_500_000,
                unit: TimeUnit::Microsecond,
                tz: None
            }))
        );
        assert_eq!(parse("date = 1"), col("date").eq(lit(1)));
        assert_eq!(
            parse("x IN (1, 'a', NULL)"),
            col("x").in_list(vec![1.into(), "a".into(), Scalar::Null], false)
        );
        assert_eq!(
            parse("x not in (1)"),
            col("x").in_list(vec![1.into()], true)
        );
        assert_eq!(
            parse("x BETWEEN 1 AND 2"),
            col("x").between(1.into(), 2.into())
        );
        assert_eq!(
            parse("x NOT BETWEEN 1 AND 2"),
            Expr::Between {
                expr: Box::new(col("x")),
                low: 1.into(),
                high: 2.into(),
                negated: true
            }
        );
        assert_eq!(parse("s LIKE 'a%'"), col("s").like("a%"));
        assert_eq!(
            parse("s not ilike 'A_'"),
            Expr::Like {
                expr: Box::new(col("s")),
                pattern: "A_".into(),
                negated: true,
                case_insensitive: true
            }
        );
        assert_eq!(parse("x IS NULL"), col("x").is_null());
        assert_eq!(parse("x is not null"), col("x").is_not_null());
        assert_eq!(parse("flag"), col("flag"));
        assert_eq!(parse("NOT flag"), col("flag").not());
        assert_eq!(parse("a = b"), col("a").eq(col("b")));
        assert_eq!("x = 1".parse::<Expr>().unwrap(), col("x").eq(lit(1)));
    }

    #[test]
    fn literal_on_the_left_is_flipped() {
        assert_eq!(parse("5 < x"), col("x").gt(lit(5)));
        assert_eq!(parse("5 >= x"), col("x").lt_eq(lit(5)));
        assert_eq!(parse("'a' = x"), col("x").eq(lit("a")));
        assert_eq!(lit(5).lt(col("x")), col("x").gt(lit(5)));
        assert_eq!(parse("1 = 2"), compare_expr(lit(1), CompareOp::Eq, lit(2)));
    }

    #[test]
    fn parses_with_precedence() {
        let (a, b, c) = (
            col("a").eq(lit(1)),
            col("b").eq(lit(2)),
            col("c").eq(lit(3)),
        );
        assert_eq!(
            parse("a = 1 OR b = 2 AND NOT c = 3"),
            a.clone().or(b.clone().and(c.clone().not()))
        );
        assert_eq!(
            parse("(a = 1 OR b = 2) AND c = 3"),
            a.clone().or(b.clone()).and(c.clone())
        );
        assert_eq!(
            parse("a = 1 AND b = 2 AND c = 3"),
            a.clone().and(b.clone()).and(c.clone())
        );
        assert_eq!(parse("NOT (a = 1 OR b = 2)"), a.clone().or(b.clone()).not());
        assert_eq!(parse("NOT NOT a = 1"), a.clone().not().not());
    }

    #[test]
    fn parses_quoted_names() {
        assert_eq!(parse("\"my col\" = 1"), col("my col").eq(lit(1)));
        assert_eq!(parse("\"a\"\"b\" = 1"), col("a\"b").eq(lit(1)));
        assert_eq!(parse("\"and\" = 1"), col("and").eq(lit(1)));
        assert_eq!(parse("\"ü\" = 'ü'"), col("ü").eq(lit("ü")));
    }

    #[test]
    fn reports_error_positions() {
        let (position, message) = parse_error_of("x <");
        assert_eq!(position, 3);
        assert!(message.contains("expected a value after `<`"), "{message}");
        let (position, message) = parse_error_of("x = 'abc");
        assert_eq!((position, message.as_str()), (4, "unterminated string"));
        let (position, message) = parse_error_of("x = 1)");
        assert_eq!((position, message.as_str()), (5, "unexpected `)`"));
        let (position, message) = parse_error_of("(x = 1");
        assert_eq!(position, 6);
        assert!(message.contains("expected `)`"), "{message}");
        let (position, _) = parse_error_of("x IN ()");
        assert_eq!(position, 6);
        let (position, message) = parse_error_of("x IN (y)");
        assert_eq!(position, 6);
        assert!(message.contains("literal"), "{message}");
        let (position, message) = parse_error_of("d = DATE '1995-13-01'");
        assert_eq!(position, 9);
        assert!(message.contains("invalid date"), "{message}");
        let (position, message) = parse_error_of("x # 1");
        assert_eq!(position, 2);
        assert!(message.contains("unexpected character `#`"), "{message}");
        let (position, _) = parse_error_of("x = 1 AND");
        assert_eq!(position, 9);
        let (position, _) = parse_error_of("x BETWEEN 1 2");
        assert_eq!(position, 12);
        let (position, _) = parse_error_of("x NOT 1");
        assert_eq!(position, 6);
        let (position, _) = parse_error_of("\"x = 1");
        assert_eq!(position, 0);
        let (position, _) = parse_error_of("x = - y");
        assert_eq!(position, 6);
        let (position, _) = parse_error_of("x LIKE 5");
        assert_eq!(position, 7);
        let (position, _) = parse_error_of("x = 1 y");
        assert_eq!(position, 6);
        let (position, _) = parse_error_of("   ");
        assert_eq!(position, 3);
        let (position, _) = parse_error_of("AND = 1");
        assert_eq!(position, 0);
    }

    #[test]
    fn displays_sql_that_parses_back() {
        assert_eq!(
            parse("a = 1 AND s = 'it''s' OR NOT d >= DATE '1995-03-15'").to_string(),
            "((\"a\" = 1 AND \"s\" = 'it''s') OR NOT \"d\" >= DATE '1995-03-15')"
        );
        assert_eq!(
            parse("t = TIMESTAMP '1995-03-15 10:00:00.000001'").to_string(),
            "\"t\" = TIMESTAMP '1995-03-15 10:00:00.000001'"
        );
        // A number that overflows a float is an error, not infinity (found by fuzzing).
        assert!(Expr::parse("x < 1e999").is_err());
        // Past 2262, where nanoseconds since 1970 no longer fit 64 bits (found by fuzzing).
        assert_eq!(
            parse("t < TIMESTAMP '4048-01-01 00:00:00+02:00'").to_string(),
            "\"t\" < TIMESTAMP '4047-12-31 22:00:00'"
        );
        assert_eq!(parse("x = 1.0").to_string(), "\"x\" = 1.0");
        assert_eq!(parse("x <> -2.5").to_string(), "\"x\" <> -2.5");
        let decimal = Scalar::Decimal {
            value: -5,
            precision: 5,
            scale: 2,
        };
        assert_eq!(
            col("m").eq(Expr::Literal(decimal)).to_string(),
            "\"m\" = -0.05"
        );
        for text in [
            "x = 0.1",
            "x = 1e300",
            "x = -1e-7",
            "x = 123456789.123456789",
            "x = 18446744073709551615",
            "x = -9223372036854775808",
            "\"a\"\"b\" NOT IN (1, NULL, 'x')",
            "x NOT BETWEEN -1 AND 2.5",
            "s NOT ILIKE '%''%'",
            "x IS NOT NULL AND NOT (y IS NULL OR flag)",
            "d BETWEEN DATE '1970-01-01' AND DATE '2100-12-31'",
            "t > TIMESTAMP '1969-12-31 23:59:59.999999'",
            "a = b",
            "TRUE AND x = FALSE",
        ] {
            let expr = parse(text);
            assert_eq!(
                Expr::parse(&expr.to_string()).unwrap(),
                expr,
                "{text} -> {expr}"
            );
        }
    }

    #[test]
    fn lists_columns() {
        let names: Vec<String> = parse("a = 1 AND (b IS NULL OR c = d) AND NOT a IN (1)")
            .columns()
            .into_iter()
            .collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
    }

    fn schema() -> Schema {
        test_batch().schema().as_ref().clone()
    }

    fn test_batch() -> RecordBatch {
        let dict: DictionaryArray<Int32Type> =
            vec![Some("red"), Some("green"), Some("red"), None, Some("blue")]
                .into_iter()
                .collect();
        let decimals =
            Decimal128Array::from(vec![Some(100), Some(250), None, Some(10025), Some(-300)])
                .with_precision_and_scale(15, 2)
                .unwrap();
        let dates = ["1995-03-15", "1995-03-16", "", "2000-01-01", "1990-01-01"];
        RecordBatch::try_from_iter(vec![
            (
                "i",
                Arc::new(Int32Array::from(vec![
                    Some(1),
                    Some(2),
                    None,
                    Some(4),
                    Some(5),
                ])) as ArrayRef,
            ),
            (
                "f",
                Arc::new(Float64Array::from(vec![
                    Some(1.5),
                    None,
                    Some(-2.0),
                    Some(10.25),
                    Some(0.0),
                ])),
            ),
            (
                "s",
                Arc::new(StringArray::from(vec![
                    Some("apple"),
                    Some("banana"),
                    None,
                    Some("cherry"),
                    Some("Apple"),
                ])),
            ),
            (
                "v",
                Arc::new(StringViewArray::from(vec![
                    Some("x"),
                    None,
                    Some("yy"),
                    Some("x"),
                    Some("zz"),
                ])),
            ),
            ("d", Arc::new(dict)),
            (
                "dt",
                Arc::new(Date32Array::from(
                    dates.iter().map(|d| parse_date(d)).collect::<Vec<_>>(),
                )),
            ),
            ("m", Arc::new(decimals)),
            (
                "i8",
                Arc::new(Int8Array::from(vec![
                    Some(1),
                    Some(-100),
                    Some(127),
                    None,
                    Some(0),
                ])),
            ),
            (
                "flag",
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                    Some(false),
                ])),
            ),
        ])
        .unwrap()
    }

    fn true_rows(result: &BooleanArray) -> Vec<usize> {
        (0..result.len())
            .filter(|&i| result.is_valid(i) && result.value(i))
            .collect()
    }

    /// The rows where `text` is true, bound and unbound (which must agree).
    fn matching(text: &str) -> Vec<usize> {
        let batch = test_batch();
        let expr = parse(text);
        let bound = expr
            .bind(&batch.schema())
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        let rows = true_rows(
            &bound
                .evaluate(&batch)
                .unwrap_or_else(|e| panic!("{text}: {e}")),
        );
        let unbound = true_rows(
            &expr
                .evaluate(&batch)
                .unwrap_or_else(|e| panic!("{text}: {e}")),
        );
        assert_eq!(rows, unbound, "{text}: bound and unbound disagree");
        rows
    }

    #[test]
    fn evaluates_on_batches() {
        let cases: &[(&str, &[usize])] = &[
            ("i > 2", &[3, 4]),
            ("2 < i", &[3, 4]),
            ("i <> 2", &[0, 3, 4]),
            ("i = '4'", &[3]),
            ("i IN (1, 5, NULL)", &[0, 4]),
            ("i NOT IN (1, NULL)", &[]),
            ("i NOT IN (1, 5)", &[1, 3]),
            ("i BETWEEN 2 AND 4", &[1, 3]),
            ("i NOT BETWEEN 2 AND 4", &[0, 4]),
            ("i < 2.5", &[0, 1]),
            ("i = 2.0", &[1]),
            ("i > 3000000000", &[]),
            ("i < 18446744073709551615", &[0, 1, 3, 4]),
            ("f >= 1.5", &[0, 3]),
            ("f = 0", &[4]),
            ("f < -1", &[2]),
            ("s LIKE 'a%'", &[0]),
            ("s ILIKE 'a%'", &[0, 4]),
            ("s NOT LIKE '%an%'", &[0, 3, 4]),
            ("s >= 'b'", &[1, 3]),
            ("v = 'x'", &[0, 3]),
            ("v LIKE 'y%'", &[2]),
            ("v NOT IN ('x')", &[2, 4]),
            ("v IS NULL", &[1]),
            ("d = 'red'", &[0, 2]),
            ("d IN ('blue', 'green')", &[1, 4]),
            ("d LIKE 'r%'", &[0, 2]),
            ("d NOT ILIKE 'R%'", &[1, 4]),
            ("d > 'c'", &[0, 1, 2]),
            ("d IS NULL", &[3]),
            ("dt = '1995-03-15'", &[0]),
            ("dt >= DATE '1995-03-16'", &[1, 3]),
            ("dt < TIMESTAMP '1995-03-15 10:00:00'", &[0, 4]),
            ("dt BETWEEN '1995-01-01' AND '1999-01-01'", &[0, 1]),
            ("m > 2.5", &[3]),
            ("m = 2.5", &[1]),
            ("m >= 2", &[1, 3]),
            ("m < 100.255", &[0, 1, 3, 4]),
            ("m < 100.245", &[0, 1, 4]),
            ("m = '100.25'", &[3]),
            ("m > 100000000000000000", &[]),
            ("m IN (1, -3)", &[0, 4]),
            ("i8 < 1000", &[0, 1, 2, 4]),
            ("i8 > -1000.5", &[0, 1, 2, 4]),
            ("i8 = 127.0", &[2]),
            ("i8 = 1000", &[]),
            ("i8 <> 1000", &[0, 1, 2, 4]),
            ("i8 IN (1000, 127)", &[2]),
            ("i8 BETWEEN -1000 AND 0", &[1, 4]),
            ("flag", &[0, 3]),
            ("NOT flag", &[1, 4]),
            ("flag IS NULL", &[2]),
            ("flag = FALSE", &[1, 4]),
            ("NOT (i > 2)", &[0, 1]),
            ("i > 2 OR i IS NULL", &[2, 3, 4]),
            ("s = 'apple' AND i = 1", &[0]),
            ("i = f", &[]),
            ("i > f", &[4]),
            ("s = v", &[]),
            ("TRUE", &[0, 1, 2, 3, 4]),
            ("NULL OR i = 1", &[0]),
            ("'a\\b' LIKE 'a\\b'", &[0, 1, 2, 3, 4]),
            ("'a%' LIKE 'a\\%'", &[]),
            ("NULL LIKE 'a'", &[]),
            ("1 < 2 AND i = 1", &[0]),
        ];
        for (text, expected) in cases {
            assert_eq!(matching(text), *expected, "{text}");
        }
    }

    #[test]
    fn evaluation_is_three_valued() {
        let batch = test_batch();
        let result = parse("i > 2").evaluate(&batch).unwrap();
        assert!(result.is_null(2));
        let result = parse("NOT (i > 2)").evaluate(&batch).unwrap();
        assert!(result.is_null(2));
        let result = parse("i NOT IN (1, NULL)").evaluate(&batch).unwrap();
        assert!(result.is_valid(0) && !result.value(0));
        assert!(result.is_null(1));
        let result = parse("i > 2 OR TRUE").evaluate(&batch).unwrap();
        assert_eq!(true_rows(&result), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn evaluate_names_a_missing_column() {
        match parse("zz = 1").evaluate(&test_batch()) {
            Err(Error::UnknownColumn { column, context }) => {
                assert_eq!(column, "zz");
                assert!(context.unwrap().contains("\"zz\" = 1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bind_names_an_unknown_column() {
        for text in [
            "nope = 1",
            "i = 1 AND nope IS NULL",
            "i = nope",
            "nope LIKE 'a'",
            "nope IN (1)",
        ] {
            match parse(text).bind(&schema()) {
                Err(Error::UnknownColumn { column, context }) => {
                    assert_eq!(column, "nope");
                    assert!(context.unwrap().contains("nope"));
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn bind_coerces_literals() {
        let schema = schema();
        let bound = |text: &str| parse(text).bind(&schema).unwrap();
        assert_eq!(
            bound("dt = '1995-03-15'"),
            col("dt").eq(Expr::Literal(Scalar::Date(day("1995-03-15"))))
        );
        assert_eq!(
            bound("'1995-03-15' = dt"),
            col("dt").eq(Expr::Literal(Scalar::Date(day("1995-03-15"))))
        );
        assert_eq!(bound("i = '7'"), col("i").eq(lit(7)));
        assert_eq!(bound("i = 7.0"), col("i").eq(lit(7)));
        assert_eq!(bound("i8 < 1000"), col("i8").lt(lit(1000)));
        assert_eq!(bound("i < 10.5"), col("i").lt(lit(10.5)));
        let m = |value| Scalar::Decimal {
            value,
            precision: 15,
            scale: 2,
        };
        assert_eq!(bound("m = 2.5"), col("m").eq(Expr::Literal(m(250))));
        assert_eq!(
            bound("m IN (1, '2.5', NULL)"),
            col("m").in_list(vec![m(100), m(250), Scalar::Null], false)
        );
        assert_eq!(
            bound("f BETWEEN 1 AND '2'"),
            col("f").between(lit(1.0).into_scalar(), lit(2.0).into_scalar())
        );
        assert_eq!(bound("d = 'red'"), col("d").eq(lit("red")));
    }

    #[test]
    fn times_keep_the_precision_they_are_written_in() {
        use arrow::datatypes::Field;
        let time = |value, unit, tz: Option<&str>| {
            Expr::Literal(Scalar::Timestamp {
                value,
                unit,
                tz: tz.map(Into::into),
            })
        };
        // Nanoseconds when written, microseconds otherwise (which reach past 2262).
        let fine = parse("t = TIMESTAMP '2023-03-25 00:00:00.000010010'");
        assert_eq!(
            fine,
            col("t").eq(time(1_679_702_400_000_010_010, TimeUnit::Nanosecond, None))
        );
        assert_eq!(
            fine.to_string(),
            "\"t\" = TIMESTAMP '2023-03-25 00:00:00.000010010'"
        );
        assert_eq!(
            parse("t = TIMESTAMP '3000-01-01 00:00:00.000001'"),
            col("t").eq(time(32_503_680_000_000_001, TimeUnit::Microsecond, None))
        );
        let schema = Schema::new(vec![
            Field::new("ns", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
            Field::new(
                "ms",
                DataType::Timestamp(TimeUnit::Millisecond, Some("Europe/Berlin".into())),
                true,
            ),
        ]);
        let bound = |text: &str| parse(text).bind(&schema).unwrap();
        // A string finer than the column's unit is not cut to it.
        assert_eq!(
            bound("ns < '2023-03-25 00:00:00.000003003'"),
            col("ns").lt(time(1_679_702_400_000_003_003, TimeUnit::Nanosecond, None))
        );
        // A time the column's unit does not hold stays as written, in the column's zone.
        let berlin = Some("Europe/Berlin");
        assert_eq!(
            bound("ms >= '2023-03-25 00:00:00.0105'"),
            col("ms").gt_eq(time(1_679_702_400_010_500, TimeUnit::Microsecond, berlin))
        );
        assert_eq!(
            bound("ms >= TIMESTAMP '2023-03-25 00:00:00.010'"),
            col("ms").gt_eq(time(1_679_702_400_010, TimeUnit::Millisecond, berlin))
        );
        let err = parse("ns = 'soon'").bind(&schema).unwrap_err().to_string();
        assert!(err.contains("`ns`") && err.contains("'soon'"), "{err}");
        // Evaluated without binding, a string is read the same way.
        let ms = arrow::array::TimestampMillisecondArray::from(vec![
            1_679_702_400_010,
            1_679_702_400_011,
        ])
        .with_timezone("Europe/Berlin");
        let batch = RecordBatch::try_new(
            std::sync::Arc::new(schema.project(&[1]).unwrap()),
            vec![std::sync::Arc::new(ms)],
        )
        .unwrap();
        let mask = parse("ms >= '2023-03-25 00:00:00.0105'").evaluate(&batch);
        assert_eq!(mask.unwrap(), BooleanArray::from(vec![false, true]));
        let err = parse("ms = 'soon'")
            .evaluate(&batch)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'soon'"), "{err}");
    }

    #[test]
    fn times_in_different_zones_are_not_compared_bound_or_not() {
        use arrow::array::TimestampMillisecondArray;
        use arrow::datatypes::Field;
        let berlin = DataType::Timestamp(TimeUnit::Millisecond, Some("Europe/Berlin".into()));
        let plain = DataType::Timestamp(TimeUnit::Millisecond, None);
        let schema = std::sync::Arc::new(Schema::new(vec![
            Field::new("zoned", berlin, true),
            Field::new("plain", plain, true),
        ]));
        let zoned = TimestampMillisecondArray::from(vec![0]).with_timezone("Europe/Berlin");
        let plain = TimestampMillisecondArray::from(vec![0]);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![std::sync::Arc::new(zoned), std::sync::Arc::new(plain)],
        )
        .unwrap();
        let filter = parse("zoned = plain");
        let bound = filter.bind(&schema).unwrap_err().to_string();
        let evaluated = filter.evaluate(&batch).unwrap_err().to_string();
        for err in [bound, evaluated] {
            assert!(err.contains("not times in one zone"), "{err}");
        }
    }

    impl Expr {
        fn into_scalar(self) -> Scalar {
            match self {
                Expr::Literal(v) => v,
                other => panic!("{other}"),
            }
        }
    }

    #[test]
    fn bind_rejects_incompatible_literals() {
        for (text, names) in [
            ("i = 'abc'", ["`i`", "'abc'"]),
            ("dt = TRUE", ["`dt`", "TRUE"]),
            ("dt = '1995-02-30'", ["`dt`", "'1995-02-30'"]),
            ("flag = 1", ["`flag`", "1"]),
            ("s = 5", ["`s`", "5"]),
            ("i LIKE 'a%'", ["`i`", "LIKE"]),
            ("i IN (1, 'x')", ["`i`", "'x'"]),
            ("i", ["`i`", "condition"]),
            ("i = dt", ["`i`", "`dt`"]),
        ] {
            match parse(text).bind(&schema()) {
                Err(Error::InvalidFilter { message, .. }) => {
                    for name in names {
                        assert!(message.contains(name), "{text}: {message}");
                    }
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn bind_refuses_comparing_times_of_different_zones() {
        let zoned = |tz: &str| DataType::Timestamp(TimeUnit::Microsecond, Some(tz.into()));
        let schema = Schema::new(vec![
            Field::new("berlin", zoned("Europe/Berlin"), true),
            Field::new("also_berlin", zoned("Europe/Berlin"), true),
            Field::new("utc", zoned("UTC"), true),
            Field::new(
                "plain",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
            Field::new("day", DataType::Date32, true),
        ]);
        for text in ["berlin < utc", "plain >= berlin", "berlin = day"] {
            match parse(text).bind(&schema) {
                Err(Error::InvalidFilter { message, .. }) => {
                    assert!(
                        message.contains("not times in one zone"),
                        "{text}: {message}"
                    )
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        for text in ["berlin < also_berlin", "plain > day"] {
            assert!(parse(text).bind(&schema).is_ok(), "{text}");
        }
    }

    /// Min, max and null count of one column.
    type ColumnStats = (Option<Scalar>, Option<Scalar>, Option<u64>);

    #[derive(Default)]
    struct Stats {
        rows: Option<u64>,
        columns: HashMap<String, ColumnStats>,
    }

    impl Stats {
        fn with(
            mut self,
            name: &str,
            min: Option<Scalar>,
            max: Option<Scalar>,
            nulls: Option<u64>,
        ) -> Self {
            self.columns.insert(name.to_string(), (min, max, nulls));
            self
        }
    }

    impl StatsSource for Stats {
        fn min(&self, column: &str) -> Option<Scalar> {
            self.columns.get(column)?.0.clone()
        }
        fn max(&self, column: &str) -> Option<Scalar> {
            self.columns.get(column)?.1.clone()
        }
        fn null_count(&self, column: &str) -> Option<u64> {
            self.columns.get(column)?.2
        }
        fn row_count(&self) -> Option<u64> {
            self.rows
        }
    }

    #[test]
    fn prunes_from_statistics() {
        let int = |v: i64| Some(Scalar::Int(v));
        let text = |v: &str| Some(Scalar::Utf8(v.to_string()));
        let stats = Stats {
            rows: Some(10),
            ..Default::default()
        }
        .with("year", int(2023), int(2023), Some(0))
        .with("x", int(10), int(20), Some(2))
        .with("n", None, None, Some(10))
        .with("full", int(1), int(5), Some(0))
        .with("s", text("apple"), text("banana"), Some(0))
        .with(
            "flag",
            Some(Scalar::Boolean(false)),
            Some(Scalar::Boolean(false)),
            Some(0),
        )
        .with("y", int(0), int(100), None);
        let prune = [
            "year = 2024",
            "year <> 2023",
            "year IN (2021, 2022)",
            "year NOT IN (2023)",
            "year NOT IN (2023, NULL)",
            "year IN (NULL)",
            "year > 2023",
            "year < 2023",
            "NOT year = 2023",
            "year = '2023x'  AND FALSE",
            "year BETWEEN 2020 AND 2022",
            "year NOT BETWEEN 2020 AND 2025",
            "2024 = year",
            "x < 10",
            "x > 20",
            "x = 15 AND year = 2024",
            "x < 5 OR x > 25",
            "x = NULL",
            "n = 1",
            "NOT n = 1",
            "n IS NOT NULL",
            "n LIKE 'a%'",
            "n = x",
            "full IS NULL",
            "s LIKE 'c%'",
            "s LIKE 'aa%'",
            "s LIKE 'bananas'",
            "s < 'a'",
            "flag",
            "FALSE",
            "NULL",
            "1 > 2",
        ];
        for text in prune {
            assert!(!parse(text).may_match(&stats), "{text} should prune");
        }
        let keep = [
            "year = 2023",
            "year >= 2023",
            "year IN (2023, 2024)",
            "year NOT IN (2022)",
            "x <= 10",
            "x >= 20",
            "x = 15",
            "x IS NULL",
            "x IS NOT NULL",
            "NOT x IS NULL",
            "x = 15 OR year = 2024",
            "x BETWEEN 20 AND 30",
            "x NOT BETWEEN 12 AND 18",
            "x = 15.5",
            "x <> 15",
            "n IS NULL",
            "full IS NOT NULL",
            "s LIKE 'b%'",
            "s LIKE 'a%'",
            "s LIKE 'ap%'",
            "s LIKE 'banana%'",
            "s LIKE '%z'",
            "s NOT LIKE 'c%'",
            "s ILIKE 'C%'",
            "NOT flag",
            "x = y",
            "u = 1",
            "u IS NULL",
            "NOT u IS NULL",
            "y IS NULL",
            "y IS NOT NULL",
            "TRUE",
        ];
        for text in keep {
            assert!(parse(text).may_match(&stats), "{text} should not prune");
        }
        // With nothing known, nothing is pruned.
        let empty = Stats::default();
        let never_true = [
            "FALSE",
            "NULL",
            "1 > 2",
            "year = '2023x'  AND FALSE",
            "x = NULL",
            "year IN (NULL)",
            "year NOT IN (2023, NULL)",
        ];
        for text in prune
            .iter()
            .chain(&keep)
            .filter(|t| !never_true.contains(t))
        {
            assert!(
                parse(text).may_match(&empty),
                "{text} pruned without statistics"
            );
        }
    }

    #[test]
    fn prunes_bound_filters() {
        let stats = Stats {
            rows: Some(3),
            ..Default::default()
        }
        .with(
            "dt",
            Some(Scalar::Date(day("1995-01-01"))),
            Some(Scalar::Date(day("1995-12-31"))),
            Some(0),
        );
        let schema = Schema::new(vec![Field::new("dt", DataType::Date32, true)]);
        let bound = |text: &str| parse(text).bind(&schema).unwrap();
        assert!(!bound("dt > '1996-01-01'").may_match(&stats));
        assert!(bound("dt > '1995-06-01'").may_match(&stats));
        assert!(!bound("dt < DATE '1994-06-01'").may_match(&stats));
    }

    // ---- property tests -------------------------------------------------------------

    type Row = (Option<i64>, Option<i64>, Option<String>);

    fn value_of(expr: &Expr, row: &Row) -> Option<Scalar> {
        match expr {
            Expr::Column(name) => match name.as_str() {
                "a" => row.0.map(Scalar::Int),
                "b" => row.1.map(Scalar::Int),
                "s" => row.2.clone().map(Scalar::Utf8),
                other => panic!("no column {other}"),
            },
            Expr::Literal(Scalar::Null) => None,
            Expr::Literal(v) => Some(v.clone()),
            other => panic!("not a value: {other}"),
        }
    }

    fn compare_rows(left: Option<Scalar>, op: CompareOp, right: Option<Scalar>) -> Option<bool> {
        let ordering = left?.compare(&right?)?;
        Some(match op {
            CompareOp::Eq => ordering == Ordering::Equal,
            CompareOp::NotEq => ordering != Ordering::Equal,
            CompareOp::Lt => ordering == Ordering::Less,
            CompareOp::LtEq => ordering != Ordering::Greater,
            CompareOp::Gt => ordering == Ordering::Greater,
            CompareOp::GtEq => ordering != Ordering::Less,
        })
    }

    fn and3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
        match (a, b) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        }
    }

    fn or3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
        match (a, b) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        }
    }

    fn like_chars(text: &[char], pattern: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('%', rest)) => (0..=text.len()).any(|i| like_chars(&text[i..], rest)),
            Some(('_', rest)) => !text.is_empty() && like_chars(&text[1..], rest),
            Some((c, rest)) => text.first() == Some(c) && like_chars(&text[1..], rest),
        }
    }

    /// Row-at-a-time SQL semantics, written independently of the vectorised evaluator.
    fn reference(expr: &Expr, row: &Row) -> Option<bool> {
        match expr {
            Expr::Compare { left, op, right } => {
                compare_rows(value_of(left, row), *op, value_of(right, row))
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let x = value_of(expr, row);
                let mut found = Some(false);
                for v in list {
                    let v = (!v.is_null()).then(|| v.clone());
                    found = or3(found, compare_rows(x.clone(), CompareOp::Eq, v));
                }
                found.map(|f| f != *negated)
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let x = value_of(expr, row);
                and3(
                    compare_rows(x.clone(), CompareOp::GtEq, Some(low.clone())),
                    compare_rows(x, CompareOp::LtEq, Some(high.clone())),
                )
                .map(|b| b != *negated)
            }
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => {
                let Some(Scalar::Utf8(text)) = value_of(expr, row) else {
                    return None;
                };
                let fold = |s: &str| {
                    if *case_insensitive {
                        s.to_lowercase()
                    } else {
                        s.to_string()
                    }
                };
                let text: Vec<char> = fold(&text).chars().collect();
                let pattern: Vec<char> = fold(pattern).chars().collect();
                Some(like_chars(&text, &pattern) != *negated)
            }
            Expr::IsNull { expr, negated } => Some(value_of(expr, row).is_none() != *negated),
            Expr::And(a, b) => and3(reference(a, row), reference(b, row)),
            Expr::Or(a, b) => or3(reference(a, row), reference(b, row)),
            Expr::Not(a) => reference(a, row).map(|b| !b),
            other => panic!("not generated: {other}"),
        }
    }

    fn make_batch(rows: &[Row]) -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            (
                "a",
                Arc::new(Int64Array::from(
                    rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                )) as ArrayRef,
            ),
            (
                "b",
                Arc::new(Int64Array::from(
                    rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                )),
            ),
            (
                "s",
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
                )),
            ),
        ])
        .unwrap()
    }

    /// Statistics computed from the rows, as a writer would record them.
    fn stats_of(rows: &[Row]) -> Stats {
        let mut stats = Stats {
            rows: Some(rows.len() as u64),
            ..Default::default()
        };
        for name in ["a", "b", "s"] {
            let values: Vec<Scalar> = rows
                .iter()
                .filter_map(|r| value_of(&col(name), r))
                .collect();
            let pick = |wanted: Ordering| {
                values
                    .iter()
                    .cloned()
                    .reduce(|x, y| if y.compare(&x) == Some(wanted) { y } else { x })
            };
            let nulls = (rows.len() - values.len()) as u64;
            stats = stats.with(
                name,
                pick(Ordering::Less),
                pick(Ordering::Greater),
                Some(nulls),
            );
        }
        stats
    }

    fn arb_op() -> impl Strategy<Value = CompareOp> {
        prop_oneof![
            Just(CompareOp::Eq),
            Just(CompareOp::NotEq),
            Just(CompareOp::Lt),
            Just(CompareOp::LtEq),
            Just(CompareOp::Gt),
            Just(CompareOp::GtEq),
        ]
    }

    fn arb_number() -> impl Strategy<Value = Scalar> {
        prop_oneof![
            6 => (-3i64..=3).prop_map(Scalar::Int),
            2 => (-7i32..=7).prop_map(|v| Scalar::Float(f64::from(v) / 2.0)),
            1 => Just(Scalar::Null),
        ]
    }

    fn arb_int_column() -> impl Strategy<Value = Expr> {
        prop_oneof![Just(col("a")), Just(col("b"))]
    }

    fn arb_leaf() -> impl Strategy<Value = Expr> {
        prop_oneof![
            (arb_int_column(), arb_op(), arb_number()).prop_map(|(c, op, v)| compare_expr(
                c,
                op,
                Expr::Literal(v)
            )),
            arb_op().prop_map(|op| compare_expr(col("a"), op, col("b"))),
            (arb_op(), "[ab']{0,2}").prop_map(|(op, s)| compare_expr(col("s"), op, lit(s))),
            (
                arb_int_column(),
                prop::collection::vec(arb_number(), 1..4),
                any::<bool>()
            )
                .prop_map(|(c, list, negated)| c.in_list(list, negated)),
            (arb_int_column(), -3i64..=3, -3i64..=3, any::<bool>()).prop_map(
                |(c, low, high, negated)| {
                    Expr::Between {
                        expr: Box::new(c),
                        low: low.into(),
                        high: high.into(),
                        negated,
                    }
                }
            ),
            ("[ab%_\\\\]{0,3}", any::<bool>(), any::<bool>()).prop_map(
                |(pattern, negated, case_insensitive)| {
                    Expr::Like {
                        expr: Box::new(col("s")),
                        pattern,
                        negated,
                        case_insensitive,
                    }
                }
            ),
            (prop_oneof![Just("a"), Just("b"), Just("s")], any::<bool>()).prop_map(
                |(c, negated)| Expr::IsNull {
                    expr: Box::new(col(c)),
                    negated
                }
            ),
        ]
    }

    fn arb_expr() -> impl Strategy<Value = Expr> {
        arb_leaf().prop_recursive(3, 12, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| a.and(b)),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| a.or(b)),
                inner.prop_map(Expr::not),
            ]
        })
    }

    fn arb_rows() -> impl Strategy<Value = Vec<Row>> {
        prop::collection::vec(
            (
                prop::option::of(-3i64..=3),
                prop::option::of(-3i64..=3),
                prop::option::of("[aAb'%\\\\]{0,2}"),
            ),
            0..8,
        )
    }

    proptest! {
        #[test]
        fn evaluation_pruning_and_display_agree(expr in arb_expr(), rows in arb_rows()) {
            let batch = make_batch(&rows);
            let expected: Vec<Option<bool>> = rows.iter().map(|r| reference(&expr, r)).collect();
            let bound = expr.bind(&batch.schema()).unwrap();
            for candidate in [&expr, &bound] {
                let result = candidate.evaluate(&batch).unwrap();
                let actual: Vec<Option<bool>> = (0..result.len())
                    .map(|i| result.is_valid(i).then(|| result.value(i)))
                    .collect();
                prop_assert_eq!(&actual, &expected, "{}", candidate);
            }
            if expected.contains(&Some(true)) {
                let stats = stats_of(&rows);
                prop_assert!(expr.may_match(&stats), "{} pruned", expr);
                prop_assert!(bound.may_match(&stats), "{} pruned", bound);
            }
            prop_assert_eq!(Expr::parse(&expr.to_string()).unwrap(), expr);
        }
    }
}
