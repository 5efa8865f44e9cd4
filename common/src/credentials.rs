//! The cluster secret: every internal RPC (Raft, heartbeats, topology, data, replication) and
//! the admin API carry it, and every server refuses a call without it, so a process that does
//! not hold the cluster's credentials can neither read, write nor vote.
//!
//! It is one value per cluster, given to every process (`--cluster-secret` or
//! `FERROCACHE_CLUSTER_SECRET`) and installed once at start-up; clients attach it to every
//! call through [`Channel`], servers check it with [`check`]. Without a secret (local
//! development) nothing is attached or checked. Health checks stay open, for probes.

use std::sync::OnceLock;

use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Status};

/// The metadata key carrying the secret.
pub const HEADER: &str = "x-ferrocache-secret";

static SECRET: OnceLock<Option<tonic::metadata::AsciiMetadataValue>> = OnceLock::new();

/// Why a secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the cluster secret must be 16 to 256 printable ASCII characters")]
    Invalid,
}

/// Installs this process's secret (None: none required). The first call wins.
pub fn install(secret: Option<&str>) -> Result<(), SecretError> {
    let value = match secret.filter(|s| !s.is_empty()) {
        None => None,
        Some(s) if (16..=256).contains(&s.len()) && s.bytes().all(|c| (b'!'..=b'~').contains(&c)) => {
            Some(s.parse().map_err(|_| SecretError::Invalid)?)
        }
        Some(_) => return Err(SecretError::Invalid),
    };
    let _ = SECRET.set(value);
    Ok(())
}

fn secret() -> Option<&'static tonic::metadata::AsciiMetadataValue> {
    SECRET.get().and_then(|s| s.as_ref())
}

/// Attaches the secret to each outgoing call.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attach;

impl tonic::service::Interceptor for Attach {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(s) = secret() {
            req.metadata_mut().insert(HEADER, s.clone());
        }
        Ok(req)
    }
}

/// A gRPC channel whose calls carry the cluster secret.
pub type Channel = InterceptedService<tonic::transport::Channel, Attach>;

pub fn channel(inner: tonic::transport::Channel) -> Channel {
    InterceptedService::new(inner, Attach)
}

/// Refuses a call without the cluster secret (UNAUTHENTICATED).
pub fn check(req: Request<()>) -> Result<Request<()>, Status> {
    let Some(want) = secret() else { return Ok(req) };
    let got = req.metadata().get(HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    let want = want.as_bytes();
    // Compared without stopping at the first difference: timing says nothing of the secret.
    let same = got.len() == want.len() && got.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if same {
        Ok(req)
    } else {
        Err(Status::unauthenticated(
            "this call needs the cluster secret (--cluster-secret / FERROCACHE_CLUSTER_SECRET)",
        ))
    }
}

/// The server-side check as an interceptor type (for `InterceptedService<Server, Check>`).
pub type Check = fn(Request<()>) -> Result<Request<()>, Status>;

/// Wraps a generated server so each call is checked.
pub fn guarded<S>(server: S) -> InterceptedService<S, Check> {
    InterceptedService::new(server, check as Check)
}

/// Connects to `uri` (e.g. `http://host:port`), with the secret attached to every call.
pub async fn connect(uri: String) -> Result<Channel, tonic::transport::Error> {
    Ok(channel(tonic::transport::Endpoint::from_shared(uri)?.connect().await?))
}
