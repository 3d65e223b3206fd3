use crate::registry_client::Registry;
use crate::state::{
    Incoming, AUDIT, CONFIG, CONSENTS, OUTGOING, OUTGOING_BY_REQUESTER, OUTSIDERS,
    PENDING_INCOMING, RECORDS, RECORD_CHUNKS, RECORD_META, REPLY_CHUNKS,
};
use cosmwasm_std::{Binary, Deps, Env, Order, StdError, StdResult};
use cw_storage_plus::Bound;
use ehr_protocol::consent::{evaluate, ConsentOutcome, ConsentQuestion, RecordCategory};
use ehr_protocol::exchange::{
    ConfigResponse, ConsentDirectivesResponse, IncomingCursor, IncomingRequest,
    IncomingRequestsResponse, OutgoingRequest, OutsiderTally, PurposeOfUse, RecordsResponse,
    RequestsResponse, StoredRecord,
};
use ehr_protocol::limits::page_size;
use ehr_protocol::registry::AuditLogResponse;
use ehr_protocol::validate;

pub fn config(deps: Deps) -> StdResult<ConfigResponse> {
    let config = CONFIG.load(deps.storage)?;
    Ok(ConfigResponse {
        registry: config.registry,
        network_id: config.network_id,
    })
}

pub fn request(deps: Deps, request_id: String) -> StdResult<OutgoingRequest> {
    OUTGOING
        .may_load(deps.storage, &request_id)?
        .ok_or_else(|| StdError::msg(format!("UnknownRequest: {request_id}")))
}

