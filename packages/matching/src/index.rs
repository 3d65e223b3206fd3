//! The custodian's index of patients, its blocking keys, and the answer to a query.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::attributes::{AttributeError, AttributeName, Attributes, Norm};
use crate::score::{score_norm, Agreement, Grade, Scored, Weights};

/// The custodian's identifier of a patient (in the product, its pseudonym).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PatientId(pub String);

/// A patient that could not be indexed, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("patient {patient:?}: {error}")]
pub struct IndexError {
    pub patient: PatientId,
    pub error: AttributeError,
}

/// The answer to a query (IHE PDQm `$match` / XCPD style).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// Exactly one candidate is Certain and the runner-up is at least [`Weights::margin`]
    /// below it: the custodian may release this patient's history.
    Match {
        patient: PatientId,
        grade: Grade,
        /// Total weight (see [`Weights`]).
        score: f64,
    },
    /// Several candidates, or the best is only Probable/Possible. `attributes` names, in the
    /// fixed [`AttributeName`] order, the attributes that would settle it: absent from the
    /// query and held by the candidates (differing among them when there are several), or
    /// present in the query but agreeing only in part with the best candidate.
    /// `candidates` counts the candidates in contention (Possible or better, and within
    /// [`Weights::margin`] of the best).
    NeedMoreAttributes {
        attributes: Vec<AttributeName>,
        candidates: usize,
    },
    /// No candidate reaches [`Weights::possible`].
    NoMatch,
}

/// A candidate with its score, for [`Index::candidates`].
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub patient: PatientId,
    pub scored: Scored,
    /// Position in the index.
    position: u32,
}

/// Blocking key: a query is only compared with the patients sharing at least one key.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
enum Key {
    BirthYear(u16),
    /// Month and day in that order; a query also looks up the swapped order.
    BirthMonthDay(u8, u8),
    FamilySoundex([u8; 4]),
    FamilyPrefix([u8; 2]),
    GivenSoundex([u8; 4]),
    GivenPrefix([u8; 2]),
    Nickname(u16),
    SsnLast4([u8; 4]),
    /// One of the three 3-digit chunks of the SSN (a one-digit typo or an adjacent
    /// transposition leaves at least one intact).
    SsnChunk(u8, [u8; 3]),
    Phone(String),
    PostalCode(String),
    AddressLine(String),
}

fn prefix(s: &str) -> Option<[u8; 2]> {
    let b = s.as_bytes();
    (b.len() >= 2).then(|| [b[0], b[1]])
}

fn keys(n: &Norm, query: bool) -> Vec<Key> {
    let mut k = Vec::new();
    if let Some(d) = n.birth_date {
        k.push(Key::BirthYear(d.year));
        k.push(Key::BirthMonthDay(d.month, d.day));
        if query && d.day <= 12 {
            k.push(Key::BirthMonthDay(d.day, d.month));
        }
    }
    if let Some(f) = &n.family {
        k.extend(f.soundex.map(Key::FamilySoundex));
        k.extend(f.part_soundex.iter().copied().map(Key::FamilySoundex));
        k.extend(prefix(&f.full).map(Key::FamilyPrefix));
    }
    if let Some(g) = &n.given {
        k.extend(g.soundex.map(Key::GivenSoundex));
        k.extend(g.part_soundex.iter().copied().map(Key::GivenSoundex));
        k.extend(prefix(&g.full).map(Key::GivenPrefix));
        k.extend(g.nickname_groups.iter().copied().map(Key::Nickname));
    }
    if let Some(l4) = n.ssn_last4 {
        k.push(Key::SsnLast4(l4));
    }
    if let Some(s) = n.ssn {
        for i in 0..3u8 {
            let j = usize::from(i) * 3;
            k.push(Key::SsnChunk(i, [s[j], s[j + 1], s[j + 2]]));
        }
    }
    k.extend(n.phone.clone().map(Key::Phone));
    k.extend(n.postal_code.clone().map(Key::PostalCode));
    k.extend(n.address_line.clone().map(Key::AddressLine));
    k.sort();
    k.dedup();
    k
}

