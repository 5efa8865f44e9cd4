//! The coordinator's errors, mapped to gRPC statuses at the boundary.

use tonic::Status;

/// gRPC header naming the leader's address when a follower cannot serve a call.
pub const LEADER_HEADER: &str = "x-ferrocache-leader";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// This coordinator is not the leader; `leader` is its address when known.
    #[error("this coordinator is not the leader{}", .leader.as_ref().map(|l| format!("; the leader is {l}")).unwrap_or_else(|| "; no leader is known yet, retry shortly".into()))]
    NotLeader { leader: Option<String> },
    #[error("raft: {0}")]
    Raft(String),
    #[error("storage: {0}")]
    Storage(String),
}

impl Error {
    /// May the same call succeed if tried again shortly?
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::NotLeader { .. } | Error::Raft(_))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let msg = e.to_string();
        match e {
            Error::InvalidArgument(_) => Status::invalid_argument(msg),
            Error::NotFound(_) => Status::not_found(msg),
            Error::AlreadyExists(_) => Status::already_exists(msg),
            Error::FailedPrecondition(_) => Status::failed_precondition(msg),
            Error::NotLeader { leader } => {
                let mut status = Status::unavailable(msg);
                if let Some(l) = leader.and_then(|l| l.parse().ok()) {
                    status.metadata_mut().insert(LEADER_HEADER, l);
                }
                status
            }
            Error::Raft(_) => Status::unavailable(msg),
            Error::Storage(_) => Status::internal(msg),
        }
    }
}
