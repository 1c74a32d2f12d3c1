//! # dala-polars
//!
//! Polars as a dala engine. dala plans a scan (partitions and files pruned by its index);
//! Polars scans exactly the files left (a list, never a glob), with the partition columns
//! typed as dala's index records them (read by Polars from folders named as dala writes
//! them, else attached from the index), files written under older schemas conformed to
//! the dataset's, and the projection, filter and limit run in Polars as expressions with
//! SQL's meaning (values typed as the columns they meet where the type holds them exactly,
//! nulls as SQL's unknown, `LIKE` read by Polars' SQL expression parser). Results stream
//! out of Polars'
//! streaming engine in batches (a scan of at most 131 072 rows, as dala's index counts
//! them, runs on its in-memory engine instead), cross to arrow-rs through the Arrow C Data
//! Interface without a copy (`ffi`) as the consumer reads them, and are cast to the
//! dataset's own types, so every engine returns the same schema. Polars plans on a thread
//! of its own when called within a current-thread tokio runtime, where it cannot block.
//!
//! - [`PolarsEngine`] implements [`dala_dataset::ScanEngine`]: `scan` and `sql`.
//! - [`lazy_frame`] gives a dataset scan as a Polars [`LazyFrame`] for native use.
//! - [`to_data_frame`] and [`to_record_batches`] convert between arrow-rs batches and
//!   Polars frames without copying buffers.
//!
//! Polars reads local files here: a dataset on an object store is an
//! [`Error::Unsupported`] for this engine. Its threads come from `POLARS_MAX_THREADS`.

mod ffi;

/// The Polars crate this engine is built on, for callers of [`lazy_frame`] and
/// [`to_data_frame`] (one version of Polars in a build).
pub use polars;

use std::collections::HashMap;
use std::num::NonZeroUsize;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef};
use dala_dataset::filter::{common_type, value_type, wider_type};
use dala_dataset::{
    Engine, Error, Expr as DalaExpr, RecordBatchStream, Result, Scalar, ScanEngine, ScanFile,
    ScanRequest, cast_to_schema, converted_receiver_stream, panic_message,
};
use futures::StreamExt;
use polars::prelude::{
    CompatLevel, DataFrame, DataType, Expr, Field as PolarsField, HiveOptions, IdxSize, IntoColumn,
    IntoLazy, LazyFrame, PlRefPath, PlanCallback, ScanArgsParquet, Schema as PolarsSchema, Series,
    UnionArgs, col, concat, lit,
};
use polars::sql::SQLContext;

fn engine_error(message: impl std::fmt::Display) -> Error {
    Error::Engine {
        engine: "polars".into(),
        message: message.to_string(),
    }
}

/// Polars as a dala engine.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolarsEngine;

impl ScanEngine for PolarsEngine {
    fn kind(&self) -> Engine {
        Engine::Polars
    }

    fn scan(&self, request: ScanRequest) -> Result<RecordBatchStream> {
        if request.files.is_empty() {
            return Ok(futures::stream::empty().boxed());
        }
        let frame = off_runtime(|| scan_frame(&request))?;
        let collect = match rows_at_most(&request) <= SINK_ROWS as u64 {
            true => Collect::InMemory,
            false => Collect::Streaming,
        };
        stream(frame, Some(request.output_schema.clone()), collect)
    }

    fn sql(
        &self,
        tables: Vec<(String, ScanRequest)>,
        query: &str,
        params: &[Scalar],
    ) -> Result<RecordBatchStream> {
        if !params.is_empty() {
            return Err(Error::Unsupported(
                "query parameters on the polars engine (its SQL binds none); use duckdb".into(),
            ));
        }
        let frame = off_runtime(|| {
            let mut context = SQLContext::new();
            for (name, request) in &tables {
                context.register(name, scan_frame(request)?);
            }
            context
                .execute(query)
                .map_err(|e| engine_error(format!("{e} in `{query}`")))
        })?;
        // Streamed whatever the size of the tables: a join can return more rows than
        // they hold.
        stream(frame, None, Collect::Streaming)
    }
}

/// The most rows the in-memory engine would hold for a scan: those of its files, or its
/// limit when it has no filter. Polars applies a limit after a filter only once the filter
/// has run over every file, so a filtered scan holds every row that passes.
fn rows_at_most(request: &ScanRequest) -> u64 {
    let rows = request.files.iter().map(|f| f.entry.rows).sum::<u64>();
    match (request.limit, &request.filter) {
        (Some(limit), None) => rows.min(limit as u64),
        _ => rows,
    }
}

