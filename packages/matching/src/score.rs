//! Per-field agreement levels, their weights, the total score and the grade.

use serde::{Deserialize, Serialize};

use crate::attributes::{AttributeError, AttributeName, Attributes, Date, Norm, NormName};

/// How one field of the query compares with the same field of a candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Agreement {
    /// Equal after normalisation (address: postal code and street line both equal).
    Exact,
    /// Given names in a common nickname group (JON / JOHN).
    Nickname,
    /// Names: Jaro-Winkler ≥ [`Weights::similarity`], same Soundex, or one name a part of
    /// the other (a middle name, one half of a compound family name).
    Similar,
    /// Birth date with day and month swapped.
    Swapped,
    /// Birth date: one digit of `YYYYMMDD` differs, or the year off by one;
    /// SSN: one digit differs, or two adjacent digits transposed.
    Typo,
    /// SSN: only the last 4 digits could be compared (one side has only those), and they agree.
    Last4,
    /// Address: the postal code or the street line agrees, not both.
    Partial,
    /// Both known, and none of the above.
    Disagree,
    /// Absent on either side: weight 0.
    Missing,
}

/// A candidate's grade. Only [`Grade::Certain`] is ever released as a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    /// Below [`Grade::Probable`] but at or above [`Weights::possible`]: worth asking about.
    Possible,
    /// At or above [`Weights::probable`], or at or above [`Weights::certain`] but failing a
    /// hard rule: likely the patient, not enough to release a history.
    Probable,
    /// At or above [`Weights::certain`] and every hard rule holds (see the crate docs).
    Certain,
}

/// The weights (log2 likelihood-ratio style: roughly `log2(m/u)` where `m` is the chance the
/// level is seen for the same person and `u` for two different people, rounded and then
/// tuned on the generated population after its rates were fixed) and the thresholds.
/// Every number is documented on its field; the crate docs explain the scheme.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// Given name equal: ~1 in 60 people share a given name (u ≈ 2^-6).
    pub given_exact: f64,
    /// Nickname of each other: slightly weaker, groups hold several formal names.
    pub given_nickname: f64,
    /// Typo-similar / same Soundex: weaker still.
    pub given_similar: f64,
    /// Different given names.
    pub given_disagree: f64,
    /// Family name equal: ~1 in 150 (u ≈ 2^-7, the common names pull it down from 2^-8).
    pub family_exact: f64,
    /// Typo-similar / same Soundex / a part of a compound name.
    pub family_similar: f64,
    /// Different family names (marriage changes them, so not as negative as the DOB).
    pub family_disagree: f64,
    /// Birth date equal: 1 in ~35,000 days over 95 years (u ≈ 2^-15), capped at 10 because
    /// the dates of real populations cluster.
    pub birth_date_exact: f64,
    /// Day and month swapped (a US/European order confusion).
    pub birth_date_swapped: f64,
    /// One digit off, or the year off by one.
    pub birth_date_typo: f64,
    /// Different birth dates: a strong sign of a different person.
    pub birth_date_disagree: f64,
    /// Same sex: u ≈ 1/2, worth one bit.
    pub sex_agree: f64,
    /// Different sex (both known): rare for the same person; also a hard rule.
    pub sex_disagree: f64,
    /// Full SSN equal: unique per person (u ≈ 2^-30), capped at 14 so that SSN alone
    /// (without a given name) stays below [`Weights::certain`].
    pub ssn_exact: f64,
    /// Last 4 digits equal when only those are known: u = 1/10,000 ≈ 2^-13, given 7
    /// because the last 4 are often shared within a large block.
    pub ssn_last4: f64,
    /// One digit off or two adjacent digits transposed: a keying error.
    pub ssn_typo: f64,
    /// Different SSNs (or last 4): a strong sign of a different person; also a hard rule.
    pub ssn_disagree: f64,
    /// Postal code and street line equal; household members share it.
    pub address_exact: f64,
    /// Postal code or street line equal.
    pub address_partial: f64,
    /// Different addresses: people move, so only slightly negative.
    pub address_disagree: f64,
    /// Phone equal: near unique, but shared by households.
    pub phone_exact: f64,
    /// Different phones: numbers change, so only slightly negative.
    pub phone_disagree: f64,
    /// Jaro-Winkler similarity at or above which two names are [`Agreement::Similar`].
    pub similarity: f64,
    /// Score at or above which a candidate is Certain (if the hard rules hold).
    pub certain: f64,
    /// Score at or above which a candidate is Probable.
    pub probable: f64,
    /// Score at or above which a candidate is Possible; below it, not a candidate.
    pub possible: f64,
    /// A Certain best candidate is a Match only when the runner-up scores at least this
    /// much less (and is not Certain itself).
    pub margin: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            given_exact: 6.0,
            given_nickname: 4.5,
            given_similar: 3.0,
            given_disagree: -4.0,
            family_exact: 8.0,
            family_similar: 5.0,
            family_disagree: -5.0,
            birth_date_exact: 10.0,
            birth_date_swapped: 5.0,
            birth_date_typo: 4.0,
            birth_date_disagree: -6.0,
            sex_agree: 1.0,
            sex_disagree: -6.0,
            ssn_exact: 14.0,
            ssn_last4: 7.0,
            ssn_typo: 6.0,
            ssn_disagree: -10.0,
            address_exact: 5.0,
            address_partial: 2.0,
            address_disagree: -1.0,
            phone_exact: 6.0,
            phone_disagree: -1.0,
            similarity: 0.9,
            certain: 20.0,
            probable: 14.0,
            possible: 8.0,
            margin: 8.0,
        }
    }
}

