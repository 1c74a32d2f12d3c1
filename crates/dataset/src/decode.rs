//! Decoding Parquet held in memory (a whole file, or the ranges of it a read needs), with
//! one zstd context per thread.
//!
//! The parquet crate makes a codec for every column chunk it reads, and its zstd codec
//! creates a compression and a decompression context each time. Creating a zstd context
//! asks the CPU for its features (`cpuid`), which on a virtual machine is a trap to the
//! hypervisor: several microseconds, for every column of every row group. A small file
//! has few rows per column chunk, so in compactions of many small files that was a third
//! of the CPU time. Here the page reader is told that each zstd chunk is uncompressed, and
//! the pages it returns are decompressed with a context that the thread keeps, straight
//! into the page's buffer (the crate's codec decompresses into a buffer of its own and
//! copies).

use std::cell::RefCell;
use std::io::Cursor;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, RowGroups, RowSelection,
};
use parquet::arrow::parquet_to_arrow_field_levels;
use parquet::basic::Compression;
use parquet::column::page::{Page, PageIterator, PageMetadata, PageReader};
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ParquetMetaData, RowGroupMetaData};
use parquet::file::page_index::offset_index::PageLocation;
use parquet::file::reader::{ChunkReader, Length};
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
/// in `mask` and the rows in `selection`, in batches of `batch_size` rows. `bytes` holds the
/// whole file, or at least the [`ranges`] of each row group read.
pub(crate) fn reader(
    bytes: FileBytes,
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

/// The byte ranges of `row_group` that reading the columns in `mask` and the rows in
/// `selection` (of this row group alone) needs: each column chunk whole, or, when the
/// selection skips pages the offset index locates, the chunk's dictionary and the pages
/// selected. Fails when the footer places a chunk outside the file (of `file_size` bytes)
/// or the offset index a page outside its chunk.
pub(crate) fn ranges(
    metadata: &ParquetMetaData,
    row_group: usize,
    mask: &ProjectionMask,
    selection: Option<&RowSelection>,
    file_size: u64,
) -> Result<Vec<Range<u64>>> {
    let group = metadata.row_group(row_group);
    let offsets = metadata
        .offset_index()
        .and_then(|index| index.get(row_group));
    // The reader may decode a selection of short runs as a mask over every row, which
    // reads every page: then whole chunks.
    let selection = selection.filter(|s| !decodes_as_mask(s));
    let mut ranges = Vec::new();
    for (i, chunk) in group.columns().iter().enumerate() {
        if !mask.leaf_included(i) {
            continue;
        }
        let (start, length) = chunk.byte_range();
        let end = start
            .checked_add(length)
            .filter(|&end| end <= file_size)
            .ok_or_else(|| {
                ParquetError::General(format!(
                    "column chunk {i} of row group {row_group} ({length} bytes at {start}) \
                     lies outside the file ({file_size} bytes)"
                ))
            })?;
        let pages = offsets
            .and_then(|columns| columns.get(i))
            .map(|column| column.page_locations.as_slice())
            .filter(|pages| !pages.is_empty());
        match selection.zip(pages) {
            Some((selection, pages)) => {
                let inside = |page: &PageLocation| {
                    u64::try_from(page.offset).is_ok_and(|offset| {
                        offset >= start
                            && u64::try_from(page.compressed_page_size)
                                .is_ok_and(|size| offset.saturating_add(size) <= end)
                    })
                };
                if !pages.iter().all(inside) {
                    return Err(ParquetError::General(format!(
                        "the offset index places a page of column chunk {i} of row group \
                         {row_group} outside the chunk"
                    )));
                }
                let first = pages[0].offset as u64;
                if first > start {
                    ranges.push(start..first); // the dictionary page
                }
                ranges.extend(selection.scan_ranges(pages));
            }
            None => ranges.push(start..end),
        }
    }
    ranges.retain(|range| range.start < range.end);
    Ok(ranges)
}

/// Whether the parquet crate's reader, left to choose, reads `selection` as a mask over
/// all the rows rather than skipping: when its runs average fewer rows than the threshold
/// of its default policy (`RowSelectionPolicy::Auto { threshold: 32 }`), or it has none.
fn decodes_as_mask(selection: &RowSelection) -> bool {
    const THRESHOLD: usize = 32;
    let (rows, runs) = selection
        .iter()
        .filter(|run| run.row_count > 0)
        .fold((0usize, 0usize), |(rows, runs), run| {
            (rows + run.row_count, runs + 1)
        });
    runs == 0 || rows < runs.saturating_mul(THRESHOLD)
}

/// A Parquet file's bytes in memory: all of them, or some ranges.
pub(crate) enum FileBytes {
    /// The whole file.
    Whole(Bytes),
    /// Ranges of the file, by offset, in order.
    Ranges {
        /// The file's size.
        size: u64,
        ranges: Vec<(u64, Bytes)>,
    },
}

impl FileBytes {
    /// The ranges starting at the given offsets of a file of `size` bytes.
    pub(crate) fn ranges(size: u64, ranges: impl IntoIterator<Item = (u64, Bytes)>) -> Self {
        let mut ranges: Vec<(u64, Bytes)> = ranges.into_iter().collect();
        ranges.sort_by_key(|(start, _)| *start);
        FileBytes::Ranges { size, ranges }
    }

    /// The bytes from `start` to the end of what is held there, at least `length` of them.
    fn from(&self, start: u64, length: usize) -> Result<Bytes> {
        let missing = || {
            ParquetError::EOF(format!(
                "{length} bytes at offset {start} were not read into memory (a fault in \
                 dala's reader, not in the file)"
            ))
        };
        let (base, bytes) = match self {
            FileBytes::Whole(bytes) => (0, bytes),
            FileBytes::Ranges { ranges, .. } => {
                // The last range starting at or before `start`.
                let after = ranges.partition_point(|(offset, _)| *offset <= start);
                let (base, bytes) = after
                    .checked_sub(1)
                    .and_then(|i| ranges.get(i))
                    .ok_or_else(missing)?;
                (*base, bytes)
            }
        };
        let from = usize::try_from(start - base).map_err(|_| missing())?;
        if from.checked_add(length).is_none_or(|end| end > bytes.len()) {
            return Err(missing());
        }
        Ok(bytes.slice(from..))
    }
}

impl Length for FileBytes {
    fn len(&self) -> u64 {
        match self {
            FileBytes::Whole(bytes) => bytes.len() as u64,
            FileBytes::Ranges { size, .. } => *size,
        }
    }
}

impl ChunkReader for FileBytes {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> Result<Self::T> {
        Ok(self.from(start, 0)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes> {
        Ok(self.from(start, length)?.slice(..length))
    }
}

/// Row groups of a file held in memory.
struct MemoryRowGroups {
    bytes: Arc<FileBytes>,
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
    bytes: Arc<FileBytes>,
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
    pages: SerializedPageReader<FileBytes>,
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
    use parquet::arrow::arrow_reader::RowSelector;

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

    /// Three row groups of 1000 rows in pages of 50, zstd, with the page index; an id
    /// column and a dictionary-encoded name column.
    fn file_with_small_pages() -> (Bytes, ArrowReaderMetadata) {
        use arrow::array::{Int64Array, RecordBatch, StringArray};
        use arrow::datatypes::{DataType, Field, Schema};
        use parquet::arrow::ArrowWriter;
        use parquet::arrow::arrow_reader::ArrowReaderOptions;
        use parquet::file::metadata::PageIndexPolicy;
        use parquet::file::properties::WriterProperties;

        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let ids: Vec<i64> = (0..3000).collect();
        let names: Vec<Option<String>> = ids
            .iter()
            .map(|i| (i % 9 != 0).then(|| format!("name-{}", i % 17)))
            .collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap();
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(Default::default()))
            .set_max_row_group_row_count(Some(1000))
            .set_data_page_row_count_limit(50)
            .set_write_batch_size(50)
            .build();
        let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(properties)).unwrap();
        writer.write(&batch).unwrap();
        let bytes = Bytes::from(writer.into_inner().unwrap());
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let metadata = ArrowReaderMetadata::load(&bytes, options).unwrap();
        (bytes, metadata)
    }

    /// Row group `row_group` of `file` read through [`ranges`] and [`reader`] from the
    /// ranges alone; and the bytes those ranges hold.
    fn read_ranges(
        file: &Bytes,
        metadata: &ArrowReaderMetadata,
        row_group: usize,
        mask: &ProjectionMask,
        selection: Option<RowSelection>,
    ) -> (Vec<arrow::array::RecordBatch>, u64) {
        let ranges = ranges(
            metadata.metadata(),
            row_group,
            mask,
            selection.as_ref(),
            file.len() as u64,
        )
        .unwrap();
        let held = ranges.iter().map(|r| r.end - r.start).sum();
        let bytes = FileBytes::ranges(
            file.len() as u64,
            ranges
                .iter()
                .map(|r| (r.start, file.slice(r.start as usize..r.end as usize))),
        );
        let reader = reader(
            bytes,
            metadata,
            vec![row_group],
            mask.clone(),
            selection,
            64,
        )
        .unwrap();
        (reader.collect::<std::result::Result<_, _>>().unwrap(), held)
    }

    #[test]
    fn a_row_group_decodes_from_the_ranges_it_needs_alone() {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

        let (file, metadata) = file_with_small_pages();
        let schema = metadata.metadata().file_metadata().schema_descr_ptr();
        let chunks = |row_group: usize, mask: &ProjectionMask| -> u64 {
            let group = metadata.metadata().row_group(row_group);
            (0..group.num_columns())
                .filter(|&i| mask.leaf_included(i))
                .map(|i| group.column(i).byte_range().1)
                .sum()
        };
        // Long runs skip whole pages. Runs of three rows (in two pages) are read as a mask
        // over every row, so they need every page.
        let long = || RowSelection::from_consecutive_ranges([120..180, 700..760].into_iter(), 1000);
        let short =
            || RowSelection::from_consecutive_ranges((100..200).step_by(6).map(|i| i..i + 3), 1000);
        for mask in [ProjectionMask::all(), ProjectionMask::roots(&schema, [1])] {
            for row_group in [0, 2] {
                for (selection, sparse) in
                    [(None, false), (Some(long()), true), (Some(short()), false)]
                {
                    let expected: Vec<_> = ParquetRecordBatchReaderBuilder::new_with_metadata(
                        file.clone(),
                        metadata.clone(),
                    )
                    .with_row_groups(vec![row_group])
                    .with_projection(mask.clone())
                    .with_row_selection(
                        selection
                            .clone()
                            .unwrap_or_else(|| RowSelection::from(vec![RowSelector::select(1000)])),
                    )
                    .with_batch_size(64)
                    .build()
                    .unwrap()
                    .collect::<std::result::Result<_, _>>()
                    .unwrap();
                    let (got, held) = read_ranges(&file, &metadata, row_group, &mask, selection);
                    let rows = |batches: &[arrow::array::RecordBatch]| {
                        arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap()
                    };
                    assert_eq!(rows(&got), rows(&expected));
                    match sparse {
                        true => assert!(held < chunks(row_group, &mask) / 2, "{held}"),
                        false => assert_eq!(held, chunks(row_group, &mask)),
                    }
                }
            }
        }
    }

    #[test]
    fn a_chunk_the_footer_places_outside_the_file_is_an_error() {
        let (file, metadata) = file_with_small_pages();
        let mask = ProjectionMask::all();
        let size = file.len() as u64;
        assert!(ranges(metadata.metadata(), 2, &mask, None, size).is_ok());
        let error = ranges(metadata.metadata(), 2, &mask, None, size / 2).unwrap_err();
        assert!(error.to_string().contains("outside the file"), "{error}");
    }

    #[test]
    fn bytes_not_read_into_memory_are_an_error_not_a_panic() {
        let bytes = FileBytes::ranges(
            100,
            [
                (10, Bytes::from_static(b"0123456789")),
                (40, Bytes::from_static(b"abc")),
            ],
        );
        assert_eq!(bytes.get_bytes(12, 3).unwrap(), Bytes::from_static(b"234"));
        assert_eq!(bytes.get_bytes(40, 3).unwrap(), Bytes::from_static(b"abc"));
        for (start, length) in [(0, 1), (15, 10), (20, 1), (42, 2), (99, 1), (200, 0)] {
            assert!(bytes.get_bytes(start, length).is_err(), "{start} {length}");
        }
        assert!(bytes.get_read(25).is_err());
        let whole = FileBytes::Whole(Bytes::from_static(b"abc"));
        assert!(whole.get_bytes(2, 2).is_err());
        assert!(whole.get_read(4).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decompress(b"not zstd at all", 0).is_err());
        let mut frame = zstd::bulk::compress(&b"abc".repeat(100), 3).unwrap();
        frame.truncate(frame.len() - 3);
        assert!(decompress(&frame, 0).is_err());
    }
}