/// Runs `plan` (work that has Polars plan a query) where Polars may block. Polars blocks
/// on its own runtime while it plans (reading the schemas of the files), through tokio's
/// `block_in_place`, which panics on a current-thread tokio runtime; there `plan` runs on
/// a thread of its own. A panic in Polars becomes an engine error.
fn off_runtime<T: Send>(plan: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let guarded = || inside_polars("planning the query", plan);
    let current_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
    if !current_thread {
        return guarded();
    }
    std::thread::scope(|scope| {
        scope
            .spawn(guarded)
            .join()
            .unwrap_or_else(|_| Err(engine_error("the planning thread panicked")))
    })
}

/// A scan as a [`LazyFrame`]: its files, projection, filter and limit.
fn scan_frame(request: &ScanRequest) -> Result<LazyFrame> {
    request.require_local(Engine::Polars)?;
    if request.files.is_empty() {
        return empty_frame(&request.output_schema);
    }
    let frame = dataset_frame(request, request.needs_partition_values())?;
    let frame = match &request.filter {
        Some(filter) => frame.filter(filter_expr(filter, &column_types(request))?),
        None => frame,
    };
    let columns: Vec<Expr> = (request.output_schema.fields().iter())
        .map(|f| col(f.name().as_str()))
        .collect();
    let frame = frame.select(columns);
    Ok(match request.limit {
        Some(limit) => frame.limit(IdxSize::try_from(limit).unwrap_or(IdxSize::MAX)),
        None => frame,
    })
}

/// The Arrow type of every column a scan's filter may name: data and partition columns.
fn column_types(request: &ScanRequest) -> HashMap<&str, &ArrowType> {
    let data = (request.data_schema.fields().iter()).map(|f| (f.name().as_str(), f.data_type()));
    let partitions = (request.partitioning.iter()).map(|p| (p.name.as_str(), &p.data_type));
    data.chain(partitions).collect()
}

/// A bound filter as a Polars expression with SQL's meaning. A comparison runs in the type
/// dala's reader compares in: a value is typed as the column it meets where the column's
/// type holds it exactly, else both are cast to a type that holds both (`qty < 10.5` on
/// integers compares as floats, `i64 >= 9223372036854775808` as decimals), and two columns of
/// different types are both cast to their common type; a null makes a comparison null.
/// Polars keeps a row only where the condition is true, not null, and combines nulls as SQL
/// does (`false AND null` is false). `LIKE` goes through Polars' SQL expression parser.
fn filter_expr(expr: &DalaExpr, types: &HashMap<&str, &ArrowType>) -> Result<Expr> {
    let column = |name: &str| {
        (types.get(name).copied()).ok_or_else(|| engine_error(format!("no column `{name}`")))
    };
    // An operand compared with `other`: a column, or a value typed by the column it meets.
    let operand = |e: &DalaExpr, other: &DalaExpr| -> Result<Expr> {
        match (e, other) {
            (DalaExpr::Column(name), DalaExpr::Literal(value)) => {
                let data_type = column(name)?;
                column_expr(name, data_type, &comparison_type(data_type, &[value]))
            }
            (DalaExpr::Column(name), DalaExpr::Column(other)) => {
                let (data_type, other_type) = (column(name)?, column(other)?);
                match common_type(value_type(data_type), value_type(other_type)) {
                    Some(common) => column_expr(name, data_type, &common),
                    None => Ok(col(name.as_str())),
                }
            }
            (DalaExpr::Column(name), _) => Ok(col(name.as_str())),
            (DalaExpr::Literal(value), DalaExpr::Column(name)) => {
                value_expr(value, &comparison_type(column(name)?, &[value]))
            }
            (DalaExpr::Literal(value), _) => value_expr(value, &own_type(value)),
            (other, _) => Err(engine_error(format!(
                "`{other}` is not a column or a value"
            ))),
        }
    };
    Ok(match expr {
        DalaExpr::Column(name) => col(name.as_str()),
        DalaExpr::Literal(value) => value_expr(value, &ArrowType::Boolean)?,
        DalaExpr::Compare { left, op, right } => {
            let (left, right) = (operand(left, right)?, operand(right, left)?);
            use dala_dataset::filter::CompareOp;
            match op {
                CompareOp::Eq => left.eq(right),
                CompareOp::NotEq => left.neq(right),
                CompareOp::Lt => left.lt(right),
                CompareOp::LtEq => left.lt_eq(right),
                CompareOp::Gt => left.gt(right),
                CompareOp::GtEq => left.gt_eq(right),
            }
        }
        DalaExpr::Between {
            expr: e,
            low,
            high,
            negated,
        } => {
            let (value, low, high) = match &**e {
                DalaExpr::Column(name) => {
                    let data_type = column(name)?;
                    let wide = comparison_type(data_type, &[low, high]);
                    (
                        column_expr(name, data_type, &wide)?,
                        value_expr(low, &wide)?,
                        value_expr(high, &wide)?,
                    )
                }
                _ => {
                    let (low, high) = (
                        DalaExpr::Literal(low.clone()),
                        DalaExpr::Literal(high.clone()),
                    );
                    (operand(e, &low)?, operand(&low, e)?, operand(&high, e)?)
                }
            };
            let between = (value.clone().gt_eq(low)).and(value.lt_eq(high));
            if *negated { between.not() } else { between }
        }
        DalaExpr::InList {
            expr: e,
            list,
            negated,
        } => {
            let data_type = match &**e {
                DalaExpr::Column(name) => column(name)?.clone(),
                DalaExpr::Literal(value) => own_type(value),
                other => {
                    return Err(engine_error(format!(
                        "`{other}` is not a column or a value"
                    )));
                }
            };
            // Values the column's type cannot hold equal none of its values.
            let values: Vec<ArrayRef> = (list.iter())
                .filter_map(|v| exact_array(v, &data_type))
                .collect();
            let values: Vec<&dyn arrow::array::Array> = values.iter().map(|a| a.as_ref()).collect();
            let values = match values.is_empty() {
                true => arrow::array::new_empty_array(&data_type),
                false => arrow::compute::concat(&values)?,
            };
            let found = operand(e, e)?.is_in(lit(series(values)?).implode(false), false);
            // A null in the list makes a value not found in it unknown, as in SQL.
            let found = match list.iter().any(Scalar::is_null) {
                true => found.or(value_expr(&Scalar::Null, &ArrowType::Boolean)?),
                false => found,
            };
            if *negated { found.not() } else { found }
        }
        DalaExpr::IsNull { expr: e, negated } => {
            let value = operand(e, e)?;
            if *negated {
                value.is_not_null()
            } else {
                value.is_null()
            }
        }
        like @ DalaExpr::Like { expr: e, .. } => {
            let mut text = like.to_string();
            // Polars' LIKE takes strings, not the categoricals a dictionary column becomes.
            if let DalaExpr::Column(name) = e.as_ref()
                && matches!(column(name)?, ArrowType::Dictionary(..))
            {
                let quoted = dala_dataset::quote_identifier(name);
                if let Some(rest) = text.strip_prefix(&quoted) {
                    text = format!("CAST({quoted} AS VARCHAR){rest}");
                }
            }
            polars::sql::sql_expr(&text).map_err(|e| engine_error(format!("{e} in `{like}`")))?
        }
        DalaExpr::And(a, b) => filter_expr(a, types)?.and(filter_expr(b, types)?),
        DalaExpr::Or(a, b) => filter_expr(a, types)?.or(filter_expr(b, types)?),
        DalaExpr::Not(a) => filter_expr(a, types)?.not(),
    })
}

