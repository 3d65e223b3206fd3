//! The transactions peers submit: one function per `ExecuteMsg` variant. Each loads the
//! sender's registration, runs its checks without writing, then either applies the change
//! or soft-rejects with the first failing check's code.

use crate::checks;
use crate::consent::{self, Decision};
use crate::error::ContractError;
use crate::registry_client::Registry;
use crate::rejection::{admit, refuse_outsider, soft_reject, Admission, Admitted, Step};
use crate::state::{
    Config, Incoming, KeptDisclosure, AUDIT, BREAK_GLASS_BY_DUE, CONFIG, DISCLOSURES,
    INCOMING_BY_EXPIRY, OUTGOING, OUTGOING_BY_EXPIRY, OUTGOING_BY_REQUESTER, PENDING_INCOMING,
    RECENT_REQUESTS, RECORDS, RECORD_CHUNKS, RECORD_COUNT, RECORD_META, REPLIES, REPLY_CHUNKS_IN,
    REPLY_OUT,
};
use cosmwasm_std::{
    to_json_binary, Binary, DepsMut, Env, IbcMsg, IbcTimeout, MessageInfo, Order, Response,
    StdResult, Storage,
};
use ehr_protocol::audit::{AuditAction, AuditEntry};
use ehr_protocol::consent::BreakGlass;
use ehr_protocol::exchange::{
    CosignMsg, IncomingRequest, IncomingStatus, OutgoingRequest, PurposeOfUse, RecordMeta,
    ReplyProgress, RequestStatus, StoreChunksMsg, StoreRecordMsg, StoredRecord,
    SubmitReplyChunksMsg, SubmitReplyMsg, SubmitRequestMsg,
};
use ehr_protocol::limits::PACKET_VERSION;
use ehr_protocol::packet::{ExchangePacket, ReplyBody, ReplyPacket, RequestBody, RequestPacket};
use ehr_protocol::registry::{PartnerStatus, Role};
use ehr_protocol::signing::{
    cosign_sign_bytes, key_hash, reply_sign_bytes, request_sign_bytes, store_sign_bytes,
    StoreSigning,
};
use ehr_protocol::{validate, ErrorCode};

/// Runs `verify` for an admitted peer and `apply` on success; soft-rejects otherwise.
pub(crate) fn pipeline<T>(
    mut deps: DepsMut,
    env: &Env,
    info: &MessageInfo,
    step: Step,
    verify: impl FnOnce(&DepsMut, &Config, &Admitted) -> Result<T, ErrorCode>,
    apply: impl FnOnce(DepsMut, &Config, &Admitted, T) -> Result<Response, ContractError>,
) -> Result<Response, ContractError> {
    let config = CONFIG.load(deps.storage)?;
    let registry = Registry::new(&config.registry, deps.querier);
    let outcome = match admit(&registry, &info.sender, env)? {
        Admission::Admitted(admitted) => match verify(&deps, &config, &admitted) {
            Ok(verified) => return apply(deps.branch(), &config, &admitted, verified),
            Err(code) => (admitted.peer, code),
        },
        Admission::Refused(peer, code) => (peer, code),
        Admission::Outsider => return Ok(refuse_outsider(deps.storage, env, &info.sender, &step)?),
    };
    let (peer, code) = outcome;
    Ok(soft_reject(
        deps,
        env,
        &config.registry,
        &peer,
        &step,
        code,
    )?)
}

pub(crate) fn require_role(admitted: &Admitted, role: Role) -> Result<(), ErrorCode> {
    if admitted.peer.has_role(role) {
        Ok(())
    } else {
        Err(ErrorCode::NotAuthorized)
    }
}

fn packet_timeout(env: &Env, admitted: &Admitted, expires_at: u64) -> IbcTimeout {
    let by_policy = env
        .block
        .time
        .plus_seconds(admitted.registry.policy.packet_timeout_secs);
    // Saturating: `Timestamp::from_seconds` panics past u64 nanoseconds (year 2554).
    let by_expiry = cosmwasm_std::Timestamp::from_nanos(expires_at.saturating_mul(1_000_000_000));
    IbcTimeout::with_timestamp(by_policy.min(by_expiry))
}

// ---------------------------------------------------------------- StoreRecord

