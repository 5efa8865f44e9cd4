//! `modify-replication-group-shard-configuration`: change a cluster-mode group's number of
//! node groups online, optionally following the slot moves with a progress bar (`--wait`).

use std::process::ExitCode;
use std::time::Duration;

use ferrocache_proto::admin::v1 as api;

use crate::admin::{call, invoke};
use crate::cli::AdminOptions;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct ShardConfigurationArgs {
    #[command(flatten)]
    pub opts: AdminOptions,
    /// The replication group (its id, as given at creation; case-insensitive).
    #[arg(long)]
    pub replication_group_id: String,
    /// Node groups wanted (1-500).
    #[arg(long)]
    pub node_group_count: i32,
    /// When shrinking: the node groups that go (their slots move to the others).
    #[arg(long, num_args = 1.., value_delimiter = ' ', conflicts_with = "node_groups_to_retain")]
    pub node_groups_to_remove: Vec<String>,
    /// When shrinking: the node groups that stay.
    #[arg(long, num_args = 1.., value_delimiter = ' ')]
    pub node_groups_to_retain: Vec<String>,
    /// Accepted for compatibility: changes always apply immediately.
    #[arg(long)]
    pub apply_immediately: bool,
    /// Follow the slot moves with a progress bar until the group is available again.
    #[arg(long)]
    pub wait: bool,
}

pub async fn modify(a: ShardConfigurationArgs) -> ExitCode {
    let req = api::ModifyReplicationGroupShardConfigurationRequest {
        replication_group_id: a.replication_group_id.clone(),
        node_group_count: a.node_group_count,
        apply_immediately: a.apply_immediately,
        node_groups_to_remove: a.node_groups_to_remove,
        node_groups_to_retain: a.node_groups_to_retain,
    };
    let out = a.opts.output;
    let code = invoke(
        &a.opts,
        "ModifyReplicationGroupShardConfiguration",
        req,
        |mut c, r| async move { c.modify_replication_group_shard_configuration(r).await },
        |r| if a.wait { ExitCode::SUCCESS } else { output::print_group_response(r.replication_group.as_ref(), out) },
    )
    .await;
    if !a.wait || code != ExitCode::SUCCESS {
        return code;
    }
    follow(&a.opts.endpoint, &a.replication_group_id).await
}

/// Prints the resharding's progress until the group is available again.
async fn follow(endpoint: &str, id: &str) -> ExitCode {
    loop {
        let r = call(endpoint, Duration::from_secs(10), |mut c| {
            let id = id.to_string();
            async move {
                c.describe_replication_groups(api::DescribeReplicationGroupsRequest { replication_group_id: id }).await
            }
        })
        .await;
        let g = match r {
            Ok(r) => r.replication_groups.into_iter().next(),
            Err(s) => {
                eprintln!("\ncannot follow the resharding: {}", s.message());
                return ExitCode::from(255);
            }
        };
        let Some(g) = g else { return ExitCode::from(255) };
        match &g.resharding {
            Some(r) => {
                let pct = r.slot_migration.as_ref().map_or(0.0, |m| m.progress_percentage);
                let filled = (pct / 5.0).round() as usize;
                eprint!(
                    "\r[{}{}] {pct:5.1}%  {}/{} slots, {} keys moved",
                    "#".repeat(filled.min(20)),
                    " ".repeat(20 - filled.min(20)),
                    r.slots_moved,
                    r.slots_to_move,
                    r.keys_moved
                );
            }
            None if g.status == "available" => {
                eprintln!("\r[{}] 100.0%  done: {} node groups{}", "#".repeat(20), g.node_groups.len(), " ".repeat(20));
                return ExitCode::SUCCESS;
            }
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
