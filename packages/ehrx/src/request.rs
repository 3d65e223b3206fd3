//! `ehrx request`: ask a partner network for a patient's history, wait for the answer,
//! retrieve it, check it and decrypt it.
//!
//! The patient's details travel sealed to the partner's custodian key (its registered
//! `encryption_key` in our registry), padded to one fixed size, fresh for each request: no
//! patient-derived value that could be compared or linked ever goes on chain. The answer
//! comes back as one sealed kind; whether the partner found records, none or declined is
//! only inside.

use crate::chain::{self, ChainError, Watch};
use crate::clinician::{self, ClinicianKey};
use crate::crypto::{self, Context as CryptoContext, X25519Public, X25519Secret};
use crate::error::RequestEnd;
use crate::fhir;
use crate::history;
use crate::peer::{random_id, Peer};
use crate::sealed_patient::{check_reason, SealedDetails};
use crate::sign::{self, RequestFields};
use crate::time::now_unix;
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use ehr_protocol::consent::{BreakGlass, EmergencyReason};
use ehr_protocol::exchange::{
    ExecuteMsg, OutgoingRequest, PurposeOfUse, QueryMsg, RequestStatus, RetrievedReply,
};
use ehr_protocol::limits::{PACKET_VERSION, SEALED_PATIENT_LEN};
use ehr_protocol::packet::{unframe, ExchangePacket, ReplyBody, SealedOutcome};
use ehr_protocol::padding;
use ehr_protocol::registry::{Partner, QueryMsg as RegistryQuery};
use ehr_protocol::signing::{self, reply_sign_bytes};
use ehr_protocol::validate;
use ehrx_matching::Attributes;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// What the clinician asks for.
pub struct RequestInput<'a> {
    pub partner_id: &'a str,
    /// The clinician who asks: their registered key signs the request.
    pub clinician: &'a ClinicianKey,
    pub purpose: PurposeOfUse,
    /// The patient's details as the clinician knows them (sealed to the custodian, who
    /// matches them against its own patients).
    pub patient: &'a Attributes,
    /// Lifetime of the request in seconds.
    pub ttl_secs: u64,
    /// A break-glass request: the emergency, as the clinician states it.
    pub emergency: Option<Emergency>,
}

/// The clinician's statement of an emergency: the coded reason (signed, audited on both
/// chains) and the free text (sealed to the custodian's privacy office).
#[derive(Clone)]
pub struct Emergency {
    pub reason: EmergencyReason,
    pub reason_text: String,
}

#[derive(Debug, Clone)]
pub struct Submitted {
    pub request_id: String,
    pub expires_at: u64,
    pub txhash: String,
}

/// Seals the patient's details to the partner's custodian key, draws a random request id,
/// signs the request with the clinician's key and submits it.
pub fn submit(peer: &Peer, input: &RequestInput) -> Result<Submitted> {
    if validate::name(input.partner_id).is_err() {
        bail!("the partner id must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-' (InvalidFormat)");
    }
    let issued_at = now_unix();
    if let Some(emergency) = &input.emergency {
        if input.purpose != PurposeOfUse::EmergencyTreatment {
            bail!(
                "a break-glass request is for emergency treatment: pass --purpose \
                 emergency-treatment (BreakGlassNotAllowed)"
            );
        }
        check_reason(&emergency.reason_text).map_err(|e| anyhow!("{e} (ReasonRequired)"))?;
    }
    // Checked here first: the contract refuses the same, mostly with a strike on this peer.
    clinician::check_registered(&peer.exchange, input.clinician, input.purpose, issued_at)?;
    // In this peer's scope: no other requester can take or burn it.
    let request_id = validate::scoped_request_id(&peer.address, &random_id());
    let expires_at = issued_at + input.ttl_secs;
    let custodian = custodian_key(peer, input.partner_id)?;
    let sealed_patient = seal_patient(
        &custodian,
        &SealedDetails::new(
            input.patient.clone(),
            input.emergency.as_ref().map(|e| e.reason_text.clone()),
        ),
        &request_id,
        peer.network(),
        input.partner_id,
    )?;
    let fields = RequestFields {
        request_id: request_id.clone(),
        partner_id: input.partner_id.to_string(),
        clinician_id: input.clinician.id().to_string(),
        purpose: input.purpose,
        sealed_patient,
        reply_encryption_key: peer.keys.encryption_public().as_bytes().to_vec(),
        issued_at,
        expires_at,
        break_glass: input.emergency.as_ref().map(|e| BreakGlass {
            reason: Some(e.reason),
        }),
    };
    let body = sign::request_body(peer.network(), &peer.address, &fields);
    let msg = sign::submit_request(input.clinician.signing_key(), &body);
    let tx = chain::execute(
        peer.chain(),
        peer.contract(),
        &ExecuteMsg::SubmitRequest(msg),
    )
    .with_context(|| format!("submitting request {request_id}"))?;
    Ok(Submitted {
        request_id,
        expires_at,
        txhash: tx.txhash,
    })
}

