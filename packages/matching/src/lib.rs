//! Patient matching with grades (IHE PDQm `$match` style): deterministic, weighted, private.
//!
//! A responding hospital (the custodian) receives a request carrying a patient's
//! demographics and must find the patient in its own off-chain index. [`answer`] says:
//!
//! * [`Answer::Match`]: exactly one candidate is [`Grade::Certain`] and the runner-up scores
//!   at least [`Weights::margin`] (8) less and is not Certain itself: the history may be
//!   released;
//! * [`Answer::NeedMoreAttributes`]: several candidates, or the best is only Probable or
//!   Possible: the answer names, in the fixed [`AttributeName`] order, the attributes that
//!   would settle it (like IHE XCPD's coded answer);
//! * [`Answer::NoMatch`]: no candidate reaches [`Grade::Possible`].
//!
//! No chain code, no I/O, no clock, no randomness outside [`generate`]: the same index,
//! query and weights always give the same answer (candidates are ordered by score, then
//! by [`PatientId`]).
//!
//! # API
//!
//! * [`Attributes`]: given, family, birth_date (`YYYY-MM-DD`), [`Sex`], ssn (9 digits),
//!   ssn_last4, [`Address`] (line, city, postal_code), phone. All optional; serde
//!   snake_case. Its `Debug` is redacted (only which fields are present): these are PHI.
//!   Invalid values are refused with an [`AttributeError`] naming the field, never the value.
//! * [`Index::new`]`(Vec<(PatientId, Attributes)>)`: normalises once, builds blocking keys.
//! * [`answer`]`(&Index, &Attributes, &Weights) -> Result<Answer, AttributeError>`: a
//!   `Result` because a query with neither a name (given or family) nor a birth date, or
//!   with an invalid attribute, is refused.
//! * [`score`]`(query, candidate, &Weights) -> Result<Scored, AttributeError>`: the total,
//!   the grade, whether the hard rules hold, and the per-field [`Agreement`] levels.
//! * [`Index::candidates`]: every Possible-or-better candidate, best first (for explaining).
//! * [`generate`]: the seeded test population, its [`generate::Rates`], and
//!   [`generate::evaluate`] → [`generate::Report`] (with `to_markdown`).
//!
//! # Normalisation
//!
//! Names: NFKD, combining marks stripped, uppercase, hyphens and whitespace collapsed into
//! one space, other characters dropped (`O'Brien` → `OBRIEN`, `José-María` → `JOSE MARIA`).
//! Street line: uppercase alphanumerics, USPS suffixes abbreviated (`Street` → `ST`,
//! `Apartment` → `APT`, ...). Postal code: first 5 digits. Phone: digits, a leading `1` of
//! 11 digits dropped. SSN: 9 digits (hyphens ignored); `ssn_last4` derived from it.
//!
//! # Score and weights
//!
//! Fellegi–Sunter-like: per field an [`Agreement`] level, each with a weight in the spirit
//! of `log2(m/u)` (m: chance of that level for the same person, u: for two different
//! people), rounded and capped. The **score is the sum of the weights** (a total weight,
//! not normalised to 0..1); a field absent on either side weighs 0.
//!
//! | field | exact | partial levels | disagree |
//! |---|---|---|---|
//! | given | +6 | nickname +4.5; similar (Jaro-Winkler ≥ 0.9, same Soundex, a shared part) +3 | −4 |
//! | family | +8 | similar +5 | −5 |
//! | birth_date | +10 | day/month swapped +5; one digit off or year ±1 +4 | −6 |
//! | sex (`unknown` = absent) | +1 | | −6 |
//! | ssn | +14 | last 4 only, equal +7; one digit off or adjacent transposition +6 | −10 |
//! | address | +5 (postal code and line) | postal code or line +2 | −1 |
//! | phone | +6 | | −1 |
//!
//! Why those numbers: a given name is shared by ~1 in 60 (2^-6), a family name by ~1 in
//! 150 (2^-7, less for the common ones); a birth date by 1 in ~35,000 (2^-15, capped at 10
//! because real dates cluster); an SSN is unique (capped at 14 so that it cannot make a
//! Certain match without a given name); the last 4 digits 1 in 10,000. Address and phone
//! are shared by households and change when people move, so they weigh less and disagree
//! only slightly. A different sex or SSN is strong evidence against (−6, −10); a different
//! family name less so (marriage). Each weight is documented on its [`Weights`] field.
//!
//! Nicknames: an embedded table of 53 groups of common US nicknames (JON/JOHN/JOHNNY/JACK,
//! WILLIAM/BILL/WILL/BILLY/LIAM, ...); two given names agree as nicknames when they share
//! a group. Soundex is the American one, hand-written; Jaro-Winkler comes from `strsim`.
//!
//! # Grades and thresholds
//!
//! * **Certain**: score ≥ 20 ([`Weights::certain`]) **and** every hard rule holds. The only
//!   grade ever released as a Match.
//! * **Probable**: score ≥ 14 ([`Weights::probable`]), or ≥ 20 with a hard rule failing.
//! * **Possible**: score ≥ 8 ([`Weights::possible`]); below it, not a candidate.
//!
//! For example: exact given name + full SSN = 6 + 14 = 20 (Certain); a nickname + full SSN
//! = 18.5 (Probable: one more agreeing field is needed); given + family + birth date +
//! address with no SSN = 29 (Certain); the same without address and phone = 24, Probable
//! by the hard rules.
//!
//! # Hard rules (for Certain)
//!
//! 1. The given name agrees: exact or a nickname (a typo-similar name is not enough).
//! 2. And either the full SSN agrees exactly, or the birth date is exact, the family name
//!    agrees (exact or similar) and the address (postal code and line) or the phone agrees.
//! 3. Never when the sex disagrees (both known), nor when the SSN (or its last 4)
//!    disagrees (both known; a one-digit typo or a transposition is not a disagreement).
//!
//! Hence a near twin (same family, birth date, address, phone; another given name and
//! SSN) is never Certain for its twin's query: rule 1 fails, or rule 3 when the query
//! carries the SSN. When the query has no given name and no SSN, both twins are in
//! contention and the answer is `NeedMoreAttributes { [given, ssn], candidates: 2 }`.
//!
//! # Which attributes `NeedMoreAttributes` names
//!
//! The candidates in contention are those at Possible or better within [`Weights::margin`]
//! of the best. In [`AttributeName`] order, an attribute is named when it is absent from the
//! query and the candidates hold it and it tells them apart (or it confirms the only one);
//! or when it is present but agrees only in part with the best candidate (a typo, a
//! nickname, a swapped date, a moved address: to be confirmed). `ssn` is asked when the
//! query has only the last 4; `ssn_last4` only when the full SSN is not asked.
//!
//! # Blocking
//!
//! A query is scored only against the patients sharing at least one key: birth year, birth
//! month-day (and the swapped order), family and given Soundex (whole and per part) and
//! 2-letter prefix, nickname group, SSN last 4 and each 3-digit SSN chunk, phone, postal
//! code, street line. Every positive agreement level implies a shared key, except a
//! given (+3) or family (+5) name similar by Jaro-Winkler alone (another Soundex and
//! prefix) and an address agreeing by the city alone (+2): a candidate could reach Possible
//! (8) through those only if the birth date, SSN and phone are absent on one side (any
//! positive birth-date level shares the year or the month-day key). The population test
//! checks, for all 2,500 queries, that blocking finds exactly the candidates the
//! exhaustive scan finds. On the default population a query is compared with ~122 of the
//! 2,000 patients (~6%, also at 20,000).
//!
//! # Test population and rates
//!
//! [`generate::Population::default`]: ChaCha8 with the fixed [`generate::SEED`], 2,000
//! enrolled patients (US-style given names by sex, 100 each; 159 family names, both
//! skewed towards the common ones; birth dates 1930–2024; valid SSNs, unique; addresses in
//! 20 cities; phones), of which twins (3% of generated patients get one: same family,
//! birth date, address, phone; another given name, not a nickname of the first, and SSN;
//! the same sex half of the time) and near twins (1%: same names and birth year and month,
//! another day). One query per enrolled patient, plus 500 people never enrolled, with
//! these [`generate::Rates`], drawn independently (those on one field are exclusive):
//!
//! | variant | rate |
//! |---|---|
//! | typo in given (one substitution, deletion or adjacent transposition) | 8% |
//! | typo in family | 6% |
//! | nickname for given (only names that have one) | 7% |
//! | day and month swapped (both ≤ 12) | 3% |
//! | SSN missing | 25% |
//! | SSN last 4 only | 10% |
//! | address missing | 20% |
//! | address moved | 5% |
//! | phone missing | 30% |
//! | sex missing | 10% |
//!
//! **The generator and the rates were fixed before the weights were set**, and not
//! changed afterwards. The weights above are the first ones set from the m/u reasoning;
//! the measured result met the targets, so they were not tuned further.
//!
//! Measured (`cargo run -p ehrx-matching --example match_report --release`): 1,774 of
//! 2,000 enrolled queries answered Match, all with the true patient (precision of
//! Certain 1.0, recall 0.887); 0 false matches; 0 of the 106 twin queries matched to the
//! twin; 496 of the 500 non-enrolled queries NoMatch, 4 NeedMoreAttributes, none Match.
//! Almost all the recall lost is the given-name typos (8% of the queries, never Certain by
//! rule 1) and queries without SSN that also lack both address and phone. On seeds 1–5
//! (2,000 + 500 each) recall is 0.888–0.899 with 0 false matches; on 20,000 + 5,000
//! (seed 9), 0.886 and 0 false matches.

mod attributes;
pub mod generate;
mod index;
mod names;
mod score;

pub use attributes::{Address, AttributeError, AttributeName, Attributes, Sex};
pub use index::{answer, Answer, Candidate, Index, IndexError, PatientId};
pub use score::{score, Agreement, Grade, Scored, Weights};
