//! Clinical access rules (issue 12): a patient's sharing directives, enforced by the
//! custodian's chain before any record leaves it, and the break-glass claim a clinician
//! makes in an emergency.
//!
//! A directive is recorded under the custodian's own pseudonym for the patient, on the
//! custodian's chain only. Nothing about it is broadcast: a partner learns of a directive
//! only when it asks about that patient, as a coded refusal sealed to its requester.
//!
//! One definition of the decision ([`evaluate`]), used by the exchange contract (which
//! enforces it on `SubmitReply` and on every later chunk) and by the peer tool (which asks
//! before it builds a reply, and shows a privacy officer why).

use crate::error_code::ErrorCode;
use crate::exchange::PurposeOfUse;
use crate::validate;
use cosmwasm_schema::cw_serde;
use cosmwasm_std::Addr;

/// At most this many partners, purposes or categories in one directive.
pub const MAX_DIRECTIVE_SCOPE: usize = 16;
/// At most this many directives kept for one patient (revoked ones included: they are the
/// patient's consent history).
pub const MAX_DIRECTIVES_PER_PATIENT: u32 = 32;

/// A category of record that a directive may single out. A record is stored with one;
/// `General` when the storer names none.
#[cw_serde]
#[derive(Copy, Eq, PartialOrd, Ord, Hash, Default)]
pub enum RecordCategory {
    #[default]
    General,
    /// Mental health (HL7 v3 ActCode `PSY`).
    MentalHealth,
    /// Substance use disorder treatment, 42 CFR Part 2 (HL7 v3 ActCode `ETH`).
    SubstanceUse,
    /// Sexual and reproductive health (HL7 v3 ActCode `SDV`... see the FHIR mapping).
    Reproductive,
    /// HIV/AIDS (HL7 v3 ActCode `HIV`).
    Hiv,
    /// Genetic information (HL7 v3 ActCode `GDIS`).
    Genetic,
}

impl RecordCategory {
    pub const ALL: [RecordCategory; 6] = [
        RecordCategory::General,
        RecordCategory::MentalHealth,
        RecordCategory::SubstanceUse,
        RecordCategory::Reproductive,
        RecordCategory::Hiv,
        RecordCategory::Genetic,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            RecordCategory::General => "general",
            RecordCategory::MentalHealth => "mental_health",
            RecordCategory::SubstanceUse => "substance_use",
            RecordCategory::Reproductive => "reproductive",
            RecordCategory::Hiv => "hiv",
            RecordCategory::Genetic => "genetic",
        }
    }
}

#[cw_serde]
#[derive(Copy, Eq)]
pub enum ConsentDecision {
    Permit,
    Deny,
}

/// A patient's sharing directive as the custodian's privacy office enters it.
#[cw_serde]
pub struct ConsentDirectiveInput {
    /// The directive's id: 16..=64 chars of `[a-z0-9-]` (random; the FHIR Consent's id).
    pub directive_id: String,
    /// The custodian's pseudonym for the patient (64 lowercase hex).
    pub patient: String,
    pub decision: ConsentDecision,
    /// Partner networks it applies to; empty: every partner.
    #[serde(default)]
    pub partners: Vec<String>,
    /// Purposes of use it applies to; empty: every purpose.
    #[serde(default)]
    pub purposes: Vec<PurposeOfUse>,
    /// Record categories it applies to; empty: every category.
    #[serde(default)]
    pub categories: Vec<RecordCategory>,
    /// Unix seconds; absent: from now.
    #[serde(default)]
    pub valid_from: Option<u64>,
    /// Unix seconds; absent: until revoked.
    #[serde(default)]
    pub valid_until: Option<u64>,
    /// For a `Deny`: the patient allows a break-glass request to override it in an
    /// emergency. Ignored for a `Permit`.
    #[serde(default)]
    pub break_glass_override: bool,
}