/// Column `name` of `data_type`, compared in the type dala's reader compares it in
/// (`compared_in`: [`comparison_type`] with values, [`common_type`] with another column),
/// cast to it when that is not its own. Left to itself, Polars would pick a type of its
/// own: it cuts a time to the column's unit (`ms >= TIMESTAMP '… 00:00:00.0105'`), compares
/// a 64-bit integer with an unsigned one as floats, and turns a decimal that overflows into
/// a null.
fn column_expr(name: &str, data_type: &ArrowType, compared_in: &ArrowType) -> Result<Expr> {
    if compared_in == data_type {
        return Ok(col(name));
    }
    let empty = arrow::array::new_empty_array(compared_in);
    Ok(col(name).cast(series(empty)?.dtype().clone()))
}

/// The type dala's reader compares a column of `data_type` with `values` in: its own
/// where it holds each value exactly, else one that holds both
/// ([`dala_dataset::filter::wider_type`]).
fn comparison_type(data_type: &ArrowType, values: &[&Scalar]) -> ArrowType {
    values.iter().fold(data_type.clone(), |wide, value| {
        if value.is_null() || exact_array(value, &wide).is_some() {
            return wide;
        }
        wider_type(&wide, value).unwrap_or(wide)
    })
}

/// `value` as a Polars literal: of `data_type` (the column it meets) where that type holds
/// it exactly, else of its own type; a null of `data_type`.
fn value_expr(value: &Scalar, data_type: &ArrowType) -> Result<Expr> {
    let array = match exact_array(value, data_type) {
        Some(array) => array,
        None if value.is_null() => arrow::array::new_null_array(data_type, 1),
        // A time keeps the zone of the column it meets, so that Polars compares instants.
        None => value.to_array(&match (value, data_type) {
            (Scalar::Timestamp { unit, .. }, ArrowType::Timestamp(_, zone)) => {
                ArrowType::Timestamp(*unit, zone.clone())
            }
            _ => own_type(value),
        })?,
    };
    let values = series(array)?;
    let value = values.get(0).map_err(engine_error)?.into_static();
    Ok(lit(polars::prelude::Scalar::new(
        values.dtype().clone(),
        value,
    )))
}

