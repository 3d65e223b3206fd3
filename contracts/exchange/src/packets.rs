//! Packets from partners (Algorithms 2 and 3) and the fate of packets we sent.
//!
//! Receive never fails: every check runs before the first state write, and a refusal is an
//! audit entry plus a coded error ack (the write of the audit entry is deliberate). Ack and
//! timeout handlers never fail either: an error there would fail the relayer's transaction
//! forever, so any internal fault is reported as an attribute and the packet completes.

use crate::checks;
use crate::execute::save_incoming;
use crate::quota;
use crate::registry_client::Registry;
use crate::state::{
    drop_reply, Config, Incoming, AUDIT, CONFIG, OUTGOING, PENDING_INCOMING, REPLIES,
    REPLY_CHUNKS_IN, REPLY_OUT,
};
use cosmwasm_std::{
    from_json, to_json_vec, Binary, Deps, DepsMut, Env, IbcBasicResponse, IbcPacket,
    IbcPacketAckMsg, IbcPacketReceiveMsg, IbcPacketTimeoutMsg, IbcReceiveResponse, StdAck,
    StdResult,
};
use ehr_protocol::audit::{AuditAction, AuditEntry};
use ehr_protocol::consent::BreakGlass;
use ehr_protocol::exchange::{
    BreakGlassGrant, IncomingRequest, IncomingStatus, OutgoingRequest, PurposeOfUse, ReplyProgress,
    ReplySummary, RequestStatus, RetrievedReply,
};
use ehr_protocol::limits::PACKET_VERSION;
use ehr_protocol::packet::{ExchangeAck, ExchangePacket, ReplyPacket, RequestPacket};
use ehr_protocol::registry::{Partner, PartnerStatus, PeerStatus, Role};
use ehr_protocol::signing::{key_hash, reply_sign_bytes, request_sign_bytes, sha256_hex};
use ehr_protocol::{validate, ErrorCode};

fn success_ack(ack: &ExchangeAck) -> StdAck {
    // Serialising a fieldless enum cannot fail; fall back to an empty payload regardless.
    StdAck::success(to_json_vec(ack).unwrap_or_default())
}

/// The partner a packet's destination channel (our end) belongs to. New requests only on
/// its current channel; `in_flight` also accepts a channel the admin retired, so replies to
/// requests that left on it still complete.
fn channel_partner(
    deps: Deps,
    config: &Config,
    packet: &IbcPacket,
    in_flight: bool,
) -> Result<Partner, ErrorCode> {
    let channel = packet.dest.channel_id.as_str();
    let partner = Registry::new(&config.registry, deps.querier)
        .partner_by_channel(channel)
        .map_err(|_| ErrorCode::Internal)?
        .ok_or(ErrorCode::WrongChannel)?;
    let current = partner.channel_id.as_deref() == Some(channel);
    if !(current || in_flight && partner.carries(channel)) {
        return Err(ErrorCode::WrongChannel);
    }
    if partner.status != PartnerStatus::Active {
        return Err(ErrorCode::PartnerUnavailable);
    }
    Ok(partner)
}

pub fn receive(deps: DepsMut, env: Env, msg: IbcPacketReceiveMsg) -> StdResult<IbcReceiveResponse> {
    let packet = msg.packet;
    let config = CONFIG.load(deps.storage)?;
    let code = match from_json::<ExchangePacket>(&packet.data) {
        Ok(ExchangePacket::Request(request)) => {
            return receive_request(deps, env, &config, &packet, request)
        }
        Ok(ExchangePacket::Reply(reply)) => {
            return receive_reply(deps, env, &config, &packet, reply)
        }
        // A packet kind from a newer protocol revision.
        Ok(_) => ErrorCode::UnsupportedVersion,
        Err(_) => ErrorCode::InvalidFormat,
    };
    AUDIT.append(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::RequestReceived)
            .rejected(code.clone())
            .packet(&packet.dest.channel_id, packet.sequence),
    )?;
    Ok(refusal_response(code))
}

