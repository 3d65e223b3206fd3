//! `ehrx consent …`: the custodian's privacy office records, imports, revokes and lists a
//! patient's sharing directives (issue 12). Directives are kept on this hospital's chain
//! under its own pseudonym for the patient; the exchange contract enforces them before any
//! record leaves. Sent by a peer registered with the `privacy` role.

use crate::chain;
use crate::cli::{
    print_json, progress, read_input, CategoryArg, ChainFactory, DemographicsArgs, Purpose,
};
use crate::config::Settings;
use crate::fhir_consent::{consent_from_fhir, consent_to_fhir};
use crate::keys::KeyDir;
use crate::peer::{random_id, Exchange, Peer};
use crate::pseudonym::{self, PseudonymKey};
use crate::time;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use ehr_protocol::consent::{ConsentDecision, ConsentDirective, ConsentDirectiveInput};
use ehr_protocol::exchange::{ConsentDirectivesResponse, ExecuteMsg, QueryMsg};
use ehr_protocol::limits::MAX_PAGE;
use serde_json::json;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// Record a patient's directive: permit or deny, for some partners, purposes and record
    /// categories (each empty = all), for a period.
    Record(RecordArgs),
    /// Record a directive from a FHIR R4 Consent (the patient by a contained Patient's
    /// details, or by this hospital's pseudonym identifier).
    Import {
        /// The Consent (JSON; `-` reads stdin).
        #[arg(long)]
        file: PathBuf,
    },
    /// Revoke a directive (it stays in the patient's consent history).
    Revoke {
        #[command(flatten)]
        patient: PatientArgs,
        /// The directive's id.
        #[arg(long)]
        id: String,
    },
    /// A patient's directives, revoked ones included: as JSON, or as FHIR R4 Consents.
    List {
        #[command(flatten)]
        patient: PatientArgs,
        /// Print a FHIR Bundle of Consent resources instead of the chain's JSON.
        #[arg(long)]
        fhir: bool,
    },
}

/// The patient: this hospital's pseudonym, or the details it is derived from (with the
/// pseudonym key).
#[derive(Debug, Args)]
pub struct PatientArgs {
    /// This hospital's pseudonym for the patient, if already known.
    #[arg(long)]
    pub pseudonym: Option<String>,
    #[command(flatten)]
    pub demographics: DemographicsArgs,
}

