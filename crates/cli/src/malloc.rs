//! The C allocator's arenas. glibc gives a thread that meets contention an arena of its
//! own, up to eight per core, and keeps the memory freed in each for reuse there. A
//! compaction's many short-lived reader threads then hold freed memory in many arenas: at
//! ten times P4's input its peak RSS was 752 to 805 MiB with glibc's default, 571 MiB with
//! four arenas (4 % slower) and 480 MiB with two (13 % slower). The binaries cap the
//! arenas at four before any thread starts, unless `MALLOC_ARENA_MAX` (or a glibc tunable)
//! already chose. Programs that embed dala can set `MALLOC_ARENA_MAX=4` the same way.
//!
//! This file is also compiled into the benchmark binary `dala-peer`.
#![allow(unsafe_code)]

/// The arenas the binaries allow.
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