fn refusal_response(code: ErrorCode) -> IbcReceiveResponse {
    IbcReceiveResponse::new(StdAck::error(code.to_ack_error()))
        .add_attribute("action", "ibc_packet_receive")
        .add_attribute("outcome", "rejected")
        .add_attribute("reason", code.to_string())
}

// ------------------------------------------------------- Algorithm 2 (destination)

fn verify_request(
    deps: Deps,
    env: &Env,
    config: &Config,
    packet: &IbcPacket,
    request: &RequestPacket,
) -> Result<(Partner, quota::Windows, Option<BreakGlassGrant>), ErrorCode> {
    let partner = channel_partner(deps, config, packet, false)?;
    let body = &request.body;
    if body.version != PACKET_VERSION {
        return Err(ErrorCode::UnsupportedVersion);
    }
    validate::request_id_of(&body.request_id, &body.requester)?;
    validate::name(&body.source_network)?;
    validate::name(&body.clinician_id)?;
    validate::sealed_patient(&body.sealed_patient)?;
    validate::x25519_key(&body.reply_encryption_key)?;
    validate::secp256k1_pubkey(&request.signer_pubkey)?;
    validate::secp256k1_signature(&request.signature)?;
    if body.requester.is_empty() || body.requester.len() > 128 {
        return Err(ErrorCode::InvalidFormat);
    }
    // Misrouted: not for us, or not from the partner this channel belongs to.
    if body.destination_network != config.network_id || body.source_network != partner.partner_id {
        return Err(ErrorCode::WrongChannel);
    }
    // Role and purpose of use, checked on this chain too: we answer a partner only for the
    // purposes the admin accepts from it.
    if body.requester_role != Role::Request || !partner.accepted_purposes.contains(&body.purpose) {
        return Err(ErrorCode::NotAuthorized);
    }
    // The lifetime is bounded by our own policy, not the partner's: a request issued in the
    // future, valid for longer than we allow, or expiring past what a timestamp holds is
    // refused here and never kept.
    let policy = Registry::new(&config.registry, deps.querier)
        .config()
        .map_err(|_| ErrorCode::Internal)?
        .policy;
    // A break-glass claim: with its coded reason, for emergency treatment, to a chain whose
    // policy accepts break-glass at all. Granted a time box from receipt.
    let grant = match &body.break_glass {
        None => None,
        Some(BreakGlass { reason: None }) => return Err(ErrorCode::ReasonRequired),
        Some(BreakGlass {
            reason: Some(reason),
        }) => {
            if body.purpose != PurposeOfUse::EmergencyTreatment
                || policy.break_glass_window_secs == 0
            {
                return Err(ErrorCode::BreakGlassNotAllowed);
            }
            Some(BreakGlassGrant {
                reason: *reason,
                window_ends: env
                    .block
                    .time
                    .seconds()
                    .saturating_add(policy.break_glass_window_secs),
            })
        }
    };
    checks::arriving_freshness(env, &policy, body.issued_at, body.expires_at)?;
    checks::signature(
        deps.api,
        &request_sign_bytes(body),
        &request.signature,
        &request.signer_pubkey,
    )?;
    if Incoming::has(deps.storage, (&partner.partner_id, &body.request_id)) {
        return Err(ErrorCode::Replay);
    }
    let windows = quota::check(
        deps.storage,
        &policy,
        &partner.partner_id,
        &body.clinician_id,
        env.block.time.seconds(),
    )?;
    Ok((partner, windows, grant))
}

