//! `ehrx reply-service`: answers the requests partners send to this network.
//!
//! Each pass reads `PendingIncoming`; for every request not yet handled it opens the
//! patient's details (`sealed_patient`) with the records key (this hospital's custodian key,
//! which partners register as our `encryption_key`), computes this hospital's own pseudonym
//! for them with its local pseudonym key, loads the records kept under it, checks each one
//! (content hash, storing peer's signature), decrypts it with the records key and merges the
//! Bundles. The answer (`SealedOutcome`: records, none, or declined) is serialised, padded to
//! a size bucket and sealed to the requester's reply key bound to the reply context, so the
//! chains see one kind of reply whatever it says; it is signed (naming that key by its hash,
//! `recipient_key_hash`) and submitted with `SubmitReply`. The request itself is checked
//! against the signature of the clinician who asked (the packet's `signer_pubkey`).
//!
//! A local state file remembers every (partner, request) handled, written atomically after
//! each answer, so a restart never answers twice; a soft rejection is final (retrying would
//! only collect strikes). Chain errors end the pass and the loop retries with backoff.
//! Logs carry request ids, partner ids, record ids, counts and codes: never PHI.

use crate::alert::{Alerts, BreakGlassEvent};
use crate::chain::{self, ChainError, Watch};
use crate::crypto::{self, Context as CryptoContext, X25519Public, X25519Secret};
use crate::demographics::Demographics;
use crate::history::{self, Limits};
use crate::metrics::Metrics;
use crate::patient_index;
use crate::peer::Peer;
use crate::pseudonym::{self, PseudonymKey};
use crate::sealed_patient::SealedDetails;
use crate::sign::{self, ReplyParties};
use crate::time::{now_unix, rfc3339};
use anyhow::{Context, Result};
use ehr_protocol::chunks::Manifest;
use ehr_protocol::consent::{ConsentOutcome, RecordCategory};
use ehr_protocol::exchange::{
    BreakGlassGrant, Disclosure, ExecuteMsg, IncomingCursor, IncomingRequest,
    IncomingRequestsResponse, IncomingStatus, QueryMsg, RecordsResponse, StoredRecord,
    SubmitReplyChunksMsg, SubmitReplyMsg,
};
use ehr_protocol::limits::{MAX_PAGE, PACKET_VERSION, SEALED_PATIENT_LEN};
use ehr_protocol::packet::{
    frame, unframe, Attestation, ExchangePacket, RecordPart, SealedOutcome,
};
use ehr_protocol::padding;
use ehr_protocol::signing::{self, request_sign_bytes, store_sign_bytes, StoreSigning};
use ehr_protocol::ErrorCode;
use ehrx_matching::{Answer as MatchAnswer, Weights};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// One handled request in the state file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Handled {
    /// `records`, `no_records`, `declined:<code>` (what the sealed answer said),
    /// `rejected:<code>` or `expired`.
    pub outcome: String,
    pub txhash: Option<String>,
    pub at: u64,
}

/// Requests already handled, keyed `<partner>/<request id>`, and replies still being sent.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ReplyState {
    pub handled: BTreeMap<String, Handled>,
    /// Replies begun and not finished, so that a restarted service goes on where it stopped
    /// (their sealed chunks are in the `<state file>.uploads/` directory: ciphertext only).
    #[serde(default)]
    pub in_flight: BTreeMap<String, InFlight>,
}

/// A reply being sent, as the state file keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InFlight {
    pub partner: String,
    pub request_id: String,
    pub kind: String,
    pub chunk_bytes: usize,
    pub chunk_count: usize,
    pub sent: usize,
    pub per_tx: usize,
    pub txs: Vec<String>,
}

impl ReplyState {
    pub fn key(partner: &str, request_id: &str) -> String {
        format!("{partner}/{request_id}")
    }

    pub fn load(path: &Path) -> Result<ReplyState> {
        if !path.exists() {
            return Ok(ReplyState::default());
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the reply state {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("the reply state {} is damaged", path.display()))
    }

    /// Write to a temporary file and rename it: never a half-written state.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_private_file(path, &serde_json::to_vec_pretty(self)?)
    }
}

/// Replies submitted at once by default (each its own transaction, several per block);
/// `ehrx reply-service --max-in-flight` sets it.
pub const MAX_IN_FLIGHT: usize = 16;
/// Batches of a large reply's chunks sent at once (each up to 512 KiB).
pub const MAX_UPLOADS_IN_FLIGHT: usize = 2;

/// A reply transaction prepared in a pass, sent with the others of its batch.
struct Submission {
    upload: Upload,
    sent_to: usize,
    msg: ExecuteMsg,
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    /// Replies still being sent, a batch per pass each.
    pub uploading: usize,
    pub pending: usize,
    pub answered: usize,
    pub refused: usize,
    pub skipped: usize,
    pub failed: usize,
}

pub struct ReplyService<'a, 'p> {
    peer: &'a Peer<'p>,
    /// The records key (current, then rotated): opens stored records and the sealed patient
    /// details of requests (it is this hospital's custodian key).
    records_secrets: Vec<X25519Secret>,
    /// This hospital's own pseudonym key: records are kept under its pseudonyms.
    pseudonym_key: PseudonymKey,
    /// The hospital's index of its patients, matched against a request's details.
    patient_index: PathBuf,
    state_path: PathBuf,
    state: ReplyState,
    /// Replies begun whose further chunks wait their turn.
    uploads: VecDeque<Upload>,
    /// Counters and health, served by `--metrics-addr`.
    metrics: Arc<Metrics>,
    /// Replies submitted at once (`--max-in-flight`).
    max_in_flight: usize,
    /// Where the privacy office is alerted of a break-glass request.
    alerts: Alerts,
}