/// The Arrow type a value has on its own.
fn own_type(value: &Scalar) -> ArrowType {
    match value {
        Scalar::Null => ArrowType::Null,
        Scalar::Boolean(_) => ArrowType::Boolean,
        Scalar::Int(_) => ArrowType::Int64,
        Scalar::UInt(_) => ArrowType::UInt64,
        Scalar::Float(_) => ArrowType::Float64,
        Scalar::Decimal {
            precision, scale, ..
        } => ArrowType::Decimal128(*precision, *scale),
        Scalar::Utf8(_) => ArrowType::Utf8,
        Scalar::Binary(_) => ArrowType::LargeBinary,
        Scalar::Date(_) => ArrowType::Date32,
        // An instant in UTC, whatever the zone it is shown in.
        Scalar::Timestamp { unit, .. } => ArrowType::Timestamp(*unit, None),
    }
}

/// `value` as a one-row array of `data_type`, when that type holds it exactly: `qty <
/// 10.5` on an integer column, a decimal of more places than the column's, or a time
/// finer than the column's unit would change meaning if cast, so they are `None` (as are
/// a null and a value out of the type's range).
fn exact_array(value: &Scalar, data_type: &ArrowType) -> Option<ArrayRef> {
    if value.is_null() {
        return None;
    }
    let own_type = own_type(value);
    let own = value.to_array(&own_type).ok()?;
    let converted = value.to_array(data_type).ok()?;
    let back = arrow::compute::cast(&converted, &own_type).ok()?;
    (back.as_ref() == own.as_ref()).then_some(converted)
}

/// An arrow-rs array as a Polars series (through the Arrow C Data Interface).
fn series(array: ArrayRef) -> Result<Series> {
    let field = Field::new("value", array.data_type().clone(), true);
    let (field, chunk) = ffi::to_polars(&field, &array)?;
    Series::try_from((&field, vec![chunk])).map_err(engine_error)
}

/// The files of a scan as a Polars [`LazyFrame`] with every column of the dataset (data
/// columns from the files, partition columns from dala's index). The scan's filter,
/// projection and limit are not applied: add them as Polars expressions.
pub fn lazy_frame(request: &ScanRequest) -> Result<LazyFrame> {
    request.require_local(Engine::Polars)?;
    if request.files.is_empty() {
        return empty_frame(&request.output_schema);
    }
    dataset_frame(request, true)
}

/// The files of a scan as one frame: the data columns in the dataset's schema, then the
/// partition columns when `partitions`. Files that all hold the dataset's schema are one
/// scan. Files written under older schemas (before a merging write added a column or
/// widened a type) or not by dala are grouped by the schema their footers hold, each
/// group scanned on its own and conformed to the dataset's: columns cast to its types,
/// those missing read as nulls.
fn dataset_frame(request: &ScanRequest, partitions: bool) -> Result<LazyFrame> {
    // Checking the folders walks every file: only worth it when partitions are attached.
    let hive = partitions && hive_readable(request);
    let all: Vec<&ScanFile> = request.files.iter().collect();
    if request.files_match_schema() {
        return files_frame(request, &all, hive, partitions);
    }
    let mut groups: Vec<(Option<Schema>, Vec<&ScanFile>)> = Vec::new();
    for file in all {
        let schema = if request.holds_schema(file) {
            None
        } else {
            Some(file_schema(&file.location)?)
        };
        match groups.iter_mut().find(|(s, _)| *s == schema) {
            Some((_, files)) => files.push(file),
            None => groups.push((schema, vec![file])),
        }
    }
    // The dataset's column types, as Polars has them.
    let targets = to_data_frame(&request.data_schema, &[])?.schema().clone();
    let mut frames = Vec::with_capacity(groups.len());
    for (schema, files) in groups {
        let frame = files_frame(request, &files, hive, partitions)?;
        let Some(schema) = schema else {
            frames.push(frame);
            continue;
        };
        let mut columns = Vec::with_capacity(targets.len() + request.partitioning.len());
        for (name, dtype) in targets.iter() {
            columns.push(if schema.field_with_name(name).is_ok() {
                col(name.clone()).strict_cast(dtype.clone())
            } else {
                lit(polars::prelude::Null {})
                    .cast(dtype.clone())
                    .alias(name.clone())
            });
        }
        if partitions {
            columns.extend(request.partitioning.iter().map(|p| col(p.name.as_str())));
        }
        frames.push(frame.select(columns));
    }
    if frames.len() == 1 {
        return frames.pop().ok_or_else(|| engine_error("no frame"));
    }
    concat(frames, UnionArgs::default()).map_err(engine_error)
}