/// The partner's custodian key: its `encryption_key` in our registry's partner entry.
pub fn custodian_key(peer: &Peer, partner_id: &str) -> Result<X25519Public> {
    let partner: Option<Partner> = chain::query(
        peer.chain(),
        &peer.exchange.registry,
        &RegistryQuery::Partner {
            partner_id: partner_id.to_string(),
        },
    )
    .context("reading the partner entry from the registry")?;
    let partner = partner.ok_or_else(|| {
        anyhow!(
            "{partner_id} is not in {}'s partner lookup table (UnknownPartner); ask the registry \
             admin to add it with UpsertPartner",
            peer.network()
        )
    })?;
    let key = partner.encryption_key.ok_or_else(|| {
        anyhow!(
            "partner {partner_id} has no custodian key in {}'s registry, so the patient's \
             details cannot be sealed to it; nothing was sent. Fix: {partner_id} hands over its \
             records key (the `records_key` of its ehrx.toml, base64 X25519) and the registry \
             admin of {} sets it as the partner's `encryption_key` with UpsertPartner",
            peer.network(),
            peer.network()
        )
    })?;
    X25519Public::from_bytes(&key).with_context(|| {
        format!("the encryption_key registered for partner {partner_id} is not an X25519 key")
    })
}

/// The patient's details (`SealedDetails` JSON), padded and sealed to `custodian`, bound to
/// the request id and both networks: always `SEALED_PATIENT_LEN` bytes.
pub fn seal_patient(
    custodian: &X25519Public,
    details: &SealedDetails,
    request_id: &str,
    source_network: &str,
    destination_network: &str,
) -> Result<Vec<u8>> {
    let json = Zeroizing::new(serde_json::to_vec(details)?);
    let padded = Zeroizing::new(padding::pad(&json));
    let sealed = crypto::seal(
        custodian,
        &CryptoContext::Demographics {
            request_id,
            source_network,
            destination_network,
        },
        &padded,
    )?;
    if sealed.len() != SEALED_PATIENT_LEN {
        bail!(
            "the patient's details are too long to seal in {SEALED_PATIENT_LEN} bytes \
             (InvalidFormat); shorten the names, the address or the reason"
        );
    }
    Ok(sealed)
}

pub fn status_name(status: RequestStatus) -> &'static str {
    match status {
        RequestStatus::Pending => "pending",
        RequestStatus::Receiving => "receiving",
        RequestStatus::Answered => "answered",
        RequestStatus::Rejected => "rejected",
        RequestStatus::TimedOut => "timed_out",
        RequestStatus::Expired => "expired",
    }
}