fn receive_request(
    deps: DepsMut,
    env: Env,
    config: &Config,
    packet: &IbcPacket,
    request: RequestPacket,
) -> StdResult<IbcReceiveResponse> {
    let verified = verify_request(deps.as_ref(), &env, config, packet, &request);
    let mut entry = AuditEntry::new(env.block.time, AuditAction::RequestReceived)
        .role(request.body.requester_role)
        .purpose(request.body.purpose)
        .packet(&packet.dest.channel_id, packet.sequence);
    if validate::id(&request.body.request_id).is_ok() {
        entry = entry.request(&request.body.request_id);
    }
    if validate::name(&request.body.clinician_id).is_ok() {
        entry = entry.clinician(&request.body.clinician_id);
    }
    let (partner, windows, grant) = match verified {
        Ok(verified) => verified,
        Err(code) => {
            AUDIT.append(deps.storage, entry.rejected(code.clone()))?;
            return Ok(refusal_response(code));
        }
    };
    let entry = entry.partner(&partner.partner_id);
    AUDIT.append(deps.storage, entry.clone())?;
    if let Some(grant) = &grant {
        let mut bg = entry.subject(grant.reason.as_str());
        bg.action = AuditAction::BreakGlass;
        AUDIT.append(deps.storage, bg)?;
    }
    quota::count(
        deps.storage,
        windows,
        &partner.partner_id,
        &request.body.clinician_id,
    )?;
    let request_id = request.body.request_id.clone();
    // The sealed details stay in the packet (in the block): only their hash is kept.
    let mut body = request.body;
    let sealed_patient_sha256 = Some(sha256_hex(&body.sealed_patient));
    body.sealed_patient = Binary::default();
    save_incoming(
        deps.storage,
        &IncomingRequest {
            partner_id: partner.partner_id.clone(),
            channel_id: packet.dest.channel_id.clone(),
            packet_sequence: packet.sequence,
            received_at: env.block.time.seconds(),
            body,
            sealed_patient_sha256,
            signer_pubkey: request.signer_pubkey,
            signature: request.signature,
            status: IncomingStatus::Pending,
            answered_by: None,
            reason: None,
            reply: None,
            break_glass: grant,
        },
    )?;
    Ok(
        IbcReceiveResponse::new(success_ack(&ExchangeAck::RequestAccepted {}))
            .add_attribute("action", "ibc_packet_receive")
            .add_attribute("outcome", "accepted")
            .add_attribute("kind", "request")
            .add_attribute("request_id", request_id)
            .add_attribute("partner_id", partner.partner_id),
    )
}

// ------------------------------------------------------------ Algorithm 3 (source)

/// A refused reply: its code, and the terminal state it moves a still-pending request to
/// (`None` leaves the request as it is, e.g. for a forgery).
type ReplyRefusal = (ErrorCode, Option<RequestStatus>);