pub fn store_record(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: StoreRecordMsg,
) -> Result<Response, ContractError> {
    pipeline(
        deps,
        &env,
        &info,
        Step {
            action: AuditAction::RecordStored,
            handler: "store_record",
            request_id: None,
        },
        |deps, config, admitted| {
            let policy = &admitted.registry.policy;
            validate::id(&msg.record_id)?;
            validate::patient_token(&msg.patient_token)?;
            validate::secp256k1_signature(&msg.signature)?;
            msg.manifest
                .check(policy.max_chunk_bytes, policy.max_history_chunks)?;
            checks::next_chunks(&msg.manifest, 0, 0, &msg.chunks)?;
            require_role(admitted, Role::Store)?;
            let sign_bytes = store_sign_bytes(&StoreSigning {
                network_id: &config.network_id,
                storer: info.sender.as_str(),
                record_id: &msg.record_id,
                patient_token: &msg.patient_token,
                manifest: &msg.manifest,
                category: msg.category,
            });
            checks::signature(
                deps.api,
                &sign_bytes,
                &msg.signature,
                &admitted.peer.signing_key,
            )?;
            let key = (msg.patient_token.as_str(), msg.record_id.as_str());
            if RECORD_META.has(deps.storage, key) {
                return Err(ErrorCode::Replay);
            }
            let stored = RECORD_COUNT
                .may_load(deps.storage, &msg.patient_token)
                .map_err(|_| ErrorCode::Internal)?
                .unwrap_or(0);
            if stored >= policy.max_records_per_patient {
                return Err(ErrorCode::CapReached);
            }
            Ok(stored)
        },
        |deps, _config, admitted, stored| {
            let record = StoredRecord {
                meta: RecordMeta {
                    record_id: msg.record_id.clone(),
                    history_hash: msg.manifest.history_hash.clone(),
                    chunk_bytes: msg.manifest.chunk_bytes,
                    chunk_count: msg.manifest.chunk_count(),
                    chunks_stored: msg.chunks.len() as u32,
                    stored_by: info.sender.clone(),
                    stored_at: env.block.time.seconds(),
                    category: msg.category,
                },
                manifest: msg.manifest.clone(),
                signer_pubkey: admitted.peer.signing_key.clone(),
                signature: msg.signature.clone(),
            };
            let key = (msg.patient_token.as_str(), msg.record_id.as_str());
            RECORD_META.save(deps.storage, key, &record.meta)?;
            RECORDS.save(deps.storage, key, &record)?;
            RECORD_COUNT.save(deps.storage, &msg.patient_token, &(stored + 1))?;
            for (index, chunk) in msg.chunks.iter().enumerate() {
                RECORD_CHUNKS.save(deps.storage, &[key.0, key.1], index as u32, chunk);
            }
            AUDIT.append(
                deps.storage,
                AuditEntry::new(env.block.time, AuditAction::RecordStored)
                    .agent(&info.sender)
                    .role(Role::Store),
            )?;
            Ok(chunk_response("store_record", &record.meta)
                .add_attribute("record_id", &msg.record_id))
        },
    )
}

/// Attributes of a chunked store's progress (no PHI: ids, counts).
fn chunk_response(action: &str, meta: &RecordMeta) -> Response {
    Response::new()
        .add_attribute("action", action)
        .add_attribute("outcome", "accepted")
        .add_attribute("chunks_stored", meta.chunks_stored.to_string())
        .add_attribute("chunk_count", meta.chunk_count.to_string())
        .add_attribute("complete", meta.complete().to_string())
}

/// The rest of a record's chunks, by the peer that began it, in order.
pub fn store_chunks(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: StoreChunksMsg,
) -> Result<Response, ContractError> {
    pipeline(
        deps,
        &env,
        &info,
        Step {
            action: AuditAction::RecordStored,
            handler: "store_chunks",
            request_id: None,
        },
        |deps, _config, admitted| {
            validate::id(&msg.record_id)?;
            validate::patient_token(&msg.patient_token)?;
            if msg.chunks.is_empty() {
                return Err(ErrorCode::InvalidFormat);
            }
            require_role(admitted, Role::Store)?;
            let key = (msg.patient_token.as_str(), msg.record_id.as_str());
            // No such record is not misconduct (a retry after a store that did not land);
            // another storer's record is.
            let record = RECORDS
                .may_load(deps.storage, key)
                .map_err(|_| ErrorCode::Internal)?
                .ok_or(ErrorCode::UnknownRequest)?;
            if record.meta.stored_by != info.sender {
                return Err(ErrorCode::NotAuthorized);
            }
            // The count lives in the metadata; the stored record keeps the manifest as signed.
            let meta = RECORD_META
                .load(deps.storage, key)
                .map_err(|_| ErrorCode::Internal)?;
            checks::next_chunks(
                &record.manifest,
                meta.chunks_stored,
                msg.first_index,
                &msg.chunks,
            )?;
            Ok(meta)
        },
        |deps, _config, _admitted, mut meta| {
            let key = (msg.patient_token.as_str(), msg.record_id.as_str());
            for (offset, chunk) in msg.chunks.iter().enumerate() {
                let index = msg.first_index + offset as u32;
                RECORD_CHUNKS.save(deps.storage, &[key.0, key.1], index, chunk);
            }
            meta.chunks_stored += msg.chunks.len() as u32;
            RECORD_META.save(deps.storage, key, &meta)?;
            Ok(chunk_response("store_chunks", &meta).add_attribute("record_id", &msg.record_id))
        },
    )
}