impl ConsentDirectiveInput {
    /// The format checks, before anything is written: the code a refusal is reported with.
    pub fn validate(&self) -> Result<(), ErrorCode> {
        validate::id(&self.directive_id)?;
        validate::patient_token(&self.patient)?;
        for partner in &self.partners {
            validate::name(partner)?;
        }
        let bad = self.partners.len() > MAX_DIRECTIVE_SCOPE
            || self.purposes.len() > MAX_DIRECTIVE_SCOPE
            || self.categories.len() > MAX_DIRECTIVE_SCOPE
            || has_duplicates(&self.partners)
            || has_duplicates(&self.purposes)
            || has_duplicates(&self.categories)
            || matches!((self.valid_from, self.valid_until), (Some(f), Some(u)) if u <= f);
        if bad {
            return Err(ErrorCode::InvalidFormat);
        }
        Ok(())
    }
}

fn has_duplicates<T: PartialEq>(items: &[T]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, a)| items[..i].contains(a))
}

#[cw_serde]
#[derive(Copy, Eq)]
pub enum DirectiveStatus {
    Active,
    /// Revoked at this block time (unix seconds); kept as the patient's consent history.
    Revoked {
        at: u64,
    },
}

/// A directive as the custodian's chain keeps it: as entered, and who recorded it when.
#[cw_serde]
pub struct ConsentDirective {
    pub input: ConsentDirectiveInput,
    /// The peer (privacy office) that recorded it.
    pub recorded_by: Addr,
    /// Block time, unix seconds.
    pub recorded_at: u64,
    pub status: DirectiveStatus,
}

impl ConsentDirective {
    /// In force at `now`: not revoked, and within its validity.
    pub fn in_force(&self, now: u64) -> bool {
        self.status == DirectiveStatus::Active
            && now >= self.input.valid_from.unwrap_or(self.recorded_at)
            && self.input.valid_until.is_none_or(|until| now < until)
    }

    /// Whether it speaks to a release of `category` to `partner` for `purpose`.
    pub fn applies(&self, partner: &str, purpose: PurposeOfUse, category: RecordCategory) -> bool {
        let i = &self.input;
        (i.partners.is_empty() || i.partners.iter().any(|p| p == partner))
            && (i.purposes.is_empty() || i.purposes.contains(&purpose))
            && (i.categories.is_empty() || i.categories.contains(&category))
    }
}

/// What is asked of the patient's directives: may these categories of record go to this
/// partner, for this purpose, now?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentQuestion<'a> {
    pub partner: &'a str,
    pub purpose: PurposeOfUse,
    pub categories: &'a [RecordCategory],
    /// The request is a break-glass request still within its time box.
    pub break_glass: bool,
    pub now: u64,
}

/// The answer, with the directive that decided it (its id), for the audit.
#[cw_serde]
pub enum ConsentOutcome {
    /// A directive in force permits it, and none denies it.
    Permitted { directive_id: String },
    /// No directive in force speaks to it: the custodian's policy default (permit).
    PermittedByDefault,
    /// A deny the patient allowed break-glass to override, overridden by a break-glass
    /// request: released, and audited as such.
    OverriddenByBreakGlass { directive_id: String },
    /// A directive in force denies it (or the policy's default is deny and none permits).
    Denied { directive_id: Option<String> },
}

impl ConsentOutcome {
    pub fn permits(&self) -> bool {
        !matches!(self, ConsentOutcome::Denied { .. })
    }

    /// The directive that decided, if one did.
    pub fn directive_id(&self) -> Option<&str> {
        match self {
            ConsentOutcome::Permitted { directive_id }
            | ConsentOutcome::OverriddenByBreakGlass { directive_id } => Some(directive_id),
            ConsentOutcome::Denied { directive_id } => directive_id.as_deref(),
            ConsentOutcome::PermittedByDefault => None,
        }
    }
}

