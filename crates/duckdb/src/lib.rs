//! # dala-duckdb
//!
//! DuckDB as a dala engine. dala plans a scan (partitions and files pruned by its index);
//! DuckDB reads exactly the files left, with `read_parquet([...])` over their paths (never a
//! glob, so it lists no directory), the partition values joined from dala's index with
//! their recorded types, the projection, filter and limit pushed into its SQL. Results come
//! back as arrow-rs batches through DuckDB's Arrow interface, streamed from a thread that
//! owns its connection, and are cast to the dataset's own types, so every engine returns
//! the same schema.
//!
//! - [`DuckdbEngine`] implements [`dala_dataset::ScanEngine`]: `scan` and `sql`.
//! - [`register_view`] registers a dataset scan as a view on a caller's
//!   [`duckdb::Connection`].
//!
//! DuckDB reads local files itself. The prebuilt library has no S3 support, so a dataset on
//! an object store is read by dala's own reader (pruned, filtered, through dala's cache)
//! and appended to a temporary DuckDB table that the scan or query then reads; DuckDB
//! spills that table to its temporary directory beyond its memory limit.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use dala_dataset::{
    Engine, Error, Expr as DalaExpr, RecordBatchStream, Result, Scalar, ScanEngine, ScanRequest,
    cast_to_schema, grouped_receiver_stream, lit, quote_identifier,
};
use futures::StreamExt;

/// Settings of the DuckDB database an engine runs on.
#[derive(Debug, Clone, Default)]
pub struct DuckdbOptions {
    /// Worker threads (DuckDB's default: one per core).
    pub threads: Option<usize>,
    /// Memory limit, e.g. `"2GB"` (DuckDB's default: 80% of the machine's memory).
    pub memory_limit: Option<String>,
    /// Where DuckDB spills when over its memory limit.
    pub temp_directory: Option<PathBuf>,
    /// How far DuckDB's workers may run ahead of a streamed result, e.g. `"8MB"` (dala's
    /// default: [`STREAMING_BUFFER_SIZE`]). DuckDB's own default, about 1 MB, holds a few
    /// dozen vectors of a narrow scan, so its workers keep waiting for the consumer.
    pub streaming_buffer_size: Option<String>,
    /// The zone DuckDB's SQL reads and shows times with a zone in (its `TimeZone` setting),
    /// e.g. `"Europe/Berlin"` (dala's default: [`TIME_ZONE`]). It decides what a
    /// `TIMESTAMP` compared with such a column means, the day a cast of one to `DATE` falls
    /// on, and the zone such columns carry in a query's Arrow result. DuckDB's own default
    /// is the machine's zone, which would make one query's answer differ between machines.
    /// Scans are not affected: their filters are instants, their results the dataset's types.
    pub time_zone: Option<String>,
}

/// The zone DuckDB's SQL runs in unless [`DuckdbOptions::time_zone`] says otherwise: UTC,
/// the zone dala reads a time without one in.
pub const TIME_ZONE: &str = "UTC";

/// The result bytes DuckDB buffers ahead of a streamed scan or query unless
/// [`DuckdbOptions::streaming_buffer_size`] says otherwise: with DuckDB's default (about
/// 1 MB) a full scan of two columns of 6 M rows took 167 ms here, with 8 MB 97 ms.
pub const STREAMING_BUFFER_SIZE: &str = "8MB";

/// DuckDB as a dala engine. One in-memory database; each scan or query runs on its own
/// connection to it (a DuckDB connection may move between threads but not be shared).
///
/// The database starts on a thread of its own when the engine is made, and the first scan
/// or query waits for it: DuckDB takes about 20 ms to start (registering its functions),
/// time in which the caller can open its datasets and plan.
pub struct DuckdbEngine {
    base: Mutex<Base>,
    /// `SET` statements run on each connection a scan or query streams from (settings
    /// DuckDB takes per connection only, or not before its extensions are loaded).
    session: String,
    in_use: Arc<AtomicUsize>,
}

/// The engine's database: starting, then the connection every scan's is cloned from.
enum Base {
    /// Starting on a thread of its own.
    Starting(std::thread::JoinHandle<Result<duckdb::Connection>>),
    /// Started.
    Ready(duckdb::Connection),
    /// Could not start, for this reason.
    Failed(String),
}

/// DuckDB's settings from `options` (a `duckdb::Config` cannot cross threads, so the
/// thread that opens the database makes its own).
fn database_config(options: &DuckdbOptions) -> Result<duckdb::Config> {
    let mut config = duckdb::Config::default();
    if let Some(threads) = options.threads {
        config = config.threads(threads as i64).map_err(engine_error)?;
    }
    if let Some(limit) = &options.memory_limit {
        config = config.max_memory(limit).map_err(engine_error)?;
    }
    if let Some(dir) = &options.temp_directory {
        config = config
            .with("temp_directory", dir.display().to_string())
            .map_err(engine_error)?;
    }
    Ok(config)
}

