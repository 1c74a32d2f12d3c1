//! Decoding a Parquet file held in memory, with one zstd context per thread.
//!
//! The parquet crate makes a codec for every column chunk it reads, and its zstd codec
//! creates a compression and a decompression context each time. Creating a zstd context
//! asks the CPU for its features (`cpuid`), which on a virtual machine is a trap to the
//! hypervisor: several microseconds, for every column of every row group. A small file
//! has few rows per column chunk, so in compactions of many small files that was a third
//! of the CPU time. Here the page reader is told that each zstd chunk is uncompressed, and
//! the pages it returns are decompressed with a context that the thread keeps.

use std::cell::RefCell;
use std::io::Cursor;
use std::sync::Arc;

use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, RowGroups, RowSelection,
};
use parquet::arrow::parquet_to_arrow_field_levels;
use parquet::basic::Compression;
use parquet::column::page::{Page, PageIterator, PageMetadata, PageReader};
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ParquetMetaData, RowGroupMetaData};
use parquet::file::serialized_reader::SerializedPageReader;

/// Whether [`reader`] can decode `metadata`'s file: every column chunk is zstd or
/// uncompressed (any other codec is left to the parquet crate's own reader).
pub(crate) fn applies(metadata: &ParquetMetaData) -> bool {
    metadata.row_groups().iter().all(|rg| {
        rg.columns().iter().all(|c| {
            matches!(
                c.compression(),
                Compression::ZSTD(_) | Compression::UNCOMPRESSED
            )
        })
    })
}

/// A reader of `row_groups` of the file `bytes` (whose footer is `metadata`), of the columns
/// in `mask` and the rows in `selection`, in batches of `batch_size` rows.
pub(crate) fn reader(
    bytes: Bytes,
    metadata: &ArrowReaderMetadata,
    row_groups: Vec<usize>,
    mask: ProjectionMask,
    selection: Option<RowSelection>,
    batch_size: usize,
) -> Result<ParquetRecordBatchReader> {
    let parquet = metadata.metadata();
    let levels = parquet_to_arrow_field_levels(
        parquet.file_metadata().schema_descr(),
        mask,
        Some(metadata.schema().fields()),
    )?;
    let groups = MemoryRowGroups {
        bytes: Arc::new(bytes),
        metadata: parquet.clone(),
        row_groups,
    };
    ParquetRecordBatchReader::try_new_with_row_groups(&levels, &groups, batch_size, selection)
}

/// Row groups of a file held in memory.
struct MemoryRowGroups {
    bytes: Arc<Bytes>,
    metadata: Arc<ParquetMetaData>,
    row_groups: Vec<usize>,
}

impl RowGroups for MemoryRowGroups {
    fn num_rows(&self) -> usize {
        self.row_groups()
            .map(|rg| usize::try_from(rg.num_rows()).unwrap_or(0))
            .sum()
    }

    fn column_chunks(&self, column: usize) -> Result<Box<dyn PageIterator>> {
        Ok(Box::new(ColumnChunks {
            bytes: self.bytes.clone(),
            metadata: self.metadata.clone(),
            column,
            row_groups: self.row_groups.clone().into_iter(),
        }))
    }

    fn row_groups(&self) -> Box<dyn Iterator<Item = &RowGroupMetaData> + '_> {
        Box::new(self.row_groups.iter().map(|&i| self.metadata.row_group(i)))
    }

    fn metadata(&self) -> &ParquetMetaData {
        &self.metadata
    }
}

/// The chunks of one column, a row group after another.
struct ColumnChunks {
    bytes: Arc<Bytes>,
    metadata: Arc<ParquetMetaData>,
    column: usize,
    row_groups: std::vec::IntoIter<usize>,
}

impl ColumnChunks {
    fn page_reader(&self, row_group: usize) -> Result<Box<dyn PageReader>> {
        let group = self.metadata.row_group(row_group);
        let chunk = group.column(self.column);
        let page_locations = self
            .metadata
            .offset_index()
            .and_then(|index| index.get(row_group))
            .and_then(|columns| columns.get(self.column))
            .map(|offsets| offsets.page_locations.clone());
        let rows = usize::try_from(group.num_rows()).unwrap_or(0);
        if chunk.compression() == Compression::UNCOMPRESSED {
            let pages = SerializedPageReader::new(self.bytes.clone(), chunk, rows, page_locations)?;
            return Ok(Box::new(pages));
        }
        // The page reader returns the pages as they are stored; they are decompressed
        // below, with this thread's context.
        let stored = chunk
            .clone()
            .into_builder()
            .set_compression(Compression::UNCOMPRESSED)
            .build()?;
        let pages = SerializedPageReader::new(self.bytes.clone(), &stored, rows, page_locations)?;
        Ok(Box::new(ZstdPages { pages }))
    }
}

impl Iterator for ColumnChunks {
    type Item = Result<Box<dyn PageReader>>;

    fn next(&mut self) -> Option<Self::Item> {
        let row_group = self.row_groups.next()?;
        Some(self.page_reader(row_group))
    }
}

impl PageIterator for ColumnChunks {}

/// The pages of a zstd column chunk, decompressed.
struct ZstdPages {
    pages: SerializedPageReader<Bytes>,
}

impl Iterator for ZstdPages {
    type Item = Result<Page>;

    fn next(&mut self) -> Option<Self::Item> {
        self.get_next_page().transpose()
    }
}

