//! `ehrx request`: ask a partner network for a patient's history, wait for the answer,
//! retrieve it, check it and decrypt it.

use crate::chain::{self, ChainError};
use crate::clinician::{self, ClinicianKey};
use crate::crypto::{self, Context as CryptoContext, X25519Public, X25519Secret};
use crate::demographics::Demographics;
use crate::error::RequestEnd;
use crate::fhir;
use crate::peer::{random_id, Peer};
use crate::sign::{self, ReplyParties, RequestFields};
use crate::time::now_unix;
use crate::token::{patient_token, TokenKey};
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use ehr_protocol::exchange::{
    ExecuteMsg, OutgoingRequest, PurposeOfUse, QueryMsg, RequestStatus, RetrievedReply,
};
use ehr_protocol::limits::MAX_DEMOGRAPHICS_BYTES;
use ehr_protocol::packet::ReplyOutcome;
use ehr_protocol::registry::{Partner, QueryMsg as RegistryQuery};
use ehr_protocol::signing::{self, reply_sign_bytes};
use ehr_protocol::validate;
use serde_json::Value;
use std::time::{Duration, Instant};

/// What the clinician asks for.
pub struct RequestInput<'a> {
    pub partner_id: &'a str,
    /// The clinician who asks: their registered key signs the request.
    pub clinician: &'a ClinicianKey,
    pub purpose: PurposeOfUse,
    pub demographics: &'a Demographics,
    pub token_key: &'a TokenKey,
    /// Lifetime of the request in seconds.
    pub ttl_secs: u64,
    /// Also send the demographics, encrypted to the partner's matcher key.
    pub with_demographics: bool,
}

#[derive(Debug, Clone)]
pub struct Submitted {
    pub request_id: String,
    pub expires_at: u64,
    pub txhash: String,
}