// -------------------------------------------------------------- SubmitRequest

/// Algorithm 1, in the paper's order: format, rate, the clinician's credential, partner,
/// peer identity and role, the clinician's signature, the registered reply key, then replay
/// and expiry.
pub fn submit_request(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: SubmitRequestMsg,
) -> Result<Response, ContractError> {
    let request_id = msg.request_id.clone();
    pipeline(
        deps,
        &env,
        &info,
        Step::for_request(AuditAction::RequestSubmitted, "submit_request", &request_id),
        |deps, config, admitted| {
            let policy = &admitted.registry.policy;
            validate::request_id_of(&msg.request_id, info.sender.as_str())?;
            validate::name(&msg.partner_id)?;
            validate::sealed_patient(&msg.sealed_patient)?;
            validate::name(&msg.clinician_id)?;
            validate::x25519_key(&msg.reply_encryption_key)?;
            validate::secp256k1_signature(&msg.signature)?;
            // Format first, in the paper's order; freshness against block time comes last.
            checks::lifetime(policy, msg.issued_at, msg.expires_at)?;
            // A break-glass claim names its coded reason, before any signature is checked.
            if let Some(BreakGlass { reason: None }) = msg.break_glass {
                return Err(ErrorCode::ReasonRequired);
            }

            rate_limit(deps.storage, &env, admitted)?;

            // The clinician's own credential: registered, active, in validity, allowed this
            // purpose. Their key (below) signs the request; nothing travels that another
            // peer could replay to act as them.
            let registry = Registry::new(&config.registry, deps.querier);
            let clinician = registry
                .clinician(&msg.clinician_id)
                .map_err(|_| ErrorCode::Internal)?
                .ok_or(ErrorCode::UnknownClinician)?;
            clinician.may_request(msg.purpose, env.block.time)?;
            // Break-glass only for emergency treatment, by a clinician allowed it.
            if msg.break_glass.is_some()
                && (msg.purpose != PurposeOfUse::EmergencyTreatment || !clinician.break_glass)
            {
                return Err(ErrorCode::BreakGlassNotAllowed);
            }

            let partner = registry
                .partner(&msg.partner_id)
                .map_err(|_| ErrorCode::Internal)?
                .ok_or(ErrorCode::UnknownPartner)?;
            let channel_id = match (&partner.status, partner.channel_id) {
                (PartnerStatus::Active, Some(channel_id)) => channel_id,
                _ => return Err(ErrorCode::PartnerUnavailable),
            };

            require_role(admitted, Role::Request)?;

            let body = RequestBody {
                version: PACKET_VERSION,
                request_id: msg.request_id.clone(),
                source_network: config.network_id.clone(),
                destination_network: msg.partner_id.clone(),
                requester: info.sender.to_string(),
                requester_role: Role::Request,
                clinician_id: msg.clinician_id.clone(),
                purpose: msg.purpose,
                sealed_patient: msg.sealed_patient.clone(),
                reply_encryption_key: msg.reply_encryption_key.clone(),
                issued_at: msg.issued_at,
                expires_at: msg.expires_at,
                break_glass: msg.break_glass.clone(),
            };
            checks::signature(
                deps.api,
                &request_sign_bytes(&body),
                &msg.signature,
                &clinician.signing_key,
            )?;
            // Replies go only to the key the admin registered for this peer, never to a
            // key the request picks.
            if msg.reply_encryption_key != admitted.peer.encryption_key {
                return Err(ErrorCode::RecipientKeyMismatch);
            }

            if OUTGOING.has(deps.storage, &msg.request_id) {
                return Err(ErrorCode::Replay);
            }
            checks::freshness(&env, policy, msg.issued_at, msg.expires_at)?;
            Ok((body, channel_id, clinician.signing_key))
        },
        |deps, _config, admitted, (body, channel_id, clinician_key)| {
            record_request_time(deps.storage, &env, admitted)?;
            let now = env.block.time.seconds();
            let break_glass = body.break_glass.as_ref().and_then(|claim| claim.reason);
            let cosign_secs = admitted.registry.policy.break_glass_cosign_secs;
            let cosign_due = break_glass
                .filter(|_| cosign_secs > 0)
                .map(|_| now.saturating_add(cosign_secs));
            let request = OutgoingRequest {
                request_id: body.request_id.clone(),
                requester: info.sender.clone(),
                clinician_id: body.clinician_id.clone(),
                partner_id: body.destination_network.clone(),
                channel_id: channel_id.clone(),
                purpose: body.purpose,
                status: RequestStatus::Pending,
                reason: None,
                created_at: env.block.time.seconds(),
                expires_at: body.expires_at,
                packet_sequence: None,
                reply: None,
                retrievals: 0,
                reply_key_hash: Some(key_hash(&body.reply_encryption_key)),
                break_glass,
                cosign_due,
                cosigned_by: None,
            };
            OUTGOING.save(deps.storage, &body.request_id, &request)?;
            if let Some(due) = cosign_due {
                BREAK_GLASS_BY_DUE.save(deps.storage, (due, &body.request_id), &())?;
            }
            OUTGOING_BY_REQUESTER.save(deps.storage, (&info.sender, &body.request_id), &())?;
            OUTGOING_BY_EXPIRY.save(deps.storage, (body.expires_at, &body.request_id), &())?;
            AUDIT.append(
                deps.storage,
                AuditEntry::new(env.block.time, AuditAction::RequestSubmitted)
                    .agent(&info.sender)
                    .clinician(&body.clinician_id)
                    .role(Role::Request)
                    .purpose(body.purpose)
                    .request(&body.request_id)
                    .partner(&body.destination_network)
                    .channel(&channel_id),
            )?;
            // An emergency access is its own step in the audit, with its coded reason.
            if let Some(reason) = break_glass {
                AUDIT.append(
                    deps.storage,
                    AuditEntry::new(env.block.time, AuditAction::BreakGlass)
                        .agent(&info.sender)
                        .clinician(&body.clinician_id)
                        .role(Role::Request)
                        .purpose(body.purpose)
                        .request(&body.request_id)
                        .partner(&body.destination_network)
                        .channel(&channel_id)
                        .subject(reason.as_str()),
                )?;
            }
            let timeout = packet_timeout(&env, admitted, body.expires_at);
            let packet = ExchangePacket::Request(RequestPacket {
                body: body.clone(),
                signer_pubkey: clinician_key,
                signature: msg.signature.clone(),
            });
            Ok(Response::new()
                .add_attribute("action", "submit_request")
                .add_attribute("outcome", "accepted")
                .add_attribute("request_id", &body.request_id)
                .add_attribute("partner_id", &body.destination_network)
                .add_attribute("channel_id", &channel_id)
                .add_message(IbcMsg::SendPacket {
                    channel_id,
                    data: to_json_binary(&packet)?,
                    timeout,
                }))
        },
    )
}

