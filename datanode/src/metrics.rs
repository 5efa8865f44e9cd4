//! The datanode's metrics page: per hosted node, ElastiCache's CloudWatch numbers under
//! Prometheus names (CurrItems → `ferrocache_curr_items`, CacheHits → `..._cache_hits_total`).

use ferrocache_common::metrics::Page;

use crate::host::Host;
use crate::node::Role;

pub fn render(host: &Host) -> String {
    let mut p = Page::default();
    let nodes = host.nodes();
    p.gauge("ferrocache_datanode_nodes", "Nodes hosted by this datanode.", &[], nodes.len() as f64);
    p.gauge("ferrocache_datanode_ready", "1 when serving (health SERVING).", &[], host.ready() as u8 as f64);
    for n in nodes {
        // A node whose lock a script holds is left out of this scrape rather than waited for.
        let Some((items, bytes, primary, offset, stats, in_sync)) = n.try_with_state(|st| {
            (st.dbs.len(), st.used_memory(), matches!(st.role, Role::Primary), st.position.offset, st.stats, st.in_sync)
        }) else {
            continue;
        };
        let labels = [
            ("replication_group", n.group_id.as_str()),
            ("node_group", n.node_group_id.as_str()),
            ("node", n.id.as_str()),
        ];
        p.gauge("ferrocache_curr_items", "Keys held (CurrItems).", &labels, items as f64);
        p.gauge(
            "ferrocache_bytes_used_for_cache",
            "Approximate bytes of keys, values and their indexes (BytesUsedForCache; INFO used_memory).",
            &labels,
            bytes as f64,
        );
        p.gauge("ferrocache_is_master", "1 on a primary (IsMaster).", &labels, primary as u8 as f64);
        p.gauge("ferrocache_replication_offset", "Replication offset reached.", &labels, offset as f64);
        if !primary {
            p.gauge(
                "ferrocache_replica_in_sync",
                "1 while a replica follows its primary.",
                &labels,
                in_sync as u8 as f64,
            );
        }
        p.counter(
            "ferrocache_cache_hits_total",
            "Key lookups that found the key (CacheHits).",
            &labels,
            stats.keyspace_hits as f64,
        );
        p.counter(
            "ferrocache_cache_misses_total",
            "Key lookups that did not (CacheMisses).",
            &labels,
            stats.keyspace_misses as f64,
        );
        p.counter(
            "ferrocache_evictions_total",
            "Keys evicted for maxmemory (Evictions).",
            &labels,
            stats.evicted_keys as f64,
        );
        p.counter("ferrocache_reclaimed_total", "Keys expired (Reclaimed).", &labels, stats.expired_keys as f64);
        if primary {
            for (replica, ack) in n.acked_offsets() {
                let mut l = labels.to_vec();
                l.push(("replica", replica.as_str()));
                p.gauge(
                    "ferrocache_replica_offset_lag",
                    "Effects a replica has yet to acknowledge (offsets behind the primary).",
                    &l,
                    offset.saturating_sub(ack.offset) as f64,
                );
            }
            if let Some(ms) = n.best_replica_lag_ms() {
                p.gauge(
                    "ferrocache_replication_lag_seconds",
                    "Age of the oldest write the most up-to-date replica lacks (ReplicationLag).",
                    &labels,
                    ms as f64 / 1000.0,
                );
            }
        }
        let s = n.storage();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed) as f64;
        p.gauge(
            "ferrocache_storage_log_bytes",
            "Bytes of log since the last compacted image.",
            &labels,
            load(&s.log_bytes),
        );
        p.gauge("ferrocache_storage_base_bytes", "Bytes of the last compacted image.", &labels, load(&s.bytes));
        p.counter("ferrocache_storage_compactions_total", "Log compactions completed.", &labels, load(&s.compactions));
        p.counter("ferrocache_storage_fsyncs_total", "fsyncs of the log.", &labels, load(&s.fsyncs));
        p.counter(
            "ferrocache_storage_fsync_seconds_total",
            "Time spent in fsync of the log.",
            &labels,
            load(&s.fsync_micros) / 1e6,
        );
    }
    p.finish()
}