fn verify_reply(
    deps: Deps,
    env: &Env,
    config: &Config,
    packet: &IbcPacket,
    reply: &ReplyPacket,
) -> Result<OutgoingRequest, ReplyRefusal> {
    let plain = |code| (code, None);
    let partner = channel_partner(deps, config, packet, true).map_err(plain)?;
    let body = &reply.body;
    if body.version != PACKET_VERSION {
        return Err(plain(ErrorCode::UnsupportedVersion));
    }
    validate::id(&body.request_id).map_err(plain)?;
    validate::secp256k1_pubkey(&reply.signer_pubkey).map_err(plain)?;
    validate::secp256k1_signature(&reply.signature).map_err(plain)?;
    if body.responder.is_empty() || body.responder.len() > 128 {
        return Err(plain(ErrorCode::InvalidFormat));
    }
    let registry = Registry::new(&config.registry, deps.querier);
    let policy = registry
        .config()
        .map_err(|_| plain(ErrorCode::Internal))?
        .policy;
    // A history larger than our policy takes ends the request (`TooLarge`, so the requester
    // learns why); a malformed manifest is refused and changes nothing.
    let manifest = body
        .manifest
        .check(policy.max_chunk_bytes, policy.max_history_chunks);
    if let Err(ErrorCode::InvalidFormat) = manifest {
        return Err(plain(ErrorCode::InvalidFormat));
    }

    let request = OUTGOING
        .may_load(deps.storage, &body.request_id)
        .map_err(|_| plain(ErrorCode::Internal))?
        .ok_or(plain(ErrorCode::UnknownRequest))?;
    // The reply must come back on the channel the request left on, from the network asked.
    if request.channel_id != packet.dest.channel_id
        || request.partner_id != partner.partner_id
        || body.responder_network != request.partner_id
        || body.requester_network != config.network_id
    {
        return Err(plain(ErrorCode::WrongChannel));
    }
    match request.status {
        RequestStatus::Pending | RequestStatus::Receiving => {}
        RequestStatus::Answered | RequestStatus::Rejected => {
            return Err(plain(ErrorCode::AlreadyAnswered))
        }
        RequestStatus::TimedOut | RequestStatus::Expired => return Err(plain(ErrorCode::Expired)),
    }
    checks::signature(
        deps.api,
        &reply_sign_bytes(body),
        &reply.signature,
        &reply.signer_pubkey,
    )
    .map_err(plain)?;
    let rejected = |code| (code, Some(RequestStatus::Rejected));
    manifest.map_err(rejected)?;
    // Every chunk of one reply carries the same signed body: a chunk of another reply (even
    // one the responder signed) cannot join this one.
    if request.status == RequestStatus::Receiving {
        let first = REPLIES
            .may_load(deps.storage, &body.request_id)
            .map_err(|_| plain(ErrorCode::Internal))?
            .ok_or(plain(ErrorCode::Internal))?;
        let same = first.signature == reply.signature
            && first.responder_pubkey == reply.signer_pubkey
            && first.responder == body.responder
            && first.recipient_key_hash == body.recipient_key_hash
            && first.manifest == body.manifest
            && first.issued_at == body.issued_at;
        if !same {
            return Err(rejected(ErrorCode::ChunkMismatch));
        }
    }
    body.manifest
        .check_chunk(reply.chunk_index, &reply.chunk)
        .map_err(rejected)?;
    if REPLY_CHUNKS_IN.has(deps.storage, (&body.request_id, reply.chunk_index)) {
        return Err(plain(ErrorCode::ChunkDuplicate));
    }
    checks::not_expired(env, request.expires_at)
        .map_err(|code| (code, Some(RequestStatus::Expired)))?;
    requester_still_entitled(&registry, env, &request, &body.recipient_key_hash)
        .map_err(rejected)?;
    Ok(request)
}

/// Revocation takes effect on requests in flight: the requesting peer and the clinician
/// must still be active and valid, and the key the responder signed it encrypted to must be
/// the requester's current registered key (the one the request was bound to).
fn requester_still_entitled(
    registry: &Registry,
    env: &Env,
    request: &OutgoingRequest,
    recipient_key_hash: &str,
) -> Result<(), ErrorCode> {
    let peer = registry
        .peer(&request.requester)
        .map_err(|_| ErrorCode::Internal)?
        .ok_or(ErrorCode::RequesterRevoked)?;
    if peer.status != PeerStatus::Active || !peer.is_valid_at(env.block.time) {
        return Err(ErrorCode::RequesterRevoked);
    }
    let clinician = registry
        .clinician(&request.clinician_id)
        .map_err(|_| ErrorCode::Internal)?
        .ok_or(ErrorCode::RequesterRevoked)?;
    if clinician
        .may_request(request.purpose, env.block.time)
        .is_err()
    {
        return Err(ErrorCode::RequesterRevoked);
    }
    let current = key_hash(&peer.encryption_key);
    let bound = request
        .reply_key_hash
        .as_deref()
        .unwrap_or(current.as_str());
    if recipient_key_hash != current || bound != current {
        return Err(ErrorCode::RecipientKeyMismatch);
    }
    Ok(())
}