impl PageReader for ZstdPages {
    fn get_next_page(&mut self) -> Result<Option<Page>> {
        self.pages.get_next_page()?.map(decompress_page).transpose()
    }

    fn peek_next_page(&mut self) -> Result<Option<PageMetadata>> {
        self.pages.peek_next_page()
    }

    fn skip_next_page(&mut self) -> Result<()> {
        self.pages.skip_next_page()
    }

    fn at_record_boundary(&mut self) -> Result<bool> {
        self.pages.at_record_boundary()
    }
}

fn decompress_page(page: Page) -> Result<Page> {
    Ok(match page {
        Page::DataPage {
            buf,
            num_values,
            encoding,
            def_level_encoding,
            rep_level_encoding,
            statistics,
        } => Page::DataPage {
            buf: decompress(&buf, 0)?,
            num_values,
            encoding,
            def_level_encoding,
            rep_level_encoding,
            statistics,
        },
        Page::DataPageV2 {
            buf,
            num_values,
            encoding,
            num_nulls,
            num_rows,
            def_levels_byte_len,
            rep_levels_byte_len,
            is_compressed,
            statistics,
        } => {
            // The levels are stored uncompressed, before the values.
            let levels = def_levels_byte_len as usize + rep_levels_byte_len as usize;
            let buf = match is_compressed && buf.len() > levels {
                true => decompress(&buf, levels)?,
                false => buf,
            };
            Page::DataPageV2 {
                buf,
                num_values,
                encoding,
                num_nulls,
                num_rows,
                def_levels_byte_len,
                rep_levels_byte_len,
                is_compressed: false,
                statistics,
            }
        }
        Page::DictionaryPage {
            buf,
            num_values,
            encoding,
            is_sorted,
        } => Page::DictionaryPage {
            buf: decompress(&buf, 0)?,
            num_values,
            encoding,
            is_sorted,
        },
    })
}

/// Pages decompress to at most this many bytes (a page's size in its header is an `i32`).
const MAX_PAGE_BYTES: u64 = i32::MAX as u64;

thread_local! {
    /// This thread's zstd decompression context, made on first use.
    static CONTEXT: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// `buf` with the zstd frames after its first `keep` bytes decompressed.
fn decompress(buf: &[u8], keep: usize) -> Result<Bytes> {
    let (head, frames) = buf.split_at(keep.min(buf.len()));
    let size = match zstd::zstd_safe::get_frame_content_size(frames) {
        Ok(Some(size)) if size <= MAX_PAGE_BYTES => size as usize,
        Ok(Some(size)) => {
            return Err(ParquetError::General(format!(
                "a zstd page claims {size} bytes uncompressed"
            )));
        }
        // A frame without its size (written by a streaming encoder).
        Ok(None) => return decompress_stream(head, frames),
        Err(_) => return Err(ParquetError::General("a page is not zstd data".into())),
    };
    let mut out = Vec::with_capacity(keep + size);
    out.extend_from_slice(head);
    let mut cursor = Cursor::new(out);
    cursor.set_position(keep as u64);
    let written = CONTEXT.with(|context| {
        let mut context = context.borrow_mut();
        let decompressor = match context.as_mut() {
            Some(decompressor) => decompressor,
            None => context.insert(zstd::bulk::Decompressor::new()?),
        };
        decompressor.decompress_to_buffer(frames, &mut cursor)
    });
    match written {
        Ok(written) if written == size => Ok(Bytes::from(cursor.into_inner())),
        // More than one frame: the first one's size is not the page's.
        _ => decompress_stream(head, frames),
    }
}

/// `head` followed by `frames` decoded as a stream (frames of unknown size, or several).
fn decompress_stream(head: &[u8], frames: &[u8]) -> Result<Bytes> {
    let mut out = head.to_vec();
    zstd::stream::copy_decode(frames, &mut out).map_err(|e| ParquetError::External(Box::new(e)))?;
    if out.len() as u64 > MAX_PAGE_BYTES {
        return Err(ParquetError::General(format!(
            "a zstd page decompressed to {} bytes",
            out.len()
        )));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decompress_after_the_bytes_kept() {
        let values = b"values values values values".repeat(10);
        let mut page = b"levels".to_vec();
        page.extend(zstd::bulk::compress(&values, 3).unwrap());
        let out = decompress(&page, 6).unwrap();
        assert_eq!(&out[..6], b"levels");
        assert_eq!(&out[6..], &values[..]);
        // Twice on one thread: the context is reused.
        assert_eq!(decompress(&page, 6).unwrap(), out);
    }

    #[test]
    fn a_frame_without_its_size_is_decoded_as_a_stream() {
        let values = b"streamed".repeat(100);
        let mut encoder = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        std::io::Write::write_all(&mut encoder, &values).unwrap();
        let frame = encoder.finish().unwrap();
        assert_eq!(decompress(&frame, 0).unwrap(), Bytes::from(values.clone()));
        // Two frames in one page.
        let mut two = zstd::bulk::compress(&values, 3).unwrap();
        two.extend(zstd::bulk::compress(&values, 3).unwrap());
        assert_eq!(decompress(&two, 0).unwrap(), Bytes::from(values.repeat(2)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decompress(b"not zstd at all", 0).is_err());
        let mut frame = zstd::bulk::compress(&b"abc".repeat(100), 3).unwrap();
        frame.truncate(frame.len() - 3);
        assert!(decompress(&frame, 0).is_err());
    }
}