/// The Arrow schema in a data file's footer.
fn file_schema(location: &str) -> Result<Schema> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let failed = |e: &dyn std::fmt::Display| {
        engine_error(format!("cannot read the schema of {location}: {e}"))
    };
    let file = std::fs::File::open(location).map_err(|e| failed(&e))?;
    let reader = SerializedFileReader::new(file).map_err(|e| failed(&e))?;
    let metadata = reader.metadata().file_metadata();
    parquet::arrow::parquet_to_arrow_schema(metadata.schema_descr(), metadata.key_value_metadata())
        .map(|schema| Schema::new(schema.fields().clone()))
        .map_err(|e| failed(&e))
}

/// `files` as one frame: their data columns as the files hold them, then the partition
/// columns when `partitions` (read by Polars from the folder names when `hive`, which
/// implies `partitions`, else attached from dala's index).
fn files_frame(
    request: &ScanRequest,
    files: &[&ScanFile],
    hive: bool,
    partitions: bool,
) -> Result<LazyFrame> {
    let paths: Vec<PlRefPath> = files
        .iter()
        .map(|f| PlRefPath::new(f.location.as_str()))
        .collect();
    match hive {
        true => hive_scan(request, paths),
        false if partitions && !request.partitioning.is_empty() => {
            frames_by_partition(request, files)
        }
        // No partition values to attach.
        _ => LazyFrame::scan_parquet_files(paths.into(), scan_args()).map_err(engine_error),
    }
}

/// `paths` as one scan, with Polars reading the partition values from the folder names,
/// typed by dala's partitioning. Only for folders named as dala writes them, so that
/// Polars reads back exactly the values in dala's index (see [`hive_readable`]). One scan
/// is faster than a scan per partition.
fn hive_scan(request: &ScanRequest, paths: Vec<PlRefPath>) -> Result<LazyFrame> {
    let schema = request
        .partitioning
        .iter()
        .map(|p| {
            Ok(PolarsField::new(
                p.name.as_str().into(),
                polars_type(&p.data_type)?,
            ))
        })
        .collect::<Result<PolarsSchema>>()?;
    let args = ScanArgsParquet {
        hive_options: HiveOptions {
            enabled: Some(true),
            hive_start_idx: 0,
            schema: Some(std::sync::Arc::new(schema)),
            try_parse_dates: true,
        },
        ..scan_args()
    };
    LazyFrame::scan_parquet_files(paths.into(), args).map_err(engine_error)
}

/// Whether Polars can read the partition values from the folder names: every partition
/// column named without escapes and of a type Polars parses from text (not boolean); every
/// file directly in the folder dala names after its values, with no empty string among them
/// (written as the null folder) and dates written as `YYYY-MM-DD`; and no `=` in the
/// dataset's root, since Polars parses every folder of a listed file's path (it starts at
/// the first for explicit files, whatever `hive_start_idx` says).
fn hive_readable(request: &ScanRequest) -> bool {
    use dala_dataset::layout::{escape, partition_dir};
    let readable = request.partitioning.iter().all(|p| {
        !p.name.is_empty()
            && escape(&p.name) == p.name
            && p.data_type != ArrowType::Boolean
            && polars_type(&p.data_type).is_ok()
    });
    if request.partitioning.is_empty() || !readable {
        return false;
    }
    request.files.iter().all(|file| {
        let entry = &file.entry;
        let Some(root) = file.location.strip_suffix(entry.path.as_str()) else {
            return false;
        };
        let plain_values = entry.partition_values.iter().all(|v| match v {
            Scalar::Date(_) => v.to_string().len() == "YYYY-MM-DD".len(),
            _ => v.to_partition_text().is_none_or(|t| !t.is_empty()),
        });
        let in_its_folder = partition_dir(&request.partitioning, &entry.partition_values)
            .ok()
            .and_then(|folder| {
                entry
                    .path
                    .strip_prefix(&folder)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .map(|name| !name.contains('/'))
            })
            .unwrap_or(false);
        !root.contains('=') && plain_values && in_its_folder
    })
}

