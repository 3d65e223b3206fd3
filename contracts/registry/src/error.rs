use cosmwasm_std::StdError;
use ehr_protocol::upgrade::UpgradeRefusal;
use thiserror::Error;

/// Why a registry message was refused. Carries field names and ids only, never payload text.
#[derive(Error, Debug)]
pub enum ContractError {
    #[error("{0}")]
    Std(#[from] StdError),

    #[error("unauthorized")]
    Unauthorized,

    #[error("invalid format: {field}")]
    InvalidFormat { field: String },

    #[error("unknown peer")]
    UnknownPeer,

    #[error("unknown partner")]
    UnknownPartner,

    #[error("unknown clinician: register it first (RegisterClinician)")]
    UnknownClinician,

    #[error("connection {connection_id} and port {counterparty_port} already belong to partner {partner_id}")]
    PartnerConflict {
        partner_id: String,
        connection_id: String,
        counterparty_port: String,
    },

    #[error("channel already bound")]
    ChannelAlreadyBound,

    #[error("the partner has no bound channel to unbind")]
    NoChannelBound,

    #[error("peer is not quarantined")]
    NotQuarantined,

    #[error("{0}")]
    Upgrade(#[from] UpgradeRefusal),
}

impl ContractError {
    pub fn invalid(field: &str) -> Self {
        ContractError::InvalidFormat {
            field: field.to_string(),
        }
    }
}
