//! The allocator of every Ferrocache process: mimalloc, set as the global allocator by the
//! binary (`cli/src/main.rs`).
//!
//! Why not glibc's malloc: measured with `bench/cpu.sh` (session 20 in bench/RESULTS.md),
//! the gateway spent 10–14 % of its CPU in malloc/free under pipelined GETs (per-command
//! waiting slots, oneshots, argument vectors, consolidation of freed chunks); on mimalloc it
//! costs 10–20 % less CPU per request, the datanodes 5–15 % less.
//!
//! The price: mimalloc hands freed pages back to the OS only after a delay (about 10 s for
//! its arenas), so right after a bulk load (a restart's replay, a full sync) the process
//! holds the load's temporary buffers: ~100 bytes per key for a million small keys.
//! [`release_free_memory`] returns them at once; the datanode calls it when such a load ends.
//! Transparent huge pages are turned off for the process ([`disable_transparent_huge_pages`]).

pub use mimalloc::MiMalloc;

/// Returns every free page the allocator still holds to the OS now, instead of after its
/// purge delay. Costs a walk over the allocator's heaps: call it after bulk work, not per
/// request. Harmless when the process runs on another allocator (unit tests): mimalloc then
/// has nothing to return.
pub fn release_free_memory() {
    // SAFETY: mi_collect takes no pointers and may be called from any thread at any time.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

/// Turns transparent huge pages off for this process (and the children it starts), as
/// Redis does for itself (`disable-thp yes`). mimalloc asks for huge pages for its arenas,
/// and each first touch of one then zeroes 2 MB at once: measured with `bench/compare.sh`
/// (bench/RESULTS.md, session 27) that put SET's p99 at ~5 ms against ~2 ms without them.
/// Call it first thing in `main`: it applies to faults from then on.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and changes only this process's
    // memory policy; it fails harmlessly (EINVAL) on kernels without it.
    #[allow(unsafe_code)]
    unsafe {
        libc::prctl(
            libc::PR_SET_THP_DISABLE,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
    }
}

/// The allocator's name and version as INFO's `mem_allocator` shows it (Redis: `jemalloc-5.3.0`).
pub fn name() -> String {
    let v = MiMalloc.version();
    format!("mimalloc-{}.{}.{}", v / 10000, v / 100 % 100, v % 100)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_version() {
        let name = super::name();
        assert!(name.starts_with("mimalloc-3."), "{name}");
        super::release_free_memory();
    }
}
