//! The command line: argument definitions and what each command does.

use crate::audit_export::{self, AuditFilter, AuditSource};
use crate::chain::{self, ChainClient};
use crate::clinician::{self, ClinicianKey, Code, Registration};
use crate::config::Settings;
use crate::demographics::{Demographics, DemographicsInput};
use crate::fhir::OutputBundleType;
use crate::keys::{self, KeyDir};
use crate::patient_index;
use crate::peer::{Exchange, Peer};
use crate::pseudonym::{self, PseudonymKey};
use crate::reply_service::{log_line, ReplyService};
use crate::request::{self, RequestInput};
use crate::store;
use crate::time;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ehr_protocol::consent::{EmergencyReason, RecordCategory};
use ehr_protocol::exchange::{CosignMsg, ExecuteMsg, OutgoingRequest, PurposeOfUse, QueryMsg};
use ehrx_matching::{Address, Attributes, Sex};
use serde_json::json;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

#[derive(Debug, Parser)]
#[command(
    name = "ehrx",
    version,
    about = "Peer tool of the EHR exchange: keys, pseudonyms, stores, requests, the reply service and audit export",
    after_help = "Exit status: 0 done, 1 error, 2 bad usage, 3 partner has no records, \
                  4 refused (reason code printed), 5 timed out or expired."
)]
pub struct Cli {
    /// Settings file (TOML, or JSON by extension) [default: ./ehrx.toml if present].
    #[arg(long, global = true, env = "EHRX_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, show or rotate this peer's keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Create, show or rotate a clinician's key (the credential requests are signed with).
    Clinician {
        #[command(subcommand)]
        command: ClinicianCommand,
    },
    /// Print this hospital's pseudonym for a patient (and nothing else): what its records
    /// are kept under on this hospital's chain. Needs the local pseudonym key.
    #[command(alias = "token")]
    Pseudonym(DemographicsArgs),
    /// Store a FHIR Bundle as an encrypted record of a patient.
    Store(StoreArgs),
    /// Ask a partner network for a patient's history and write it as a FHIR Bundle.
    Request(RequestArgs),
    /// Show the state of a request this peer sent (no PHI).
    Status {
        #[arg(long)]
        request_id: String,
    },
    /// Answer partners' requests from this network's records (long-running).
    ReplyService {
        /// One pass, then exit (non-zero if a request could not be answered yet).
        #[arg(long)]
        once: bool,
        /// Serve the service's counters and health as Prometheus text on this local address
        /// (`/metrics`, `/health`), e.g. 127.0.0.1:9464.
        #[arg(long)]
        metrics_addr: Option<String>,
        /// Replies submitted at once, each its own transaction (several land in one block).
        #[arg(long, default_value_t = crate::reply_service::MAX_IN_FLIGHT as u16,
              value_parser = clap::value_parser!(u16).range(1..=256))]
        max_in_flight: u16,
        /// Alert the privacy office of each break-glass request: run this program (no
        /// arguments, no shell) with the event as JSON on its stdin.
        #[arg(long)]
        on_break_glass: Option<String>,
        /// Alert the privacy office of each break-glass request: POST the event as JSON to
        /// this http:// URL on the hospital's own network (loopback or private address).
        #[arg(long)]
        break_glass_webhook: Option<String>,
    },
    /// Registry and exchange administration, signed by the registry admin's account.
    Admin {
        #[command(subcommand)]
        command: crate::admin::AdminCommand,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// A patient's consent directives, for the privacy office (role `privacy`).
    Consent {
        #[command(subcommand)]
        command: crate::consent_cmd::ConsentCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a signing (secp256k1) and an encryption (X25519) key in the key dir.
    Init,
    /// Print the public keys and the registry's PeerInput fields.
    Show,
    /// Replace both keys, keeping the current ones as *.old.
    Rotate {
        /// Overwrite existing *.old files.
        #[arg(long)]
        force: bool,
    },
    /// Write a new random pseudonym key (hex, mode 0600): this hospital's own, shared by its
    /// peers that store and answer, never given to a partner.
    #[command(alias = "new-token-key")]
    NewPseudonymKey {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClinicianCommand {
    /// Generate a clinician's signing key (secp256k1, file mode 0600) and print the
    /// registry's RegisterClinician message for the admin.
    New {
        #[command(flatten)]
        args: ClinicianArgs,
        /// Encrypt the key file under a code the clinician types (twice; or
        /// $EHRX_CLINICIAN_CODE): every use of the key then asks for it.
        #[arg(long)]
        protect: bool,
    },
    /// Print a clinician's public key and the RegisterClinician message for it again (with
    /// the purposes and validity given on this command line).
    Show(ClinicianArgs),
    /// Co-sign a break-glass request of this hospital, as a second clinician allowed
    /// break-glass, within the policy's time (sent by this peer, signed with the
    /// co-signer's key).
    Cosign {
        /// The co-signing clinician's id.
        #[arg(long)]
        id: String,
        /// Their key file [default: <key_dir>/clinicians/<id>.key].
        #[arg(long)]
        clinician_key: Option<PathBuf>,
        /// The break-glass request.
        #[arg(long)]
        request_id: String,
    },
    /// Replace a clinician's key, keeping the current one as <file>.old; the admin then
    /// registers the new one (RegisterClinician with the same id).
    Rotate {
        #[command(flatten)]
        args: ClinicianArgs,
        /// Overwrite an existing <file>.old.
        #[arg(long)]
        force: bool,
        /// Encrypt the new key file under a code (as `new --protect`).
        #[arg(long)]
        protect: bool,
    },
}

#[derive(Debug, Args)]
pub struct ClinicianArgs {
    /// The clinician's id in the registry: the hospital's staff id or a handle, never a
    /// name (1-64 of A-Z, a-z, 0-9, '.', '_', '-').
    #[arg(long)]
    pub id: String,
    /// The key file [default: <key_dir>/clinicians/<id>.key].
    #[arg(long)]
    pub clinician_key: Option<PathBuf>,
    /// Purposes of use the clinician may request for (repeat, or separate with commas)
    /// [default: treatment].
    #[arg(long = "purpose", value_enum, value_delimiter = ',')]
    pub purposes: Vec<Purpose>,
    /// The registration is valid from (unix seconds, YYYY-MM-DD or RFC 3339) [default: at
    /// once].
    #[arg(long)]
    pub valid_from: Option<String>,
    /// The registration ends at (unix seconds, YYYY-MM-DD or RFC 3339) [default: never].
    #[arg(long)]
    pub valid_until: Option<String>,
    /// The credential allows break-glass (emergency) requests and co-signing them (with
    /// the purpose emergency-treatment).
    #[arg(long)]
    pub break_glass: bool,
}

impl ClinicianArgs {
    fn key_file(&self, settings: &Settings) -> PathBuf {
        self.clinician_key
            .clone()
            .unwrap_or_else(|| clinician::default_key_file(&settings.key_dir(), &self.id))
    }

    fn registration(&self) -> Result<Registration> {
        Registration::new(
            self.purposes
                .iter()
                .map(|p| PurposeOfUse::from(*p))
                .collect(),
            self.valid_from
                .as_deref()
                .map(time::parse_moment)
                .transpose()?,
            self.valid_until
                .as_deref()
                .map(time::parse_moment)
                .transpose()?,
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write the audit log as a FHIR R4 Bundle of AuditEvents.
    Export {
        /// Keep entries at or after this time (unix seconds, YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Keep entries before this time.
        #[arg(long)]
        until: Option<String>,
        /// Keep entries of one request.
        #[arg(long)]
        request_id: Option<String>,
        /// Keep entries about one clinician (their requests, their registration).
        #[arg(long)]
        clinician: Option<String>,
        /// Which contract's log.
        #[arg(long, value_enum, default_value = "exchange")]
        source: AuditSource,
        /// Keep only break-glass events (requests, co-signatures, missing co-signatures):
        /// what the privacy office reviews.
        #[arg(long)]
        break_glass: bool,
        /// Output file [default: stdout].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A patient's "who accessed my record" report: every request about them, consent
    /// decision and disclosure on this (the custodian's) chain, as a FHIR Bundle of
    /// AuditEvents.
    Patient {
        #[command(flatten)]
        patient: crate::consent_cmd::PatientArgs,
        /// Output file [default: stdout].
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// A patient's demographics: a JSON file (`-` for stdin), or the four flags. Prefer the
/// file: command-line flags are visible to other users in the process list.
#[derive(Debug, Args, Default)]
pub struct DemographicsArgs {
    /// JSON file with given, family, birth_date, ssn (`-` reads stdin).
    #[arg(long, conflicts_with_all = ["given", "family", "birth_date", "ssn", "from_bundle"])]
    pub demographics: Option<PathBuf>,
    /// Take the details from the one Patient of this FHIR Bundle: its official name,
    /// birthDate and the identifier with system http://hl7.org/fhir/sid/us-ssn.
    #[arg(long, conflicts_with_all = ["given", "family", "birth_date", "ssn"])]
    pub from_bundle: Option<PathBuf>,
    #[arg(long)]
    pub given: Option<String>,
    #[arg(long)]
    pub family: Option<String>,
    /// YYYY-MM-DD, MM/DD/YYYY or YYYYMMDD.
    #[arg(long)]
    pub birth_date: Option<String>,
    /// 123-45-6789 or 123456789.
    #[arg(long)]
    pub ssn: Option<String>,
    /// Requests: the last 4 digits of the SSN, when the whole number is not known.
    #[arg(long, conflicts_with = "ssn")]
    pub ssn_last4: Option<String>,
    /// Requests: male, female, other or unknown.
    #[arg(long, value_enum)]
    pub sex: Option<SexArg>,
    /// Requests: phone number (digits; punctuation ignored).
    #[arg(long)]
    pub phone: Option<String>,
    /// Requests: street line of the home address.
    #[arg(long)]
    pub address_line: Option<String>,
    /// Requests: city of the home address.
    #[arg(long)]
    pub city: Option<String>,
    /// Requests: postal code of the home address.
    #[arg(long)]
    pub postal_code: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SexArg {
    Male,
    Female,
    Other,
    Unknown,
}

impl From<SexArg> for Sex {
    fn from(s: SexArg) -> Sex {
        match s {
            SexArg::Male => Sex::Male,
            SexArg::Female => Sex::Female,
            SexArg::Other => Sex::Other,
            SexArg::Unknown => Sex::Unknown,
        }
    }
}

impl DemographicsArgs {
    fn is_empty(&self) -> bool {
        self.demographics.is_none()
            && self.from_bundle.is_none()
            && self.given.is_none()
            && self.family.is_none()
            && self.birth_date.is_none()
            && self.ssn.is_none()
            && self.ssn_last4.is_none()
            && self.sex.is_none()
            && self.phone.is_none()
            && self.address_line.is_none()
            && self.city.is_none()
            && self.postal_code.is_none()
    }

    /// The details a request sends (sealed to the custodian, who matches them): any of
    /// name, birth date, sex, SSN or its last 4, address and phone, from a Bundle's Patient,
    /// a JSON file (the `Attributes` fields; `birthDate` and `dob` also read as
    /// `birth_date`) or the flags. The birth date is normalised to YYYY-MM-DD.
    pub fn read_attributes(&self) -> Result<Attributes> {
        let mut attributes = if let Some(path) = &self.from_bundle {
            let bytes = Zeroizing::new(read_input(path)?);
            crate::demographics::attributes_from_bundle(&bytes).with_context(|| {
                format!(
                    "the patient's details from {} (give them with --demographics FILE instead)",
                    path.display()
                )
            })?
        } else if let Some(path) = &self.demographics {
            let bytes = Zeroizing::new(read_input(path)?);
            let mut value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                anyhow!(
                    "the demographics file is not JSON (line {}, column {})",
                    e.line(),
                    e.column()
                )
            })?;
            if let Some(object) = value.as_object_mut() {
                for alias in ["birthDate", "dob"] {
                    if let Some(date) = object.remove(alias) {
                        object.insert("birth_date".into(), date);
                    }
                }
            }
            serde_json::from_value(value).map_err(|e| {
                anyhow!(
                    "the demographics file must be a JSON object of given, family, birth_date, \
                     sex, ssn, ssn_last4, address {{line, city, postal_code}} and phone ({})",
                    // serde names the unknown or mistyped field, never its value.
                    e.to_string().split(" at line").next().unwrap_or_default()
                )
            })?
        } else {
            let address =
                (self.address_line.is_some() || self.city.is_some() || self.postal_code.is_some())
                    .then(|| Address {
                        line: self.address_line.clone(),
                        city: self.city.clone(),
                        postal_code: self.postal_code.clone(),
                    });
            Attributes {
                given: self.given.clone(),
                family: self.family.clone(),
                birth_date: self.birth_date.clone(),
                sex: self.sex.map(Sex::from),
                ssn: self.ssn.clone(),
                ssn_last4: self.ssn_last4.clone(),
                address,
                phone: self.phone.clone(),
            }
        };
        if let Some(raw) = &attributes.birth_date {
            attributes.birth_date =
                Some(crate::demographics::normalize_birth_date(raw, time::now_unix())?.to_string());
        }
        attributes.validate().map_err(|e| {
            anyhow!(
                "the patient's details: {e} (a request needs at least a name or a birth date; \
                 add what you know: --given, --family, --birth-date, --ssn or --ssn-last4, \
                 --sex, --phone, --address-line/--city/--postal-code)"
            )
        })?;
        Ok(attributes)
    }

    pub fn read(&self) -> Result<Demographics> {
        if let Some(path) = &self.from_bundle {
            let bytes = Zeroizing::new(read_input(path)?);
            return crate::demographics::from_bundle(&bytes).with_context(|| {
                format!(
                    "the patient's details from {} (give them with --demographics FILE instead)",
                    path.display()
                )
            });
        }
        if let Some(path) = &self.demographics {
            let bytes = Zeroizing::new(read_input(path)?);
            let input: DemographicsInput = serde_json::from_slice(&bytes).map_err(|e| {
                anyhow!(
                    "the demographics file must be JSON with given, family, birth_date and ssn \
                     (line {}, column {})",
                    e.line(),
                    e.column()
                )
            })?;
            return Ok(input.normalise()?);
        }
        let field = |v: &Option<String>, flag: &str| {
            v.clone()
                .map(Zeroizing::new)
                .ok_or_else(|| anyhow!("--{flag} is required (or pass --demographics <file>)"))
        };
        let given = field(&self.given, "given")?;
        let family = field(&self.family, "family")?;
        let birth_date = field(&self.birth_date, "birth-date")?;
        let ssn = field(&self.ssn, "ssn")?;
        Ok(Demographics::new(&given, &family, &birth_date, &ssn)?)
    }
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// FHIR R4 Bundle (JSON) to store (`-` reads stdin).
    #[arg(long)]
    pub bundle: PathBuf,
    /// Record id (16-64 of a-z, 0-9, '-') [default: random].
    #[arg(long)]
    pub record_id: Option<String>,
    /// This hospital's pseudonym for the patient, if already known (otherwise computed from
    /// the demographics with the pseudonym key).
    #[arg(long, alias = "token")]
    pub pseudonym: Option<String>,
    /// What kind of record it is, for the patient's consent directives (signed with it).
    #[arg(long, value_enum, default_value = "general")]
    pub category: CategoryArg,
    #[command(flatten)]
    pub demographics: DemographicsArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Purpose {
    Treatment,
    EmergencyTreatment,
    Payment,
    Operations,
}

impl From<Purpose> for PurposeOfUse {
    fn from(p: Purpose) -> PurposeOfUse {
        match p {
            Purpose::Treatment => PurposeOfUse::Treatment,
            Purpose::EmergencyTreatment => PurposeOfUse::EmergencyTreatment,
            Purpose::Payment => PurposeOfUse::Payment,
            Purpose::Operations => PurposeOfUse::Operations,
        }
    }
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Partner network to ask (its id in the lookup table), e.g. hospital-b.
    #[arg(long, required_unless_present = "resume")]
    pub partner: Option<String>,
    /// The registered clinician who asks: their key signs the request.
    #[arg(long, env = "EHRX_CLINICIAN", required_unless_present = "resume")]
    pub clinician: Option<String>,
    /// The clinician's key file [default: <key_dir>/clinicians/<id>.key].
    #[arg(long, env = "EHRX_CLINICIAN_KEY")]
    pub clinician_key: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "treatment")]
    pub purpose: Purpose,
    #[command(flatten)]
    pub demographics: DemographicsArgs,
    /// Where to write the patient's history (FHIR Bundle; contains PHI, mode 0600).
    #[arg(long)]
    pub out: PathBuf,
    /// Request lifetime in seconds.
    #[arg(long, default_value_t = 600)]
    pub ttl: u64,
    /// How long to wait for an answer, seconds [default: ttl + 120].
    #[arg(long)]
    pub wait_secs: Option<u64>,
    #[arg(long, value_enum, default_value = "collection")]
    pub bundle_type: OutputBundleType,
    /// Do not submit: wait for and retrieve an earlier request.
    #[arg(
        long,
        conflicts_with_all = ["partner", "clinician", "clinician_key"]
    )]
    pub resume: Option<String>,
    /// Break the glass: an emergency request with this coded reason (needs --purpose
    /// emergency-treatment, a credential that allows it, and --reason-text). It is audited as
    /// such on both chains and the partner's privacy office is alerted.
    #[arg(long, value_enum, requires = "reason_text")]
    pub break_glass: Option<EmergencyArg>,
    /// The emergency in the clinician's words (at most 300 characters), sealed to the
    /// partner's privacy office.
    #[arg(long, requires = "break_glass")]
    pub reason_text: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EmergencyArg {
    LifeThreatening,
    PatientUnableToConsent,
    UrgentTreatment,
    Disaster,
}

impl From<EmergencyArg> for EmergencyReason {
    fn from(e: EmergencyArg) -> EmergencyReason {
        match e {
            EmergencyArg::LifeThreatening => EmergencyReason::LifeThreatening,
            EmergencyArg::PatientUnableToConsent => EmergencyReason::PatientUnableToConsent,
            EmergencyArg::UrgentTreatment => EmergencyReason::UrgentTreatment,
            EmergencyArg::Disaster => EmergencyReason::Disaster,
        }
    }
}

/// A record's category, for the patient's consent directives.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum CategoryArg {
    #[default]
    General,
    MentalHealth,
    SubstanceUse,
    Reproductive,
    Hiv,
    Genetic,
}

impl From<CategoryArg> for RecordCategory {
    fn from(c: CategoryArg) -> RecordCategory {
        match c {
            CategoryArg::General => RecordCategory::General,
            CategoryArg::MentalHealth => RecordCategory::MentalHealth,
            CategoryArg::SubstanceUse => RecordCategory::SubstanceUse,
            CategoryArg::Reproductive => RecordCategory::Reproductive,
            CategoryArg::Hiv => RecordCategory::Hiv,
            CategoryArg::Genetic => RecordCategory::Genetic,
        }
    }
}

/// Builds the chain client a command uses (the native client; tests pass their own).
pub type ChainFactory<'f> = &'f dyn Fn(&Settings) -> Result<Box<dyn ChainClient>>;

pub fn native_chain(settings: &Settings) -> Result<Box<dyn ChainClient>> {
    Ok(Box::new(chain::connect(settings)?))
}

pub(crate) fn read_input(path: &Path) -> Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

/// Writes a file readable by its owner only (it may hold PHI).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

pub(crate) fn progress(message: &str) {
    eprintln!("ehrx: {message}");
}

pub(crate) fn print_json(value: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs a parsed command line.
pub fn run(cli: Cli, make_chain: ChainFactory) -> Result<()> {
    let settings = Settings::load(cli.config.as_deref(), &cli.settings)?;
    match cli.command {
        Command::Keys { command } => keys_command(&settings, command),
        Command::Consent { command } => crate::consent_cmd::run(&settings, make_chain, command),
        Command::Clinician {
            command:
                ClinicianCommand::Cosign {
                    id,
                    clinician_key,
                    request_id,
                },
        } => {
            let key_file = clinician_key
                .unwrap_or_else(|| clinician::default_key_file(&settings.key_dir(), &id));
            let key = ClinicianKey::load(&id, &key_file, || Code::ask(&id, false))?;
            let chain = make_chain(&settings)?;
            let peer = Peer::connect(
                chain.as_ref(),
                settings.exchange()?,
                KeyDir::new(settings.key_dir()).load()?,
            )?;
            let bytes =
                ehr_protocol::signing::cosign_sign_bytes(peer.network(), &request_id, key.id());
            let msg = ExecuteMsg::CosignBreakGlass(CosignMsg {
                request_id: request_id.clone(),
                clinician_id: key.id().to_string(),
                signature: cosmwasm_std::Binary::from(
                    crate::sign::sign(key.signing_key(), &bytes).to_vec(),
                ),
            });
            let tx = crate::chain::execute(peer.chain(), peer.contract(), &msg)
                .with_context(|| format!("co-signing request {request_id}"))?;
            progress(&format!(
                "request {request_id} co-signed by {} (tx {})",
                key.id(),
                tx.txhash
            ));
            Ok(())
        }
        Command::Clinician { command } => clinician_command(&settings, command),
        Command::Pseudonym(args) => {
            let key = PseudonymKey::load(settings.pseudonym_key_file()?)?;
            println!("{}", pseudonym::pseudonym(&key, &args.read()?));
            Ok(())
        }
        Command::Store(args) => store_command(&settings, make_chain, args),
        Command::Admin { command } => crate::admin::run(&settings, make_chain, command),
        Command::Request(args) => request_command(&settings, make_chain, args),
        Command::Status { request_id } => {
            let chain = make_chain(&settings)?;
            let request: OutgoingRequest = chain::query(
                chain.as_ref(),
                settings.exchange()?,
                &QueryMsg::Request { request_id },
            )?;
            print_json(&serde_json::to_value(&request)?)
        }
        Command::ReplyService {
            once,
            metrics_addr,
            max_in_flight,
            on_break_glass,
            break_glass_webhook,
        } => {
            let alerts = crate::alert::Alerts {
                program: on_break_glass,
                webhook: break_glass_webhook
                    .as_deref()
                    .map(crate::alert::Webhook::parse)
                    .transpose()?,
            };
            let chain = make_chain(&settings)?;
            let dir = KeyDir::new(settings.key_dir());
            let exchange = settings.exchange()?;
            // The node may be down or restarting when the service starts: keep trying.
            let mut delay = settings.poll_interval().max(Duration::from_secs(1));
            let peer = loop {
                match Peer::connect(chain.as_ref(), exchange, dir.load()?) {
                    Ok(peer) => break peer,
                    Err(e) if !once => {
                        eprintln!(
                            "{}",
                            log_line(&format!(
                                "cannot reach the chain, retrying in {}s: {e:#}",
                                delay.as_secs()
                            ))
                        );
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(Duration::from_secs(120));
                    }
                    Err(e) => return Err(e),
                }
            };
            let records = KeyDir::new(settings.records_key_dir())
                .encryption_secrets()
                .context("loading the records key (records_key_dir, default key_dir)")?;
            let pseudonym_key = PseudonymKey::load(settings.pseudonym_key_file()?)?;
            let mut service = ReplyService::new(
                &peer,
                records,
                pseudonym_key,
                settings.patient_index_file()?,
                settings.state_file(),
            )?
            .with_max_in_flight(usize::from(max_in_flight))
            .with_alerts(alerts);
            if let Some(addr) = metrics_addr {
                // Healthy while a pass succeeded within three safety-net intervals and a minute.
                let stale = 3 * settings.poll_interval().as_secs() + 60;
                let bound = crate::metrics::serve(&addr, service.metrics(), stale)?;
                eprintln!(
                    "{}",
                    log_line(&format!(
                        "metrics on http://{bound}/metrics, health on /health"
                    ))
                );
            }
            eprintln!(
                "{}",
                log_line(&format!(
                    "answering requests to {} as {} (exchange {})",
                    peer.network(),
                    peer.address,
                    peer.contract()
                ))
            );
            service.run(settings.poll_interval(), once, &mut |m| {
                eprintln!("{}", log_line(m))
            })
        }
        Command::Audit {
            command:
                AuditCommand::Export {
                    since,
                    until,
                    request_id,
                    clinician,
                    source,
                    break_glass,
                    out,
                },
        } => {
            let filter = AuditFilter {
                since: since.as_deref().map(time::parse_moment).transpose()?,
                until: until.as_deref().map(time::parse_moment).transpose()?,
                request_id,
                clinician_id: clinician,
                break_glass_only: break_glass,
            };
            let chain = make_chain(&settings)?;
            let exchange = Exchange::connect(chain.as_ref(), settings.exchange()?)?;
            let entries = audit_export::collect(&exchange, source, &filter)?;
            let bundle = audit_export::to_fhir(&exchange, source, &entries);
            let text = serde_json::to_string_pretty(&bundle)?;
            match out {
                Some(path) => {
                    write_private(&path, text.as_bytes())?;
                    progress(&format!(
                        "{} audit event(s) written to {}",
                        entries.len(),
                        path.display()
                    ));
                }
                None => println!("{text}"),
            }
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Patient { patient, out },
        } => {
            let pseudonym = patient.pseudonym(&settings)?;
            let chain = make_chain(&settings)?;
            let exchange = Exchange::connect(chain.as_ref(), settings.exchange()?)?;
            let entries = audit_export::patient_entries(&exchange, &pseudonym)?;
            let report = audit_export::patient_report(&exchange, &entries, &pseudonym);
            let text = serde_json::to_string_pretty(&report)?;
            match out {
                Some(path) => {
                    write_private(&path, text.as_bytes())?;
                    progress(&format!(
                        "{} audit event(s) about the patient written to {}",
                        entries.len(),
                        path.display()
                    ));
                }
                None => println!("{text}"),
            }
            Ok(())
        }
    }
}

fn keys_command(settings: &Settings, command: KeysCommand) -> Result<()> {
    let dir = KeyDir::new(settings.key_dir());
    let show = |keys: &keys::PeerKeys, title: &str| -> Result<()> {
        let snippet = keys.registry_snippet();
        println!("{title} in {}", dir.path().display());
        println!(
            "signing key (secp256k1, compressed, base64):  {}",
            snippet["signing_key"].as_str().unwrap_or_default()
        );
        println!(
            "encryption key (X25519, base64):              {}",
            snippet["encryption_key"].as_str().unwrap_or_default()
        );
        println!("registry PeerInput fields:");
        println!("{}", serde_json::to_string_pretty(&snippet)?);
        Ok(())
    };
    match command {
        KeysCommand::Init => show(&dir.init()?, "new keys"),
        KeysCommand::Show => show(&dir.load()?, "keys"),
        KeysCommand::Rotate { force } => {
            let keys = dir.rotate(force)?;
            show(&keys, "new keys (previous ones kept as *.old)")?;
            println!(
                "ask the registry admin to run RotatePeerKeys with these two keys \
                 (ehrx admin rotate-peer-keys --address <peer> --signing-key .. \
                 --encryption-key ..)"
            );
            Ok(())
        }
        KeysCommand::NewPseudonymKey { out } => {
            PseudonymKey::create_file(&out)?;
            println!(
                "pseudonym key written to {} (this hospital's own: give it to this hospital's \
                 storing and answering peers, never to a partner)",
                out.display()
            );
            Ok(())
        }
    }
}

fn clinician_command(settings: &Settings, command: ClinicianCommand) -> Result<()> {
    // A new code is typed twice; an existing one once, and only for a protected file.
    let new_code = |id: &str, protect: bool| protect.then(|| Code::ask(id, true)).transpose();
    let (args, key, what) = match command {
        ClinicianCommand::New { args, protect } => {
            let code = new_code(&args.id, protect)?;
            let key = ClinicianKey::create(&args.id, &args.key_file(settings), code.as_ref())?;
            (args, key, "new key in")
        }
        ClinicianCommand::Show(args) => {
            let key = ClinicianKey::load(&args.id, &args.key_file(settings), || {
                Code::ask(&args.id, false)
            })?;
            (args, key, "key in")
        }
        ClinicianCommand::Cosign { .. } => unreachable!("run() handles cosign"),
        ClinicianCommand::Rotate {
            args,
            force,
            protect,
        } => {
            let current = ClinicianKey::load(&args.id, &args.key_file(settings), || {
                Code::ask(&args.id, false)
            })?;
            let code = new_code(&args.id, protect)?;
            let key = ClinicianKey::rotate(&current, force, code.as_ref())?;
            (args, key, "new key (the previous one kept as *.old) in")
        }
    };
    let mut registration = args.registration()?;
    registration.break_glass = args.break_glass;
    if args.break_glass
        && !registration
            .allowed_purposes
            .contains(&PurposeOfUse::EmergencyTreatment)
    {
        bail!("--break-glass needs --purpose emergency-treatment as well");
    }
    let msg = key.register_msg(&registration);
    progress(&format!(
        "clinician {}: {what} {} (mode 0600; it stays on this machine)",
        key.id(),
        key.path().display()
    ));
    progress(&format!(
        "public key (secp256k1, compressed, base64): {}",
        keys::b64(&key.public_key())
    ));
    progress(
        "the registry admin registers it with this message: `ehrx admin register-clinician \
         --message <file>` (or wasmd tx wasm execute <registry> '<message>' --from <admin>); \
         until then its requests are refused:",
    );
    println!("{}", serde_json::to_string(&msg)?);
    Ok(())
}

fn store_command(settings: &Settings, make_chain: ChainFactory, args: StoreArgs) -> Result<()> {
    let bundle = Zeroizing::new(read_input(&args.bundle)?);
    // Refused before anything else is read or any chain is asked: nothing is stored.
    let checked = store::CheckedBundle::new(&bundle)
        .with_context(|| format!("{} was not stored", args.bundle.display()))?;
    let pseudonym = match &args.pseudonym {
        Some(pseudonym) => {
            if !args.demographics.is_empty() {
                bail!("pass either --pseudonym or demographics, not both");
            }
            pseudonym.clone()
        }
        None => {
            let key = PseudonymKey::load(settings.pseudonym_key_file()?)?;
            // Without details given, the Bundle's own Patient names the patient.
            let demographics = if args.demographics.is_empty() {
                crate::demographics::from_bundle(&bundle).context(
                    "the patient's details from the Bundle's Patient (give them with \
                     --demographics FILE instead)",
                )?
            } else {
                args.demographics.read()?
            };
            pseudonym::pseudonym(&key, &demographics)
        }
    };
    // What the patient index keeps for matching: the Bundle's Patient, else the details
    // given (read before anything is stored, so a bad index path fails first).
    let index_file = settings.patient_index_file();
    let index_entry = crate::demographics::attributes_from_bundle(&bundle)
        .ok()
        .or_else(|| {
            (!args.demographics.is_empty())
                .then(|| args.demographics.read().ok().map(|d| d.attributes()))
                .flatten()
        });
    let records_key = settings.records_key()?;
    let chain = make_chain(settings)?;
    let keys = KeyDir::new(settings.key_dir()).load()?;
    let peer = Peer::connect(chain.as_ref(), settings.exchange()?, keys)?;
    let stored = store::store(
        &peer,
        &checked,
        args.record_id,
        &pseudonym,
        &records_key,
        args.category.into(),
        &mut |line| eprintln!("{line}"),
    )?;
    let indexed = match (index_file, index_entry) {
        (Ok(path), Some(patient)) => match patient_index::append(&path, &pseudonym, &patient) {
            Ok(()) => true,
            Err(e) => {
                eprintln!(
                    "warning: record {} is stored, but not in the patient index: {e:#}. \
                     Requests with the exact name, birth date and SSN still find it.",
                    stored.record_id
                );
                false
            }
        },
        _ => {
            eprintln!(
                "warning: record {} is stored, but not in the patient index (no Patient \
                 details to index, or no pseudonym key file configured): only requests with \
                 the exact name, birth date and SSN find it.",
                stored.record_id
            );
            false
        }
    };
    print_json(&json!({
        "indexed": indexed,
        "record_id": stored.record_id,
        "history_hash": stored.history_hash,
        "json_bytes": stored.json_bytes,
        "compressed_bytes": stored.compressed_bytes,
        "sealed_bytes": stored.sealed_bytes,
        "chunks": stored.chunks,
        "txhashes": stored.txhashes,
    }))
}

fn request_command(settings: &Settings, make_chain: ChainFactory, args: RequestArgs) -> Result<()> {
    let chain = make_chain(settings)?;
    let dir = KeyDir::new(settings.key_dir());
    let peer = Peer::connect(chain.as_ref(), settings.exchange()?, dir.load()?)?;
    let (request_id, wait) = match &args.resume {
        Some(id) => (id.clone(), args.wait_secs.unwrap_or(args.ttl + 120)),
        None => {
            let clinician_id = args.clinician.as_deref().unwrap_or_default();
            let key_file = args
                .clinician_key
                .clone()
                .unwrap_or_else(|| clinician::default_key_file(&settings.key_dir(), clinician_id));
            let clinician =
                ClinicianKey::load(clinician_id, &key_file, || Code::ask(clinician_id, false))?;
            let patient = args.demographics.read_attributes()?;
            let partner = args.partner.as_deref().unwrap_or_default();
            let submitted = request::submit(
                &peer,
                &RequestInput {
                    partner_id: partner,
                    clinician: &clinician,
                    purpose: args.purpose.into(),
                    patient: &patient,
                    ttl_secs: args.ttl,
                    emergency: args.break_glass.map(|reason| request::Emergency {
                        reason: reason.into(),
                        reason_text: args.reason_text.clone().unwrap_or_default(),
                    }),
                },
            )?;
            progress(&format!(
                "request {} sent to {partner} (tx {}); expires {}",
                submitted.request_id,
                submitted.txhash,
                time::rfc3339(submitted.expires_at, 0)
            ));
            (
                submitted.request_id,
                args.wait_secs.unwrap_or(args.ttl + 120),
            )
        }
    };
    let poll = settings.poll_interval();
    request::wait(
        &peer,
        &request_id,
        poll,
        Duration::from_secs(wait),
        &mut |m| progress(m),
    )?;
    progress(&format!("request {request_id}: retrieving the reply"));
    let reply = request::retrieve(&peer, &request_id)?;
    let content = request::open_reply(
        &peer,
        &dir.encryption_secrets()?,
        &request_id,
        &reply,
        &mut |line| eprintln!("{line}"),
    )?;
    let (bundle, entries) = request::history_bundle(&request_id, &reply, content, args.bundle_type)
        .with_context(|| format!("nothing was written to {}", args.out.display()))?;
    write_private(&args.out, &bundle)?;
    progress(&format!(
        "request {request_id}: {entries} resource(s) from {} ({}) written to {}",
        reply.responder_network,
        reply.responder,
        args.out.display()
    ));
    print_json(&json!({
        "request_id": request_id,
        "status": "answered",
        "responder": reply.responder,
        "responder_network": reply.responder_network,
        "resources": entries,
        "out": args.out,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_settings_may_follow_the_subcommand() {
        let cli = Cli::try_parse_from([
            "ehrx",
            "pseudonym",
            "--given",
            "Ann",
            "--family",
            "Lee",
            "--birth-date",
            "1990-01-01",
            "--ssn",
            "123-45-6789",
            "--pseudonym-key-file",
            "/k",
            "--chain-id",
            "hospital-a",
        ])
        .unwrap();
        assert_eq!(cli.settings.chain_id.as_deref(), Some("hospital-a"));
        assert_eq!(
            cli.settings.pseudonym_key_file.as_deref(),
            Some(Path::new("/k"))
        );
        assert!(matches!(cli.command, Command::Pseudonym(_)));
        // The older names still parse.
        let old = Cli::try_parse_from([
            "ehrx",
            "token",
            "--demographics",
            "-",
            "--token-key-file",
            "/k",
        ])
        .unwrap();
        assert_eq!(
            old.settings.pseudonym_key_file.as_deref(),
            Some(Path::new("/k"))
        );
        assert!(matches!(old.command, Command::Pseudonym(_)));
        // Demographics are always sealed now: the option is gone.
        assert!(Cli::try_parse_from([
            "ehrx",
            "request",
            "--partner",
            "hospital-b",
            "--clinician",
            "c",
            "--with-demographics",
            "--out",
            "h.json"
        ])
        .is_err());
    }

    #[test]
    fn request_needs_partner_and_clinician_unless_resuming() {
        let missing = Cli::try_parse_from(["ehrx", "request", "--out", "h.json"]);
        assert!(missing.is_err());
        let resume =
            Cli::try_parse_from(["ehrx", "request", "--resume", "abc", "--out", "h.json"]).unwrap();
        let Command::Request(args) = resume.command else {
            panic!("request");
        };
        assert_eq!(args.resume.as_deref(), Some("abc"));
        assert!(Cli::try_parse_from([
            "ehrx",
            "request",
            "--resume",
            "abc",
            "--partner",
            "x",
            "--out",
            "h.json"
        ])
        .is_err());
        let full = Cli::try_parse_from([
            "ehrx",
            "request",
            "--partner",
            "hospital-b",
            "--clinician",
            "dr-adams",
            "--purpose",
            "emergency-treatment",
            "--demographics",
            "-",
            "--out",
            "h.json",
        ])
        .unwrap();
        let Command::Request(args) = full.command else {
            panic!("request");
        };
        assert_eq!(
            PurposeOfUse::from(args.purpose),
            PurposeOfUse::EmergencyTreatment
        );
        assert_eq!(args.ttl, 600);
        assert_eq!(args.clinician.as_deref(), Some("dr-adams"));
        assert_eq!(args.clinician_key, None);
        // Requester codes are gone.
        assert!(Cli::try_parse_from([
            "ehrx",
            "request",
            "--partner",
            "hospital-b",
            "--code",
            "C-1",
            "--out",
            "h.json"
        ])
        .is_err());
        assert!(Cli::try_parse_from([
            "ehrx",
            "request",
            "--resume",
            "abc",
            "--clinician-key",
            "k",
            "--out",
            "h.json"
        ])
        .is_err());
    }

    fn no_chain(_: &Settings) -> Result<Box<dyn ChainClient>> {
        bail!("this command needs no chain")
    }

    #[test]
    fn clinician_new_writes_a_private_key_and_the_registration_show_repeats_it() {
        let tmp = tempfile::tempdir().unwrap();
        let key_dir = tmp.path().join("keys");
        let parse = |args: &[&str]| {
            let mut all = vec!["ehrx", "--key-dir", key_dir.to_str().unwrap(), "clinician"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all).unwrap()
        };
        let cli = parse(&[
            "new",
            "--id",
            "dr-adams",
            "--purpose",
            "treatment,emergency-treatment",
            "--valid-until",
            "2030-01-01",
        ]);
        let Command::Clinician {
            command: ClinicianCommand::New { args, protect },
        } = &cli.command
        else {
            panic!("clinician new");
        };
        assert!(!protect);
        let registration = args.registration().unwrap();
        assert_eq!(
            registration.allowed_purposes,
            vec![PurposeOfUse::Treatment, PurposeOfUse::EmergencyTreatment]
        );
        assert_eq!(registration.valid_until, Some(1_893_456_000));
        run(cli, &no_chain).unwrap();
        let path = key_dir.join("clinicians/dr-adams.key");
        let key = ClinicianKey::load("dr-adams", &path, || bail!("not protected")).unwrap();
        // A second `new` refuses; `show` loads the same key.
        assert!(run(parse(&["new", "--id", "dr-adams"]), &no_chain).is_err());
        run(parse(&["show", "--id", "dr-adams"]), &no_chain).unwrap();
        let Command::Clinician {
            command: ClinicianCommand::Show(args),
        } = parse(&["show", "--id", "dr-adams"]).command
        else {
            panic!("clinician show");
        };
        assert_eq!(
            args.registration().unwrap().allowed_purposes,
            vec![PurposeOfUse::Treatment]
        );
        assert_eq!(
            args.key_file(&Settings::default()),
            Path::new("keys/clinicians/dr-adams.key")
        );
        run(parse(&["rotate", "--id", "dr-adams"]), &no_chain).unwrap();
        assert_ne!(
            ClinicianKey::load("dr-adams", &path, || bail!("not protected"))
                .unwrap()
                .public_key(),
            key.public_key()
        );
        let err = run(parse(&["show", "--id", "nurse-9"]), &no_chain)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ehrx clinician new --id nurse-9"), "{err}");
    }

    #[test]
    fn demographics_file_and_flags_are_exclusive() {
        assert!(Cli::try_parse_from([
            "ehrx",
            "token",
            "--demographics",
            "p.json",
            "--given",
            "Ann"
        ])
        .is_err());
        let args = DemographicsArgs {
            given: Some("Ann".into()),
            ..DemographicsArgs::default()
        };
        let err = args.read().unwrap_err().to_string();
        assert!(err.contains("--family"), "{err}");
        assert!(!err.contains("Ann"));
    }
}
