//! Writing scan results as a table, CSV, JSON lines or Parquet.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::{Result, bail};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use dala_dataset::{RecordBatchStream, ScanBuilder, ScanEngine};
use futures::StreamExt;
use parquet::arrow::ArrowWriter;

use crate::Format;

/// Streams the scan's rows, read by `engine`, to `output` (or standard output) in `format`.
pub async fn write(
    scan: ScanBuilder,
    engine: &dyn ScanEngine,
    format: Format,
    output: Option<&Path>,
) -> Result<()> {
    let schema = scan.output_schema()?;
    write_stream(scan.stream_on(engine)?, Some(schema), format, output).await
}

/// Streams `stream` to `output` (or standard output) in `format`. Without a `schema`, the
/// first batch's is used.
pub async fn write_stream(
    mut stream: RecordBatchStream,
    schema: Option<SchemaRef>,
    format: Format,
    output: Option<&Path>,
) -> Result<()> {
    let first = stream.next().await.transpose()?;
    let schema = match (schema, &first) {
        (Some(schema), _) => schema,
        (None, Some(batch)) => batch.schema(),
        (None, None) => Arc::new(Schema::empty()),
    };
    let mut stream = futures::stream::iter(first.map(Ok)).chain(stream);
    let sink: Box<dyn Write + Send> = match output {
        Some(path) => Box::new(File::create(path)?),
        None if matches!(format, Format::Parquet) => {
            bail!("--format parquet needs --output FILE")
        }
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    match format {
        Format::Table => {
            let mut batches = Vec::new();
            while let Some(batch) = stream.next().await {
                batches.push(batch?);
            }
            let mut sink = sink;
            if batches.is_empty() {
                let empty = arrow::array::RecordBatch::new_empty(schema);
                writeln!(
                    sink,
                    "{}",
                    arrow::util::pretty::pretty_format_batches(&[empty])?
                )?;
            } else {
                writeln!(
                    sink,
                    "{}",
                    arrow::util::pretty::pretty_format_batches(&batches)?
                )?;
            }
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            eprintln!("{rows} rows");
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(sink);
            while let Some(batch) = stream.next().await {
                writer.write(&batch?)?;
            }
        }
        Format::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(sink);
            while let Some(batch) = stream.next().await {
                writer.write(&batch?)?;
            }
            writer.finish()?;
        }
        Format::Parquet => {
            let mut writer = ArrowWriter::try_new(sink, schema, None)?;
            while let Some(batch) = stream.next().await {
                writer.write(&batch?)?;
            }
            writer.close()?;
        }
    }
    Ok(())
}