/// A reply being sent a batch of chunks per transaction.
struct Upload {
    key: String,
    partner: String,
    request_id: String,
    /// What the state file will call the answer.
    kind: String,
    chunks: Vec<Vec<u8>>,
    /// Chunks sent so far.
    sent: usize,
    per_tx: usize,
    txs: Vec<String>,
}

/// Records found for a pseudonym: how many, and those that opened, each with its storer's
/// attestation and its compressed Bundle as stored.
struct Loaded {
    found: usize,
    parts: Vec<(Attestation, Zeroizing<Vec<u8>>)>,
    /// The id and category of each record in `parts`, in the same order.
    released: Vec<(String, RecordCategory)>,
}

/// Which patient a request is about, as far as this hospital can tell.
enum Identified {
    /// This hospital's pseudonym for the patient.
    Patient(String),
    /// More attributes are needed to single the patient out (their names).
    NeedMore(Vec<String>),
    NoMatch,
    /// The details do not open with the records key, or are malformed.
    Unreadable,
}

/// An answer before sealing: the outcome header and the bytes its parts announce, and
/// what it releases of which patient (declared to the chain, which checks the patient's
/// consent against it).
struct Answer {
    outcome: SealedOutcome,
    body: Zeroizing<Vec<u8>>,
    disclosure: Option<Disclosure>,
}

impl Answer {
    fn plain(outcome: SealedOutcome) -> Answer {
        Answer {
            outcome,
            body: Zeroizing::new(Vec::new()),
            disclosure: None,
        }
    }

    /// A plain answer about a patient this hospital identified: it releases nothing, and
    /// the chain records that the patient was asked about.
    fn about(patient: &str, outcome: SealedOutcome) -> Answer {
        Answer {
            disclosure: Some(Disclosure {
                patient: patient.to_string(),
                record_ids: Vec::new(),
            }),
            ..Answer::plain(outcome)
        }
    }
}

impl<'a, 'p> ReplyService<'a, 'p> {
    pub fn new(
        peer: &'a Peer<'p>,
        records_secrets: Vec<X25519Secret>,
        pseudonym_key: PseudonymKey,
        patient_index: PathBuf,
        state_path: PathBuf,
    ) -> Result<Self> {
        let state = ReplyState::load(&state_path)?;
        let mut service = ReplyService {
            peer,
            records_secrets,
            pseudonym_key,
            patient_index,
            state_path,
            state,
            uploads: VecDeque::new(),
            metrics: Arc::new(Metrics::default()),
            max_in_flight: MAX_IN_FLIGHT,
            alerts: Alerts::default(),
        };
        service.resume_uploads()?;
        Ok(service)
    }

    /// Alerts the privacy office of each break-glass request answered.
    pub fn with_alerts(mut self, alerts: Alerts) -> Self {
        self.alerts = alerts;
        self
    }

    /// Submits up to `n` replies at once (at least 1) instead of [`MAX_IN_FLIGHT`].
    pub fn with_max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Where a reply's sealed chunks wait while it is being sent.
    fn upload_file(&self, key: &str) -> PathBuf {
        let dir = self.state_path.with_extension("uploads");
        dir.join(format!("{}.bin", signing::content_hash(key.as_bytes())))
    }

    /// The replies a previous run began and did not finish, from the state file.
    fn resume_uploads(&mut self) -> Result<()> {
        for (key, f) in self.state.in_flight.clone() {
            let path = self.upload_file(&key);
            let bytes = std::fs::read(&path)
                .with_context(|| format!("reading the reply being sent, {}", path.display()))?;
            if f.chunk_bytes == 0 || bytes.len() != f.chunk_bytes * f.chunk_count {
                anyhow::bail!(
                    "{} does not hold the {} chunks the state file names: remove its entry \
                     from in_flight in {} (the request then expires on chain)",
                    path.display(),
                    f.chunk_count,
                    self.state_path.display()
                );
            }
            self.uploads.push_back(Upload {
                key,
                partner: f.partner,
                request_id: f.request_id,
                kind: f.kind,
                chunks: bytes.chunks(f.chunk_bytes).map(<[u8]>::to_vec).collect(),
                sent: f.sent,
                per_tx: f.per_tx,
                txs: f.txs,
            });
        }
        Ok(())
    }