impl PatientArgs {
    /// The pseudonym: given, or derived from the details with this hospital's key.
    pub fn pseudonym(&self, settings: &Settings) -> Result<String> {
        if let Some(p) = &self.pseudonym {
            ehr_protocol::validate::patient_token(p).map_err(|_| {
                anyhow!("--pseudonym must be 64 lowercase hex characters (InvalidFormat)")
            })?;
            return Ok(p.clone());
        }
        let key = PseudonymKey::load(settings.pseudonym_key_file()?)?;
        Ok(pseudonym::pseudonym(&key, &self.demographics.read()?))
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DecisionArg {
    Permit,
    Deny,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(flatten)]
    pub patient: PatientArgs,
    #[arg(long, value_enum)]
    pub decision: DecisionArg,
    /// A partner network it applies to (repeat; none: every partner).
    #[arg(long = "partner")]
    pub partners: Vec<String>,
    /// A purpose of use it applies to (repeat; none: every purpose).
    #[arg(long = "purpose", value_enum)]
    pub purposes: Vec<Purpose>,
    /// A record category it applies to (repeat; none: every category).
    #[arg(long = "category", value_enum)]
    pub categories: Vec<CategoryArg>,
    /// In force from (unix seconds, YYYY-MM-DD or RFC 3339) [default: now].
    #[arg(long)]
    pub from: Option<String>,
    /// In force until (exclusive) [default: until revoked].
    #[arg(long)]
    pub until: Option<String>,
    /// A deny the patient allows a break-glass (emergency) request to override.
    #[arg(long)]
    pub break_glass_override: bool,
    /// The directive's id (16-64 of a-z, 0-9, '-') [default: random].
    #[arg(long)]
    pub id: Option<String>,
}

pub fn run(settings: &Settings, make_chain: ChainFactory, command: ConsentCommand) -> Result<()> {
    match command {
        ConsentCommand::Record(args) => {
            let patient = args.patient.pseudonym(settings)?;
            if args.break_glass_override && matches!(args.decision, DecisionArg::Permit) {
                bail!("--break-glass-override applies to a deny only");
            }
            let directive = ConsentDirectiveInput {
                directive_id: args.id.unwrap_or_else(random_id),
                patient,
                decision: match args.decision {
                    DecisionArg::Permit => ConsentDecision::Permit,
                    DecisionArg::Deny => ConsentDecision::Deny,
                },
                partners: args.partners,
                purposes: args.purposes.into_iter().map(Into::into).collect(),
                categories: args.categories.into_iter().map(Into::into).collect(),
                valid_from: args.from.as_deref().map(time::parse_moment).transpose()?,
                valid_until: args.until.as_deref().map(time::parse_moment).transpose()?,
                break_glass_override: args.break_glass_override,
            };
            record(settings, make_chain, directive)
        }
        ConsentCommand::Import { file } => {
            let bytes = read_input(&file)?;
            let chain = make_chain(settings)?;
            let exchange = Exchange::connect(chain.as_ref(), settings.exchange()?)?;
            let imported = consent_from_fhir(&bytes, &exchange.network)
                .with_context(|| format!("{} was not imported", file.display()))?;
            let key = match &imported.patient {
                crate::fhir_consent::ConsentPatient::Demographics(_) => {
                    Some(PseudonymKey::load(settings.pseudonym_key_file()?)?)
                }
                crate::fhir_consent::ConsentPatient::Pseudonym(_) => None,
            };
            let directive = imported
                .into_input(|d| {
                    key.as_ref()
                        .map(|k| pseudonym::pseudonym(k, d))
                        .unwrap_or_default()
                })
                .with_context(|| format!("{} was not imported", file.display()))?;
            drop(chain);
            record(settings, make_chain, directive)
        }
        ConsentCommand::Revoke { patient, id } => {
            let patient = patient.pseudonym(settings)?;
            let msg = ExecuteMsg::RevokeConsent {
                patient,
                directive_id: id.clone(),
            };
            let tx = execute(settings, make_chain, &msg)?;
            progress(&format!("directive {id} revoked (tx {})", tx));
            print_json(&json!({"directive_id": id, "revoked": true, "txhash": tx}))
        }
        ConsentCommand::List { patient, fhir } => {
            let patient = patient.pseudonym(settings)?;
            let chain = make_chain(settings)?;
            let exchange = Exchange::connect(chain.as_ref(), settings.exchange()?)?;
            let directives = directives(&exchange, &patient)?;
            if fhir {
                let entries: Vec<_> = directives
                    .iter()
                    .map(|d| {
                        json!({
                            "fullUrl": format!("urn:ehrx:consent:{}", d.input.directive_id),
                            "resource": consent_to_fhir(d, &exchange.network),
                        })
                    })
                    .collect();
                print_json(
                    &json!({"resourceType": "Bundle", "type": "collection", "entry": entries}),
                )
            } else {
                print_json(&serde_json::to_value(&directives)?)
            }
        }
    }
}

/// Checks the directive as the contract will, then records it.
fn record(
    settings: &Settings,
    make_chain: ChainFactory,
    directive: ConsentDirectiveInput,
) -> Result<()> {
    directive.validate().map_err(|code| {
        anyhow!(
            "the directive is malformed ({code}): an id of 16-64 of a-z, 0-9 and '-', partner \
             ids of 1-64 of A-Z, a-z, 0-9, '.', '_' and '-', no repeats, at most 16 of each, \
             and `until` after `from`; nothing was recorded"
        )
    })?;
    let id = directive.directive_id.clone();
    let tx = execute(
        settings,
        make_chain,
        &ExecuteMsg::RecordConsent { directive },
    )?;
    progress(&format!("directive {id} recorded (tx {tx})"));
    print_json(&json!({"directive_id": id, "txhash": tx}))
}

fn execute(settings: &Settings, make_chain: ChainFactory, msg: &ExecuteMsg) -> Result<String> {
    let chain = make_chain(settings)?;
    let keys = KeyDir::new(settings.key_dir()).load()?;
    let peer = Peer::connect(chain.as_ref(), settings.exchange()?, keys)?;
    let tx = chain::execute(peer.chain(), peer.contract(), msg).context(
        "the exchange contract refused it (a peer with the privacy role sends consent \
         directives; see the reason code)",
    )?;
    Ok(tx.txhash)
}

/// Every directive of `patient`, oldest id first.
pub fn directives(exchange: &Exchange, patient: &str) -> Result<Vec<ConsentDirective>> {
    let mut all = Vec::new();
    let mut start_after = None;
    loop {
        let page: ConsentDirectivesResponse = chain::query(
            exchange.chain,
            &exchange.contract,
            &QueryMsg::ConsentDirectives {
                patient: patient.to_string(),
                start_after: start_after.clone(),
                limit: Some(MAX_PAGE),
            },
        )?;
        let full = page.directives.len() >= MAX_PAGE as usize;
        start_after = page.directives.last().map(|d| d.input.directive_id.clone());
        all.extend(page.directives);
        if !full {
            return Ok(all);
        }
    }
}
