//! The binaries' allocators.
//!
//! **Rust's heap is jemalloc** (`tikv-jemallocator`), as in Polars' and DuckDB's own
//! releases. With glibc's malloc, the large buffers a scan decodes were mapped fresh and
//! handed back to the system, by thresholds that glibc moves as it goes, so that the same
//! work cost a different number of page faults depending on the order of frees. Paired runs
//! of new processes on P1's dataset (medians of 8), glibc → jemalloc:
//! - Polars' selective scan 12.3 → 7.8 ms raw, 13.3 → 7.8 ms through dala;
//! - Polars' full scan of two columns 115 → 113 ms raw, 133 → 120 ms through dala (raw
//!   Polars over a list of files took 123 ms with glibc against 117 ms over a glob, the
//!   same plan: 112 ms both with jemalloc);
//! - P4's compaction of 100 000 small files 26.4 / 24.2 → 22.2 / 21.3 s, at a peak RSS of
//!   362 / 368 → 395 / 349 MiB;
//! - dala's own scans unchanged (the full scan 272 → 278 ms, within noise).
//!
//! mimalloc was measured too and rejected: Polars' full scan varied from 97 to 479 ms.
//! Libraries that embed dala keep whatever allocator their program chooses.
//!
//! **glibc's arenas**, still used by C libraries (zstd's contexts among them), are capped:
//! glibc gives a thread that meets contention an arena of its own, up to eight per core,
//! and keeps the memory freed in each for reuse there. Under glibc a compaction's many
//! short-lived reader threads held freed memory in many arenas: at ten times P4's input its
//! peak RSS was 752 to 805 MiB with glibc's default, 571 MiB with four arenas. The binaries
//! cap the arenas at four before any thread starts, unless `MALLOC_ARENA_MAX` (or a glibc
//! tunable) already chose.
//!
//! This file is also compiled into the benchmark binary `dala-peer`.
#![allow(unsafe_code)]

/// The allocator of the binaries' Rust heap.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The arenas the binaries allow glibc's malloc.
const ARENAS: i32 = 4;

/// Caps glibc's malloc arenas at [`ARENAS`]; call it first in `main`, before any thread.
pub fn cap_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let chosen = std::env::var_os("MALLOC_ARENA_MAX").is_some()
            || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
        if !chosen {
            // SAFETY: `mallopt` only sets an allocator parameter; it is called from
            // `main` before the runtime starts any other thread.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, ARENAS);
            }
        }
    }
}