/// `files`, a Polars scan per partition with its values attached as literals from
/// dala's index, concatenated (for folders Polars cannot read).
fn frames_by_partition(request: &ScanRequest, files: &[&ScanFile]) -> Result<LazyFrame> {
    // Files grouped by partition, in the order the index lists them.
    let mut groups: Vec<(Vec<Scalar>, Vec<PlRefPath>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for file in files {
        let dir = file.entry.partition_dir().to_string();
        let at = *index.entry(dir).or_insert_with(|| {
            groups.push((file.entry.partition_values.clone(), Vec::new()));
            groups.len() - 1
        });
        groups[at].1.push(PlRefPath::new(file.location.as_str()));
    }
    let args = scan_args();
    let mut frames = Vec::with_capacity(groups.len());
    for (values, paths) in groups {
        let frame =
            LazyFrame::scan_parquet_files(paths.into(), args.clone()).map_err(engine_error)?;
        let partitions = request
            .partitioning
            .iter()
            .zip(&values)
            .map(|(field, value)| {
                partition_value(value, &field.data_type).map(|e| e.alias(field.name.as_str()))
            })
            .collect::<Result<Vec<Expr>>>()?;
        frames.push(if partitions.is_empty() {
            frame
        } else {
            frame.with_columns(partitions)
        });
    }
    if frames.len() == 1 {
        return frames.pop().ok_or_else(|| engine_error("no frame"));
    }
    concat(
        frames,
        UnionArgs {
            diagonal: true,
            ..UnionArgs::default()
        },
    )
    .map_err(engine_error)
}

/// How dala's files are scanned: the listed files only, no hive parsing of their paths,
/// and columns a file lacks (added by a later schema) read as nulls.
fn scan_args() -> ScanArgsParquet {
    ScanArgsParquet {
        hive_options: HiveOptions {
            enabled: Some(false),
            ..HiveOptions::default()
        },
        glob: false,
        allow_missing_columns: true,
        ..ScanArgsParquet::default()
    }
}

/// A partition value as a Polars literal of the partition column's type.
fn partition_value(value: &Scalar, data_type: &ArrowType) -> Result<Expr> {
    let dtype = polars_type(data_type)?;
    Ok(match value {
        Scalar::Null => lit(polars::prelude::Null {}).cast(dtype),
        Scalar::Boolean(b) => lit(*b),
        Scalar::Int(v) => lit(*v).cast(dtype),
        Scalar::UInt(v) => lit(*v).cast(dtype),
        Scalar::Utf8(s) => lit(s.as_str()),
        Scalar::Date(days) => lit(*days).cast(dtype),
        other => {
            return Err(Error::Unsupported(format!(
                "partition value {other:?} on the polars engine"
            )));
        }
    })
}

/// Polars' type for a partition column's Arrow type.
fn polars_type(data_type: &ArrowType) -> Result<DataType> {
    Ok(match data_type {
        ArrowType::Boolean => DataType::Boolean,
        ArrowType::Int8 => DataType::Int8,
        ArrowType::Int16 => DataType::Int16,
        ArrowType::Int32 => DataType::Int32,
        ArrowType::Int64 => DataType::Int64,
        ArrowType::UInt8 => DataType::UInt8,
        ArrowType::UInt16 => DataType::UInt16,
        ArrowType::UInt32 => DataType::UInt32,
        ArrowType::UInt64 => DataType::UInt64,
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => DataType::String,
        ArrowType::Date32 => DataType::Date,
        other => {
            return Err(Error::Unsupported(format!(
                "partition columns of type {other} on the polars engine"
            )));
        }
    })
}

/// A frame with `schema`'s columns and no rows (a table without files).
fn empty_frame(schema: &SchemaRef) -> Result<LazyFrame> {
    Ok(to_data_frame(schema, &[])?.lazy())
}

/// arrow-rs batches of `schema` as a Polars [`DataFrame`], one chunk per batch, sharing
/// their buffers where Polars' types allow (through the Arrow C Data Interface).
pub fn to_data_frame(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<DataFrame> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let arrays: Vec<ArrayRef> = if batches.is_empty() {
            vec![arrow::array::new_empty_array(field.data_type())]
        } else {
            batches.iter().map(|b| b.column(i).clone()).collect()
        };
        let mut polars_field = None;
        let mut chunks = Vec::with_capacity(arrays.len());
        for array in &arrays {
            let (f, chunk) = ffi::to_polars(field, array)?;
            polars_field.get_or_insert(f);
            chunks.push(chunk);
        }
        let polars_field = polars_field.ok_or_else(|| engine_error("no column"))?;
        let series = Series::try_from((&polars_field, chunks)).map_err(|e| {
            engine_error(format!("column `{}` has no Polars type: {e}", field.name()))
        })?;
        columns.push(series.into_column());
    }
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    DataFrame::new(rows, columns).map_err(engine_error)
}

/// A Polars [`DataFrame`] as arrow-rs batches, one per chunk, sharing its buffers.
pub fn to_record_batches(df: DataFrame) -> Result<Vec<RecordBatch>> {
    record_batches(df, None).into_iter().collect()
}

/// Rows Polars' streaming engine gathers before it hands them to dala (a frame of the
/// morsels it read, not copied). Polars runs each hand-off on a thread of its own, one at
/// a time, while its readers wait: a full scan of two columns of 6 M rows, handed over
/// morsel by morsel, took 8 % longer than gathered 131 072 rows at a time (measured when
/// the hand-off also converted the frame). Memory stays bounded by this many rows, dala's
/// default row group size.
const SINK_ROWS: usize = 131_072;

/// How Polars runs a query for dala.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Collect {
    /// On its streaming engine, handing over [`SINK_ROWS`] rows at a time: memory stays
    /// bounded whatever the size of the scan.
    Streaming,
    /// On its in-memory engine, then handed over whole: for scans of at most
    /// [`SINK_ROWS`] rows, where memory is bounded the same and it saves the streaming
    /// engine's start (about 1 ms of a 10 ms selective scan here).
    InMemory,
}