/// Reads the `Request` query until the request leaves `pending` or `limit` passes,
/// reporting each change (and a heartbeat) through `progress`. Between reads it waits for a
/// transaction touching the exchange contract (a packet received or acknowledged), with
/// `poll` as the safety net. Returns the answered
/// request; every other end is a `RequestEnd` error.
pub fn wait(
    peer: &Peer,
    request_id: &str,
    poll: Duration,
    limit: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<OutgoingRequest> {
    let start = Instant::now();
    let mut last_status: Option<RequestStatus> = None;
    let mut last_note = Instant::now();
    // Woken by this request's packets only (their events name it), not by every
    // exchange on the chain.
    let watch = Watch::contract(peer.contract()).with_attribute("request_id", request_id);
    peer.chain().watch(&watch);
    loop {
        let answer: Result<OutgoingRequest, ChainError> = chain::query(
            peer.chain(),
            peer.contract(),
            &QueryMsg::Request {
                request_id: request_id.to_string(),
            },
        );
        let waited = start.elapsed().as_secs();
        match answer {
            Ok(request) => {
                let status = request.status;
                if last_status != Some(status) || last_note.elapsed() >= Duration::from_secs(15) {
                    let extra = match (&request.reason, request.packet_sequence, &request.reply) {
                        (Some(code), _, _) => format!(" ({code})"),
                        (None, _, Some(reply)) if status == RequestStatus::Receiving => format!(
                            " ({} of {} chunks of the reply in)",
                            reply.chunks_received, reply.chunk_count
                        ),
                        (None, Some(seq), _) if status == RequestStatus::Pending => {
                            format!(" (packet {seq} on {})", request.channel_id)
                        }
                        _ => String::new(),
                    };
                    progress(&format!(
                        "request {request_id}: {}{extra} after {waited}s",
                        status_name(status)
                    ));
                    last_status = Some(status);
                    last_note = Instant::now();
                }
                let id = request_id.to_string();
                match status {
                    RequestStatus::Pending | RequestStatus::Receiving => {}
                    // Whatever the partner answered (records, none, declined) is sealed
                    // inside the reply: every accepted reply is `answered`.
                    RequestStatus::Answered => return Ok(request),
                    RequestStatus::Rejected => {
                        return Err(RequestEnd::Rejected {
                            request_id: id,
                            code: request.reason.unwrap_or(ehr_protocol::ErrorCode::Internal),
                        }
                        .into())
                    }
                    RequestStatus::TimedOut => {
                        return Err(RequestEnd::TimedOut { request_id: id }.into())
                    }
                    RequestStatus::Expired => {
                        return Err(RequestEnd::Expired { request_id: id }.into())
                    }
                }
            }
            Err(e) if e.is_transient() => {
                progress(&format!(
                    "request {request_id}: chain unreachable ({e}); retrying"
                ));
            }
            Err(e) => return Err(e).context(format!("reading the status of request {request_id}")),
        }
        if start.elapsed() >= limit {
            return Err(RequestEnd::StillPending {
                request_id: request_id.to_string(),
                waited_secs: waited,
            }
            .into());
        }
        peer.chain().wait_for_activity(&watch, poll);
    }
}

/// Submits `RetrieveReply` and reads the `RetrievedReply` from the transaction's data.
pub fn retrieve(peer: &Peer, request_id: &str) -> Result<RetrievedReply> {
    let tx = chain::execute(
        peer.chain(),
        peer.contract(),
        &ExecuteMsg::RetrieveReply {
            request_id: request_id.to_string(),
        },
    )
    .with_context(|| format!("retrieving the reply to request {request_id}"))?;
    let data = tx.data.ok_or_else(|| {
        anyhow!(
            "the retrieval transaction {} returned no reply data",
            tx.txhash
        )
    })?;
    parse_retrieved(&data)
}

/// The contract's response data: JSON, or base64 of JSON.
pub fn parse_retrieved(data: &[u8]) -> Result<RetrievedReply> {
    if let Ok(reply) = serde_json::from_slice(data) {
        return Ok(reply);
    }
    let text = std::str::from_utf8(data).map_err(|_| anyhow!("reply data is not text"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(text.trim().trim_matches('"'))
        .map_err(|_| anyhow!("reply data is neither JSON nor base64 JSON"))?;
    serde_json::from_slice(&decoded).context("reply data is not a RetrievedReply")
}

/// Chunk `index` of a retrieved reply, as it came: from its packet in the chain's blocks
/// (the chain keeps no copy), or with the `ReplyChunk` query for a reply an earlier release
/// stored whole. The caller checks it against the manifest.
fn reply_chunk(peer: &Peer, reply: &RetrievedReply, index: u32) -> Result<cosmwasm_std::Binary> {
    let Some(&sequence) = reply.chunk_packets.get(index as usize) else {
        return Ok(chain::query(
            peer.chain(),
            peer.contract(),
            &QueryMsg::ReplyChunk {
                request_id: reply.request_id.clone(),
                index,
            },
        )?);
    };
    let data = peer.chain().received_packet(&reply.channel_id, sequence)?;
    match serde_json::from_slice::<ExchangePacket>(&data) {
        Ok(ExchangePacket::Reply(packet))
            if packet.body.request_id == reply.request_id && packet.chunk_index == index =>
        {
            Ok(packet.chunk)
        }
        _ => bail!(
            "packet {sequence} on {} is not chunk {index} of the reply to {} (InvalidFormat)",
            reply.channel_id,
            reply.request_id
        ),
    }
}

/// What the partner answered, checked and decrypted: for records, one Bundle (its JSON) per
/// record the custodian holds, each checked against its storer's attestation.
pub enum ReplyContent {
    Records(Vec<Zeroizing<Vec<u8>>>),
    NoRecords,
    Declined(ehr_protocol::ErrorCode),
    /// The custodian's matching found several candidates, or none confidently: these
    /// attributes would single the patient out.
    NeedMoreAttributes(Vec<String>),
}

/// Checks the reply (request id; the responder's signature over the manifest and the hash
/// of the key it encrypted to), reads its chunks (each against the manifest), decrypts them
/// with that one of this peer's X25519 keys (current first, then the rotated one), and
/// checks every record's attestation before decompressing and validating it.
pub fn open_reply(
    peer: &Peer,
    secrets: &[X25519Secret],
    request_id: &str,
    reply: &RetrievedReply,
    progress: &mut dyn FnMut(&str),
) -> Result<ReplyContent> {
    if reply.request_id != request_id {
        bail!("the chain returned the reply to another request (UnknownRequest)");
    }
    let body = ReplyBody {
        version: PACKET_VERSION,
        request_id: reply.request_id.clone(),
        requester_network: peer.network().to_string(),
        responder_network: reply.responder_network.clone(),
        responder: reply.responder.clone(),
        recipient_key_hash: reply.recipient_key_hash.clone(),
        manifest: reply.manifest.clone(),
        issued_at: reply.issued_at,
    };
    sign::verify(
        &reply.responder_pubkey,
        &reply_sign_bytes(&body),
        &reply.signature,
    )
    .context("the reply's responder signature (BadSignature)")?;
    // The responder signed the hash of the key it encrypted to: find which of this peer's
    // keys that is (the current one, unless it rotated since).
    let secret = secrets
        .iter()
        .find(|s| signing::key_hash(s.public().as_bytes()) == reply.recipient_key_hash)
        .ok_or_else(|| {
            anyhow!(
                "the reply is encrypted to a key this peer does not hold (RecipientKeyMismatch)"
            )
        })?;
    let manifest = &reply.manifest;
    let chunks = history::download(
        &format!("reply to {request_id}"),
        &manifest.chunk_hashes,
        |index| reply_chunk(peer, reply, index),
        progress,
    )?;
    let recipient = secret.public();
    let context = CryptoContext::Reply {
        request_id,
        requester_network: peer.network(),
        responder_network: &reply.responder_network,
        recipient: &recipient,
    };
    let plain = crypto::open_chunks(std::slice::from_ref(secret), &context, &chunks)
        .with_context(|| format!("decrypting the reply to request {request_id}"))?;
    drop(chunks);
    let (outcome, mut body): (SealedOutcome, &[u8]) = unframe(&plain).ok_or_else(|| {
        anyhow!(
            "the decrypted reply to request {request_id} is not an outcome this version of ehrx \
             knows (UnsupportedVersion)"
        )
    })?;
    match outcome {
        SealedOutcome::Records { parts } => {
            let mut bundles = Vec::with_capacity(parts.len());
            for (n, part) in parts.iter().enumerate() {
                let len = usize::try_from(part.bytes).unwrap_or(usize::MAX);
                if len > body.len() {
                    bail!("the reply's record {n} is cut short (InvalidFormat)");
                }
                let (compressed, rest) = body.split_at(len);
                body = rest;
                // Stored on the network that answered, and signed by its storer.
                if part.attestation.network_id != reply.responder_network {
                    bail!(
                        "record {n} of the reply was attested on {}, not on {} which answered \
                         (InvalidFormat)",
                        part.attestation.network_id,
                        reply.responder_network
                    );
                }
                history::verify_attestation(&part.attestation, compressed)
                    .with_context(|| format!("record {n} of the reply"))?;
                bundles.push(Zeroizing::new(history::decompress(compressed)?));
            }
            progress(&format!(
                "reply to {request_id}: {} record(s), {} chunk(s), every chunk and attestation \
                 verified",
                bundles.len(),
                manifest.chunk_count()
            ));
            Ok(ReplyContent::Records(bundles))
        }
        SealedOutcome::NoRecords => Ok(ReplyContent::NoRecords),
        SealedOutcome::Declined { code } => Ok(ReplyContent::Declined(code)),
        SealedOutcome::NeedMoreAttributes { attributes } => {
            Ok(ReplyContent::NeedMoreAttributes(attributes))
        }
        _ => bail!(
            "the reply holds an outcome this version of ehrx does not know (UnsupportedVersion)"
        ),
    }
}

/// The output Bundle for an answered request (records plus Provenance) as JSON, checked as
/// FHIR R4, with its number of records' resources; or the `RequestEnd` for no records /
/// declined.
pub fn history_bundle(
    request_id: &str,
    reply: &RetrievedReply,
    content: ReplyContent,
    kind: fhir::OutputBundleType,
) -> Result<(Zeroizing<Vec<u8>>, usize)> {
    match content {
        ReplyContent::Records(records) => {
            let provenance = fhir::ReplyProvenance {
                request_id: request_id.to_string(),
                responder: reply.responder.clone(),
                responder_network: reply.responder_network.clone(),
                channel_id: reply.channel_id.clone(),
                packet_sequence: reply.packet_sequence,
                issued_at: reply.issued_at,
                recorded_at: now_unix(),
                history_hash: reply.manifest.history_hash.clone(),
            };
            let json = match fhir::output_bundle_json(&records, &provenance, kind)? {
                Some(json) => json,
                // An entry without a fullUrl: mended on the parsed tree.
                None => {
                    let bundles = records
                        .iter()
                        .map(|r| fhir::parse_bundle(r))
                        .collect::<Result<Vec<_>, _>>()?;
                    let merged = fhir::merge_bundles(&bundles);
                    serde_json::to_vec(&fhir::output_bundle(&merged, &provenance, kind))?
                }
            };
            let json = Zeroizing::new(json);
            // What is written is valid R4 with every reference resolving, or nothing is.
            let summary = fhir::check_bundle(&json).with_context(|| {
                format!("the history received for request {request_id} is not valid FHIR R4")
            })?;
            Ok((json, summary.entries.saturating_sub(1)))
        }
        ReplyContent::NoRecords => Err(RequestEnd::NoRecords {
            request_id: request_id.to_string(),
        }
        .into()),
        ReplyContent::NeedMoreAttributes(attributes) => Err(RequestEnd::NeedMoreAttributes {
            request_id: request_id.to_string(),
            attributes,
        }
        .into()),
        ReplyContent::Declined(code) => {
            let too_large = code == ehr_protocol::ErrorCode::TooLarge;
            let end = anyhow::Error::from(RequestEnd::Declined {
                request_id: request_id.to_string(),
                code,
            });
            if too_large {
                // Not a refusal of the request: the history is larger than the partner's
                // policy lets one reply be.
                return Err(end.context(
                    "the partner's history for this patient has more chunks than its policy \
                     lets one reply have (max_history_chunks); ask its admin to raise it",
                ));
            }
            Err(end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_patient_is_one_size_fresh_each_time_and_bound_to_the_request() {
        let custodian = crypto::generate_x25519();
        let short = SealedDetails::new(
            Attributes {
                given: Some("Al".into()),
                family: Some("Li".into()),
                birth_date: Some("1990-01-01".into()),
                ..Attributes::default()
            },
            None,
        );
        // The longest details a request may carry: every attribute, and a reason at its
        // limit, still fit the one size.
        let long = SealedDetails::new(
            Attributes {
                given: Some("Maria Concepcion Guadalupe Esperanza".into()),
                family: Some("Fernandez de la Torre-Villanueva y Montenegro".into()),
                birth_date: Some("1990-01-01".into()),
                sex: Some(ehrx_matching::Sex::Female),
                ssn: Some("123-45-6789".into()),
                ssn_last4: None,
                address: Some(ehrx_matching::Address {
                    line: Some("12345 North Martin Luther King Junior Boulevard Apt 1204".into()),
                    city: Some("Rancho Santa Margarita".into()),
                    postal_code: Some("92688-1234".into()),
                }),
                phone: Some("+1 (555) 201-3344".into()),
            },
            Some("é".repeat(crate::sealed_patient::MAX_REASON_CHARS)),
        );
        let seal = |d: &SealedDetails, id: &str| {
            seal_patient(&custodian.public(), d, id, "hospital-a", "hospital-b").unwrap()
        };
        let (a, b) = (seal(&short, "r1"), seal(&long, "r1"));
        assert_eq!(a.len(), SEALED_PATIENT_LEN);
        assert_eq!(b.len(), SEALED_PATIENT_LEN);
        assert_ne!(a, seal(&short, "r1"), "fresh each time");
        let context = |id| CryptoContext::Demographics {
            request_id: id,
            source_network: "hospital-a",
            destination_network: "hospital-b",
        };
        let opened = crypto::open(&custodian, &context("r1"), &a).unwrap();
        let details = SealedDetails::parse(padding::unpad(&opened).unwrap()).unwrap();
        assert_eq!(details.patient, short.patient);
        assert!(crypto::open(&custodian, &context("r2"), &a).is_err());
        assert!(crypto::open(&crypto::generate_x25519(), &context("r1"), &a).is_err());
    }
}