/// Builds the token, a random request id and the signed request, and submits it.
pub fn submit(peer: &Peer, input: &RequestInput) -> Result<Submitted> {
    if validate::name(input.partner_id).is_err() {
        bail!("the partner id must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-' (InvalidFormat)");
    }
    let issued_at = now_unix();
    // Checked here first: the contract refuses the same, mostly with a strike on this peer.
    clinician::check_registered(&peer.exchange, input.clinician, input.purpose, issued_at)?;
    // In this peer's scope: no other requester can take or burn it.
    let request_id = validate::scoped_request_id(&peer.address, &random_id());
    let expires_at = issued_at + input.ttl_secs;
    let encrypted_demographics = if input.with_demographics {
        Some(seal_demographics(peer, input, &request_id)?)
    } else {
        None
    };
    let fields = RequestFields {
        request_id: request_id.clone(),
        partner_id: input.partner_id.to_string(),
        clinician_id: input.clinician.id().to_string(),
        purpose: input.purpose,
        patient_token: patient_token(input.token_key, input.demographics),
        reply_encryption_key: peer.keys.encryption_public().as_bytes().to_vec(),
        encrypted_demographics,
        issued_at,
        expires_at,
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

fn seal_demographics(peer: &Peer, input: &RequestInput, request_id: &str) -> Result<Vec<u8>> {
    let partner: Option<Partner> = chain::query(
        peer.chain(),
        &peer.exchange.registry,
        &RegistryQuery::Partner {
            partner_id: input.partner_id.to_string(),
        },
    )?;
    let partner = partner.ok_or_else(|| {
        anyhow!(
            "{} is not in the partner lookup table (UnknownPartner)",
            input.partner_id
        )
    })?;
    let key = partner.encryption_key.ok_or_else(|| {
        anyhow!(
            "partner {} has registered no key for demographics; send the request without them",
            input.partner_id
        )
    })?;
    let key = X25519Public::from_bytes(&key)?;
    let sealed = crypto::seal(
        &key,
        &CryptoContext::Demographics {
            request_id,
            source_network: peer.network(),
            destination_network: input.partner_id,
        },
        &input.demographics.to_json(),
    )?;
    if sealed.len() > MAX_DEMOGRAPHICS_BYTES {
        bail!("encrypted demographics exceed {MAX_DEMOGRAPHICS_BYTES} bytes (TooLarge)");
    }
    Ok(sealed)
}

pub fn status_name(status: RequestStatus) -> &'static str {
    match status {
        RequestStatus::Pending => "pending",
        RequestStatus::Answered => "answered",
        RequestStatus::Rejected => "rejected",
        RequestStatus::TimedOut => "timed_out",
        RequestStatus::Expired => "expired",
    }
}

/// Polls the `Request` query until the request leaves `pending` or `limit` passes,
/// reporting each change (and a heartbeat) through `progress`. Returns the answered
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
                    let extra = match (&request.reason, request.packet_sequence) {
                        (Some(code), _) => format!(" ({code})"),
                        (None, Some(seq)) if status == RequestStatus::Pending => {
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
                    RequestStatus::Pending => {}
                    RequestStatus::Answered => return Ok(request),
                    // The partner's chain refuses a request for a token it holds no
                    // records for: that is an answer (XCPD "no match"), not a failure.
                    RequestStatus::Rejected
                        if request.reason == Some(ehr_protocol::ErrorCode::NoRecords) =>
                    {
                        return Err(RequestEnd::NoRecords { request_id: id }.into())
                    }
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
        std::thread::sleep(poll);
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

/// What the partner answered, checked and decrypted.
pub enum ReplyContent {
    Records(Value),
    NoRecords,
    Declined(ehr_protocol::ErrorCode),
}

/// Checks the reply (request id; the responder's signature, which covers the hash of the
/// key it encrypted to; content hash) and decrypts the records with that one of this peer's
/// X25519 keys (current first, then the rotated one).
pub fn open_reply(
    peer: &Peer,
    secrets: &[X25519Secret],
    request_id: &str,
    reply: &RetrievedReply,
) -> Result<ReplyContent> {
    if reply.request_id != request_id {
        bail!("the chain returned the reply to another request (UnknownRequest)");
    }
    // The responder signed the hash of the key it encrypted to (`recipient_key_hash`):
    // find which of this peer's keys that is (the current one, unless it rotated since).
    let mut error = None;
    let secret = secrets.iter().find(|secret| {
        let recipient = secret.public();
        let body = sign::reply_body(
            &ReplyParties {
                request_id: &reply.request_id,
                requester_network: peer.network(),
                responder_network: &reply.responder_network,
                responder: &reply.responder,
                recipient_key: recipient.as_bytes(),
            },
            reply.outcome.clone(),
            reply.issued_at,
        );
        let verified = sign::verify(
            &reply.responder_pubkey,
            &reply_sign_bytes(&body),
            &reply.signature,
        );
        match verified {
            Ok(()) => true,
            Err(e) => {
                error.get_or_insert(e);
                false
            }
        }
    });
    let Some(secret) = secret else {
        let error = error.unwrap_or_else(|| anyhow!("this peer has no encryption key"));
        return Err(error.context(
            "the reply's responder signature does not verify for this peer's keys (BadSignature)",
        ));
    };
    match &reply.outcome {
        ReplyOutcome::Records {
            ciphertext,
            content_hash,
        } => {
            if &signing::content_hash(ciphertext) != content_hash {
                bail!("the reply's content hash does not match its ciphertext (InvalidFormat)");
            }
            let recipient = secret.public();
            let context = CryptoContext::Reply {
                request_id,
                requester_network: peer.network(),
                responder_network: &reply.responder_network,
                recipient: &recipient,
            };
            let plain = crypto::open(secret, &context, ciphertext).map_err(|_| {
                anyhow!(
                    "cannot decrypt the reply to request {request_id} with the key it names \
                     ({})",
                    hex::encode(recipient.as_bytes())
                )
            })?;
            let bundle = fhir::parse_bundle(&plain).context("the decrypted reply")?;
            Ok(ReplyContent::Records(bundle))
        }
        ReplyOutcome::NoRecords => Ok(ReplyContent::NoRecords),
        ReplyOutcome::Declined { code } => Ok(ReplyContent::Declined(code.clone())),
        _ => bail!(
            "the reply has an outcome this version of ehrx does not know (UnsupportedVersion)"
        ),
    }
}

/// The output Bundle for an answered request (records plus Provenance), or the
/// `RequestEnd` for no records / declined.
pub fn history_bundle(
    request_id: &str,
    reply: &RetrievedReply,
    content: ReplyContent,
    kind: fhir::OutputBundleType,
) -> Result<Value> {
    match content {
        ReplyContent::Records(bundle) => Ok(fhir::output_bundle(
            &bundle,
            &fhir::ReplyProvenance {
                request_id: request_id.to_string(),
                responder: reply.responder.clone(),
                responder_network: reply.responder_network.clone(),
                channel_id: reply.channel_id.clone(),
                packet_sequence: reply.packet_sequence,
                issued_at: reply.issued_at,
                recorded_at: now_unix(),
            },
            kind,
        )),
        ReplyContent::NoRecords => Err(RequestEnd::NoRecords {
            request_id: request_id.to_string(),
        }
        .into()),
        ReplyContent::Declined(code) => Err(RequestEnd::Declined {
            request_id: request_id.to_string(),
            code,
        }
        .into()),
    }
}