    /// Records (or, with `None`, forgets) a reply in flight in the state file.
    fn keep_in_flight(&mut self, upload: Option<&Upload>, key: &str) -> Result<()> {
        let path = self.upload_file(key);
        match upload {
            Some(u) => {
                if !self.state.in_flight.contains_key(key) {
                    std::fs::create_dir_all(path.parent().expect("a file in a directory"))?;
                    write_private_file(&path, &u.chunks.concat())?;
                }
                self.state.in_flight.insert(
                    key.to_string(),
                    InFlight {
                        partner: u.partner.clone(),
                        request_id: u.request_id.clone(),
                        kind: u.kind.clone(),
                        chunk_bytes: u.chunks[0].len(),
                        chunk_count: u.chunks.len(),
                        sent: u.sent,
                        per_tx: u.per_tx,
                        txs: u.txs.clone(),
                    },
                );
            }
            None => {
                if self.state.in_flight.remove(key).is_some() {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        self.state.save(&self.state_path)
    }

    pub fn state(&self) -> &ReplyState {
        &self.state
    }

    /// The service's counters (answered, refused, errors, queue depth) and health.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Runs passes until stopped (or one pass with `once`, failing if it failed).
    pub fn run(&mut self, poll: Duration, once: bool, log: &mut dyn FnMut(&str)) -> Result<()> {
        let mut failures: u32 = 0;
        // Follow the contract before the first pass reads it, so no request is missed.
        let watch = Watch::contract(self.peer.contract());
        self.peer.chain().watch(&watch);
        loop {
            let pass = self.run_pass(log);
            let failed = match &pass {
                Ok(report) => {
                    if let Some(peak) =
                        crate::time::peak_rss_report().filter(|_| report.answered > 0)
                    {
                        log(&peak);
                    }
                    if report.pending > 0 || report.answered > 0 {
                        log(&format!(
                            "pass: {} pending, {} answered, {} refused, {} skipped, {} to retry",
                            report.pending,
                            report.answered,
                            report.refused,
                            report.skipped,
                            report.failed
                        ));
                    }
                    report.failed > 0
                }
                Err(e) => {
                    self.metrics.pass_failed();
                    log(&format!("pass failed: {e:#}"));
                    true
                }
            };
            // A reply still being sent goes on at once: its batches are what the pass waits
            // for, not the poll interval.
            if matches!(&pass, Ok(report) if report.uploading > 0) {
                continue;
            }
            if once {
                return match pass {
                    Ok(report) if report.failed == 0 => Ok(()),
                    Ok(report) => {
                        anyhow::bail!("{} request(s) could not be answered yet", report.failed)
                    }
                    Err(e) => Err(e),
                };
            }
            failures = if failed {
                failures.saturating_add(1)
            } else {
                0
            };
            if failures == 0 {
                // Event-driven: the next pass starts when a transaction touches the
                // exchange (a request packet received); `poll` is only the safety net.
                self.peer.chain().wait_for_activity(&watch, poll);
            } else {
                let wait = (poll.max(Duration::from_secs(1))
                    * 2u32.saturating_pow(failures.min(6)))
                .min(Duration::from_secs(120));
                std::thread::sleep(wait);
            }
        }
    }

    /// One pass over the pending incoming requests.
    pub fn run_pass(&mut self, log: &mut dyn FnMut(&str)) -> Result<PassReport> {
        let mut report = PassReport::default();
        // Replies begun in earlier passes go on by one batch each, after the new requests.
        let waiting = self.uploads.len();
        // The registry's chunk limits, read once a pass and only when there is work.
        let mut limits: Option<Limits> = None;
        let mut start_after: Option<IncomingCursor> = None;
        loop {
            let page: IncomingRequestsResponse = chain::query(
                self.peer.chain(),
                self.peer.contract(),
                &QueryMsg::PendingIncoming {
                    start_after: start_after.clone(),
                    limit: Some(MAX_PAGE),
                },
            )
            .context("reading pending incoming requests")?;
            let count = page.requests.len();
            let mut batch = Vec::new();
            for incoming in &page.requests {
                self.handle(incoming, &mut limits, &mut batch, &mut report, log)?;
                if batch.len() >= self.max_in_flight {
                    self.flush(&mut batch, &mut report, log)?;
                }
            }
            self.flush(&mut batch, &mut report, log)?;
            match page.requests.last() {
                Some(last) if count >= MAX_PAGE as usize => {
                    start_after = Some(IncomingCursor::after(last));
                }
                _ => break,
            }
        }
        self.continue_uploads(waiting, &mut report, log)?;
        report.uploading = self.uploads.len();
        self.metrics.pass_succeeded(
            report.answered as u64,
            report.refused as u64,
            report.skipped as u64,
            report.failed as u64,
            report.pending as u64,
            report.uploading as u64,
        );
        Ok(report)
    }

    fn mark(&mut self, key: String, outcome: String, txhash: Option<String>) -> Result<()> {
        self.state.handled.insert(
            key,
            Handled {
                outcome,
                txhash,
                at: now_unix(),
            },
        );
        self.state.save(&self.state_path)
    }

    fn handle(
        &mut self,
        incoming: &IncomingRequest,
        limits: &mut Option<Limits>,
        batch: &mut Vec<Submission>,
        report: &mut PassReport,
        log: &mut dyn FnMut(&str),
    ) -> Result<()> {
        let partner = incoming.partner_id.as_str();
        let request_id = incoming.body.request_id.as_str();
        let key = ReplyState::key(partner, request_id);
        if incoming.status != IncomingStatus::Pending || self.state.handled.contains_key(&key) {
            return Ok(());
        }
        report.pending += 1;
        let now = now_unix();
        if incoming.body.expires_at <= now {
            log(&format!(
                "request {request_id} from {partner}: expired, not answered"
            ));
            report.skipped += 1;
            return self.mark(key, "expired".into(), None);
        }
        let restored = match self.with_sealed_patient(incoming) {
            Ok(full) => full,
            Err(e) => {
                log(&format!(
                    "request {request_id} from {partner}: will retry: {e}"
                ));
                report.failed += 1;
                return Ok(());
            }
        };
        let incoming = &restored;
        let reply_key = match X25519Public::from_bytes(&incoming.body.reply_encryption_key) {
            Ok(key) => key,
            Err(_) => {
                // Nothing can be sealed to it; the requesting chain only ever sends the
                // requester's registered key, so this is a broken or forged request.
                log(&format!(
                    "request {request_id} from {partner}: the reply key is not an X25519 key; not answered"
                ));
                report.skipped += 1;
                return self.mark(key, "skipped:InvalidFormat".into(), None);
            }
        };
        let answer = match self.check_request(incoming) {
            Err(code) => {
                log(&format!(
                    "request {request_id} from {partner}: declining ({code})"
                ));
                Answer::plain(SealedOutcome::Declined { code })
            }
            Ok(()) => match self.build_answer(incoming, log) {
                Ok(answer) => answer,
                // The chain did not answer as expected: not a verdict on the request.
                Err(e) if is_chain_error(&e) => {
                    log(&format!(
                        "request {request_id} from {partner}: will retry: {e:#}"
                    ));
                    report.failed += 1;
                    return Ok(());
                }
                Err(e) => {
                    log(&format!(
                        "request {request_id} from {partner}: declining (Internal): {e:#}"
                    ));
                    Answer::plain(SealedOutcome::Declined {
                        code: ErrorCode::Internal,
                    })
                }
            },
        };
        if let Some(grant) = incoming.break_glass {
            self.alert_break_glass(incoming, grant, &answer, log);
        }
        let limits = match *limits {
            Some(limits) => limits,
            None => *limits.insert(Limits::of(&self.peer.exchange)?),
        };
        let (manifest, chunks, kind) = match self.seal_answer(incoming, &reply_key, &answer, limits)
        {
            Ok(Some((manifest, chunks))) => (manifest, chunks, answer_kind(&answer.outcome)),
            Ok(None) => {
                log(&format!(
                    "request {request_id} from {partner}: the sealed history would exceed the \
                     policy's {} chunks of {} KiB; declining (TooLarge)",
                    limits.max_history_chunks,
                    limits.max_chunk_bytes / 1024
                ));
                let declined = Answer::plain(SealedOutcome::Declined {
                    code: ErrorCode::TooLarge,
                });
                match self.seal_answer(incoming, &reply_key, &declined, limits)? {
                    Some((manifest, chunks)) => (manifest, chunks, answer_kind(&declined.outcome)),
                    None => anyhow::bail!(
                        "the policy's chunk limits are below the smallest sealed reply; ask the \
                         registry admin to raise max_history_chunks"
                    ),
                }
            }
            Err(e) => return Err(e),
        };
        let disclosure = answer.disclosure.clone();
        drop(answer);
        // Names the key the outcome is encrypted to (also when declining: the key the
        // request asked for), so the requesting chain can refuse it once that key is gone.
        let body = sign::reply_body(
            &ReplyParties {
                request_id,
                requester_network: partner,
                responder_network: self.peer.network(),
                responder: &self.peer.address,
                recipient_key: &incoming.body.reply_encryption_key,
            },
            manifest,
            now_unix(),
        );
        let msg = sign::submit_reply(self.peer.keys.signing_key(), &body);
        let per_tx = history::batches(&chunks).first().map_or(1, |b| b.len());
        let first = history::to_binaries(&chunks[..per_tx.min(chunks.len())]);
        let upload = Upload {
            key,
            partner: partner.to_string(),
            request_id: request_id.to_string(),
            kind,
            sent: 0,
            chunks,
            per_tx,
            txs: Vec::new(),
        };
        let sent_to = first.len();
        batch.push(Submission {
            upload,
            sent_to,
            msg: ExecuteMsg::SubmitReply(SubmitReplyMsg {
                chunks: first,
                disclosure,
                ..msg
            }),
        });
        Ok(())
    }

    /// Sends the batch's transactions all in flight at once (several per block), then
    /// records how each went.
    fn flush(
        &mut self,
        batch: &mut Vec<Submission>,
        report: &mut PassReport,
        log: &mut dyn FnMut(&str),
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let msgs: Vec<&ExecuteMsg> = batch.iter().map(|s| &s.msg).collect();
        let results = chain::execute_all(self.peer.chain(), self.peer.contract(), &msgs);
        let mut outcome = Ok(());
        for (submission, tx) in batch.drain(..).zip(results) {
            // Every result is recorded, even after one failed to be.
            let recorded = self.after_batch(submission.upload, submission.sent_to, tx, report, log);
            if outcome.is_ok() {
                outcome = recorded;
            }
        }
        outcome
    }

    /// Records how a reply's transaction went: the reply is done, goes on (its next batch
    /// waits its turn in the queue, so a large reply never holds up the others), was
    /// refused, or is tried again later.
    fn after_batch(
        &mut self,
        mut upload: Upload,
        sent_to: usize,
        tx: Result<crate::chain::TxResult, ChainError>,
        report: &mut PassReport,
        log: &mut dyn FnMut(&str),
    ) -> Result<()> {
        let (request_id, partner) = (upload.request_id.clone(), upload.partner.clone());
        match tx {
            Ok(tx) => {
                upload.sent = sent_to;
                upload.txs.push(tx.txhash);
                if upload.sent < upload.chunks.len() {
                    log(&format!(
                        "request {request_id} from {partner}: {}/{} chunks sent ({} KiB of {} KiB)",
                        upload.sent,
                        upload.chunks.len(),
                        upload.sent * upload.chunks[0].len() / 1024,
                        upload.chunks.len() * upload.chunks[0].len() / 1024
                    ));
                    let key = upload.key.clone();
                    self.keep_in_flight(Some(&upload), &key)?;
                    self.uploads.push_back(upload);
                    return Ok(());
                }
                self.keep_in_flight(None, &upload.key.clone())?;
                log(&format!(
                    "request {request_id} from {partner}: answered {} in {} chunk(s) (tx {})",
                    upload.kind,
                    upload.chunks.len(),
                    upload.txs.join(", ")
                ));
                report.answered += 1;
                let last = upload.txs.last().cloned();
                self.mark(upload.key, upload.kind, last)
            }
            // A batch sent again after its first try went through unseen: carry on from
            // what the chain has.
            Err(ChainError::SoftRejected {
                code: ErrorCode::ChunkDuplicate,
                ..
            }) if !upload.txs.is_empty() => {
                let incoming: IncomingRequest = chain::query(
                    self.peer.chain(),
                    self.peer.contract(),
                    &QueryMsg::IncomingRequest {
                        partner_id: partner.clone(),
                        request_id: request_id.clone(),
                    },
                )?;
                upload.sent = incoming
                    .reply
                    .map_or(upload.sent, |r| r.chunks_sent as usize);
                self.uploads.push_back(upload);
                Ok(())
            }
            // The patient's consent (or a break-glass time box) changed between the check
            // and the submission: nothing left; the next pass answers again, as it now
            // stands (a sealed `declined`).
            Err(ChainError::SoftRejected {
                code: code @ (ErrorCode::ConsentDenied | ErrorCode::BreakGlassExpired),
                txhash,
            }) if upload.txs.is_empty() => {
                self.keep_in_flight(None, &upload.key.clone())?;
                log(&format!(
                    "request {request_id} from {partner}: the chain refused the release ({code}, \
                     tx {txhash}): the patient's consent changed since it was checked; \
                     answering again"
                ));
                report.refused += 1;
                Ok(())
            }
            Err(ChainError::SoftRejected { code, txhash }) => {
                self.keep_in_flight(None, &upload.key.clone())?;
                log(&format!(
                    "request {request_id} from {partner}: reply refused by the contract ({code}, \
                     tx {txhash}) after {} of {} chunks; not retried",
                    upload.sent.min(upload.chunks.len()),
                    upload.chunks.len()
                ));
                report.refused += 1;
                self.mark(upload.key, format!("rejected:{code}"), Some(txhash))
            }
            Err(e) => {
                log(&format!(
                    "request {request_id} from {partner}: reply not submitted, will retry: {e}"
                ));
                report.failed += 1;
                // The first transaction is retried from scratch on the next pass (the
                // request is still pending on chain); a later batch is kept and resent.
                if !upload.txs.is_empty() {
                    self.uploads.push_back(upload);
                }
                Ok(())
            }
        }
    }

    /// One batch of each of the first `waiting` replies still being sent, in turn.
    fn continue_uploads(
        &mut self,
        waiting: usize,
        report: &mut PassReport,
        log: &mut dyn FnMut(&str),
    ) -> Result<()> {
        // Large batches: fewer at once, so the transactions stay within a block's room.
        let mut batch = Vec::new();
        for _ in 0..waiting.min(self.uploads.len()) {
            let Some(upload) = self.uploads.pop_front() else {
                break;
            };
            let from = upload.sent;
            let to = (from + upload.per_tx).min(upload.chunks.len());
            let msg = ExecuteMsg::SubmitReplyChunks(SubmitReplyChunksMsg {
                partner_id: upload.partner.clone(),
                request_id: upload.request_id.clone(),
                first_index: from as u32,
                chunks: history::to_binaries(&upload.chunks[from..to]),
            });
            batch.push(Submission {
                upload,
                sent_to: to,
                msg,
            });
            if batch.len() >= MAX_UPLOADS_IN_FLIGHT {
                self.flush(&mut batch, report, log)?;
            }
        }
        self.flush(&mut batch, report, log)
    }

    /// The request with its sealed patient details. The chain keeps only their hash
    /// (`sealed_patient_sha256`): they are read from the packet, in the block that delivered
    /// it, and checked against that hash (and, with the whole body, against the clinician's
    /// signature by `check_request`).
    fn with_sealed_patient(
        &self,
        incoming: &IncomingRequest,
    ) -> Result<IncomingRequest, ChainError> {
        let mut full = incoming.clone();
        let Some(expected) = &incoming.sealed_patient_sha256 else {
            return Ok(full);
        };
        let (channel, sequence) = (&incoming.channel_id, incoming.packet_sequence);
        let data = self.peer.chain().received_packet(channel, sequence)?;
        let sealed = match serde_json::from_slice::<ExchangePacket>(&data) {
            Ok(ExchangePacket::Request(packet))
                if packet.body.request_id == incoming.body.request_id =>
            {
                packet.body.sealed_patient
            }
            _ => {
                return Err(ChainError::Parse(format!(
                    "packet {sequence} on {channel} is not request {}",
                    incoming.body.request_id
                )))
            }
        };
        if &signing::sha256_hex(&sealed) != expected {
            return Err(ChainError::Parse(format!(
                "the patient details in packet {sequence} on {channel} do not match the hash \
                 the chain kept for request {}",
                incoming.body.request_id
            )));
        }
        full.body.sealed_patient = sealed;
        Ok(full)
    }

    /// Checks the chain already made, made again before anything is disclosed.
    fn check_request(&self, incoming: &IncomingRequest) -> Result<(), ErrorCode> {
        let body = &incoming.body;
        if body.version != PACKET_VERSION {
            return Err(ErrorCode::UnsupportedVersion);
        }
        if body.destination_network != self.peer.network()
            || body.source_network != incoming.partner_id
        {
            return Err(ErrorCode::WrongChannel);
        }
        sign::verify(
            &incoming.signer_pubkey,
            &request_sign_bytes(body),
            &incoming.signature,
        )
        .map_err(|_| ErrorCode::BadSignature)?;
        if body.sealed_patient.len() != SEALED_PATIENT_LEN {
            return Err(ErrorCode::InvalidFormat);
        }
        Ok(())
    }

    /// Opens the patient's details with the records (custodian) key, finds the patient
    /// (this hospital's pseudonym) and answers from the records kept under it.
    fn build_answer(
        &self,
        incoming: &IncomingRequest,
        log: &mut dyn FnMut(&str),
    ) -> Result<Answer> {
        let body = &incoming.body;
        let details = self.open_details(incoming);
        if incoming.break_glass.is_some()
            && details.as_ref().is_some_and(|d| {
                d.break_glass_reason
                    .as_deref()
                    .is_none_or(|r| r.trim().is_empty())
            })
        {
            log(&format!(
                "request {}: a break-glass request without its free-text reason; declining \
                 (ReasonRequired)",
                body.request_id
            ));
            return Ok(Answer::plain(SealedOutcome::Declined {
                code: ErrorCode::ReasonRequired,
            }));
        }
        let pseudonym = match self.identify(incoming, details.as_ref(), log)? {
            Identified::Patient(pseudonym) => pseudonym,
            Identified::NeedMore(attributes) => {
                log(&format!(
                    "request {}: the details fit more than one patient, or none confidently; \
                     asking for {}",
                    body.request_id,
                    attributes.join(", ")
                ));
                return Ok(Answer::plain(SealedOutcome::NeedMoreAttributes {
                    attributes,
                }));
            }
            Identified::NoMatch => return Ok(Answer::plain(SealedOutcome::NoRecords)),
            Identified::Unreadable => {
                log(&format!(
                    "request {}: the patient details do not open with this hospital's records \
                     key (the partner may hold an old or another key for us: give its admin our \
                     current records_key) or are malformed; declining (InvalidFormat)",
                    body.request_id
                ));
                return Ok(Answer::plain(SealedOutcome::Declined {
                    code: ErrorCode::InvalidFormat,
                }));
            }
        };
        let loaded = self.load_records(&pseudonym, log)?;
        if loaded.found == 0 {
            return Ok(Answer::about(&pseudonym, SealedOutcome::NoRecords));
        }
        if loaded.parts.is_empty() {
            log(&format!(
                "request {}: none of {} record(s) could be opened",
                body.request_id, loaded.found
            ));
            return Ok(Answer::about(
                &pseudonym,
                SealedOutcome::Declined {
                    code: ErrorCode::Internal,
                },
            ));
        }
        // The patient's consent, as the chain will decide it for this release (the chain
        // checks again when the reply is submitted, and at every later chunk).
        let mut categories: Vec<RecordCategory> = loaded.released.iter().map(|r| r.1).collect();
        categories.sort();
        categories.dedup();
        let decision: ConsentOutcome = chain::query(
            self.peer.chain(),
            self.peer.contract(),
            &QueryMsg::ConsentCheck {
                patient: pseudonym.clone(),
                partner_id: incoming.partner_id.clone(),
                purpose: body.purpose,
                categories,
                break_glass: incoming
                    .break_glass
                    .is_some_and(|grant| now_unix() < grant.window_ends),
            },
        )?;
        match &decision {
            ConsentOutcome::Denied { directive_id } => {
                log(&format!(
                    "request {}: the patient's consent refuses this release ({}); declining \
                     (ConsentDenied)",
                    body.request_id,
                    directive_id
                        .as_deref()
                        .map_or("the policy's default".to_string(), |d| format!(
                            "directive {d}"
                        ))
                ));
                return Ok(Answer::about(
                    &pseudonym,
                    SealedOutcome::Declined {
                        code: ErrorCode::ConsentDenied,
                    },
                ));
            }
            ConsentOutcome::OverriddenByBreakGlass { directive_id } => log(&format!(
                "request {}: break-glass overrides directive {directive_id}, as the patient \
                 allowed; releasing (audited on both chains)",
                body.request_id
            )),
            ConsentOutcome::Permitted { .. } | ConsentOutcome::PermittedByDefault => {}
        }
        // The records travel as they were stored and attested: compressed, each with its
        // storer's signature, so the requester checks them one by one.
        let mut parts = Vec::with_capacity(loaded.parts.len());
        let mut bytes = Zeroizing::new(Vec::new());
        for (attestation, compressed) in loaded.parts {
            parts.push(RecordPart {
                bytes: compressed.len() as u64,
                attestation,
            });
            bytes.extend_from_slice(&compressed);
        }
        Ok(Answer {
            outcome: SealedOutcome::Records { parts },
            body: bytes,
            disclosure: Some(Disclosure {
                patient: pseudonym,
                record_ids: loaded.released.into_iter().map(|r| r.0).collect(),
            }),
        })
    }

    /// Tells the privacy office (`--on-break-glass`, `--break-glass-webhook`) of a
    /// break-glass request and what it is answered; a failed alert is logged by its cause.
    fn alert_break_glass(
        &self,
        incoming: &IncomingRequest,
        grant: BreakGlassGrant,
        answer: &Answer,
        log: &mut dyn FnMut(&str),
    ) {
        let body = &incoming.body;
        log(&format!(
            "request {} from {}: break-glass ({}) by clinician {}, time box until {}; answered {}",
            body.request_id,
            incoming.partner_id,
            grant.reason.as_str(),
            body.clinician_id,
            rfc3339(grant.window_ends, 0),
            answer_kind(&answer.outcome)
        ));
        if self.alerts.is_empty() {
            return;
        }
        let event = BreakGlassEvent {
            event: "break_glass",
            network: self.peer.network().to_string(),
            partner_id: incoming.partner_id.clone(),
            request_id: body.request_id.clone(),
            clinician_id: body.clinician_id.clone(),
            purpose: body.purpose.as_str().to_string(),
            reason: grant.reason.as_str().to_string(),
            reason_text: self
                .open_details(incoming)
                .and_then(|d| d.break_glass_reason),
            received_at: incoming.received_at,
            window_ends: grant.window_ends,
            outcome: answer_kind(&answer.outcome),
        };
        for failure in self.alerts.send(&event) {
            log(&format!(
                "request {}: the privacy office's break-glass alert failed: {failure}",
                body.request_id
            ));
        }
    }

    /// The request's sealed details, opened with the records key; `None` when they do not
    /// open or are in no version this tool reads.
    fn open_details(&self, incoming: &IncomingRequest) -> Option<SealedDetails> {
        let body = &incoming.body;
        let padded = crypto::open_with_any(
            &self.records_secrets,
            &CryptoContext::Demographics {
                request_id: &body.request_id,
                source_network: &body.source_network,
                destination_network: self.peer.network(),
            },
            &body.sealed_patient,
        )
        .ok()?;
        SealedDetails::parse(padding::unpad(&padded)?)
    }

    /// Which of this hospital's patients the request is about. The exact details (name,
    /// birth date and SSN, normalised) give the pseudonym the records were stored under, as
    /// before; otherwise, or when nothing is stored under it, the details are matched
    /// against the patient index (`patient_index`): one certain match is the patient,
    /// several candidates or a weak one ask for more attributes, none is no match.
    fn identify(
        &self,
        incoming: &IncomingRequest,
        details: Option<&SealedDetails>,
        log: &mut dyn FnMut(&str),
    ) -> Result<Identified> {
        let Some(details) = details else {
            return Ok(Identified::Unreadable);
        };
        let p = &details.patient;
        let exact = match (&p.given, &p.family, &p.birth_date, &p.ssn) {
            (Some(g), Some(f), Some(b), Some(s)) => Demographics::new(g, f, b, s)
                .ok()
                .map(|d| pseudonym::pseudonym(&self.pseudonym_key, &d)),
            _ => None,
        };
        if let Some(exact) = &exact {
            if self.has_records(exact)? {
                return Ok(Identified::Patient(exact.clone()));
            }
        }
        let index = match patient_index::load(&self.patient_index) {
            Ok(index) => index,
            Err(e) => {
                // The hospital's own file is broken: say so, and answer as if not found
                // rather than guess.
                log(&format!(
                    "patient index: {e:#}; matching on exact details only"
                ));
                return Ok(Identified::NoMatch);
            }
        };
        Ok(
            match ehrx_matching::answer(&index, p, &Weights::default()) {
                Ok(MatchAnswer::Match { patient, .. }) => Identified::Patient(patient.0),
                Ok(MatchAnswer::NeedMoreAttributes { attributes, .. }) => Identified::NeedMore(
                    attributes.iter().map(|a| a.as_str().to_string()).collect(),
                ),
                Ok(MatchAnswer::NoMatch) => Identified::NoMatch,
                Err(e) => {
                    log(&format!(
                        "request {}: the patient details are not valid for matching ({})",
                        incoming.body.request_id,
                        e.field().map_or("query", |f| f.as_str())
                    ));
                    Identified::Unreadable
                }
            },
        )
    }

    /// Whether any record is stored under `pseudonym`.
    fn has_records(&self, pseudonym: &str) -> Result<bool> {
        let page: RecordsResponse = chain::query(
            self.peer.chain(),
            self.peer.contract(),
            &QueryMsg::Records {
                patient_token: pseudonym.to_string(),
                start_after: None,
                limit: Some(1),
            },
        )?;
        Ok(!page.records.is_empty())
    }

    /// The answer framed, padded to its size bucket and sealed in chunks to the requester's
    /// reply key; `None` when it would need more chunks than the policy allows.
    fn seal_answer(
        &self,
        incoming: &IncomingRequest,
        reply_key: &X25519Public,
        answer: &Answer,
        limits: Limits,
    ) -> Result<Option<(Manifest, Vec<Vec<u8>>)>> {
        let body = &incoming.body;
        let plain = Zeroizing::new(frame(&serde_json::to_vec(&answer.outcome)?, &answer.body));
        let (manifest, chunks) = crypto::seal_chunks(
            reply_key,
            &CryptoContext::Reply {
                request_id: &body.request_id,
                requester_network: &body.source_network,
                responder_network: self.peer.network(),
                recipient: reply_key,
            },
            &plain,
            limits.max_chunk_bytes,
        )?;
        if manifest.chunk_count() > limits.max_history_chunks {
            return Ok(None);
        }
        Ok(Some((manifest, chunks)))
    }

    fn load_records(&self, token: &str, log: &mut dyn FnMut(&str)) -> Result<Loaded> {
        let mut loaded = Loaded {
            found: 0,
            parts: Vec::new(),
            released: Vec::new(),
        };
        let mut start_after: Option<String> = None;
        loop {
            let page: RecordsResponse = chain::query(
                self.peer.chain(),
                self.peer.contract(),
                &QueryMsg::Records {
                    patient_token: token.to_string(),
                    start_after: start_after.clone(),
                    limit: Some(MAX_PAGE),
                },
            )?;
            for meta in &page.records {
                loaded.found += 1;
                if !meta.complete() {
                    log(&format!(
                        "record {} skipped: {} of {} chunks stored (its store did not finish)",
                        meta.record_id, meta.chunks_stored, meta.chunk_count
                    ));
                    continue;
                }
                let record: StoredRecord = chain::query(
                    self.peer.chain(),
                    self.peer.contract(),
                    &QueryMsg::Record {
                        patient_token: token.to_string(),
                        record_id: meta.record_id.clone(),
                    },
                )?;
                match self.open_record(token, &record) {
                    Ok(part) => {
                        loaded.parts.push(part);
                        loaded
                            .released
                            .push((meta.record_id.clone(), meta.category));
                    }
                    Err(e) => log(&format!("record {} skipped: {e:#}", meta.record_id)),
                }
            }
            match page.records.last() {
                Some(last) if page.records.len() >= MAX_PAGE as usize => {
                    start_after = Some(last.record_id.clone());
                }
                _ => break,
            }
        }
        Ok(loaded)
    }

    /// Integrity first (the storing peer's signature over the manifest, each chunk against
    /// it), then decryption; the record's attestation and compressed Bundle as stored.
    fn open_record(
        &self,
        token: &str,
        record: &StoredRecord,
    ) -> Result<(Attestation, Zeroizing<Vec<u8>>)> {
        let meta = &record.meta;
        let bytes = store_sign_bytes(&StoreSigning {
            network_id: self.peer.network(),
            storer: meta.stored_by.as_str(),
            record_id: &meta.record_id,
            patient_token: token,
            manifest: &record.manifest,
            category: meta.category,
        });
        sign::verify(&record.signer_pubkey, &bytes, &record.signature)
            .context("storing peer's signature")?;
        let chunks = history::download(
            &format!("record {}", meta.record_id),
            &record.manifest.chunk_hashes,
            |index| {
                chain::query(
                    self.peer.chain(),
                    self.peer.contract(),
                    &QueryMsg::RecordChunk {
                        patient_token: token.to_string(),
                        record_id: meta.record_id.clone(),
                        index,
                    },
                )
                .map_err(anyhow::Error::from)
            },
            &mut |_| {},
        )?;
        let plain = crypto::open_chunks(
            &self.records_secrets,
            &CryptoContext::Record {
                network: self.peer.network(),
                record_id: &meta.record_id,
                patient_token: token,
            },
            &chunks,
        )?;
        let (attestation, compressed): (Attestation, &[u8]) = unframe(&plain)
            .ok_or_else(|| anyhow::anyhow!("the decrypted record is not a framed record"))?;
        // The attestation inside is the storing peer's own: its address and registered key
        // (the one the chain checked the store against), on this network.
        if attestation.storer != meta.stored_by.as_str()
            || attestation.storer_pubkey != record.signer_pubkey
            || attestation.network_id != self.peer.network()
        {
            anyhow::bail!("the record's attestation is not its storer's");
        }
        history::verify_attestation(&attestation, compressed)?;
        Ok((attestation, Zeroizing::new(compressed.to_vec())))
    }
}

/// What the state file and the log call an answer (never its content).
fn answer_kind(answer: &SealedOutcome) -> String {
    match answer {
        SealedOutcome::Records { .. } => "records".into(),
        SealedOutcome::NoRecords => "no_records".into(),
        SealedOutcome::Declined { code } => format!("declined:{code}"),
        SealedOutcome::NeedMoreAttributes { .. } => "need_more_attributes".into(),
        _ => "other".into(),
    }
}

fn is_chain_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<ChainError>())
}

/// A log line for the service: UTC time and the message.
pub fn log_line(message: &str) -> String {
    format!("{} ehrx reply-service: {message}", rfc3339(now_unix(), 0))
}

/// Writes `bytes` to a temporary file (mode 0600) and renames it over `path`: never a
/// half-written file.
fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.json");
        let mut state = ReplyState::load(&path).unwrap();
        assert!(state.handled.is_empty());
        state.handled.insert(
            ReplyState::key("hospital-a", "0123456789abcdef"),
            Handled {
                outcome: "records".into(),
                txhash: Some("AB".into()),
                at: 1,
            },
        );
        state.save(&path).unwrap();
        state.save(&path).unwrap();
        let again = ReplyState::load(&path).unwrap();
        assert_eq!(again.handled, state.handled);
        assert!(!tmp.path().join("state.tmp").exists());
    }
}