/// Sliding window: at most `rate_limit_count` accepted requests per peer per window.
fn rate_limit(storage: &dyn Storage, env: &Env, admitted: &Admitted) -> Result<(), ErrorCode> {
    let policy = &admitted.registry.policy;
    let now = env.block.time.seconds();
    let recent = RECENT_REQUESTS
        .may_load(storage, &admitted.peer.address)
        .map_err(|_| ErrorCode::Internal)?
        .unwrap_or_default();
    let in_window: Vec<u64> = recent
        .into_iter()
        .filter(|t| now < t.saturating_add(policy.rate_limit_window_secs))
        .collect();
    if in_window.len() >= policy.rate_limit_count as usize {
        let oldest = in_window.iter().min().copied().unwrap_or(now);
        let retry_after = oldest
            .saturating_add(policy.rate_limit_window_secs)
            .saturating_sub(now)
            .max(1);
        return Err(ErrorCode::RateLimited { retry_after });
    }
    Ok(())
}

fn record_request_time(storage: &mut dyn Storage, env: &Env, admitted: &Admitted) -> StdResult<()> {
    let policy = &admitted.registry.policy;
    let now = env.block.time.seconds();
    let mut recent: Vec<u64> = RECENT_REQUESTS
        .may_load(storage, &admitted.peer.address)?
        .unwrap_or_default()
        .into_iter()
        .filter(|t| now < t.saturating_add(policy.rate_limit_window_secs))
        .collect();
    recent.push(now);
    RECENT_REQUESTS.save(storage, &admitted.peer.address, &recent)
}

// ----------------------------------------------------------- CosignBreakGlass

