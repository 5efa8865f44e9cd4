//! The node's part of INFO: memory, persistence, replication and keyspace sections, as
//! text in Redis's `field:value` format. The gateway adds its own sections around them.

use crate::node::{AppendFsync, Node, Role};

pub fn node_info(node: &Node) -> String {
    let acks = node.acked_offsets();
    let best_lag = node.best_replica_lag_ms();
    // Read from /proc before the node's lock is taken.
    let cpu = ferrocache_common::cpu::info_fields("used_cpu_");
    let rss = ferrocache_common::cpu::resident_bytes();
    let system = ferrocache_common::cpu::system_memory_bytes().unwrap_or(0);
    let [channels, patterns, shard_channels] = node.broker.totals();
    node.with_state(|st| {
        let mut s = String::new();
        s.push_str("# Clients\r\n");
        let blocked = node.blocked_clients.load(std::sync::atomic::Ordering::Relaxed);
        s.push_str(&format!("blocked_clients:{blocked}\r\n"));
        // The datanode process's: where the node's commands run.
        s.push_str("# CPU\r\n");
        s.push_str(&cpu);
        let bytes = st.used_memory();
        st.stats.used_memory_peak = st.stats.used_memory_peak.max(bytes);
        let peak = st.stats.used_memory_peak;
        s.push_str("# Memory\r\n");
        s.push_str(&format!("used_memory:{bytes}\r\nused_memory_human:{}\r\n", human(bytes)));
        // The datanode process's, as Redis's is its process's: every node it hosts shares it.
        if let Some(rss) = rss {
            s.push_str(&format!("used_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\n", human(rss as usize)));
        }
        s.push_str(&format!(
            "used_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\n",
            human(peak),
            if peak == 0 { 100.0 } else { bytes as f64 * 100.0 / peak as f64 }
        ));
        let (backlog, dataset) = (st.backlog.bytes(), st.dbs.approx_bytes());
        let overhead = bytes.saturating_sub(dataset);
        s.push_str(&format!(
            "used_memory_overhead:{overhead}\r\nused_memory_startup:0\r\nused_memory_dataset:{dataset}\r\nused_memory_dataset_perc:{:.2}%\r\n",
            if bytes == 0 { 0.0 } else { dataset as f64 * 100.0 / bytes as f64 }
        ));
        s.push_str(&format!("total_system_memory:{system}\r\ntotal_system_memory_human:{}\r\n", human(system as usize)));
        let lua = st.scripts.lua_memory();
        let (functions, libraries) = st.scripts.functions.counts();
        s.push_str(&format!(
            "used_memory_lua:{lua}\r\nused_memory_lua_human:{}\r\nnumber_of_cached_scripts:{}\r\nnumber_of_functions:{functions}\r\nnumber_of_libraries:{libraries}\r\n",
            human(lua),
            st.scripts.cached(),
        ));
        let max = st.memory.maxmemory as usize;
        s.push_str(&format!(
            "maxmemory:{max}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\n",
            human(max),
            st.memory.policy.name()
        ));
        // No mem_fragmentation_ratio: Redis's divides RSS by what its allocator handed out;
        // used_memory here is an estimate of the data alone, so the ratio would mislead
        // (and trip fragmentation alerts) on any small keyspace.
        s.push_str(&format!("mem_not_counted_for_evict:{backlog}\r\nmem_replication_backlog:{backlog}\r\n"));
        s.push_str(&format!("mem_allocator:{}\r\n", ferrocache_allocator::name()));
        let (pending, freed) = crate::lazyfree::counts();
        s.push_str(&format!("lazyfree_pending_objects:{pending}\r\nlazyfreed_objects:{freed}\r\n"));
        s.push_str("# Persistence\r\n");
        let base = node.storage();
        // The log is Redis's AOF, a compaction its rewrite and the base it writes its RDB
        // preamble: the fields monitoring reads (changes since the last save, rewrites)
        // follow from them.
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        let compacting = base.running.load(relaxed) as u8;
        let compactions = base.compactions.load(relaxed);
        s.push_str(&format!(
            "loading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{compacting}\r\nrdb_last_save_time:{}\r\nrdb_saves:{compactions}\r\naof_enabled:1\r\naof_rewrite_in_progress:{compacting}\r\naof_rewrite_scheduled:0\r\naof_rewrites:{compactions}\r\n",
            st.position.offset.saturating_sub(base.saved_offset.load(relaxed)),
            base.saved_at.load(relaxed),
        ));
        let fsync = match node.fsync {
            AppendFsync::Always => "always",
            AppendFsync::EverySec => "everysec",
            AppendFsync::No => "no",
        };
        s.push_str(&format!(
            "ferrocache_appendfsync:{fsync}\r\nferrocache_log_fsyncs:{}\r\nferrocache_log_fsync_usec:{}\r\n",
            base.fsyncs.load(relaxed),
            base.fsync_micros.load(relaxed),
        ));
        s.push_str("# Stats\r\n");
        let stats = &st.stats;
        s.push_str(&format!(
            "sync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{channels}\r\npubsub_patterns:{patterns}\r\npubsubshard_channels:{shard_channels}\r\n",
            stats.sync_full,
            stats.sync_partial_ok,
            stats.sync_partial_err,
            stats.expired_keys,
            stats.evicted_keys,
            stats.keyspace_hits,
            stats.keyspace_misses
        ));
        s.push_str("# Replication\r\n");
        match &st.role {
            Role::Primary => {
                s.push_str(&format!("role:master\r\nconnected_slaves:{}\r\n", acks.len()));
                let mut replicas: Vec<_> = acks.iter().collect();
                replicas.sort_by(|a, b| a.0.cmp(b.0));
                for (i, (id, ack)) in replicas.iter().enumerate() {
                    // Redis's lag: seconds since the replica's last acknowledgement.
                    let lag = ack.at.elapsed().as_secs();
                    let behind = st.position.offset.saturating_sub(ack.offset);
                    s.push_str(&format!(
                        "slave{i}:node={id},state=online,offset={},lag={lag},lag_offsets={behind}\r\n",
                        ack.offset
                    ));
                }
            }
            Role::Replica { primary_node_id, primary_address } => {
                let (host, port) = primary_address.rsplit_once(':').unwrap_or((primary_address, "0"));
                s.push_str(&format!(
                    "role:slave\r\nmaster_host:{host}\r\nmaster_port:{port}\r\nmaster_node:{primary_node_id}\r\nmaster_link_status:{}\r\nmaster_sync_in_progress:{}\r\nslave_repl_offset:{}\r\nslave_read_only:1\r\nconnected_slaves:0\r\n",
                    if st.in_sync { "up" } else { "down" },
                    if st.in_sync { 0 } else { 1 },
                    st.position.offset,
                ));
            }
        }
        s.push_str(&format!(
            "master_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{}\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{}\r\nrepl_backlog_histlen:{}\r\n",
            st.position.replid,
            if st.replid2.is_empty() { "0".repeat(40) } else { st.replid2.clone() },
            st.position.offset,
            if st.replid2.is_empty() { -1 } else { st.offset2 as i64 + 1 },
            u8::from(st.backlog_active()),
            st.backlog.limit(),
            st.backlog.bytes(),
        ));
        let d = st.durability;
        s.push_str(&format!(
            "ferrocache_durability:{}\r\nferrocache_min_replicas_to_ack:{}\r\nferrocache_max_replica_lag_ms:{}\r\n",
            d.mode.as_str(),
            d.min_replicas_to_ack, d.max_replica_lag_ms
        ));
        if st.role == Role::Primary {
            let lag = best_lag.map_or_else(|| "-1".to_string(), |l| l.to_string());
            s.push_str(&format!("ferrocache_best_replica_lag_ms:{lag}\r\n"));
        }
        s.push_str("# Keyspace\r\n");
        let now = ferrocache_common::time::now_ms();
        for (db, ks) in st.dbs.iter().filter(|(_, ks)| !ks.is_empty()) {
            let (keys, expires, ttl) = (ks.len(), ks.keys_with_expiry(), ks.avg_ttl(now));
            s.push_str(&format!("db{db}:keys={keys},expires={expires},avg_ttl={ttl}\r\n"));
        }
        // The commands scripts ran: the gateway adds them to its own commandstats.
        s.push_str("# Commandstats\r\n");
        let entries = ferrocache_common::acl::categories::entries();
        for (&entry, c) in &st.script_calls {
            let Some(e) = entries.get(entry) else { continue };
            let per_call = if c.calls > 0 { c.usec as f64 / c.calls as f64 } else { 0.0 };
            s.push_str(&format!(
                "cmdstat_{}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                e.name, c.calls, c.usec, c.rejected, c.failed
            ));
        }
        s
    })
}

fn human(bytes: usize) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2}G", b / (1u64 << 30) as f64)
    } else if b >= (1 << 20) as f64 {
        format!("{:.2}M", b / (1 << 20) as f64)
    } else if b >= 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else {
        format!("{bytes}B")
    }
}
