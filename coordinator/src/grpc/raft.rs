//! Server side of the Raft RPCs: decode openraft's message, hand it to the local Raft node,
//! encode its result (including openraft's own errors) back.

use std::sync::Arc;

use ferrocache_proto::internal::v1 as pb;
use pb::raft_server::Raft as RaftRpc;
use tonic::{Request, Response, Status};

use crate::Coordinator;

pub struct RaftService {
    pub coordinator: Arc<Coordinator>,
}

fn decode<T: serde::de::DeserializeOwned>(req: Request<pb::RaftPayload>) -> Result<T, Status> {
    serde_json::from_slice(&req.into_inner().data)
        .map_err(|e| Status::invalid_argument(format!("bad raft payload: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Response<pb::RaftPayload>, Status> {
    let data = serde_json::to_vec(value).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(pb::RaftPayload { data: data.into() }))
}

#[tonic::async_trait]
impl RaftRpc for RaftService {
    async fn append_entries(&self, req: Request<pb::RaftPayload>) -> Result<Response<pb::RaftPayload>, Status> {
        let result = self.coordinator.raft.append_entries(decode(req)?).await;
        encode(&result)
    }

    async fn vote(&self, req: Request<pb::RaftPayload>) -> Result<Response<pb::RaftPayload>, Status> {
        let result = self.coordinator.raft.vote(decode(req)?).await;
        encode(&result)
    }

    async fn install_snapshot(&self, req: Request<pb::RaftPayload>) -> Result<Response<pb::RaftPayload>, Status> {
        let result = self.coordinator.raft.install_snapshot(decode(req)?).await;
        encode(&result)
    }
}