/// The custodian's patients, normalised once, with blocking keys (birth year, birth
/// month-day, family and given Soundex and 2-letter prefix, nickname group, SSN last 4 and
/// 3-digit chunks, phone, postal code, street line).
#[derive(Clone, Debug)]
pub struct Index {
    patients: Vec<(PatientId, Norm)>,
    blocks: HashMap<Key, Vec<u32>>,
}

impl Index {
    /// Validates and normalises every patient. The first invalid one is refused with its id.
    /// Ids are expected to be unique (they are not checked).
    pub fn new(patients: Vec<(PatientId, Attributes)>) -> Result<Index, IndexError> {
        let mut out = Vec::with_capacity(patients.len());
        let mut blocks: HashMap<Key, Vec<u32>> = HashMap::new();
        for (i, (patient, attributes)) in patients.into_iter().enumerate() {
            let norm = match Norm::new(&attributes) {
                Ok(n) => n,
                Err(error) => return Err(IndexError { patient, error }),
            };
            for key in keys(&norm, false) {
                blocks.entry(key).or_default().push(i as u32);
            }
            out.push((patient, norm));
        }
        Ok(Index {
            patients: out,
            blocks,
        })
    }

    /// Number of patients.
    pub fn len(&self) -> usize {
        self.patients.len()
    }

    /// Whether the index holds no patient.
    pub fn is_empty(&self) -> bool {
        self.patients.is_empty()
    }

    fn blocked(&self, q: &Norm) -> BTreeSet<u32> {
        let mut set = BTreeSet::new();
        for key in keys(q, true) {
            if let Some(ids) = self.blocks.get(&key) {
                set.extend(ids.iter().copied());
            }
        }
        set
    }

    /// How many patients a query is compared with after blocking.
    pub fn compared(&self, query: &Attributes) -> Result<usize, AttributeError> {
        Ok(self.blocked(&Norm::new(query)?).len())
    }

    /// Every candidate at [`Grade::Possible`] or better, best first (score descending, then
    /// patient id ascending: deterministic). `exhaustive` skips blocking (for testing recall).
    pub fn candidates(
        &self,
        query: &Attributes,
        weights: &Weights,
        exhaustive: bool,
    ) -> Result<Vec<Candidate>, AttributeError> {
        let q = query_norm(query)?;
        Ok(self.candidates_norm(&q, weights, exhaustive))
    }