/// A second clinician co-signs a break-glass request this chain sent, before its
/// `cosign_due`: a registered, active clinician allowed break-glass, not the one who asked,
/// signing `ehrx/cosign/v1` with their own key. Sent by a peer with the request role.
pub fn cosign_break_glass(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: CosignMsg,
) -> Result<Response, ContractError> {
    let request_id = msg.request_id.clone();
    pipeline(
        deps,
        &env,
        &info,
        Step::for_request(
            AuditAction::BreakGlassCosigned,
            "cosign_break_glass",
            &request_id,
        ),
        |deps, config, admitted| {
            validate::id(&msg.request_id)?;
            validate::name(&msg.clinician_id)?;
            validate::secp256k1_signature(&msg.signature)?;
            require_role(admitted, Role::Request)?;
            let request = OUTGOING
                .may_load(deps.storage, &msg.request_id)
                .map_err(|_| ErrorCode::Internal)?
                .ok_or(ErrorCode::UnknownRequest)?;
            let (Some(_), Some(due)) = (request.break_glass, request.cosign_due) else {
                return Err(ErrorCode::UnknownRequest);
            };
            if msg.clinician_id == request.clinician_id {
                return Err(ErrorCode::NotAuthorized);
            }
            if request.cosigned_by.is_some() {
                return Err(ErrorCode::Replay);
            }
            let cosigner = Registry::new(&config.registry, deps.querier)
                .clinician(&msg.clinician_id)
                .map_err(|_| ErrorCode::Internal)?
                .ok_or(ErrorCode::UnknownClinician)?;
            cosigner.may_request(PurposeOfUse::EmergencyTreatment, env.block.time)?;
            if !cosigner.break_glass {
                return Err(ErrorCode::BreakGlassNotAllowed);
            }
            checks::signature(
                deps.api,
                &cosign_sign_bytes(&config.network_id, &msg.request_id, &msg.clinician_id),
                &msg.signature,
                &cosigner.signing_key,
            )?;
            if env.block.time.seconds() >= due {
                return Err(ErrorCode::BreakGlassExpired);
            }
            Ok((request, due))
        },
        |deps, _config, _admitted, (mut request, due)| {
            request.cosigned_by = Some(msg.clinician_id.clone());
            OUTGOING.save(deps.storage, &msg.request_id, &request)?;
            BREAK_GLASS_BY_DUE.remove(deps.storage, (due, &msg.request_id));
            AUDIT.append(
                deps.storage,
                AuditEntry::new(env.block.time, AuditAction::BreakGlassCosigned)
                    .agent(&info.sender)
                    .clinician(&request.clinician_id)
                    .role(Role::Request)
                    .purpose(request.purpose)
                    .request(&msg.request_id)
                    .partner(&request.partner_id)
                    .subject(msg.clinician_id.as_str()),
            )?;
            Ok(Response::new()
                .add_attribute("action", "cosign_break_glass")
                .add_attribute("outcome", "accepted")
                .add_attribute("request_id", &msg.request_id))
        },
    )
}

// ---------------------------------------------------------------- SubmitReply