/// Runs `frame` on a thread of its own; the frames it hands over cross to arrow-rs (cast to
/// `schema` when given) as the consumer reads them, so Polars' hand-off is only a send.
/// Converting in the hand-off held Polars' readers up: a full scan of two columns of 6 M
/// rows took 112.6 against raw Polars' 108.6 ms that way, 109.7 against 109.0 ms this way
/// (medians of 12 new processes).
fn stream(
    frame: LazyFrame,
    schema: Option<SchemaRef>,
    collect: Collect,
) -> Result<RecordBatchStream> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<DataFrame>>(4);
    if collect == Collect::InMemory {
        std::thread::spawn(move || {
            let df = inside_polars("the query", || frame.collect().map_err(engine_error));
            let _ = tx.blocking_send(df); // fails only when the consumer stopped
        });
        return Ok(frames_stream(rx, schema));
    }
    let sender = tx.clone();
    let frame = frame
        .sink_batches(
            PlanCallback::new(move |df: DataFrame| {
                // `true` stops Polars: the consumer stopped reading.
                Ok(sender.blocking_send(Ok(df)).is_err())
            }),
            true,
            NonZeroUsize::new(SINK_ROWS),
        )
        .map_err(engine_error)?;
    std::thread::spawn(move || {
        let run = inside_polars("the query", || {
            (frame.collect_with_engine(polars::prelude::Engine::Streaming)).map_err(engine_error)
        });
        if let Err(error) = run {
            let _ = tx.blocking_send(Err(error));
        }
    });
    Ok(frames_stream(rx, schema))
}

/// The frames Polars hands over, as arrow-rs batches (cast to `schema` when given),
/// converted as the consumer reads them.
fn frames_stream(
    receiver: tokio::sync::mpsc::Receiver<Result<DataFrame>>,
    schema: Option<SchemaRef>,
) -> RecordBatchStream {
    converted_receiver_stream(receiver, move |df| {
        inside_polars("handing the rows to arrow-rs", || {
            Ok(record_batches(df, schema.as_ref()))
        })
        .unwrap_or_else(|e| vec![Err(e)])
    })
}

/// Runs `work` (`what` Polars does, for the message), turning a panic inside Polars into an
/// engine error: a panic must reach the consumer as an error, not as an early end of rows.
fn inside_polars<T>(what: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        Err(engine_error(format!(
            "{what} failed inside Polars: {}",
            panic_message(panic.as_ref())
        )))
    })
}