/// The decision, deterministic and in one place. Deny wins: for every category asked, a
/// deny in force that applies refuses the release unless it allows break-glass and the
/// request is one; otherwise a permit in force that applies, or else `default`, decides.
/// The first deciding directive (in the order given) is named.
pub fn evaluate(
    directives: &[ConsentDirective],
    default: ConsentDecision,
    question: &ConsentQuestion,
) -> ConsentOutcome {
    let categories: &[RecordCategory] = if question.categories.is_empty() {
        &[RecordCategory::General]
    } else {
        question.categories
    };
    let in_force: Vec<&ConsentDirective> = directives
        .iter()
        .filter(|d| d.in_force(question.now))
        .collect();
    let mut overridden: Option<&str> = None;
    let mut permitted: Option<&str> = None;
    for &category in categories {
        let applying = || {
            in_force
                .iter()
                .filter(move |d| d.applies(question.partner, question.purpose, category))
        };
        for d in applying().filter(|d| d.input.decision == ConsentDecision::Deny) {
            if question.break_glass && d.input.break_glass_override {
                overridden.get_or_insert(&d.input.directive_id);
            } else {
                return ConsentOutcome::Denied {
                    directive_id: Some(d.input.directive_id.clone()),
                };
            }
        }
        let permit = applying().find(|d| d.input.decision == ConsentDecision::Permit);
        match (permit, default) {
            (Some(d), _) => {
                permitted.get_or_insert(&d.input.directive_id);
            }
            (None, ConsentDecision::Deny) if overridden.is_none() => {
                return ConsentOutcome::Denied { directive_id: None };
            }
            (None, _) => {}
        }
    }
    match (overridden, permitted) {
        (Some(id), _) => ConsentOutcome::OverriddenByBreakGlass {
            directive_id: id.to_string(),
        },
        (None, Some(id)) => ConsentOutcome::Permitted {
            directive_id: id.to_string(),
        },
        (None, None) => ConsentOutcome::PermittedByDefault,
    }
}

/// The coded reason a clinician gives for a break-glass request (travels in clear in the
/// signed request, so both chains can audit it; the free text is sealed to the custodian
/// inside the request's sealed patient details).
#[cw_serde]
#[derive(Copy, Eq)]
pub enum EmergencyReason {
    /// Life or limb is at immediate risk.
    LifeThreatening,
    /// The patient is unconscious or otherwise cannot be asked.
    PatientUnableToConsent,
    /// Urgent care where the history changes treatment now (allergies, anticoagulants).
    UrgentTreatment,
    /// A declared disaster or mass-casualty event.
    Disaster,
}

impl EmergencyReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            EmergencyReason::LifeThreatening => "life_threatening",
            EmergencyReason::PatientUnableToConsent => "patient_unable_to_consent",
            EmergencyReason::UrgentTreatment => "urgent_treatment",
            EmergencyReason::Disaster => "disaster",
        }
    }
}

/// A clinician's claim of an emergency, in the signed request. `reason` is required: a claim
/// without one is refused with `ReasonRequired` (it is optional on the wire only so that the
/// refusal is a coded one, not a parse error).
#[cw_serde]
pub struct BreakGlass {
    pub reason: Option<EmergencyReason>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn directive(id: &str, decision: ConsentDecision) -> ConsentDirective {
        ConsentDirective {
            input: ConsentDirectiveInput {
                directive_id: format!("{id:-<16}"),
                patient: P.to_string(),
                decision,
                partners: vec![],
                purposes: vec![],
                categories: vec![],
                valid_from: None,
                valid_until: None,
                break_glass_override: false,
            },
            recorded_by: Addr::unchecked("office"),
            recorded_at: 100,
            status: DirectiveStatus::Active,
        }
    }

