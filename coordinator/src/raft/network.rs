//! Raft RPCs between coordinators over gRPC (`internal.v1.Raft`), openraft's messages as
//! JSON. One lazily connected channel per peer address, kept for the coordinator's life:
//! openraft asks for a new client for every leadership check (each linearizable read, such
//! as a datanode's heartbeat), and a channel per client would open a TCP connection each
//! time.

use std::collections::HashMap;
use std::time::Duration;

use ferrocache_proto::internal::v1 as pb;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use pb::raft_client::RaftClient;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::Channel;

use super::types::{NodeId, TypeConfig};

#[derive(Default)]
pub struct Network {
    /// By peer address; a tonic channel reconnects by itself after its peer comes back.
    channels: HashMap<String, Channel>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        let channel = match self.channels.get(&node.addr) {
            Some(channel) => Some(channel.clone()),
            None => {
                let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", node.addr))
                    .map(|e| e.connect_timeout(Duration::from_millis(500)).connect_lazy())
                    .ok();
                if let Some(c) = &channel {
                    self.channels.insert(node.addr.clone(), c.clone());
                }
                channel
            }
        };
        Peer { target, channel }
    }
}

pub struct Peer {
    target: NodeId,
    channel: Option<Channel>,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl Peer {
    async fn call<Req, Resp, E>(&mut self, kind: &'static str, req: &Req, option: &RPCOption) -> Result<Resp, RpcErr<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let Some(channel) = self.channel.clone() else {
            return Err(RPCError::Unreachable(Unreachable::new(&std::io::Error::other(format!(
                "bad address for {}",
                self.target
            )))));
        };
        let data = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut client = RaftClient::new(ferrocache_common::credentials::channel(channel))
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20);
        let mut request = tonic::Request::new(pb::RaftPayload { data: data.into() });
        request.set_timeout(option.hard_ttl().max(Duration::from_millis(100)));
        let result = match kind {
            "append" => client.append_entries(request).await,
            "vote" => client.vote(request).await,
            _ => client.install_snapshot(request).await,
        };
        let payload = result
            .map_err(|s| RPCError::Unreachable(Unreachable::new(&std::io::Error::other(s.message().to_string()))))?;
        let decoded: Result<Resp, RaftError<NodeId, E>> =
            serde_json::from_slice(&payload.into_inner().data).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        decoded.map_err(|e| RPCError::RemoteError(openraft::error::RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        self.call("append", &req, &option).await
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        self.call("snapshot", &req, &option).await
    }

    async fn vote(&mut self, req: VoteRequest<NodeId>, option: RPCOption) -> Result<VoteResponse<NodeId>, RpcErr> {
        self.call("vote", &req, &option).await
    }
}