/// A Polars frame as arrow-rs batches, one per chunk (cast to `schema` when given).
fn record_batches(mut df: DataFrame, schema: Option<&SchemaRef>) -> Vec<Result<RecordBatch>> {
    df.align_chunks();
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    df.iter_chunks(CompatLevel::newest(), false)
        .map(|chunk| {
            let rows = chunk.height();
            let columns = names
                .iter()
                .zip(chunk.into_arrays())
                .map(|(name, array)| ffi::to_arrow_rs(name, array))
                .collect::<Result<Vec<ArrayRef>>>()?;
            let batch_schema = match schema {
                Some(schema) => schema.clone(),
                None => std::sync::Arc::new(Schema::new(
                    names
                        .iter()
                        .zip(&columns)
                        .map(|(n, c)| Field::new(n, c.data_type().clone(), true))
                        .collect::<Vec<_>>(),
                )),
            };
            cast_to_schema(Engine::Polars, columns, rows, &batch_schema)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BooleanArray, Date32Array, Decimal128Array, Int32Array, Int64Array, StringArray,
        TimestampMicrosecondArray,
    };
    use arrow::datatypes::TimeUnit;
    use polars::prelude::IntoLazy;
    use std::sync::Arc;

    /// Rows around the night Berlin left summer time (2023-10-29, 01:00 UTC), with nulls.
    fn batch() -> RecordBatch {
        let zoned = ArrowType::Timestamp(TimeUnit::Microsecond, Some("Europe/Berlin".into()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", ArrowType::Int64, false),
            Field::new("qty", ArrowType::Int32, true),
            Field::new("price", ArrowType::Decimal128(10, 2), true),
            Field::new("flag", ArrowType::Boolean, true),
            Field::new("name", ArrowType::Utf8, true),
            Field::new("at", zoned, true),
            Field::new("day", ArrowType::Date32, true),
        ]));
        let n = 12i64;
        let midnight = 1_698_537_600_000_000i64; // 2023-10-29 00:00:00 UTC
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(Int32Array::from_iter(
                    (0..n).map(|i| (i % 5 != 4).then_some(i as i32)),
                )),
                Arc::new(
                    Decimal128Array::from_iter(
                        (0..n).map(|i| (i % 6 != 5).then_some(i as i128 * 125)),
                    )
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
                ),
                Arc::new(BooleanArray::from_iter(
                    (0..n).map(|i| (i % 4 != 3).then_some(i % 2 == 0)),
                )),
                Arc::new(StringArray::from_iter((0..n).map(|i| {
                    (i % 7 != 6).then(|| ["apple", "Avocado", "bob", "crab"][i as usize % 4])
                }))),
                Arc::new(
                    TimestampMicrosecondArray::from_iter(
                        (0..n).map(|i| (i != 7).then_some(midnight + (i - 4) * 1_800_000_000)),
                    )
                    .with_timezone("Europe/Berlin"),
                ),
                Arc::new(Date32Array::from_iter(
                    (0..n).map(|i| (i != 2).then_some(19_657 + (i as i32 % 3))),
                )),
            ],
        )
        .unwrap()
    }

    /// The ids of the rows `filter` keeps: by dala's own evaluation, and through Polars.
    fn kept(filter: &str) -> (Vec<i64>, Vec<i64>) {
        let batch = batch();
        let schema = batch.schema();
        let bound = DalaExpr::parse(filter).unwrap().bind(&schema).unwrap();
        let mask = bound.evaluate(&batch).unwrap();
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let dala = (0..batch.num_rows())
            .filter(|&i| arrow::array::Array::is_valid(&mask, i) && mask.value(i))
            .map(|i| ids.value(i))
            .collect();
        let types = (schema.fields().iter())
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        let expr = filter_expr(&bound, &types).unwrap();
        let frame = to_data_frame(&schema, std::slice::from_ref(&batch)).unwrap();
        let out = frame
            .lazy()
            .filter(expr)
            .select([col("id")])
            .collect()
            .unwrap();
        let polars = (out.column("id").unwrap().i64().unwrap().iter())
            .map(|v| v.unwrap())
            .collect();
        (dala, polars)
    }

    #[test]
    fn polars_expressions_keep_the_rows_dala_keeps() {
        for filter in [
            "TRUE",
            "FALSE",
            "qty < 5",
            "qty < 5.5",
            "5 > qty",
            "qty = 3000000000 OR qty = 2",
            "qty <> 3",
            "qty = NULL",
            "NOT (qty = NULL)",
            "qty IN (4, 6)",
            "qty IN (10.5, 3)",
            "qty IN (4, NULL)",
            "qty NOT IN (4, NULL)",
            "qty NOT IN (1, 2)",
            "qty BETWEEN 2 AND 5.5",
            "qty NOT BETWEEN 2 AND 5",
            "qty BETWEEN NULL AND 5",
            "price > 2.505",
            "price <= 3",
            "price = 2.5",
            "flag",
            "NOT flag",
            "flag = false OR qty IS NULL",
            "name LIKE 'a%'",
            "name NOT LIKE '%b'",
            "name ILIKE 'a%'",
            "name = 'bob' AND qty IS NOT NULL",
            "at >= TIMESTAMP '2023-10-29 00:30:00'",
            "at = TIMESTAMP '2023-10-29 00:30:00'",
            "at < TIMESTAMP '2023-10-29 02:30:00+02:00'",
            "at >= DATE '2023-10-29'",
            "at IS NULL",
            "day >= TIMESTAMP '2023-10-29 12:00:00'",
            "day = DATE '2023-10-29'",
            "qty < 5 AND name LIKE 'a%'",
            "qty > 100 OR name IS NULL",
            "at BETWEEN TIMESTAMP '2023-10-29 00:00:00' AND TIMESTAMP '2023-10-29 01:30:00' OR name LIKE 'c%'",
        ] {
            let (dala, polars) = kept(filter);
            assert_eq!(polars, dala, "{filter}");
        }
        // The tests above keep some rows and drop some.
        assert_eq!(kept("qty < 5").0, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_literal_keeps_its_value_in_the_columns_type() {
        let at = ArrowType::Timestamp(TimeUnit::Microsecond, Some("Europe/Berlin".into()));
        let value = Scalar::Timestamp {
            value: 1_679_794_200_000_000,
            unit: TimeUnit::Microsecond,
            tz: Some("UTC".into()),
        };
        let array = exact_array(&value, &at).unwrap();
        assert_eq!(array.data_type(), &at);
        let back = Scalar::from_array(array.as_ref(), 0).unwrap();
        assert_eq!(back.compare(&value), Some(std::cmp::Ordering::Equal));
        assert!(exact_array(&Scalar::Float(10.5), &ArrowType::Int32).is_none());
        assert!(exact_array(&Scalar::Int(300), &ArrowType::Int8).is_none());
        assert!(exact_array(&Scalar::Int(-1), &ArrowType::UInt32).is_none());
        assert!(exact_array(&Scalar::Int(12), &ArrowType::Decimal128(10, 2)).is_some());
    }
}
