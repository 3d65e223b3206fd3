//! `ehrx`: the peer tool of the EHR exchange (the paper's "script running on the peers").
//!
//! It manages a peer's keys and its clinicians' keys, turns demographics into patient
//! tokens, encrypts FHIR Bundles with HPKE, builds and signs stores, requests (with the
//! clinician's key) and replies over the canonical bytes of `ehr_protocol::signing`, talks
//! to the chain through `ehrx-chain` (no `wasmd` binary), runs the reply service (with
//! Prometheus counters on a local port) and exports the audit log as FHIR
//! `AuditEvent`s. Nothing it logs contains PHI.

pub mod admin;
pub mod alert;
pub mod audit_export;
pub mod chain;
pub mod cli;
pub mod clinician;
pub mod config;
pub mod consent_cmd;
pub mod crypto;
pub mod demographics;
pub mod error;
pub mod fhir;
pub mod fhir_consent;
pub mod history;
pub mod keys;
pub mod metrics;
pub mod patient_index;
pub mod peer;
pub mod pseudonym;
pub mod reply_service;
pub mod request;
pub mod sealed_patient;
pub mod sign;
pub mod store;
pub mod time;
