//! Reading input files for `dala write`, with a progress bar on a terminal.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result, bail};
use arrow::array::RecordBatch;
use arrow::csv::reader::Format;
use arrow::error::ArrowError;
use indicatif::{ProgressBar, ProgressStyle};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Batches of an input file.
pub type Batches = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

/// Opens a `.parquet` or `.csv` file as a stream of batches.
pub fn open(path: &Path) -> Result<Batches> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let (batches, total): (Batches, Option<u64>) = match extension.as_str() {
        "parquet" | "parq" | "pq" => {
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                .with_context(|| format!("reading {} as Parquet", path.display()))?;
            let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
            (
                Box::new(builder.with_batch_size(65_536).build()?),
                Some(rows),
            )
        }
        "csv" => {
            let mut file = file;
            let (schema, _) = Format::default()
                .with_header(true)
                .infer_schema(&mut file, Some(10_000))
                .with_context(|| format!("inferring the schema of {}", path.display()))?;
            if schema.fields().is_empty() {
                bail!("cannot read {}: it has no header row", path.display());
            }
            file.seek(SeekFrom::Start(0))?;
            let reader = arrow::csv::ReaderBuilder::new(std::sync::Arc::new(schema))
                .with_header(true)
                .with_batch_size(65_536)
                .build(file)?;
            (Box::new(reader), None)
        }
        other => bail!(
            "cannot read {}: unknown extension {other:?} (use .parquet or .csv)",
            path.display()
        ),
    };
    Ok(with_progress(batches, total))
}

fn with_progress(batches: Batches, total: Option<u64>) -> Batches {
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {human_pos}/{human_len} rows {per_sec} {elapsed}")
    {
        bar.set_style(style);
    }
    let done = bar.clone();
    Box::new(
        batches
            .inspect(move |b| {
                if let Ok(b) = b {
                    bar.inc(b.num_rows() as u64);
                }
            })
            .chain(std::iter::from_fn(move || {
                done.finish_and_clear();
                None
            })),
    )
}