    fn candidates_norm(&self, q: &Norm, weights: &Weights, exhaustive: bool) -> Vec<Candidate> {
        let ids: Vec<u32> = if exhaustive {
            (0..self.patients.len() as u32).collect()
        } else {
            self.blocked(q).into_iter().collect()
        };
        let mut out: Vec<Candidate> = ids
            .into_iter()
            .filter_map(|i| {
                let (patient, norm) = &self.patients[i as usize];
                let scored = score_norm(q, norm, weights);
                scored.grade.map(|_| Candidate {
                    patient: patient.clone(),
                    scored,
                    position: i,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            b.scored
                .score
                .total_cmp(&a.scored.score)
                .then_with(|| a.patient.cmp(&b.patient))
        });
        out
    }

    fn norm_at(&self, position: u32) -> &Norm {
        &self.patients[position as usize].1
    }
}

fn query_norm(query: &Attributes) -> Result<Norm, AttributeError> {
    let q = Norm::new(query)?;
    if q.given.is_none() && q.family.is_none() && q.birth_date.is_none() {
        return Err(AttributeError::NoNameOrBirthDate);
    }
    Ok(q)
}

/// Answers a query against the index: [`Answer::Match`] only when exactly one candidate is
/// Certain and the runner-up is at least [`Weights::margin`] below it and not Certain.
/// Refuses an invalid query, and one with neither a name nor a birth date.
pub fn answer(
    index: &Index,
    query: &Attributes,
    weights: &Weights,
) -> Result<Answer, AttributeError> {
    answer_detail(index, query, weights).map(|(a, _)| a)
}

/// [`answer`] and the candidates it decided on.
pub(crate) fn answer_detail(
    index: &Index,
    query: &Attributes,
    weights: &Weights,
) -> Result<(Answer, Vec<Candidate>), AttributeError> {
    let q = query_norm(query)?;
    let candidates = index.candidates_norm(&q, weights, false);
    let answer = decide(index, &q, &candidates, weights);
    Ok((answer, candidates))
}

fn decide(index: &Index, q: &Norm, candidates: &[Candidate], w: &Weights) -> Answer {
    let Some(best) = candidates.first() else {
        return Answer::NoMatch;
    };
    let runner_up = candidates.get(1);
    let clear = runner_up.is_none_or(|r| {
        r.scored.grade != Some(Grade::Certain) && r.scored.score <= best.scored.score - w.margin
    });
    if best.scored.grade == Some(Grade::Certain) && clear {
        return Answer::Match {
            patient: best.patient.clone(),
            grade: Grade::Certain,
            score: best.scored.score,
        };
    }
    let contention: Vec<&Candidate> = candidates
        .iter()
        .take_while(|c| c.scored.score > best.scored.score - w.margin)
        .collect();
    let norms: Vec<&Norm> = contention
        .iter()
        .map(|c| index.norm_at(c.position))
        .collect();
    Answer::NeedMoreAttributes {
        attributes: wanted(q, &norms, &best.scored),
        candidates: contention.len(),
    }
}

/// The value of one attribute of a candidate, as a comparable string (`None`: absent).
fn value_of(n: &Norm, a: AttributeName) -> Option<String> {
    match a {
        AttributeName::Given => n.given.as_ref().map(|x| x.full.clone()),
        AttributeName::Family => n.family.as_ref().map(|x| x.full.clone()),
        AttributeName::BirthDate => n.birth_date.map(|d| format!("{d:?}")),
        AttributeName::Sex => n.sex.map(|s| format!("{s:?}")),
        AttributeName::Ssn => n.ssn.map(|s| format!("{s:?}")),
        AttributeName::SsnLast4 => n.ssn_last4.map(|s| format!("{s:?}")),
        AttributeName::Address => n
            .has(AttributeName::Address)
            .then(|| format!("{:?}{:?}{:?}", n.address_line, n.postal_code, n.city)),
        AttributeName::Phone => n.phone.clone(),
    }
}

/// The attributes to ask for, in the fixed [`AttributeName`] order.
fn wanted(q: &Norm, candidates: &[&Norm], best: &Scored) -> Vec<AttributeName> {
    let mut out = Vec::new();
    for a in AttributeName::ALL {
        let informative = if q.has(a) {
            // Present: ask again when it agrees only in part with the best candidate
            // (a typo, a nickname, a moved address), or when the full SSN is what is
            // missing and only the last 4 were given.
            let level = best.agreement(a);
            a != AttributeName::SsnLast4 && !matches!(level, Agreement::Exact | Agreement::Missing)
        } else {
            // Absent: ask when the candidates hold it and it tells them apart (or confirms
            // the only one).
            let values: BTreeSet<Option<String>> =
                candidates.iter().map(|n| value_of(n, a)).collect();
            let held = values.iter().any(Option::is_some);
            held && (candidates.len() == 1 || values.len() > 1)
        };
        if informative {
            out.push(a);
        }
    }
    // The full SSN settles what its last 4 would: name `ssn_last4` only without `ssn`.
    if out.contains(&AttributeName::Ssn) {
        out.retain(|a| *a != AttributeName::SsnLast4);
    }
    // A query holding the last 4 but not the full SSN: ask for the full one.
    if !q.has(AttributeName::Ssn)
        && q.has(AttributeName::SsnLast4)
        && candidates.iter().any(|n| n.ssn.is_some())
        && !out.contains(&AttributeName::Ssn)
    {
        out.push(AttributeName::Ssn);
        out.sort();
    }
    out
}