/// Reply formation (Algorithm 2, second half): a registered local peer with the reply role
/// answers a pending incoming request; the first valid reply wins. It signs the manifest of
/// the sealed reply; each chunk leaves as its own packet carrying the signed body.
pub fn submit_reply(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: SubmitReplyMsg,
) -> Result<Response, ContractError> {
    let request_id = msg.request_id.clone();
    pipeline(
        deps,
        &env,
        &info,
        Step::for_request(AuditAction::ReplySubmitted, "submit_reply", &request_id),
        |deps, config, admitted| {
            let policy = &admitted.registry.policy;
            validate::id(&msg.request_id)?;
            validate::name(&msg.partner_id)?;
            validate::secp256k1_signature(&msg.signature)?;
            msg.manifest
                .check(policy.max_chunk_bytes, policy.max_history_chunks)?;
            checks::next_chunks(&msg.manifest, 0, 0, &msg.chunks)?;
            if let Some(disclosure) = &msg.disclosure {
                consent::check_disclosure_format(policy, disclosure)?;
            }
            require_role(admitted, Role::Reply)?;

            let incoming = Incoming::may_load(deps.storage, (&msg.partner_id, &msg.request_id))
                .map_err(|_| ErrorCode::Internal)?
                .ok_or(ErrorCode::UnknownRequest)?;
            if incoming.status != IncomingStatus::Pending {
                return Err(ErrorCode::AlreadyAnswered);
            }
            checks::not_expired(&env, incoming.body.expires_at)?;
            reply_channel_open(deps, config, &incoming)?;

            let body = ReplyBody {
                version: PACKET_VERSION,
                request_id: msg.request_id.clone(),
                requester_network: msg.partner_id.clone(),
                responder_network: config.network_id.clone(),
                responder: info.sender.to_string(),
                // The responder signs which key it encrypted to: the key the request named,
                // which the requesting chain checked was the requester's registered key.
                recipient_key_hash: key_hash(&incoming.body.reply_encryption_key),
                manifest: msg.manifest.clone(),
                issued_at: msg.issued_at,
            };
            checks::signature(
                deps.api,
                &reply_sign_bytes(&body),
                &msg.signature,
                &admitted.peer.signing_key,
            )?;
            // Consent, on what the reply service declares it releases: the records must be
            // complete records of that pseudonym; the patient's directives decide (a release
            // of nothing, a sealed `declined` or `no_records`, is not asked about).
            let consent = match &msg.disclosure {
                None => None,
                Some(disclosure) => {
                    let categories = consent::disclosed_categories(deps.storage, disclosure)?;
                    let now = env.block.time.seconds();
                    let break_glass = consent::break_glass_open(&incoming, now);
                    let decision = if categories.is_empty() {
                        None
                    } else {
                        Some(consent::decide(
                            deps.storage,
                            policy.consent_default,
                            &disclosure.patient,
                            &categories,
                            &incoming,
                            break_glass,
                            now,
                        )?)
                    };
                    let kept = KeptDisclosure {
                        patient: disclosure.patient.clone(),
                        categories,
                        break_glass,
                    };
                    Some((kept, decision))
                }
            };
            Ok((incoming, body, consent))
        },
        |mut deps, config, admitted, (mut incoming, body, consent)| {
            let key = (msg.partner_id.as_str(), msg.request_id.as_str());
            if let Some((kept, Some(decision))) = &consent {
                let entry = consent::decision_entry(&env, &info.sender, kept, &incoming, decision);
                AUDIT.append(deps.storage, entry)?;
                // Refused by the patient's directives: nothing sent, the request stays
                // pending (the reply service may still answer with a sealed `declined`).
                if let Some(code) = &decision.refusal {
                    let step =
                        Step::for_request(AuditAction::ReplySubmitted, "submit_reply", &request_id);
                    return Ok(soft_reject(
                        deps.branch(),
                        &env,
                        &config.registry,
                        &admitted.peer,
                        &step,
                        code.clone(),
                    )?);
                }
            }
            if let Some((kept, _)) = &consent {
                DISCLOSURES.save(deps.storage, key, kept)?;
            }
            incoming.answered_by = Some(info.sender.clone());
            incoming.reply = Some(ReplyProgress {
                chunk_count: body.manifest.chunk_count(),
                chunks_sent: 0,
                chunks_acked: 0,
            });
            PENDING_INCOMING.remove(deps.storage, key);
            let mut entry = AuditEntry::new(env.block.time, AuditAction::ReplySubmitted)
                .agent(&info.sender)
                .clinician(&incoming.body.clinician_id)
                .role(Role::Reply)
                .purpose(incoming.body.purpose)
                .request(&msg.request_id)
                .partner(&msg.partner_id)
                .packet(&incoming.channel_id, incoming.packet_sequence);
            if let Some((kept, _)) = &consent {
                entry = entry.patient(&kept.patient);
            }
            AUDIT.append(deps.storage, entry)?;
            let template = ReplyPacket {
                body,
                signer_pubkey: admitted.peer.signing_key.clone(),
                signature: msg.signature.clone(),
                chunk_index: 0,
                chunk: Binary::default(),
            };
            REPLY_OUT.save(deps.storage, key, &template)?;
            send_reply_chunks(
                deps.storage,
                &env,
                admitted,
                "submit_reply",
                &mut incoming,
                &template,
                &msg.chunks,
            )
        },
    )
}

/// The channel a reply leaves on: the one its request came in on, still the partner's
/// current channel or one the admin retired while the request was in flight.
fn reply_channel_open(
    deps: &DepsMut,
    config: &Config,
    incoming: &IncomingRequest,
) -> Result<(), ErrorCode> {
    let partner = Registry::new(&config.registry, deps.querier)
        .partner(&incoming.partner_id)
        .map_err(|_| ErrorCode::Internal)?
        .ok_or(ErrorCode::UnknownPartner)?;
    if partner.status != PartnerStatus::Active || !partner.carries(&incoming.channel_id) {
        return Err(ErrorCode::PartnerUnavailable);
    }
    Ok(())
}

