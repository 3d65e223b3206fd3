//! Outcomes that end a command with a specific exit status.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | error (configuration, files, chain unreachable, failed transaction) |
//! | 2 | invalid command line |
//! | 3 | the partner holds no records for the patient |
//! | 4 | refused: soft rejection by the contract, request rejected, or reply declined |
//! | 5 | request timed out, expired, or still pending when the wait ended |

use crate::chain::ChainError;
use ehr_protocol::ErrorCode;

pub const EXIT_ERROR: i32 = 1;
pub const EXIT_NO_RECORDS: i32 = 3;
pub const EXIT_REFUSED: i32 = 4;
pub const EXIT_TIMED_OUT: i32 = 5;
/// The partner needs more of the patient's details to find them.
pub const EXIT_NEED_MORE: i32 = 6;

/// How a request ended, when it did not end with records.
#[derive(Debug, thiserror::Error)]
pub enum RequestEnd {
    #[error("request {request_id} was rejected with reason {code}")]
    Rejected { request_id: String, code: ErrorCode },
    #[error("the partner declined request {request_id} with reason {code}")]
    Declined { request_id: String, code: ErrorCode },
    #[error("the partner holds no records for this patient (request {request_id})")]
    NoRecords { request_id: String },
    #[error(
        "the partner could not single out the patient from the details sent (request \
         {request_id}): ask again with {} as well",
        attributes.join(", ")
    )]
    NeedMoreAttributes {
        request_id: String,
        attributes: Vec<String>,
    },
    #[error("request {request_id} timed out: the packet was not delivered in time")]
    TimedOut { request_id: String },
    #[error("request {request_id} expired before it was answered")]
    Expired { request_id: String },
    #[error(
        "request {request_id} is still pending after {waited_secs}s; \
         resume waiting with `ehrx request --resume {request_id} --out <file>`"
    )]
    StillPending {
        request_id: String,
        waited_secs: u64,
    },
}

/// Why an `ehrx admin` command stopped before it sent anything.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "{account} is not the registry admin of {registry} (the admin is {admin}): sign with \
         the admin's account key (`key_name` / --key-name, in the keyring of `wasmd_home`)"
    )]
    NotAdmin {
        account: String,
        registry: String,
        admin: String,
    },
}

/// The exit status for an error returned by a command.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(end) = cause.downcast_ref::<RequestEnd>() {
            return match end {
                RequestEnd::Rejected { .. } | RequestEnd::Declined { .. } => EXIT_REFUSED,
                RequestEnd::NoRecords { .. } => EXIT_NO_RECORDS,
                RequestEnd::NeedMoreAttributes { .. } => EXIT_NEED_MORE,
                RequestEnd::TimedOut { .. }
                | RequestEnd::Expired { .. }
                | RequestEnd::StillPending { .. } => EXIT_TIMED_OUT,
            };
        }
        if let Some(ChainError::SoftRejected { .. }) = cause.downcast_ref::<ChainError>() {
            return EXIT_REFUSED;
        }
    }
    EXIT_ERROR
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn exit_codes_follow_the_cause() {
        let soft: anyhow::Error = ChainError::SoftRejected {
            code: ErrorCode::NotAuthorized,
            txhash: "AA".into(),
        }
        .into();
        assert_eq!(exit_code(&soft), EXIT_REFUSED);
        let wrapped = Err::<(), _>(soft)
            .context("submitting the request")
            .unwrap_err();
        assert_eq!(exit_code(&wrapped), EXIT_REFUSED);
        let none: anyhow::Error = RequestEnd::NoRecords {
            request_id: "x".into(),
        }
        .into();
        assert_eq!(exit_code(&none), EXIT_NO_RECORDS);
        assert_eq!(exit_code(&anyhow::anyhow!("boom")), EXIT_ERROR);
    }
}
