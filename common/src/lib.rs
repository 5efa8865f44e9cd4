//! What every Ferrocache process shares: the slot hash, Redis glob patterns, the command
//! table, the typed reply, id rules and the logging set-up. Pure code, no I/O.

pub mod command;
pub mod glob;
pub mod ids;
pub mod reply;
pub mod slot;
pub mod telemetry;
pub mod time;
pub mod transaction;

pub use reply::Reply;