/// The fields that are scored, in order (`ssn_last4` is scored inside `ssn`).
pub(crate) const SCORED: [AttributeName; 7] = [
    AttributeName::Given,
    AttributeName::Family,
    AttributeName::BirthDate,
    AttributeName::Sex,
    AttributeName::Ssn,
    AttributeName::Address,
    AttributeName::Phone,
];

/// A candidate scored against a query, with the per-field agreement levels kept to explain
/// the result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// Total weight: the sum of the fields' weights (not normalised; see [`Weights`]).
    pub score: f64,
    /// `None` below [`Weights::possible`].
    pub grade: Option<Grade>,
    /// Whether the hard rules for Certain hold (independently of the score).
    pub certain_rules: bool,
    /// One entry per scored field, in [`AttributeName`] order (`ssn` covers `ssn_last4`).
    pub agreements: Vec<(AttributeName, Agreement)>,
}

impl Scored {
    /// The agreement level of one field (`ssn_last4` reads the `ssn` entry).
    pub fn agreement(&self, field: AttributeName) -> Agreement {
        let field = if field == AttributeName::SsnLast4 {
            AttributeName::Ssn
        } else {
            field
        };
        self.agreements
            .iter()
            .find(|(f, _)| *f == field)
            .map_or(Agreement::Missing, |(_, a)| *a)
    }
}

/// Scores `candidate` against `query`. Errors when either holds an invalid attribute.
pub fn score(
    query: &Attributes,
    candidate: &Attributes,
    weights: &Weights,
) -> Result<Scored, AttributeError> {
    Ok(score_norm(
        &Norm::new(query)?,
        &Norm::new(candidate)?,
        weights,
    ))
}

fn compare_names(q: &NormName, c: &NormName, nicknames: bool, similarity: f64) -> Agreement {
    if q.full == c.full {
        return Agreement::Exact;
    }
    if nicknames
        && q.nickname_groups
            .iter()
            .any(|g| c.nickname_groups.contains(g))
    {
        return Agreement::Nickname;
    }
    let parts_shared = {
        let qp: Vec<&str> = q.full.split(' ').collect();
        let cp: Vec<&str> = c.full.split(' ').collect();
        (qp.len() > 1 || cp.len() > 1) && qp.iter().any(|p| cp.contains(p))
    };
    if parts_shared
        || q.soundex == c.soundex
        || strsim::jaro_winkler(&q.full, &c.full) >= similarity
    {
        return Agreement::Similar;
    }
    Agreement::Disagree
}

fn compare_dates(q: Date, c: Date) -> Agreement {
    if q == c {
        return Agreement::Exact;
    }
    if q.year == c.year && q.month == c.day && q.day == c.month {
        return Agreement::Swapped;
    }
    let differing = q
        .digits()
        .iter()
        .zip(c.digits().iter())
        .filter(|(a, b)| a != b)
        .count();
    if differing == 1 || (q.month == c.month && q.day == c.day && q.year.abs_diff(c.year) == 1) {
        return Agreement::Typo;
    }
    Agreement::Disagree
}

