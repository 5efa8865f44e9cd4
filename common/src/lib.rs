//! What every Ferrocache process shares: the slot hash, Redis glob patterns, the command
//! table, the typed reply, id rules, the logging set-up and how servers accept sockets.

pub mod acl;
pub mod command;
pub mod command_docs;
pub mod cpu;
pub mod credentials;
pub mod double;
pub mod glob;
pub mod hostile;
pub mod ids;
pub mod int;
pub mod metrics;
pub mod monitor_line;
pub mod net;
pub mod parameters;
pub mod reply;
pub mod slot;
pub mod split_args;
pub mod subcommands;
pub mod telemetry;
pub mod time;
pub mod tracking_feed;

pub use reply::Reply;

/// How many numbered databases (SELECT 0–15) a cluster-mode-disabled group has: Redis's
/// default `databases`, and ElastiCache's. Cluster mode has database 0 only.
pub const DATABASES: usize = 16;

/// The internal pub/sub channel a primary publishes the keys it changes on while a gateway
/// has CLIENT TRACKING clients (`k` + key; `f`: everything, after a flush).
pub const TRACKING_FEED: &[u8] = b"__ferrocache__:tracking";

/// The internal pub/sub channel a primary publishes MONITOR lines on for the commands its
/// scripts run (the gateways show the rest), while a gateway has MONITOR clients.
pub const MONITOR_FEED: &[u8] = b"__ferrocache__:monitor";

/// A channel Ferrocache itself uses between its processes (PUBSUB CHANNELS leaves them out).
pub fn is_internal_channel(name: &[u8]) -> bool {
    name == TRACKING_FEED || name == MONITOR_FEED
}