fn receive_reply(
    deps: DepsMut,
    env: Env,
    config: &Config,
    packet: &IbcPacket,
    reply: ReplyPacket,
) -> StdResult<IbcReceiveResponse> {
    let verdict = verify_reply(deps.as_ref(), &env, config, packet, &reply);
    let request_id = reply.body.request_id.clone();
    let mut entry = AuditEntry::new(env.block.time, AuditAction::ReplyReceived)
        .role(Role::Reply)
        .packet(&packet.dest.channel_id, packet.sequence);
    if validate::id(&request_id).is_ok() {
        entry = entry.request(&request_id);
    }
    let mut request = match verdict {
        Ok(request) => request,
        Err(refusal) => return refuse_reply(deps, entry, &request_id, refusal),
    };

    let body = reply.body;
    let chunk_count = body.manifest.chunk_count();
    let mut summary = request.reply.take().unwrap_or(ReplySummary {
        responder: body.responder.clone(),
        responder_network: body.responder_network.clone(),
        history_hash: body.manifest.history_hash.clone(),
        chunk_count,
        chunks_received: 0,
        received_at: env.block.time.seconds(),
        channel_id: packet.dest.channel_id.clone(),
        packet_sequence: packet.sequence,
    });
    if summary.chunks_received == 0 {
        REPLIES.save(
            deps.storage,
            &request_id,
            &RetrievedReply {
                request_id: request_id.clone(),
                responder: body.responder,
                responder_network: body.responder_network,
                responder_pubkey: reply.signer_pubkey,
                recipient_key_hash: body.recipient_key_hash,
                manifest: body.manifest,
                issued_at: body.issued_at,
                signature: reply.signature,
                channel_id: packet.dest.channel_id.clone(),
                packet_sequence: packet.sequence,
                chunk_packets: Vec::new(),
            },
        )?;
    }
    // The chunk was checked against the signed manifest; it stays in the packet.
    REPLY_CHUNKS_IN.save(
        deps.storage,
        (&request_id, reply.chunk_index),
        &Some(packet.sequence),
    )?;
    summary.chunks_received += 1;
    let complete = summary.chunks_received == chunk_count;
    // Whatever the custodian answered is sealed: the chain only knows that it answered,
    // and that every chunk is in.
    request.status = if complete {
        RequestStatus::Answered
    } else {
        RequestStatus::Receiving
    };
    let received = summary.chunks_received;
    request.reply = Some(summary);
    OUTGOING.save(deps.storage, &request_id, &request)?;
    if complete {
        AUDIT.append(
            deps.storage,
            entry
                .purpose(request.purpose)
                .partner(&request.partner_id)
                .clinician(&request.clinician_id),
        )?;
    }
    Ok(
        IbcReceiveResponse::new(success_ack(&ExchangeAck::ReplyAccepted {}))
            .add_attribute("action", "ibc_packet_receive")
            .add_attribute("outcome", "accepted")
            .add_attribute("kind", "reply")
            .add_attribute("request_id", request_id)
            .add_attribute("chunks_received", received.to_string())
            .add_attribute("chunk_count", chunk_count.to_string())
            .add_attribute("complete", complete.to_string()),
    )
}

/// A refused reply: its audit entry, the request's terminal state when the refusal ends it
/// (`None` leaves it as it is), and the coded error ack.
fn refuse_reply(
    deps: DepsMut,
    mut entry: AuditEntry,
    request_id: &str,
    (code, terminal): ReplyRefusal,
) -> StdResult<IbcReceiveResponse> {
    if let Some(status) = terminal {
        if let Some(mut request) = OUTGOING.may_load(deps.storage, request_id)? {
            if request.status == RequestStatus::Receiving {
                drop_reply(deps.storage, request_id);
            }
            request.status = status;
            request.reason = Some(code.clone());
            OUTGOING.save(deps.storage, request_id, &request)?;
            entry = entry.agent(&request.requester).partner(&request.partner_id);
        }
    }
    AUDIT.append(deps.storage, entry.rejected(code.clone()))?;
    let response = refusal_response(code).add_attribute("kind", "reply");
    // Named when it is an id, as on acceptance: its requester follows its events.
    Ok(if validate::id(request_id).is_ok() {
        response.add_attribute("request_id", request_id)
    } else {
        response
    })
}