/// Sends `chunks` as the next packets of a reply and records the progress: `Answering` until
/// the last chunk is sent, then `Answered`.
fn send_reply_chunks(
    storage: &mut dyn Storage,
    env: &Env,
    admitted: &Admitted,
    action: &str,
    incoming: &mut IncomingRequest,
    template: &ReplyPacket,
    chunks: &[Binary],
) -> Result<Response, ContractError> {
    let mut progress = incoming.reply.clone().unwrap_or(ReplyProgress {
        chunk_count: template.body.manifest.chunk_count(),
        chunks_sent: 0,
        chunks_acked: 0,
    });
    let timeout = packet_timeout(env, admitted, incoming.body.expires_at);
    let mut response = Response::new()
        .add_attribute("action", action)
        .add_attribute("outcome", "accepted")
        .add_attribute("request_id", &template.body.request_id);
    for chunk in chunks {
        let packet = ExchangePacket::Reply(ReplyPacket {
            chunk_index: progress.chunks_sent,
            chunk: chunk.clone(),
            ..template.clone()
        });
        response = response.add_message(IbcMsg::SendPacket {
            channel_id: incoming.channel_id.clone(),
            data: to_json_binary(&packet)?,
            timeout: timeout.clone(),
        });
        progress.chunks_sent += 1;
    }
    incoming.status = if progress.chunks_sent == progress.chunk_count {
        IncomingStatus::Answered
    } else {
        IncomingStatus::Answering
    };
    let response = response
        .add_attribute("chunks_sent", progress.chunks_sent.to_string())
        .add_attribute("chunk_count", progress.chunk_count.to_string());
    incoming.reply = Some(progress);
    Incoming::update(storage, incoming)?;
    Ok(response)
}

/// The rest of a reply's chunks, by the peer that began it, in order, before the request
/// expires.
pub fn submit_reply_chunks(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: SubmitReplyChunksMsg,
) -> Result<Response, ContractError> {
    let request_id = msg.request_id.clone();
    pipeline(
        deps,
        &env,
        &info,
        Step::for_request(
            AuditAction::ReplySubmitted,
            "submit_reply_chunks",
            &request_id,
        ),
        |deps, config, admitted| {
            validate::id(&msg.request_id)?;
            validate::name(&msg.partner_id)?;
            if msg.chunks.is_empty() {
                return Err(ErrorCode::InvalidFormat);
            }
            require_role(admitted, Role::Reply)?;
            let key = (msg.partner_id.as_str(), msg.request_id.as_str());
            let incoming = Incoming::may_load(deps.storage, key)
                .map_err(|_| ErrorCode::Internal)?
                .ok_or(ErrorCode::UnknownRequest)?;
            if incoming.answered_by.as_ref() != Some(&info.sender) {
                return Err(ErrorCode::NotAuthorized);
            }
            let (IncomingStatus::Answering, Some(progress)) = (incoming.status, &incoming.reply)
            else {
                return Err(ErrorCode::AlreadyAnswered);
            };
            let template = REPLY_OUT
                .load(deps.storage, key)
                .map_err(|_| ErrorCode::Internal)?;
            checks::next_chunks(
                &template.body.manifest,
                progress.chunks_sent,
                msg.first_index,
                &msg.chunks,
            )?;
            checks::not_expired(&env, incoming.body.expires_at)?;
            reply_channel_open(deps, config, &incoming)?;
            // Consent again, at every chunk: a directive recorded or revoked since the reply
            // began applies to what has not left yet.
            let kept = DISCLOSURES
                .may_load(deps.storage, key)
                .map_err(|_| ErrorCode::Internal)?;
            let revoked = match kept {
                Some(kept) if !kept.categories.is_empty() => {
                    let mut decision = consent::decide(
                        deps.storage,
                        admitted.registry.policy.consent_default,
                        &kept.patient,
                        &kept.categories,
                        &incoming,
                        kept.break_glass,
                        env.block.time.seconds(),
                    )?;
                    decision.refusal.is_some().then(|| {
                        decision.refusal = Some(ErrorCode::ConsentDenied);
                        (kept, decision)
                    })
                }
                _ => None,
            };
            Ok((incoming, template, revoked))
        },
        |mut deps, config, admitted, (mut incoming, template, revoked)| {
            if let Some((kept, decision)) = revoked {
                return stop_reply(
                    deps.branch(),
                    &env,
                    &info,
                    config,
                    admitted,
                    incoming,
                    &kept,
                    &decision,
                );
            }
            send_reply_chunks(
                deps.storage,
                &env,
                admitted,
                "submit_reply_chunks",
                &mut incoming,
                &template,
                &msg.chunks,
            )
        },
    )
}

