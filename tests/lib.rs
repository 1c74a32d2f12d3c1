//! Support for dala's end-to-end tests (in `e2e/`, `engines/` and `s3/`): an S3-protocol
//! server on 127.0.0.1 that a test starts and stops itself.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Python of the environment `scripts/fetch-s3-server.sh` installs moto into.
const SERVER_PYTHON: &str = ".s3-server/venv/bin/python";
/// The script that runs moto's server with atomic conditional writes.
const SERVER_SCRIPT: &str = "scripts/s3-server.py";

/// An S3-protocol server (moto's, installed by `scripts/fetch-s3-server.sh` and run by
/// `scripts/s3-server.py`, which makes conditional writes atomic as on S3) running on a
/// free port of 127.0.0.1 until it is dropped or [stopped](S3Server::stop). It keeps its
/// objects in memory.
#[derive(Debug)]
pub struct S3Server {
    child: Option<Child>,
    port: u16,
}

impl S3Server {
    /// Starts a server and waits until it answers. `DALA_S3_SERVER` may name another
    /// server program (started with `-H 127.0.0.1 -p PORT`); by default it is
    /// `scripts/s3-server.py` under the Python the fetch script installs.
    pub fn start() -> Result<Self, String> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let (program, script) = match std::env::var_os("DALA_S3_SERVER") {
            Some(program) => (PathBuf::from(program), None),
            None => (root.join(SERVER_PYTHON), Some(root.join(SERVER_SCRIPT))),
        };
        if !program.exists() {
            return Err(format!(
                "{} is missing: run scripts/fetch-s3-server.sh (scripts/test.sh does)",
                program.display()
            ));
        }
        let port = free_port()?;
        let child = Command::new(&program)
            .args(script)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", program.display()))?;
        let mut server = Self {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.request("GET", "/").is_err() {
            if Instant::now() > deadline {
                return Err(format!("the S3 server on port {port} did not start"));
            }
            if let Some(child) = server.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("the S3 server exited at start: {status}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:5123`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) -> Result<(), String> {
        let status = self.request("PUT", &format!("/{bucket}"))?;
        if status == 200 {
            Ok(())
        } else {
            Err(format!("creating bucket {bucket}: HTTP {status}"))
        }
    }

    /// The storage options that point dala's S3 store at this server (dummy credentials,
    /// plain HTTP, few retries so that a stopped server fails a read quickly).
    pub fn storage_options(&self) -> Vec<(String, String)> {
        [
            ("aws_endpoint", self.endpoint()),
            ("aws_allow_http", "true".into()),
            ("aws_region", "us-east-1".into()),
            ("aws_access_key_id", "testing".into()),
            ("aws_secret_access_key", "testing".into()),
            ("max_retries", "2".into()),
            ("retry_timeout", "5".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The environment that points the `dala` command at this server.
    pub fn environment(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT".into(), self.endpoint()),
            ("AWS_ALLOW_HTTP".into(), "true".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
        ]
    }

    /// Stops the server (its objects are gone).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends one unsigned request; returns the HTTP status.
    fn request(&self, method: &str, path: &str) -> Result<u16, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| e.to_string())?;
        response
            .split_whitespace()
            .nth(1)
            .and_then(|status| status.parse().ok())
            .ok_or_else(|| format!("no HTTP status in {response:?}"))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| e.to_string())
}

/// Every row of `batches` as text (fields joined by `|`, nulls as `NULL`), sorted, so
/// that answers compare whatever the order of rows. With `columns_by_name` the fields are
/// in the order of the columns' names, so answers whose columns come in another order,
/// or narrower types of the same values, compare equal too.
#[allow(clippy::panic)] // A test helper: a column it cannot show fails the test.
pub fn rows_as_text(batches: &[arrow::array::RecordBatch], columns_by_name: bool) -> Vec<String> {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let schema = batch.schema();
        let mut columns: Vec<usize> = (0..batch.num_columns()).collect();
        if columns_by_name {
            columns.sort_by_key(|&i| schema.field(i).name().clone());
        }
        let formatters: Vec<ArrayFormatter> = columns
            .iter()
            .map(|&i| {
                ArrayFormatter::try_new(batch.column(i).as_ref(), &options)
                    .unwrap_or_else(|e| panic!("column {}: {e}", schema.field(i).name()))
            })
            .collect();
        for row in 0..batch.num_rows() {
            let fields: Vec<String> = formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect();
            rows.push(fields.join("|"));
        }
    }
    rows.sort();
    rows
}