/// A new in-memory database with `options`, and a connection to it.
fn open_database(options: &DuckdbOptions) -> Result<duckdb::Connection> {
    duckdb::Connection::open_in_memory_with_flags(database_config(options)?).map_err(engine_error)
}

/// Runs `session` (the engine's `SET` statements) on `conn`.
fn apply_session(conn: &duckdb::Connection, session: &str) -> Result<()> {
    conn.execute_batch(session)
        .map_err(|e| engine_error(format!("{e} in `{session}`")))
}

/// Counts a connection as in use until dropped (with the connection, when its stream ends,
/// fails or is dropped by the consumer).
struct InUse(Arc<AtomicUsize>);

impl InUse {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        InUse(count.clone())
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for DuckdbEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DuckdbEngine").finish_non_exhaustive()
    }
}

fn engine_error(message: impl std::fmt::Display) -> Error {
    Error::Engine {
        engine: "duckdb".into(),
        message: message.to_string(),
    }
}

impl DuckdbEngine {
    /// An engine on a new in-memory DuckDB database with `options`. Settings DuckDB
    /// refuses are reported here; the database itself starts in the background (see
    /// [`DuckdbEngine`]), and should it fail to start, the first scan or query says why.
    pub fn new(options: &DuckdbOptions) -> Result<Self> {
        drop(database_config(options)?); // refused settings are reported now
        let buffer = options
            .streaming_buffer_size
            .as_deref()
            .unwrap_or(STREAMING_BUFFER_SIZE);
        let zone = options.time_zone.as_deref().unwrap_or(TIME_ZONE);
        let session = format!(
            "SET streaming_buffer_size = {}; SET TimeZone = {}",
            quote_string(buffer),
            quote_string(zone)
        );
        let base = if options.streaming_buffer_size.is_some() || options.time_zone.is_some() {
            // A bad size or zone is refused now, not at the first scan.
            let base = open_database(options)?;
            apply_session(&base, &session)?;
            Base::Ready(base)
        } else {
            let starting = options.clone();
            match std::thread::Builder::new()
                .name("dala-duckdb-start".into())
                .spawn(move || open_database(&starting))
            {
                Ok(handle) => Base::Starting(handle),
                Err(_) => Base::Ready(open_database(options)?),
            }
        };
        Ok(DuckdbEngine {
            base: Mutex::new(base),
            session,
            in_use: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Connections running a scan or query now. A stream that ends, fails or is dropped
    /// releases its connection.
    pub fn connections_in_use(&self) -> usize {
        self.in_use.load(Ordering::SeqCst)
    }

    /// A new connection to the engine's database (for native use), with the engine's
    /// settings, as its scans and queries have them.
    pub fn connection(&self) -> Result<duckdb::Connection> {
        let conn = self.new_connection()?;
        apply_session(&conn, &self.session)?;
        Ok(conn)
    }

    /// A new connection to the engine's database, its per-connection settings not yet
    /// applied (once the database has started).
    fn new_connection(&self) -> Result<duckdb::Connection> {
        let mut base = self
            .base
            .lock()
            .map_err(|_| engine_error("the engine's connection was poisoned"))?;
        if matches!(*base, Base::Starting(_)) {
            let starting = std::mem::replace(&mut *base, Base::Failed(String::new()));
            *base = match starting {
                Base::Starting(handle) => match handle.join() {
                    Ok(Ok(connection)) => Base::Ready(connection),
                    Ok(Err(Error::Engine { message, .. })) => Base::Failed(message),
                    Ok(Err(e)) => Base::Failed(e.to_string()),
                    Err(_) => Base::Failed("DuckDB panicked while starting".into()),
                },
                other => other,
            };
        }
        match &*base {
            Base::Ready(connection) => connection.try_clone().map_err(engine_error),
            Base::Failed(message) => Err(engine_error(format!(
                "the database could not start: {message}"
            ))),
            Base::Starting(_) => Err(engine_error("the database is still starting")),
        }
    }

    /// Loads `loads` into temporary tables, then runs `statement` with `params` bound, on a
    /// connection of its own, streaming the result cast to `schema` (when given).
    fn run(
        &self,
        loads: Vec<Load>,
        statement: Statement,
        params: Vec<duckdb::types::Value>,
        schema: Option<SchemaRef>,
    ) -> Result<RecordBatchStream> {
        let conn = self.new_connection()?;
        let in_use = InUse::new(&self.in_use);
        let session = self.session.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<RecordBatch>>>(4);
        std::thread::spawn(move || {
            let run = || -> Result<()> {
                apply_session(&conn, &session)?;
                for load in loads {
                    load.into_table(&conn)?;
                }
                let (mut stmt, query) = statement.prepare(&conn)?;
                drop(
                    stmt.stream_arrow(duckdb::params_from_iter(params.iter()))
                        .map_err(|e| engine_error(format!("{e} in `{query}`")))?,
                );
                let mut pending = HandOff::default();
                while let Some(rows) = stmt.step().map_err(engine_error)? {
                    let batch = RecordBatch::from(&rows);
                    let batch = match &schema {
                        Some(schema) => cast_to_schema(
                            Engine::Duckdb,
                            batch.columns().to_vec(),
                            batch.num_rows(),
                            schema,
                        )?,
                        None => batch,
                    };
                    if let Some(batches) = pending.push(batch)
                        && tx.blocking_send(Ok(batches)).is_err()
                    {
                        return Ok(()); // the consumer stopped reading
                    }
                }
                let rest = pending.take();
                if !rest.is_empty() {
                    let _ = tx.blocking_send(Ok(rest));
                }
                Ok(())
            };
            // A panic must reach the consumer as an error, not as an early end of rows.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                .unwrap_or_else(|_| Err(engine_error("the query's worker thread panicked")));
            if let Err(e) = outcome {
                let _ = tx.blocking_send(Err(e));
            }
            drop(conn);
            drop(in_use);
        });
        Ok(grouped_receiver_stream(rx))
    }
}

/// Rows of a result gathered before they cross to the consumer's thread. DuckDB returns
/// a result in chunks of 2 048 rows; handing each over on its own woke the consumer about
/// 3 000 times for a full scan of two columns of 6 M rows. The chunks cross in groups
/// instead, as they are (no copy); memory stays bounded by a group.
const HAND_OFF_ROWS: usize = 65_536;

/// The batches gathered for the next hand-off.
#[derive(Default)]
struct HandOff {
    batches: Vec<RecordBatch>,
    rows: usize,
}

impl HandOff {
    /// Adds `batch`; returns the group once it holds [`HAND_OFF_ROWS`] rows.
    fn push(&mut self, batch: RecordBatch) -> Option<Vec<RecordBatch>> {
        self.rows += batch.num_rows();
        self.batches.push(batch);
        (self.rows >= HAND_OFF_ROWS).then(|| self.take())
    }

    /// The batches gathered so far.
    fn take(&mut self) -> Vec<RecordBatch> {
        self.rows = 0;
        std::mem::take(&mut self.batches)
    }
}

impl ScanEngine for DuckdbEngine {
    fn kind(&self) -> Engine {
        Engine::Duckdb
    }

    fn scan(&self, request: ScanRequest) -> Result<RecordBatchStream> {
        check_zoned_precision(&request)?;
        if request.files.is_empty() {
            return Ok(futures::stream::empty().boxed());
        }
        let schema = Some(request.output_schema.clone());
        if !reads_files_itself(&request) {
            let load = Load::new(REMOTE_SCAN, &request)?;
            let query = format!("SELECT * FROM {}", quote_identifier(REMOTE_SCAN));
            return self.run(vec![load], Statement::plain(query), Vec::new(), schema);
        }
        let query = scan_sql(&request)?;
        self.run(Vec::new(), Statement::plain(query), Vec::new(), schema)
    }

    fn sql(
        &self,
        tables: Vec<(String, ScanRequest)>,
        query: &str,
        params: &[Scalar],
    ) -> Result<RecordBatchStream> {
        let mut loads = Vec::new();
        let mut statement = Statement::plain(query.to_string());
        for (name, request) in &tables {
            if reads_files_itself(request) || request.files.is_empty() {
                statement.tables.push((name.clone(), table_sql(request)?));
            } else {
                loads.push(Load::new(name, request)?);
            }
        }
        let params = params.iter().map(duckdb_value).collect();
        self.run(loads, statement, params, None)
    }
}

/// Whether DuckDB reads the files of `request` itself: local files whose paths it takes as
/// written. DuckDB reads a path with `*`, `?` or `[` as a pattern (`data?.parquet` would read
/// `data1.parquet` too) and one that starts with `~` in the home folder, so files named so
/// are read by dala's reader and handed to DuckDB, as remote ones are.
fn reads_files_itself(request: &ScanRequest) -> bool {
    request.local && request.files.iter().all(|f| takes_as_written(&f.location))
}

/// Whether DuckDB reads `path` as the one file it names (see [`reads_files_itself`]).
fn takes_as_written(path: &str) -> bool {
    !path.contains(['*', '?', '[']) && !path.starts_with('~')
}

/// The SQL a scan or query runs, with the tables it reads.
struct Statement {
    /// The query as the caller wrote it.
    query: String,
    /// Each table the query reads: its name and the SELECT that reads it.
    tables: Vec<(String, String)>,
}

impl Statement {
    /// A query that reads no table of dala's.
    fn plain(query: String) -> Self {
        Statement {
            query,
            tables: Vec::new(),
        }
    }

    /// The query with its tables defined in its own WITH clause (`NOT MATERIALIZED`, so
    /// inlined as a view is), when it is one statement that starts as one that takes a WITH
    /// clause: creating a view first binds its `read_parquet` once more, about 3 ms over 84
    /// files. The tables are then not in DuckDB's catalog (`duckdb_views()` does not list
    /// them). `None` for other statements (`DESCRIBE`, `PIVOT`, …) and several statements
    /// at once (DuckDB runs all but the last of several statements while preparing them, so
    /// a second attempt would run them twice), which read the tables as temporary views.
    fn inlined(&self) -> Option<String> {
        if self.tables.is_empty() || !is_one_statement(&self.query) {
            return None;
        }
        let definitions = (self.tables.iter())
            .map(|(name, select)| {
                format!("{} AS NOT MATERIALIZED ({select})", quote_identifier(name))
            })
            .collect::<Vec<_>>()
            .join(", ");
        with_tables(&self.query, &definitions)
    }

    /// The statement prepared on `conn`, and the query its errors name. The inlined form
    /// is tried first; if DuckDB refuses it (a syntax error, or a name the query defines
    /// too), the query runs over views, as written, and its error is the one reported.
    fn prepare(self, conn: &duckdb::Connection) -> Result<(duckdb::Statement<'_>, String)> {
        if let Some(inlined) = self.inlined()
            && let Ok(stmt) = conn.prepare(&inlined)
        {
            return Ok((stmt, self.query));
        }
        for (name, select) in &self.tables {
            let view = view_sql(name, select);
            conn.execute_batch(&view)
                .map_err(|e| engine_error(format!("{e} in `{view}`")))?;
        }
        let stmt = conn
            .prepare(&self.query)
            .map_err(|e| engine_error(format!("{e} in `{}`", self.query)))?;
        Ok((stmt, self.query))
    }
}

/// Whether `query` is certainly one statement: no `;` but at its end. (A `;` in a string or
/// a comment counts too, which only costs the view path.)
fn is_one_statement(query: &str) -> bool {
    !query.trim_end().trim_end_matches(';').contains(';')
}

/// `query` with `definitions` (`name AS (…)`, comma-separated) first in its WITH clause,
/// when it starts with `SELECT`, `FROM`, `VALUES`, `WITH` or a parenthesis (after any
/// comments); `None` for other statements.
fn with_tables(query: &str, definitions: &str) -> Option<String> {
    let (keyword, end) = first_token(query)?;
    if keyword.eq_ignore_ascii_case("WITH") {
        let (head, rest) = query.split_at(end);
        let (head, rest) = match first_token(rest) {
            Some((next, next_end)) if next.eq_ignore_ascii_case("RECURSIVE") => {
                (query.split_at(end + next_end).0, &rest[next_end..])
            }
            _ => (head, rest),
        };
        return Some(format!("{head} {definitions},{rest}"));
    }
    ["SELECT", "FROM", "VALUES", "("]
        .iter()
        .any(|k| keyword.eq_ignore_ascii_case(k))
        .then(|| format!("WITH {definitions} {query}"))
}

/// The first token of `sql` after white space and comments (a word, or `(`), and the
/// byte offset just past it.
fn first_token(sql: &str) -> Option<(&str, usize)> {
    let mut at = 0;
    loop {
        let rest = &sql[at..];
        let trimmed = rest.trim_start();
        at += rest.len() - trimmed.len();
        if let Some(comment) = trimmed.strip_prefix("--") {
            at += 2 + comment.find('\n').map_or(comment.len(), |n| n + 1);
        } else if let Some(comment) = trimmed.strip_prefix("/*") {
            at += 2 + comment.find("*/")? + 2;
        } else {
            break;
        }
    }
    let rest = &sql[at..];
    if rest.starts_with('(') {
        return Some(("(", at + 1));
    }
    let word = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    (word > 0).then(|| (&rest[..word], at + word))
}

/// The table a scan of a remote dataset is loaded into.
const REMOTE_SCAN: &str = "dala_remote_scan";

/// A scan that dala's reader runs and DuckDB receives as a temporary table.
struct Load {
    /// `CREATE TEMP TABLE …` with the scan's columns and types.
    create: String,
    table: String,
    /// The scan's batches, read by a task on the caller's runtime, then `None` once it has
    /// sent them all (the channel closing without it means the task was stopped).
    batches: tokio::sync::mpsc::Receiver<Result<Option<RecordBatch>>>,
}

impl Load {
    /// Starts dala's scan of `request` (within the caller's runtime) for table `name`.
    fn new(name: &str, request: &ScanRequest) -> Result<Self> {
        let columns = request
            .output_schema
            .fields()
            .iter()
            .map(|f| {
                Ok(format!(
                    "{} {}",
                    quote_identifier(f.name()),
                    duckdb_type(f.data_type())?
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            engine_error("a scan of a remote dataset needs to start within a tokio runtime")
        })?;
        let mut stream = request.native_stream()?;
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        runtime.spawn(async move {
            while let Some(batch) = stream.next().await {
                if tx.send(batch.map(Some)).await.is_err() {
                    return; // the query stopped
                }
            }
            let _ = tx.send(Ok(None)).await; // every row sent
        });
        Ok(Load {
            create: format!(
                "CREATE OR REPLACE TEMP TABLE {} ({})",
                quote_identifier(name),
                columns.join(", ")
            ),
            table: name.to_string(),
            batches: rx,
        })
    }

    /// Creates the table on `conn` and appends every batch of the scan to it.
    fn into_table(mut self, conn: &duckdb::Connection) -> Result<()> {
        conn.execute_batch(&self.create)
            .map_err(|e| engine_error(format!("{e} in `{}`", self.create)))?;
        let mut appender = conn.appender(&self.table).map_err(engine_error)?;
        loop {
            match self.batches.blocking_recv() {
                Some(Ok(Some(batch))) => appender
                    .append_record_batch(batch)
                    .map_err(|e| engine_error(format!("{e} appending to {}", self.table)))?,
                Some(Ok(None)) => return appender.flush().map_err(engine_error),
                Some(Err(e)) => return Err(e),
                // A table of some of the rows must not be queried as if whole.
                None => {
                    return Err(engine_error(format!(
                        "the scan that fills {} stopped before its end",
                        self.table
                    )));
                }
            }
        }
    }
}

/// Registers the scan `request` (a dataset at one version, pruned) as a temporary view
/// `name` on `conn`.
///
/// DuckDB reads the files itself, so they must be local, with paths DuckDB takes as
/// written: a file whose path has `*`, `?` or `[` (DuckDB's patterns) is refused with
/// [`Error::Unsupported`]; [`DuckdbEngine`] reads such files with dala's reader.
pub fn register_view(conn: &duckdb::Connection, name: &str, request: &ScanRequest) -> Result<()> {
    if let Some(file) = (request.files.iter()).find(|f| !takes_as_written(&f.location)) {
        return Err(Error::Unsupported(format!(
            "a view of file {}, whose path DuckDB would read as a pattern: scan or query it \
             through DuckdbEngine",
            file.location
        )));
    }
    let sql = view_sql(name, &table_sql(request)?);
    conn.execute_batch(&sql)
        .map_err(|e| engine_error(format!("{e} in `{sql}`")))
}

/// `CREATE OR REPLACE TEMP VIEW name AS select`.
fn view_sql(name: &str, select: &str) -> String {
    format!(
        "CREATE OR REPLACE TEMP VIEW {} AS {select}",
        quote_identifier(name)
    )
}

/// The SELECT that reads the scan `request` as a table (no rows, with its columns, when
/// every file was pruned).
fn table_sql(request: &ScanRequest) -> Result<String> {
    if request.files.is_empty() {
        empty_sql(&request.output_schema)
    } else {
        scan_sql(request)
    }
}

/// A SELECT with the schema's columns and no rows.
fn empty_sql(schema: &SchemaRef) -> Result<String> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            Ok(format!(
                "CAST(NULL AS {}) AS {}",
                duckdb_type(f.data_type())?,
                quote_identifier(f.name())
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(format!("SELECT {} LIMIT 0", columns.join(", ")))
}

/// The column of file names DuckDB adds to join a file's rows with its partition values
/// (named so that no data column is likely to hold the name).
const FILE_COLUMN: &str = "__dala_file";

/// The SELECT that reads a scan's files: the data columns from the files, the partition
/// columns from dala's index (joined by file name), then the projection, filter and limit.
fn scan_sql(request: &ScanRequest) -> Result<String> {
    request.require_local(Engine::Duckdb)?;
    check_zoned_filter(request)?;
    let files: Vec<String> = request
        .files
        .iter()
        .map(|f| quote_string(&f.location))
        .collect();
    // Files written under other schemas are unified by name (a missing column reads as
    // nulls), which has DuckDB read every file's footer before it starts; files that all
    // hold the dataset's schema are read as they are.
    let union_by_name = !request.files_match_schema();
    // Parquet's statistics leave NaN out of a float column's bounds, and NaN is greater
    // than every number to DuckDB as to dala: without `can_have_nan`, DuckDB would skip a
    // row group whose maximum is below `x` for `x > …` though a NaN in it matches.
    let options = format!("union_by_name = {union_by_name}, can_have_nan = true");
    let source = if !request.needs_partition_values() {
        format!(
            "SELECT * FROM read_parquet([{}], {options}, hive_partitioning = false)",
            files.join(", ")
        )
    } else if let Some(types) = plain_hive_types(request)? {
        // The folders spell every value as it is: DuckDB reads them, typed by dala.
        format!(
            "SELECT * FROM read_parquet([{}], {options}, hive_partitioning = true, \
             hive_types_autocast = false, hive_types = {{{types}}})",
            files.join(", ")
        )
    } else {
        let mut rows = Vec::with_capacity(request.files.len());
        for file in &request.files {
            let mut values = vec![quote_string(&file.location)];
            for (field, value) in request
                .partitioning
                .iter()
                .zip(&file.entry.partition_values)
            {
                values.push(format!(
                    "CAST({} AS {})",
                    lit(value.clone()),
                    duckdb_type(&field.data_type)?
                ));
            }
            rows.push(format!("({})", values.join(", ")));
        }
        let names: Vec<String> = std::iter::once(FILE_COLUMN.to_string())
            .chain(
                request
                    .partitioning
                    .iter()
                    .map(|p| quote_identifier(&p.name)),
            )
            .collect();
        format!(
            "SELECT * EXCLUDE ({FILE_COLUMN}) FROM read_parquet([{}], filename = '{FILE_COLUMN}', \
             hive_partitioning = false, {options}) \
             JOIN (VALUES {}) AS dala_partitions({}) USING ({FILE_COLUMN})",
            files.join(", "),
            rows.join(", "),
            names.join(", ")
        )
    };
    let sql = request.select_sql(&format!("({source}) AS dala_scan"), filter_sql);
    Ok(sql)
}

/// A bound filter as DuckDB SQL: dala's SQL, except that a timestamp bound to a column with
/// a time zone is written as the instant it is (`TIMESTAMPTZ '…+00:00'`). Written without
/// its offset, DuckDB would read it in the session's time zone, the machine's where its
/// ICU extension is loaded, and dala reads it as UTC.
///
/// A time without a zone in nanoseconds is written as DuckDB's `TIMESTAMP_NS`, whose
/// `TIMESTAMP` holds microseconds.
fn filter_sql(filter: &DalaExpr) -> String {
    filter.to_sql_with(&|value| match value {
        Scalar::Timestamp { tz: Some(_), .. } => Some(format!("TIMESTAMPTZ '{value}+00:00'")),
        Scalar::Timestamp {
            tz: None,
            unit: TimeUnit::Nanosecond,
            ..
        } => Some(format!("TIMESTAMP_NS '{value}'")),
        // In exponent form DuckDB reads a number as a DOUBLE, as dala compares it; `0.1`
        // would be a DECIMAL, which DuckDB compares with a FLOAT column as a FLOAT (so a
        // FLOAT column's 0.1 would not be greater than it) and converts to a DOUBLE a unit
        // off in the last place for some values.
        Scalar::Float(v) if v.is_finite() => Some(format!("{v:e}")),
        // Every byte escaped: a plain string would have DuckDB read its `\x41` as one byte.
        Scalar::Binary(bytes) => Some(format!(
            "'{}'::BLOB",
            bytes
                .iter()
                .map(|b| format!("\\x{b:02X}"))
                .collect::<String>()
        )),
        _ => None,
    })
}

/// Refuses a scan DuckDB would answer with nanoseconds cut off: its times with a zone
/// (`TIMESTAMPTZ`) hold microseconds, so it cannot return a column of times with a zone in
/// nanoseconds, filter on one, or compare a time with a zone with a value finer than a
/// microsecond. (Its `TIMESTAMP_NS` holds times without a zone in nanoseconds.)
fn check_zoned_precision(request: &ScanRequest) -> Result<()> {
    for field in request.output_schema.fields() {
        if zoned_nanoseconds(field.data_type()) {
            return refuse_zoned_nanoseconds(format!(
                "column `{}` holds times with a zone in nanoseconds",
                field.name()
            ));
        }
    }
    check_zoned_filter(request)
}

/// The error for what DuckDB cannot answer without cutting nanoseconds off.
fn refuse_zoned_nanoseconds(what: String) -> Result<()> {
    Err(Error::Unsupported(format!(
        "{what}, and DuckDB holds times with a zone to the microsecond: use the arrow or \
         polars engine"
    )))
}

/// Refuses a filter DuckDB would evaluate with nanoseconds cut off (see
/// [`check_zoned_precision`]). SQL over a scan checks its filter only: the query sees the
/// columns as DuckDB reads them.
fn check_zoned_filter(request: &ScanRequest) -> Result<()> {
    let Some(filter) = &request.filter else {
        return Ok(());
    };
    for name in filter.columns() {
        if let Ok(field) = request.data_schema.field_with_name(&name)
            && zoned_nanoseconds(field.data_type())
        {
            return refuse_zoned_nanoseconds(format!(
                "the filter reads column `{name}`, which holds times with a zone in nanoseconds"
            ));
        }
    }
    for value in filter.literals() {
        if let Scalar::Timestamp {
            value: nanos,
            unit: TimeUnit::Nanosecond,
            tz: Some(_),
        } = value
            && nanos % 1_000 != 0
        {
            return refuse_zoned_nanoseconds(format!(
                "the filter compares a time with a zone with TIMESTAMP '{value}', finer than a \
                 microsecond"
            ));
        }
    }
    Ok(())
}

/// Whether `data_type` holds times with a zone in nanoseconds (dictionary-encoded or not).
fn zoned_nanoseconds(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(_, values) => zoned_nanoseconds(values),
        DataType::Timestamp(TimeUnit::Nanosecond, Some(_)) => true,
        _ => false,
    }
}

/// The `hive_types` of a scan whose partition folders DuckDB can read as they are: every
/// name and value written without escapes, no nulls, types DuckDB parses from text, and no
/// `key=value` folder above the dataset. `None` otherwise (values are then joined from
/// dala's index).
fn plain_hive_types(request: &ScanRequest) -> Result<Option<String>> {
    use dala_dataset::layout::{escape, is_partition_type};
    let plain = |text: &str| !text.is_empty() && escape(text) == text;
    let readable = request.partitioning.iter().all(|p| {
        plain(&p.name) && is_partition_type(&p.data_type) && p.data_type != DataType::Boolean
    });
    // DuckDB reads a folder value `NULL` (in any case) or `__HIVE_DEFAULT_PARTITION__` as null.
    let null_like =
        |text: &str| text.eq_ignore_ascii_case("null") || text == "__HIVE_DEFAULT_PARTITION__";
    let values_plain = request.files.iter().all(|f| {
        (f.entry.partition_values.iter()).all(|v| {
            v.to_partition_text()
                .is_some_and(|t| plain(&t) && !null_like(&t))
        })
    });
    if !readable || !values_plain || request.dataset.contains('=') {
        return Ok(None);
    }
    let types = request
        .partitioning
        .iter()
        .map(|p| {
            Ok(format!(
                "{}: '{}'",
                quote_string(&p.name),
                duckdb_type(&p.data_type)?
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(types.join(", ")))
}

/// DuckDB's name for an Arrow type (for partition values, empty results and the tables of
/// rows dala reads for DuckDB).
fn duckdb_type(data_type: &DataType) -> Result<String> {
    Ok(match data_type {
        DataType::Dictionary(_, values) => duckdb_type(values)?,
        DataType::List(item) | DataType::LargeList(item) | DataType::ListView(item) => {
            format!("{}[]", duckdb_type(item.data_type())?)
        }
        DataType::FixedSizeList(item, size) => {
            format!("{}[{size}]", duckdb_type(item.data_type())?)
        }
        DataType::Struct(fields) => format!(
            "STRUCT({})",
            (fields.iter())
                .map(|f| Ok(format!(
                    "{} {}",
                    quote_identifier(f.name()),
                    duckdb_type(f.data_type())?
                )))
                .collect::<Result<Vec<_>>>()?
                .join(", ")
        ),
        DataType::Float16 => "FLOAT".into(),
        DataType::FixedSizeBinary(_) => "BLOB".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "UTINYINT".into(),
        DataType::UInt16 => "USMALLINT".into(),
        DataType::UInt32 => "UINTEGER".into(),
        DataType::UInt64 => "UBIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BLOB".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMPTZ".into(),
        DataType::Timestamp(TimeUnit::Second, None) => "TIMESTAMP_S".into(),
        DataType::Timestamp(TimeUnit::Millisecond, None) => "TIMESTAMP_MS".into(),
        DataType::Timestamp(TimeUnit::Microsecond, None) => "TIMESTAMP".into(),
        DataType::Timestamp(TimeUnit::Nanosecond, None) => "TIMESTAMP_NS".into(),
        other => {
            return Err(Error::Unsupported(format!(
                "no DuckDB type for {other} in this position"
            )));
        }
    })
}

/// A parameter as a DuckDB value. Decimals and zoned timestamps go as text, which DuckDB
/// casts to the placeholder's type exactly.
fn duckdb_value(value: &Scalar) -> duckdb::types::Value {
    use duckdb::types::Value;
    match value {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Boolean(*b),
        Scalar::Int(v) => Value::BigInt(*v),
        Scalar::UInt(v) => Value::UBigInt(*v),
        Scalar::Float(v) => Value::Double(*v),
        Scalar::Utf8(s) => Value::Text(s.clone()),
        Scalar::Binary(b) => Value::Blob(b.clone()),
        Scalar::Date(days) => Value::Date32(*days),
        Scalar::Timestamp {
            value,
            unit,
            tz: None,
        } => {
            let unit = match unit {
                TimeUnit::Second => duckdb::types::TimeUnit::Second,
                TimeUnit::Millisecond => duckdb::types::TimeUnit::Millisecond,
                TimeUnit::Microsecond => duckdb::types::TimeUnit::Microsecond,
                TimeUnit::Nanosecond => duckdb::types::TimeUnit::Nanosecond,
            };
            Value::Timestamp(unit, *value)
        }
        decimal @ Scalar::Decimal { .. } => Value::Text(decimal.to_string()),
        // A zoned timestamp holds UTC; its text says so.
        zoned @ Scalar::Timestamp { .. } => Value::Text(format!("{zoned}+00:00")),
    }
}

/// A SQL string literal.
fn quote_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_go_first_in_the_querys_with_clause() {
        let defs = "\"t\" AS NOT MATERIALIZED (SELECT 1 AS a)";
        let with = |q: &str| with_tables(q, defs);
        assert_eq!(
            with("SELECT * FROM t").unwrap(),
            format!("WITH {defs} SELECT * FROM t")
        );
        assert_eq!(with("from t").unwrap(), format!("WITH {defs} from t"));
        assert_eq!(
            with("(SELECT 1)").unwrap(),
            format!("WITH {defs} (SELECT 1)")
        );
        assert_eq!(
            with("  -- why\n/* how */ SELECT 1").unwrap(),
            format!("WITH {defs}   -- why\n/* how */ SELECT 1")
        );
        assert_eq!(
            with("with u AS (SELECT 2) SELECT * FROM u, t").unwrap(),
            format!("with {defs}, u AS (SELECT 2) SELECT * FROM u, t")
        );
        assert_eq!(
            with("/* c */ WITH Recursive r(n) AS (SELECT 1) SELECT * FROM r").unwrap(),
            format!("/* c */ WITH Recursive {defs}, r(n) AS (SELECT 1) SELECT * FROM r")
        );
        for other in [
            "DESCRIBE t",
            "PIVOT t ON a",
            "SET x = 1",
            "",
            "-- only",
            "/* open",
            "'s'",
        ] {
            assert_eq!(with(other), None, "{other}");
        }
        assert_eq!(first_token("SELECTx"), Some(("SELECTx", 7)));
        assert!(is_one_statement("SELECT 1;  "));
        assert!(!is_one_statement("SELECT 1; SELECT 2"));
    }

    #[test]
    fn times_compared_with_a_zoned_column_are_written_as_instants() {
        use arrow::datatypes::Field;
        let zoned = DataType::Timestamp(TimeUnit::Microsecond, Some("Europe/Berlin".into()));
        let plain = DataType::Timestamp(TimeUnit::Microsecond, None);
        let schema = arrow::datatypes::Schema::new(vec![
            Field::new("at", zoned, true),
            Field::new("local", plain, true),
        ]);
        let sql =
            |filter: &str| filter_sql(&DalaExpr::parse(filter).unwrap().bind(&schema).unwrap());
        assert_eq!(
            sql(
                "at >= TIMESTAMP '2023-03-26 01:30:00' AND local < TIMESTAMP '2023-03-26 01:30:00'"
            ),
            "(\"at\" >= TIMESTAMPTZ '2023-03-26 01:30:00+00:00' \
             AND \"local\" < TIMESTAMP '2023-03-26 01:30:00')"
        );
        assert_eq!(
            sql(
                "at NOT BETWEEN TIMESTAMP '2023-03-26 00:00:00+01:00' AND TIMESTAMP '2023-03-27 00:00:00'"
            ),
            "\"at\" NOT BETWEEN TIMESTAMPTZ '2023-03-25 23:00:00+00:00' \
             AND TIMESTAMPTZ '2023-03-27 00:00:00+00:00'"
        );
        assert_eq!(
            sql("at IN (TIMESTAMP '2023-03-26 01:00:00')"),
            "\"at\" IN (TIMESTAMPTZ '2023-03-26 01:00:00+00:00')"
        );
    }

    #[test]
    fn floats_are_written_as_doubles_and_bytes_escaped() {
        use arrow::datatypes::Field;
        let schema = arrow::datatypes::Schema::new(vec![
            Field::new("f", DataType::Float32, true),
            Field::new("b", DataType::Binary, true),
        ]);
        let sql =
            |filter: &str| filter_sql(&DalaExpr::parse(filter).unwrap().bind(&schema).unwrap());
        assert_eq!(sql("f > 0.1"), "\"f\" > 1e-1");
        assert_eq!(sql("f < -2.5"), "\"f\" < -2.5e0");
        assert_eq!(sql("b = 'a\\x'"), "\"b\" = '\\x61\\x5C\\x78'::BLOB");
    }
}