    fn ask<'a>(
        partner: &'a str,
        purpose: PurposeOfUse,
        cats: &'a [RecordCategory],
    ) -> ConsentQuestion<'a> {
        ConsentQuestion {
            partner,
            purpose,
            categories: cats,
            break_glass: false,
            now: 1_000,
        }
    }

    #[test]
    fn no_directive_falls_back_to_the_default() {
        let q = ask("hospital-a", PurposeOfUse::Treatment, &[]);
        assert_eq!(
            evaluate(&[], ConsentDecision::Permit, &q),
            ConsentOutcome::PermittedByDefault
        );
        assert_eq!(
            evaluate(&[], ConsentDecision::Deny, &q),
            ConsentOutcome::Denied { directive_id: None }
        );
    }

    #[test]
    fn a_deny_per_partner_refuses_that_partner_only() {
        let mut d = directive("deny-a", ConsentDecision::Deny);
        d.input.partners = vec!["hospital-a".into()];
        let ds = [d];
        let to_a = ask("hospital-a", PurposeOfUse::Treatment, &[]);
        let to_c = ask("hospital-c", PurposeOfUse::Treatment, &[]);
        assert!(!evaluate(&ds, ConsentDecision::Permit, &to_a).permits());
        assert!(evaluate(&ds, ConsentDecision::Permit, &to_c).permits());
    }

    #[test]
    fn a_deny_per_purpose_and_category_refuses_only_what_it_names() {
        let mut d = directive("deny-su", ConsentDecision::Deny);
        d.input.purposes = vec![PurposeOfUse::Operations];
        d.input.categories = vec![RecordCategory::SubstanceUse];
        let ds = [d];
        let cats = [RecordCategory::General, RecordCategory::SubstanceUse];
        assert!(!evaluate(
            &ds,
            ConsentDecision::Permit,
            &ask("x", PurposeOfUse::Operations, &cats)
        )
        .permits());
        assert!(evaluate(
            &ds,
            ConsentDecision::Permit,
            &ask("x", PurposeOfUse::Treatment, &cats)
        )
        .permits());
        assert!(evaluate(
            &ds,
            ConsentDecision::Permit,
            &ask("x", PurposeOfUse::Operations, &[RecordCategory::General])
        )
        .permits());
    }

    #[test]
    fn deny_wins_over_permit() {
        let ds = [
            directive("permit-all", ConsentDecision::Permit),
            directive("deny-all", ConsentDecision::Deny),
        ];
        let q = ask("x", PurposeOfUse::Treatment, &[]);
        assert_eq!(
            evaluate(&ds, ConsentDecision::Permit, &q),
            ConsentOutcome::Denied {
                directive_id: Some("deny-all--------".into())
            }
        );
    }

    #[test]
    fn break_glass_overrides_only_a_deny_the_patient_allowed() {
        let mut overridable = directive("deny-bg-ok", ConsentDecision::Deny);
        overridable.input.break_glass_override = true;
        let firm = directive("deny-firm", ConsentDecision::Deny);
        let mut q = ask("x", PurposeOfUse::EmergencyTreatment, &[]);
        q.break_glass = true;
        assert_eq!(
            evaluate(
                std::slice::from_ref(&overridable),
                ConsentDecision::Permit,
                &q
            ),
            ConsentOutcome::OverriddenByBreakGlass {
                directive_id: "deny-bg-ok------".into()
            }
        );
        assert!(!evaluate(&[overridable.clone(), firm], ConsentDecision::Permit, &q).permits());
        q.break_glass = false;
        assert!(!evaluate(&[overridable], ConsentDecision::Permit, &q).permits());
    }

    #[test]
    fn revoked_and_expired_directives_do_not_count() {
        let mut revoked = directive("deny-revoked", ConsentDecision::Deny);
        revoked.status = DirectiveStatus::Revoked { at: 500 };
        let mut expired = directive("deny-expired", ConsentDecision::Deny);
        expired.input.valid_until = Some(900);
        let mut future = directive("deny-future", ConsentDecision::Deny);
        future.input.valid_from = Some(2_000);
        let q = ask("x", PurposeOfUse::Treatment, &[]);
        assert!(evaluate(&[revoked, expired, future], ConsentDecision::Permit, &q).permits());
    }

    /// A change that makes a valid directive malformed.
    type Spoil = Box<dyn Fn(&mut ConsentDirectiveInput)>;

    #[test]
    fn a_malformed_directive_is_refused_with_invalid_format() {
        let ok = directive("fine", ConsentDecision::Permit).input;
        assert_eq!(ok.validate(), Ok(()));
        let cases: Vec<Spoil> = vec![
            Box::new(|d| d.directive_id = "short".into()),
            Box::new(|d| d.patient = "not-hex".into()),
            Box::new(|d| d.patient = P.to_uppercase()),
            Box::new(|d| d.partners = vec!["a".into(), "a".into()]),
            Box::new(|d| d.partners = vec![String::new()]),
            Box::new(|d| d.purposes = vec![PurposeOfUse::Treatment, PurposeOfUse::Treatment]),
            Box::new(|d| {
                d.valid_from = Some(10);
                d.valid_until = Some(10)
            }),
        ];
        for (i, case) in cases.iter().enumerate() {
            let mut bad = ok.clone();
            case(&mut bad);
            assert_eq!(bad.validate(), Err(ErrorCode::InvalidFormat), "case {i}");
        }
    }
}