/// A reply whose release the patient's directives no longer permit: no more chunks leave,
/// the incoming request fails with `ConsentDenied` (the requesting chain never completes
/// the reply; its sweep ends it), audited, and the transaction is soft-rejected (no strike:
/// the reply service did nothing wrong).
#[allow(clippy::too_many_arguments)]
fn stop_reply(
    deps: DepsMut,
    env: &Env,
    info: &MessageInfo,
    config: &Config,
    admitted: &Admitted,
    mut incoming: IncomingRequest,
    kept: &KeptDisclosure,
    decision: &Decision,
) -> Result<Response, ContractError> {
    let code = ErrorCode::ConsentDenied;
    let key = (
        incoming.partner_id.clone(),
        incoming.body.request_id.clone(),
    );
    incoming.status = IncomingStatus::Failed;
    incoming.reason = Some(code.clone());
    Incoming::update(deps.storage, &incoming)?;
    REPLY_OUT.remove(deps.storage, (&key.0, &key.1));
    AUDIT.append(
        deps.storage,
        consent::decision_entry(env, &info.sender, kept, &incoming, decision),
    )?;
    AUDIT.append(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::ReplyFailed)
            .rejected(code.clone())
            .agent(&info.sender)
            .request(&key.1)
            .partner(&key.0)
            .patient(&kept.patient),
    )?;
    let step = Step::for_request(AuditAction::ReplySubmitted, "submit_reply_chunks", &key.1);
    Ok(soft_reject(
        deps,
        env,
        &config.registry,
        &admitted.peer,
        &step,
        code,
    )?)
}

// -------------------------------------------------------------- RetrieveReply

/// Only the peer that made the request gets its reply; any other registered peer is
/// refused, audited and struck (the paper's third attack).
pub fn retrieve_reply(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    request_id: String,
) -> Result<Response, ContractError> {
    pipeline(
        deps,
        &env,
        &info,
        Step::for_request(AuditAction::Retrieval, "retrieve_reply", &request_id),
        |deps, _config, _admitted| {
            validate::id(&request_id)?;
            let request = OUTGOING
                .may_load(deps.storage, &request_id)
                .map_err(|_| ErrorCode::Internal)?
                .ok_or(ErrorCode::UnknownRequest)?;
            if request.requester != info.sender {
                return Err(ErrorCode::NotAuthorized);
            }
            Ok(request)
        },
        |deps, _config, _admitted, mut request| {
            // Released only whole: never a partial history.
            let mut reply = match (request.status, REPLIES.may_load(deps.storage, &request_id)?) {
                (RequestStatus::Answered, Some(reply)) => reply,
                (status, _) => {
                    let progress = request.reply.as_ref().map_or(String::new(), |r| {
                        format!(", {} of {} chunks in", r.chunks_received, r.chunk_count)
                    });
                    return Err(ContractError::ReplyNotReady {
                        request_id: request_id.clone(),
                        status: format!("{status:?}{progress}"),
                    });
                }
            };
            reply.chunk_packets = chunk_packets(deps.storage, &request_id)?;
            request.retrievals = request.retrievals.saturating_add(1);
            OUTGOING.save(deps.storage, &request_id, &request)?;
            AUDIT.append(
                deps.storage,
                AuditEntry::new(env.block.time, AuditAction::Retrieval)
                    .agent(&info.sender)
                    .clinician(&request.clinician_id)
                    .role(Role::Request)
                    .purpose(request.purpose)
                    .request(&request_id)
                    .partner(&request.partner_id)
                    .packet(&reply.channel_id, reply.packet_sequence),
            )?;
            Ok(Response::new()
                .add_attribute("action", "retrieve_reply")
                .add_attribute("outcome", "accepted")
                .add_attribute("request_id", &request_id)
                .set_data(to_json_binary(&reply)?))
        },
    )
}

/// The packet each chunk of a reply came in, by index; empty when an earlier release kept
/// the chunks themselves (`REPLY_CHUNKS`).
pub(crate) fn chunk_packets(storage: &dyn Storage, request_id: &str) -> StdResult<Vec<u64>> {
    let sequences: Vec<Option<u64>> = REPLY_CHUNKS_IN
        .prefix(request_id)
        .range(storage, None, None, Order::Ascending)
        .map(|entry| entry.map(|(_, sequence)| sequence))
        .collect::<StdResult<_>>()?;
    Ok(sequences
        .into_iter()
        .collect::<Option<_>>()
        .unwrap_or_default())
}

/// Marks an incoming request pending for the local reply service.
pub fn save_incoming(storage: &mut dyn Storage, incoming: &IncomingRequest) -> StdResult<()> {
    let key = (
        incoming.partner_id.as_str(),
        incoming.body.request_id.as_str(),
    );
    Incoming::insert(storage, incoming)?;
    INCOMING_BY_EXPIRY.save(storage, (incoming.body.expires_at, key.0, key.1), &())?;
    PENDING_INCOMING.save(storage, key, &())
}
