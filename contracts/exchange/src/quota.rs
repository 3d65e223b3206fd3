//! Incoming quotas: how many requests we accept from one partner, and from one remote
//! clinician, per window of our own policy. A partner that floods gets a coded error ack
//! (`QuotaExceeded`) and its requests never reach our reply service; our own peers are
//! never struck for it. Fixed windows keep each check at one small read per key.

use crate::state::{QUOTA_PARTNER, QUOTA_REMOTE};
use cosmwasm_schema::cw_serde;
use cosmwasm_std::{StdResult, Storage};
use ehr_protocol::registry::Policy;
use ehr_protocol::ErrorCode;

/// Requests accepted in the window that started at `start` (unix seconds).
#[cw_serde]
#[derive(Default)]
pub struct Window {
    pub start: u64,
    pub count: u32,
}

impl Window {
    /// The window in force at `now`: the stored one, or a fresh one once it has ended.
    fn at(stored: Option<Window>, now: u64, length: u64) -> Window {
        match stored {
            Some(window) if now < window.start.saturating_add(length) => window,
            _ => Window {
                start: now,
                count: 0,
            },
        }
    }

    fn admits(&self, limit: u32, now: u64, length: u64) -> Result<(), ErrorCode> {
        if self.count < limit {
            return Ok(());
        }
        let retry_after = self.start.saturating_add(length).saturating_sub(now).max(1);
        Err(ErrorCode::QuotaExceeded { retry_after })
    }
}

/// Both windows in force for one request, as `check` read them: `count` writes them back
/// without reading them again.
pub struct Windows {
    partner: Window,
    remote: Window,
}

fn load(
    storage: &dyn Storage,
    policy: &Policy,
    partner: &str,
    clinician: &str,
    now: u64,
) -> StdResult<Windows> {
    let length = policy.incoming_window_secs;
    Ok(Windows {
        partner: Window::at(QUOTA_PARTNER.may_load(storage, partner)?, now, length),
        remote: Window::at(
            QUOTA_REMOTE.may_load(storage, (partner, clinician))?,
            now,
            length,
        ),
    })
}

/// Whether one more request from remote clinician `clinician` at `partner` fits both
/// quotas. Reads only; returns the windows for `count`.
pub fn check(
    storage: &dyn Storage,
    policy: &Policy,
    partner: &str,
    clinician: &str,
    now: u64,
) -> Result<Windows, ErrorCode> {
    let windows =
        load(storage, policy, partner, clinician, now).map_err(|_| ErrorCode::Internal)?;
    let length = policy.incoming_window_secs;
    windows
        .partner
        .admits(policy.incoming_per_partner_count, now, length)?;
    windows
        .remote
        .admits(policy.incoming_per_remote_requester_count, now, length)?;
    Ok(windows)
}

/// Counts an accepted request against both quotas, in the windows `check` read.
pub fn count(
    storage: &mut dyn Storage,
    mut windows: Windows,
    partner: &str,
    clinician: &str,
) -> StdResult<()> {
    windows.partner.count = windows.partner.count.saturating_add(1);
    windows.remote.count = windows.remote.count.saturating_add(1);
    QUOTA_PARTNER.save(storage, partner, &windows.partner)?;
    QUOTA_REMOTE.save(storage, (partner, clinician), &windows.remote)
}