fn compare_ssn(q: &Norm, c: &Norm) -> Agreement {
    match (q.ssn, c.ssn) {
        (Some(a), Some(b)) => {
            if a == b {
                return Agreement::Exact;
            }
            let diff: Vec<usize> = (0..9).filter(|&i| a[i] != b[i]).collect();
            let typo = diff.len() == 1
                || (diff.len() == 2
                    && diff[1] == diff[0] + 1
                    && a[diff[0]] == b[diff[1]]
                    && a[diff[1]] == b[diff[0]]);
            if typo {
                Agreement::Typo
            } else {
                Agreement::Disagree
            }
        }
        _ => match (q.ssn_last4, c.ssn_last4) {
            (Some(a), Some(b)) if a == b => Agreement::Last4,
            (Some(_), Some(_)) => Agreement::Disagree,
            _ => Agreement::Missing,
        },
    }
}

fn compare_address(q: &Norm, c: &Norm) -> Agreement {
    let postal = match (&q.postal_code, &c.postal_code) {
        (Some(a), Some(b)) => Some(a == b),
        _ => None,
    };
    let line = match (&q.address_line, &c.address_line) {
        (Some(a), Some(b)) => Some(a == b),
        _ => None,
    };
    // The city only counts when neither the postal code nor the line can be compared.
    let city = match (&q.city, &c.city) {
        (Some(a), Some(b)) if postal.is_none() && line.is_none() => Some(a == b),
        _ => None,
    };
    match (postal, line, city) {
        (Some(true), Some(true), _) => Agreement::Exact,
        (Some(true), _, _) | (_, Some(true), _) | (_, _, Some(true)) => Agreement::Partial,
        (None, None, None) => Agreement::Missing,
        _ => Agreement::Disagree,
    }
}

pub(crate) fn score_norm(q: &Norm, c: &Norm, w: &Weights) -> Scored {
    use Agreement::*;
    let given = match (&q.given, &c.given) {
        (Some(a), Some(b)) => compare_names(a, b, true, w.similarity),
        _ => Missing,
    };
    let family = match (&q.family, &c.family) {
        (Some(a), Some(b)) => compare_names(a, b, false, w.similarity),
        _ => Missing,
    };
    let birth_date = match (q.birth_date, c.birth_date) {
        (Some(a), Some(b)) => compare_dates(a, b),
        _ => Missing,
    };
    let sex = match (q.sex, c.sex) {
        (Some(a), Some(b)) if a == b => Exact,
        (Some(_), Some(_)) => Disagree,
        _ => Missing,
    };
    let ssn = compare_ssn(q, c);
    let address = compare_address(q, c);
    let phone = match (&q.phone, &c.phone) {
        (Some(a), Some(b)) if a == b => Exact,
        (Some(_), Some(_)) => Disagree,
        _ => Missing,
    };

    let mut total = 0.0;
    total += match given {
        Exact => w.given_exact,
        Nickname => w.given_nickname,
        Similar => w.given_similar,
        Disagree => w.given_disagree,
        _ => 0.0,
    };
    total += match family {
        Exact => w.family_exact,
        Similar => w.family_similar,
        Disagree => w.family_disagree,
        _ => 0.0,
    };
    total += match birth_date {
        Exact => w.birth_date_exact,
        Swapped => w.birth_date_swapped,
        Typo => w.birth_date_typo,
        Disagree => w.birth_date_disagree,
        _ => 0.0,
    };
    total += match sex {
        Exact => w.sex_agree,
        Disagree => w.sex_disagree,
        _ => 0.0,
    };
    total += match ssn {
        Exact => w.ssn_exact,
        Last4 => w.ssn_last4,
        Typo => w.ssn_typo,
        Disagree => w.ssn_disagree,
        _ => 0.0,
    };
    total += match address {
        Exact => w.address_exact,
        Partial => w.address_partial,
        Disagree => w.address_disagree,
        _ => 0.0,
    };
    total += match phone {
        Exact => w.phone_exact,
        Disagree => w.phone_disagree,
        _ => 0.0,
    };

    // The hard rules for Certain (crate docs, "Hard rules").
    let given_agrees = matches!(given, Exact | Nickname);
    let full_ssn_agrees = ssn == Exact;
    let demographics_agree = birth_date == Exact
        && matches!(family, Exact | Similar)
        && (address == Exact || phone == Exact);
    let certain_rules = given_agrees
        && (full_ssn_agrees || demographics_agree)
        && sex != Disagree
        && ssn != Disagree;

    let grade = if total >= w.certain && certain_rules {
        Some(Grade::Certain)
    } else if total >= w.probable {
        Some(Grade::Probable)
    } else if total >= w.possible {
        Some(Grade::Possible)
    } else {
        None
    };
    Scored {
        score: total,
        grade,
        certain_rules,
        agreements: SCORED
            .iter()
            .copied()
            .zip([given, family, birth_date, sex, ssn, address, phone])
            .collect(),
    }
}
