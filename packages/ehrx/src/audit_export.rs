//! `ehrx audit export`: the chain's audit log as a FHIR Bundle of `AuditEvent`s.

use crate::chain;
use crate::fhir;
use crate::peer::Exchange;
use anyhow::{Context, Result};
use ehr_protocol::audit::{AuditAction, AuditEntry};
use ehr_protocol::exchange::QueryMsg;
use ehr_protocol::limits::MAX_PAGE;
use ehr_protocol::registry::{AuditLogResponse, QueryMsg as RegistryQuery};
use serde_json::Value;

/// Which entries to keep. Times are unix seconds, `since` inclusive, `until` exclusive.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub since: Option<u64>,
    pub until: Option<u64>,
    pub request_id: Option<String>,
    /// Entries naming this registered clinician (`AuditEntry::clinician_id`).
    pub clinician_id: Option<String>,
    /// Only break-glass events: requests, co-signatures and missing co-signatures.
    pub break_glass_only: bool,
}

impl AuditFilter {
    pub fn keeps(&self, entry: &AuditEntry) -> bool {
        let t = entry.time.seconds();
        self.since.is_none_or(|s| t >= s)
            && self.until.is_none_or(|u| t < u)
            && self
                .request_id
                .as_ref()
                .is_none_or(|id| entry.request_id.as_ref() == Some(id))
            && self
                .clinician_id
                .as_ref()
                .is_none_or(|id| entry.clinician_id.as_ref() == Some(id))
            && (!self.break_glass_only
                || matches!(
                    entry.action,
                    AuditAction::BreakGlass
                        | AuditAction::BreakGlassCosigned
                        | AuditAction::BreakGlassCosignMissing
                ))
    }
}

/// Whose log: the exchange contract's (default) or the registry's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditSource {
    Exchange,
    Registry,
}

/// Pages through the whole log (oldest first) and keeps what `filter` selects.
pub fn collect(
    exchange: &Exchange,
    source: AuditSource,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>> {
    let contract = match source {
        AuditSource::Exchange => &exchange.contract,
        AuditSource::Registry => &exchange.registry,
    };
    let mut kept = Vec::new();
    let mut start_after: Option<u64> = None;
    loop {
        let page: AuditLogResponse = match source {
            AuditSource::Exchange => chain::query(
                exchange.chain,
                contract,
                &QueryMsg::AuditLog {
                    start_after,
                    limit: Some(MAX_PAGE),
                },
            ),
            AuditSource::Registry => chain::query(
                exchange.chain,
                contract,
                &RegistryQuery::AuditLog {
                    start_after,
                    limit: Some(MAX_PAGE),
                },
            ),
        }
        .context("reading the audit log")?;
        let Some(last) = page.entries.last().map(|e| e.id) else {
            break;
        };
        if start_after.is_some_and(|prev| last <= prev) {
            anyhow::bail!("the audit log did not advance past entry {last}; stopping");
        }
        let full = page.entries.len() >= MAX_PAGE as usize;
        kept.extend(page.entries.into_iter().filter(|e| filter.keeps(e)));
        if !full {
            break;
        }
        start_after = Some(last);
    }
    Ok(kept)
}

/// The FHIR Bundle of AuditEvents for `entries`.
pub fn to_fhir(exchange: &Exchange, source: AuditSource, entries: &[AuditEntry]) -> Value {
    let observer = match source {
        AuditSource::Exchange => &exchange.contract,
        AuditSource::Registry => &exchange.registry,
    };
    fhir::audit_bundle(
        entries
            .iter()
            .map(|e| fhir::audit_event(e, &exchange.network, observer))
            .collect(),
    )
}

/// The custodian's "who accessed my record" report for one patient (the custodian's
/// pseudonym): the exchange contract's entries about them, as a FHIR Bundle of AuditEvents
/// ([`fhir::patient_access_report`]; entries about anyone else are left out).
/// Every audit entry about `patient` (this hospital's pseudonym) on the exchange contract,
/// oldest first.
pub fn patient_entries(exchange: &Exchange, patient: &str) -> Result<Vec<AuditEntry>> {
    let mut all = Vec::new();
    let mut start_after = None;
    loop {
        let page: AuditLogResponse = chain::query(
            exchange.chain,
            &exchange.contract,
            &QueryMsg::AuditByPatient {
                patient: patient.to_string(),
                start_after,
                limit: Some(MAX_PAGE),
            },
        )
        .context("reading the patient's audit entries")?;
        let full = page.entries.len() >= MAX_PAGE as usize;
        start_after = page.entries.last().map(|e| e.id);
        all.extend(page.entries);
        if !full {
            return Ok(all);
        }
    }
}

pub fn patient_report(exchange: &Exchange, entries: &[AuditEntry], patient: &str) -> Value {
    fhir::patient_access_report(entries, &exchange.network, &exchange.contract, patient)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::Timestamp;
    use ehr_protocol::audit::AuditAction;

    #[test]
    fn filter_by_time_request_and_clinician() {
        let e = AuditEntry::new(Timestamp::from_seconds(100), AuditAction::Retrieval).request("r1");
        let f = |since, until, id: Option<&str>| AuditFilter {
            since,
            until,
            request_id: id.map(str::to_string),
            clinician_id: None,
            break_glass_only: false,
        };
        assert!(f(None, None, None).keeps(&e));
        assert!(f(Some(100), Some(101), Some("r1")).keeps(&e));
        assert!(!f(Some(101), None, None).keeps(&e));
        assert!(!f(None, Some(100), None).keeps(&e));
        assert!(!f(None, None, Some("r2")).keeps(&e));
        let by = |id: &str| AuditFilter {
            clinician_id: Some(id.to_string()),
            ..AuditFilter::default()
        };
        assert!(!by("dr-adams").keeps(&e));
        let asked = e.clone().clinician("dr-adams");
        assert!(by("dr-adams").keeps(&asked));
        assert!(!by("dr-brown").keeps(&asked));
        let break_glass = AuditFilter {
            break_glass_only: true,
            ..AuditFilter::default()
        };
        assert!(!break_glass.keeps(&asked));
        let emergency = AuditEntry::new(Timestamp::from_seconds(100), AuditAction::BreakGlass);
        assert!(break_glass.keeps(&emergency));
    }
}