// ------------------------------------------------------ acks and timeouts (ours)

/// How a packet we sent ended.
enum Fate {
    Delivered,
    Refused(ErrorCode),
    TimedOut,
}

pub fn ack(deps: DepsMut, env: Env, msg: IbcPacketAckMsg) -> IbcBasicResponse {
    let fate = match from_json::<StdAck>(&msg.acknowledgement.data) {
        Ok(StdAck::Success(_)) => Fate::Delivered,
        Ok(StdAck::Error(text)) => Fate::Refused(ErrorCode::from_ack_error(&text)),
        Err(_) => Fate::Refused(ErrorCode::Internal),
    };
    settle(deps, env, &msg.original_packet, fate, "ibc_packet_ack")
}

pub fn timeout(deps: DepsMut, env: Env, msg: IbcPacketTimeoutMsg) -> IbcBasicResponse {
    settle(deps, env, &msg.packet, Fate::TimedOut, "ibc_packet_timeout")
}

/// Applies a packet's fate exactly once; internal faults become an attribute, not an error.
/// The event names the request (when the packet is one of ours), so that the requester's
/// client can follow its own request's events only (`ehrx_chain::Watch`).
fn settle(
    deps: DepsMut,
    env: Env,
    packet: &IbcPacket,
    fate: Fate,
    handler: &str,
) -> IbcBasicResponse {
    let mut response = IbcBasicResponse::new().add_attribute("action", handler);
    let sent = from_json::<ExchangePacket>(&packet.data).ok();
    if let Some(id) = sent
        .as_ref()
        .and_then(request_id_of)
        .filter(|id| validate::id(id).is_ok())
    {
        response = response.add_attribute("request_id", id);
    }
    match try_settle(deps, &env, packet, sent, &fate) {
        Ok(outcome) => response.add_attribute("outcome", outcome),
        Err(_) => response.add_attribute("outcome", "internal_error"),
    }
}

fn request_id_of(packet: &ExchangePacket) -> Option<&str> {
    match packet {
        ExchangePacket::Request(request) => Some(&request.body.request_id),
        ExchangePacket::Reply(reply) => Some(&reply.body.request_id),
        _ => None,
    }
}

fn try_settle(
    deps: DepsMut,
    env: &Env,
    packet: &IbcPacket,
    sent: Option<ExchangePacket>,
    fate: &Fate,
) -> StdResult<&'static str> {
    let Some(sent) = sent else {
        return Ok("unknown_packet");
    };
    match sent {
        ExchangePacket::Request(request) => settle_request(deps, env, packet, &request, fate),
        ExchangePacket::Reply(reply) => settle_reply(deps, env, packet, &reply, fate),
        _ => Ok("unknown_packet"),
    }
}

fn settle_request(
    deps: DepsMut,
    env: &Env,
    packet: &IbcPacket,
    request: &RequestPacket,
    fate: &Fate,
) -> StdResult<&'static str> {
    let id = &request.body.request_id;
    let Some(mut outgoing) = OUTGOING.may_load(deps.storage, id)? else {
        return Ok("unknown_request");
    };
    outgoing.packet_sequence = Some(packet.sequence);
    let (requester, partner_id) = (outgoing.requester.clone(), outgoing.partner_id.clone());
    let entry = |action| {
        AuditEntry::new(env.block.time, action)
            .agent(&requester)
            .request(id)
            .partner(&partner_id)
            .packet(&packet.src.channel_id, packet.sequence)
    };
    let (audit, outcome) = match (fate, outgoing.status) {
        (Fate::Delivered, _) => (entry(AuditAction::RequestDelivered), "delivered"),
        (Fate::Refused(code), RequestStatus::Pending) => {
            outgoing.status = RequestStatus::Rejected;
            outgoing.reason = Some(code.clone());
            (
                entry(AuditAction::RequestFailed).rejected(code.clone()),
                "rejected",
            )
        }
        (Fate::TimedOut, RequestStatus::Pending) => {
            outgoing.status = RequestStatus::TimedOut;
            outgoing.reason = Some(ErrorCode::Expired);
            (
                entry(AuditAction::RequestTimedOut).rejected(ErrorCode::Expired),
                "timed_out",
            )
        }
        // Already final: record the late news, change nothing.
        (Fate::Refused(code), _) => (
            entry(AuditAction::RequestFailed).rejected(code.clone()),
            "already_final",
        ),
        (Fate::TimedOut, _) => (
            entry(AuditAction::RequestTimedOut).rejected(ErrorCode::Expired),
            "already_final",
        ),
    };
    OUTGOING.save(deps.storage, id, &outgoing)?;
    AUDIT.append(deps.storage, audit)?;
    Ok(outcome)
}

