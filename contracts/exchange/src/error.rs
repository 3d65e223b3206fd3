use cosmwasm_std::StdError;
use ehr_protocol::upgrade::UpgradeRefusal;
use ehr_protocol::ErrorCode;
use thiserror::Error;

/// Hard failures: the transaction reverts and nothing is recorded. Peers that break a rule
/// and outsiders are refused softly instead (see `rejection.rs`), so only malformed
/// handshakes, refused migrations and internal faults end here. Messages carry codes and ids only, never PHI.
#[derive(Error, Debug)]
pub enum ContractError {
    #[error("{0}")]
    Std(#[from] StdError),

    #[error("ReplyNotReady: request {request_id} has no reply yet (status {status})")]
    ReplyNotReady { request_id: String, status: String },

    #[error("handshake refused: {code} ({detail})")]
    HandshakeRefused { code: ErrorCode, detail: String },

    #[error("NotAuthorized: this contract does not close channels from its side")]
    CloseRefused,

    #[error("{0}")]
    Upgrade(#[from] UpgradeRefusal),
}

impl ContractError {
    pub fn handshake(code: ErrorCode, detail: impl Into<String>) -> Self {
        ContractError::HandshakeRefused {
            code,
            detail: detail.into(),
        }
    }
}