pub fn requests_by_requester(
    deps: Deps,
    requester: String,
    start_after: Option<String>,
    limit: Option<u32>,
) -> StdResult<RequestsResponse> {
    let requester = deps.api.addr_validate(&requester)?;
    let requests = OUTGOING_BY_REQUESTER
        .prefix(&requester)
        .keys(
            deps.storage,
            start_after.as_deref().map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(page_size(limit))
        .map(|id| OUTGOING.load(deps.storage, &id?))
        .collect::<StdResult<_>>()?;
    Ok(RequestsResponse { requests })
}

pub fn incoming_request(
    deps: Deps,
    partner_id: String,
    request_id: String,
) -> StdResult<IncomingRequest> {
    Incoming::may_load(deps.storage, (&partner_id, &request_id))?
        .ok_or_else(|| StdError::msg(format!("UnknownRequest: {partner_id}/{request_id}")))
}

/// A page of the incoming requests waiting for an answer. A cursor whose ids are not a
/// partner id and a request id is refused (its values are not echoed).
pub fn pending_incoming(
    deps: Deps,
    start_after: Option<IncomingCursor>,
    limit: Option<u32>,
) -> StdResult<IncomingRequestsResponse> {
    if let Some(cursor) = &start_after {
        if validate::name(&cursor.partner_id).is_err() || validate::id(&cursor.request_id).is_err()
        {
            return Err(StdError::msg(
                "InvalidFormat: malformed start_after cursor: partner_id must be a partner id, request_id a request id",
            ));
        }
    }
    let start = start_after
        .as_ref()
        .map(|c| Bound::exclusive((c.partner_id.as_str(), c.request_id.as_str())));
    let requests = PENDING_INCOMING
        .keys(deps.storage, start, None, Order::Ascending)
        .take(page_size(limit))
        .map(|key| {
            let (partner, id) = key?;
            Incoming::may_load(deps.storage, (&partner, &id))?
                .ok_or_else(|| StdError::msg("Internal: a pending request without its entry"))
        })
        .collect::<StdResult<_>>()?;
    Ok(IncomingRequestsResponse { requests })
}

pub fn records(
    deps: Deps,
    patient_token: String,
    start_after: Option<String>,
    limit: Option<u32>,
) -> StdResult<RecordsResponse> {
    let records = RECORD_META
        .prefix(&patient_token)
        .range(
            deps.storage,
            start_after.as_deref().map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(page_size(limit))
        .map(|item| item.map(|(_, meta)| meta))
        .collect::<StdResult<_>>()?;
    Ok(RecordsResponse { records })
}

pub fn record(deps: Deps, patient_token: String, record_id: String) -> StdResult<StoredRecord> {
    let key = (patient_token.as_str(), record_id.as_str());
    let mut record = RECORDS
        .may_load(deps.storage, key)?
        .ok_or_else(|| StdError::msg(format!("unknown record {record_id}")))?;
    // The metadata (how many chunks are in) is kept up to date apart from the manifest.
    record.meta = RECORD_META.load(deps.storage, key)?;
    Ok(record)
}

/// One chunk of a complete or growing record; an absent one is named.
pub fn record_chunk(
    deps: Deps,
    patient_token: &str,
    record_id: &str,
    index: u32,
) -> StdResult<Binary> {
    if validate::patient_token(patient_token).is_err() || validate::id(record_id).is_err() {
        return Err(StdError::msg(
            "InvalidFormat: malformed patient token or record id",
        ));
    }
    RECORD_CHUNKS
        .load(deps.storage, &[patient_token, record_id], index)
        .map(Binary::from)
        .ok_or_else(|| StdError::msg(format!("chunk {index} of record {record_id} is not stored")))
}

/// One chunk of a reply its requester has retrieved (`RetrieveReply`: the audited release).
pub fn reply_chunk(deps: Deps, request_id: &str, index: u32) -> StdResult<Binary> {
    if validate::id(request_id).is_err() {
        return Err(StdError::msg("InvalidFormat: malformed request id"));
    }
    let request = OUTGOING.may_load(deps.storage, request_id)?;
    if request.is_none_or(|r| r.retrievals == 0) {
        return Err(StdError::msg(format!(
            "request {request_id} has no retrieved reply: send RetrieveReply first"
        )));
    }
    REPLY_CHUNKS
        .load(deps.storage, &[request_id], index)
        .map(Binary::from)
        .ok_or_else(|| {
            StdError::msg(format!(
                "chunk {index} of the reply to {request_id} is not stored: the chain keeps a \
                 reply's chunks in their packets only; read it from the block of packet \
                 `chunk_packets[{index}]` of the RetrieveReply data (ehrx does)"
            ))
        })
}

pub fn audit_log(
    deps: Deps,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> StdResult<AuditLogResponse> {
    Ok(AuditLogResponse {
        entries: AUDIT.page(deps.storage, start_after, limit)?,
    })
}

pub fn outsider_attempts(deps: Deps) -> StdResult<OutsiderTally> {
    Ok(OUTSIDERS.may_load(deps.storage)?.unwrap_or_default())
}

fn patient_arg(patient: &str) -> StdResult<()> {
    validate::patient_token(patient)
        .map_err(|_| StdError::msg("InvalidFormat: patient must be a pseudonym (64 lowercase hex)"))
}

/// A patient's directives, revoked ones included, by directive id.
pub fn consent_directives(
    deps: Deps,
    patient: &str,
    start_after: Option<String>,
    limit: Option<u32>,
) -> StdResult<ConsentDirectivesResponse> {
    patient_arg(patient)?;
    let directives = CONSENTS
        .prefix(patient)
        .range(
            deps.storage,
            start_after.as_deref().map(Bound::exclusive),
            None,
            Order::Ascending,
        )
        .take(page_size(limit))
        .map(|item| item.map(|(_, directive)| directive))
        .collect::<StdResult<_>>()?;
    Ok(ConsentDirectivesResponse { directives })
}

/// What the patient's directives (and the policy's default) decide now for this release.
pub fn consent_check(
    deps: Deps,
    env: &Env,
    patient: &str,
    partner_id: &str,
    purpose: PurposeOfUse,
    categories: &[RecordCategory],
    break_glass: bool,
) -> StdResult<ConsentOutcome> {
    patient_arg(patient)?;
    let config = CONFIG.load(deps.storage)?;
    let default = Registry::new(&config.registry, deps.querier)
        .config()?
        .policy
        .consent_default;
    let directives = crate::consent::directives(deps.storage, patient)?;
    Ok(evaluate(
        &directives,
        default,
        &ConsentQuestion {
            partner: partner_id,
            purpose,
            categories,
            break_glass,
            now: env.block.time.seconds(),
        },
    ))
}

/// The audit entries about one patient, oldest first.
pub fn audit_by_patient(
    deps: Deps,
    patient: &str,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> StdResult<AuditLogResponse> {
    patient_arg(patient)?;
    Ok(AuditLogResponse {
        entries: AUDIT.page_by_patient(deps.storage, patient, start_after, limit)?,
    })
}