fn settle_reply(
    deps: DepsMut,
    env: &Env,
    packet: &IbcPacket,
    reply: &ReplyPacket,
    fate: &Fate,
) -> StdResult<&'static str> {
    // Never trust a field as a storage key before checking it (an oversized key part
    // panics in cosmwasm-std): anything malformed cannot be one of our requests.
    if validate::name(&reply.body.requester_network).is_err()
        || validate::id(&reply.body.request_id).is_err()
    {
        return Ok("unknown_request");
    }
    let key = (
        reply.body.requester_network.as_str(),
        reply.body.request_id.as_str(),
    );
    // The ack of each chunk reads and writes the request's progress only (state.rs).
    let Some(mut progress) = Incoming::may_load_progress(deps.storage, key)? else {
        return Ok("unknown_request");
    };
    let partner_id = key.0;
    let entry = |action| {
        AuditEntry::new(env.block.time, action)
            .request(&reply.body.request_id)
            .partner(partner_id)
            .packet(&packet.src.channel_id, packet.sequence)
    };
    // A chunk the requesting chain already holds arrived: it counts as delivered.
    let fate = match fate {
        Fate::Refused(ErrorCode::ChunkDuplicate) => &Fate::Delivered,
        other => other,
    };
    let open = matches!(
        progress.status,
        IncomingStatus::Answering | IncomingStatus::Answered
    );
    // One audit entry per transition, not per chunk: a reply of many chunks leaves one
    // `delivered`, or the first refusal or timeout.
    let (audit, outcome) = match fate {
        Fate::Delivered => {
            let chunks = progress.reply.get_or_insert(ReplyProgress {
                chunk_count: reply.body.manifest.chunk_count(),
                chunks_sent: reply.body.manifest.chunk_count(),
                chunks_acked: 0,
            });
            chunks.chunks_acked = chunks.chunks_acked.saturating_add(1);
            let all_acked = chunks.chunks_acked >= chunks.chunk_count;
            if progress.status == IncomingStatus::Answered && all_acked {
                progress.status = IncomingStatus::Delivered;
                (Some(entry(AuditAction::ReplyDelivered)), "delivered")
            } else {
                (None, "chunk_delivered")
            }
        }
        Fate::Refused(code) if open => {
            progress.status = IncomingStatus::Failed;
            progress.reason = Some(code.clone());
            (
                Some(entry(AuditAction::ReplyFailed).rejected(code.clone())),
                "rejected",
            )
        }
        Fate::TimedOut if open => {
            progress.status = IncomingStatus::TimedOut;
            progress.reason = Some(ErrorCode::Expired);
            (
                Some(entry(AuditAction::ReplyTimedOut).rejected(ErrorCode::Expired)),
                "timed_out",
            )
        }
        Fate::Refused(_) | Fate::TimedOut => (None, "already_final"),
    };
    if progress.status != IncomingStatus::Answering {
        REPLY_OUT.remove(deps.storage, key);
    }
    Incoming::save_progress(deps.storage, key, &progress)?;
    PENDING_INCOMING.remove(deps.storage, key);
    if let Some(audit) = audit {
        AUDIT.append(deps.storage, audit)?;
    }
    Ok(outcome)
}
