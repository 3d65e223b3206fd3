//! Agreement levels, hard rules and answers, on hand-made patients.

use ehrx_matching::{
    answer, score, Address, Agreement, Answer, AttributeError, AttributeName, Attributes, Grade,
    Index, PatientId, Sex, Weights,
};

fn john() -> Attributes {
    Attributes {
        given: Some("John".into()),
        family: Some("Smith".into()),
        birth_date: Some("1980-04-07".into()),
        sex: Some(Sex::Male),
        ssn: Some("123-45-6789".into()),
        ssn_last4: None,
        address: Some(Address {
            line: Some("12 Oak Street Apt 4".into()),
            city: Some("Springfield".into()),
            postal_code: Some("62704".into()),
        }),
        phone: Some("(217) 555-0134".into()),
    }
}

/// John's twin: same family, birth date, address, phone; another given name and SSN.
fn twin() -> Attributes {
    Attributes {
        given: Some("Michael".into()),
        ssn: Some("123-45-9876".into()),
        ..john()
    }
}

fn others() -> Vec<(PatientId, Attributes)> {
    vec![
        (
            PatientId("P-MARY".into()),
            Attributes {
                given: Some("Mary".into()),
                family: Some("Johnson".into()),
                birth_date: Some("1975-11-30".into()),
                sex: Some(Sex::Female),
                ssn: Some("222-33-4444".into()),
                ssn_last4: None,
                address: Some(Address {
                    line: Some("9 Elm Road".into()),
                    city: Some("Columbus".into()),
                    postal_code: Some("43201".into()),
                }),
                phone: Some("614-555-0101".into()),
            },
        ),
        (
            PatientId("P-JANE".into()),
            Attributes {
                given: Some("Jane".into()),
                family: Some("Smith".into()),
                birth_date: Some("1980-05-07".into()),
                sex: Some(Sex::Female),
                ssn: Some("333-44-5555".into()),
                ssn_last4: None,
                address: None,
                phone: None,
            },
        ),
    ]
}

fn index_with(extra: Vec<(PatientId, Attributes)>) -> Index {
    let mut all = others();
    all.extend(extra);
    Index::new(all).unwrap()
}

fn level(q: &Attributes, c: &Attributes, field: AttributeName) -> Agreement {
    score(q, c, &Weights::default()).unwrap().agreement(field)
}

fn with(f: impl FnOnce(&mut Attributes)) -> Attributes {
    let mut a = john();
    f(&mut a);
    a
}

fn grade(q: &Attributes, c: &Attributes) -> Option<Grade> {
    score(q, c, &Weights::default()).unwrap().grade
}

#[test]
fn given_name_levels() {
    use AttributeName::Given;
    let c = john();
    assert_eq!(level(&john(), &c, Given), Agreement::Exact);
    assert_eq!(
        level(&with(|a| a.given = Some("  jóhn ".into())), &c, Given),
        Agreement::Exact
    );
    assert_eq!(
        level(&with(|a| a.given = Some("Jon".into())), &c, Given),
        Agreement::Nickname
    );
    assert_eq!(
        level(&with(|a| a.given = Some("Jack".into())), &c, Given),
        Agreement::Nickname
    );
    assert_eq!(
        level(&with(|a| a.given = Some("Jhon".into())), &c, Given),
        Agreement::Similar
    );
    assert_eq!(
        level(&with(|a| a.given = Some("John Paul".into())), &c, Given),
        Agreement::Similar
    );
    assert_eq!(
        level(&with(|a| a.given = Some("Peter".into())), &c, Given),
        Agreement::Disagree
    );
    assert_eq!(
        level(&with(|a| a.given = None), &c, Given),
        Agreement::Missing
    );
    // Soundex alone: ROBERT / RUPERT (R163), not nicknames, Jaro-Winkler below 0.9.
    let robert = with(|a| a.given = Some("Robert".into()));
    assert_eq!(
        level(&with(|a| a.given = Some("Rupert".into())), &robert, Given),
        Agreement::Similar
    );
    // Nicknames only for given names.
    let fam_bill = with(|a| a.family = Some("Bill".into()));
    let fam_william = with(|a| a.family = Some("William".into()));
    assert_eq!(
        level(&fam_bill, &fam_william, AttributeName::Family),
        Agreement::Disagree
    );
}

#[test]
fn family_name_levels() {
    use AttributeName::Family;
    let c = john();
    assert_eq!(
        level(&with(|a| a.family = Some("SMITH".into())), &c, Family),
        Agreement::Exact
    );
    assert_eq!(
        level(&with(|a| a.family = Some("Smyth".into())), &c, Family),
        Agreement::Similar
    );
    assert_eq!(
        level(&with(|a| a.family = Some("Smiht".into())), &c, Family),
        Agreement::Similar
    );
    assert_eq!(
        level(
            &with(|a| a.family = Some("Smith-Garcia".into())),
            &c,
            Family
        ),
        Agreement::Similar
    );
    assert_eq!(
        level(&with(|a| a.family = Some("Brown".into())), &c, Family),
        Agreement::Disagree
    );
}

#[test]
fn birth_date_levels() {
    use AttributeName::BirthDate;
    let c = john(); // 1980-04-07
    let d = |s: &str| with(|a| a.birth_date = Some(s.into()));
    assert_eq!(level(&d("1980-04-07"), &c, BirthDate), Agreement::Exact);
    assert_eq!(level(&d("1980-07-04"), &c, BirthDate), Agreement::Swapped);
    assert_eq!(level(&d("1980-04-01"), &c, BirthDate), Agreement::Typo);
    assert_eq!(level(&d("1981-04-07"), &c, BirthDate), Agreement::Typo);
    assert_eq!(level(&d("1979-04-07"), &c, BirthDate), Agreement::Typo);
    assert_eq!(level(&d("1970-04-07"), &c, BirthDate), Agreement::Typo); // one digit
    assert_eq!(level(&d("1980-09-07"), &c, BirthDate), Agreement::Typo); // one digit
    assert_eq!(level(&d("1978-04-07"), &c, BirthDate), Agreement::Disagree); // two digits
    assert_eq!(level(&d("1969-04-07"), &c, BirthDate), Agreement::Disagree);
    assert_eq!(level(&d("1980-05-08"), &c, BirthDate), Agreement::Disagree);
    assert_eq!(
        score(&d("1980-13-01"), &c, &Weights::default()).unwrap_err(),
        AttributeError::InvalidBirthDate
    );
}

#[test]
fn sex_ssn_address_phone_levels() {
    let c = john();
    let w = |f: fn(&mut Attributes), field| level(&with(f), &c, field);
    use AttributeName::*;
    assert_eq!(level(&john(), &c, Sex), Agreement::Exact);
    assert_eq!(
        w(|a| a.sex = Some(ehrx_matching::Sex::Female), Sex),
        Agreement::Disagree
    );
    assert_eq!(
        w(|a| a.sex = Some(ehrx_matching::Sex::Unknown), Sex),
        Agreement::Missing
    );

    assert_eq!(
        w(|a| a.ssn = Some("123456789".into()), Ssn),
        Agreement::Exact
    );
    assert_eq!(
        w(
            |a| {
                a.ssn = None;
                a.ssn_last4 = Some("6789".into())
            },
            Ssn
        ),
        Agreement::Last4
    );
    assert_eq!(
        w(
            |a| {
                a.ssn = None;
                a.ssn_last4 = Some("6788".into())
            },
            Ssn
        ),
        Agreement::Disagree
    );
    assert_eq!(
        w(|a| a.ssn = Some("123-45-6780".into()), Ssn),
        Agreement::Typo
    );
    assert_eq!(
        w(|a| a.ssn = Some("123-54-6789".into()), Ssn),
        Agreement::Typo
    ); // transposition
    assert_eq!(
        w(|a| a.ssn = Some("123-45-6798".into()), Ssn),
        Agreement::Typo
    );
    assert_eq!(
        w(|a| a.ssn = Some("123-45-6700".into()), Ssn),
        Agreement::Disagree
    );
    assert_eq!(w(|a| a.ssn = None, Ssn), Agreement::Missing);

    assert_eq!(
        w(
            |a| a.address.as_mut().unwrap().line = Some("12 oak st., apartment 4".into()),
            Address
        ),
        Agreement::Exact
    );
    assert_eq!(
        w(
            |a| a.address.as_mut().unwrap().line = Some("99 Pine Road".into()),
            Address
        ),
        Agreement::Partial
    );
    assert_eq!(
        w(
            |a| {
                a.address = Some(ehrx_matching::Address {
                    line: Some("99 Pine Road".into()),
                    city: Some("Columbus".into()),
                    postal_code: Some("43201".into()),
                })
            },
            Address
        ),
        Agreement::Disagree
    );
    assert_eq!(w(|a| a.address = None, Address), Agreement::Missing);

    assert_eq!(
        w(|a| a.phone = Some("+1 217.555.0134".into()), Phone),
        Agreement::Exact
    );
    assert_eq!(
        w(|a| a.phone = Some("217-555-0135".into()), Phone),
        Agreement::Disagree
    );
}

#[test]
fn nickname_filed_jon_queried_john_matches() {
    let jon = with(|a| a.given = Some("Jon".into()));
    let index = index_with(vec![(PatientId("P-JON".into()), jon)]);
    // Even without the SSN: nickname + family + exact birth date + address.
    let query = with(|a| {
        a.ssn = None;
        a.phone = None;
    });
    match answer(&index, &query, &Weights::default()).unwrap() {
        Answer::Match { patient, grade, .. } => {
            assert_eq!(patient, PatientId("P-JON".into()));
            assert_eq!(grade, Grade::Certain);
        }
        other => panic!("expected a match, got {other:?}"),
    }
}

#[test]
fn certain_requires_given_name_agreement() {
    let q = with(|a| a.given = Some("Jhon".into())); // a typo: Similar, not agreement
    let s = score(&q, &john(), &Weights::default()).unwrap();
    assert!(s.score >= Weights::default().certain, "{}", s.score);
    assert!(!s.certain_rules);
    assert_eq!(s.grade, Some(Grade::Probable));
    let index = index_with(vec![(PatientId("P-JOHN".into()), john())]);
    match answer(&index, &q, &Weights::default()).unwrap() {
        Answer::NeedMoreAttributes {
            attributes,
            candidates,
        } => {
            assert_eq!(candidates, 1);
            assert_eq!(attributes, vec![AttributeName::Given]);
        }
        other => panic!("{other:?}"),
    }
    // Given name missing: never Certain either.
    assert_ne!(
        grade(&with(|a| a.given = None), &john()),
        Some(Grade::Certain)
    );
}

#[test]
fn given_and_full_ssn_suffice() {
    // Exact given name + full SSN: 6 + 14 = 20, the Certain threshold.
    let q = Attributes {
        given: Some("John".into()),
        ssn: Some("123-45-6789".into()),
        ..Attributes::default()
    };
    assert_eq!(grade(&q, &john()), Some(Grade::Certain));
    // A nickname is weaker (4.5 + 14 = 18.5): one more agreeing field is needed.
    let q = Attributes {
        given: Some("Johnny".into()),
        ..q
    };
    assert_eq!(grade(&q, &john()), Some(Grade::Probable));
    let q = Attributes {
        family: Some("Smith".into()),
        ..q
    };
    assert_eq!(grade(&q, &john()), Some(Grade::Certain));
    // The full SSN with conflicting demographics is not Certain (the score threshold).
    let q = with(|a| {
        a.family = Some("Brown".into());
        a.birth_date = Some("1966-01-01".into());
        a.address = None;
        a.phone = None;
    });
    assert!(
        score(&q, &john(), &Weights::default())
            .unwrap()
            .certain_rules
    );
    assert_ne!(grade(&q, &john()), Some(Grade::Certain));
    // The SSN without a given name is not enough.
    let q = Attributes {
        family: Some("Smith".into()),
        ssn: Some("123-45-6789".into()),
        ..Attributes::default()
    };
    assert_ne!(grade(&q, &john()), Some(Grade::Certain));
}

#[test]
fn missing_ssn_certain_only_with_address_or_phone() {
    let index = index_with(vec![(PatientId("P-JOHN".into()), john())]);
    let w = Weights::default();
    let no_ssn = |address: bool, phone: bool| {
        with(|a| {
            a.ssn = None;
            if !address {
                a.address = None;
            }
            if !phone {
                a.phone = None;
            }
        })
    };
    for (address, phone) in [(true, true), (true, false), (false, true)] {
        let q = no_ssn(address, phone);
        assert_eq!(
            grade(&q, &john()),
            Some(Grade::Certain),
            "{address} {phone}"
        );
        assert!(
            matches!(answer(&index, &q, &w).unwrap(), Answer::Match { ref patient, .. } if patient.0 == "P-JOHN")
        );
    }
    let q = no_ssn(false, false);
    assert_eq!(grade(&q, &john()), Some(Grade::Probable));
    match answer(&index, &q, &w).unwrap() {
        Answer::NeedMoreAttributes {
            attributes,
            candidates,
        } => {
            assert_eq!(candidates, 1);
            assert_eq!(
                attributes,
                vec![
                    AttributeName::Ssn,
                    AttributeName::Address,
                    AttributeName::Phone
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    // A moved address does not count as address agreement.
    let moved = with(|a| {
        a.ssn = None;
        a.phone = None;
        a.address = Some(Address {
            line: Some("1 Lake Drive".into()),
            city: Some("Austin".into()),
            postal_code: Some("78701".into()),
        });
    });
    assert_ne!(grade(&moved, &john()), Some(Grade::Certain));
}

#[test]
fn swapped_day_month_is_not_certain_alone() {
    let q = with(|a| {
        a.birth_date = Some("1980-07-04".into());
        a.ssn = None;
    });
    let s = score(&q, &john(), &Weights::default()).unwrap();
    assert_eq!(s.agreement(AttributeName::BirthDate), Agreement::Swapped);
    assert_ne!(s.grade, Some(Grade::Certain));
    let index = index_with(vec![(PatientId("P-JOHN".into()), john())]);
    match answer(&index, &q, &Weights::default()).unwrap() {
        Answer::NeedMoreAttributes { attributes, .. } => {
            assert!(
                attributes.contains(&AttributeName::BirthDate),
                "{attributes:?}"
            );
            assert!(attributes.contains(&AttributeName::Ssn), "{attributes:?}");
        }
        other => panic!("{other:?}"),
    }
    // With the full SSN and the given name it is Certain again.
    let q = with(|a| a.birth_date = Some("1980-07-04".into()));
    assert_eq!(grade(&q, &john()), Some(Grade::Certain));
}

#[test]
fn sex_or_ssn_disagreement_is_never_certain() {
    let q = with(|a| a.sex = Some(Sex::Female));
    let s = score(&q, &john(), &Weights::default()).unwrap();
    assert!(!s.certain_rules);
    assert_ne!(s.grade, Some(Grade::Certain));

    let q = with(|a| a.ssn = Some("987-65-4321".into()));
    let s = score(&q, &john(), &Weights::default()).unwrap();
    assert!(!s.certain_rules);
    assert_ne!(s.grade, Some(Grade::Certain));

    let q = with(|a| {
        a.ssn = None;
        a.ssn_last4 = Some("1111".into());
    });
    assert_ne!(grade(&q, &john()), Some(Grade::Certain));

    // A one-digit SSN typo is not a disagreement: the demographics can still make it Certain.
    let q = with(|a| a.ssn = Some("123-45-6788".into()));
    assert_eq!(grade(&q, &john()), Some(Grade::Certain));
}

#[test]
fn twin_is_never_certain_for_the_other_twins_query() {
    let w = Weights::default();
    let index = index_with(vec![
        (PatientId("P-JOHN".into()), john()),
        (PatientId("P-MICHAEL".into()), twin()),
    ]);
    // Every combination of dropped fields of John's query: Michael is never Certain, and
    // never the answer.
    let fields = 6;
    for mask in 0u32..(1 << fields) {
        let q = with(|a| {
            if mask & 1 != 0 {
                a.ssn = None;
            }
            if mask & 2 != 0 {
                a.sex = None;
            }
            if mask & 4 != 0 {
                a.address = None;
            }
            if mask & 8 != 0 {
                a.phone = None;
            }
            if mask & 16 != 0 {
                a.given = None;
            }
            if mask & 32 != 0 {
                a.ssn_last4 = a.ssn.take().map(|s| s[s.len() - 4..].to_string());
            }
        });
        assert_ne!(grade(&q, &twin()), Some(Grade::Certain), "mask {mask:#b}");
        if let Answer::Match { patient, .. } = answer(&index, &q, &w).unwrap() {
            assert_eq!(patient.0, "P-JOHN", "mask {mask:#b}");
        }
    }
    // John's query without SSN and without the given name: both twins in contention.
    let q = with(|a| {
        a.ssn = None;
        a.given = None;
    });
    match answer(&index, &q, &w).unwrap() {
        Answer::NeedMoreAttributes {
            attributes,
            candidates,
        } => {
            assert_eq!(candidates, 2);
            assert_eq!(attributes, vec![AttributeName::Given, AttributeName::Ssn]);
        }
        other => panic!("{other:?}"),
    }
    // ... and with the sex missing too and a twin of the same sex: still the same.
    let q2 = Attributes { sex: None, ..q };
    assert!(matches!(
        answer(&index, &q2, &w).unwrap(),
        Answer::NeedMoreAttributes { ref attributes, candidates: 2 }
            if attributes.contains(&AttributeName::Ssn)
    ));
    // With the given name, the right twin is found even without the SSN.
    let q = with(|a| a.ssn = None);
    assert!(matches!(
        answer(&index, &q, &w).unwrap(),
        Answer::Match { ref patient, .. } if patient.0 == "P-JOHN"
    ));
}

#[test]
fn non_enrolled_person_is_no_match() {
    let index = index_with(vec![(PatientId("P-JOHN".into()), john())]);
    let q = Attributes {
        given: Some("Gwendolyn".into()),
        family: Some("Okafor".into()),
        birth_date: Some("1999-12-24".into()),
        sex: Some(Sex::Female),
        ssn: Some("555-12-3456".into()),
        ssn_last4: None,
        address: Some(Address {
            line: Some("4 Birch Lane".into()),
            city: Some("Boise".into()),
            postal_code: Some("83702".into()),
        }),
        phone: Some("208-555-0199".into()),
    };
    assert_eq!(
        answer(&index, &q, &Weights::default()).unwrap(),
        Answer::NoMatch
    );
}

#[test]
fn query_without_name_or_birth_date_is_refused() {
    let index = index_with(vec![]);
    let q = Attributes {
        ssn: Some("123-45-6789".into()),
        phone: Some("217-555-0134".into()),
        ..Attributes::default()
    };
    assert_eq!(
        answer(&index, &q, &Weights::default()).unwrap_err(),
        AttributeError::NoNameOrBirthDate
    );
    let bad = with(|a| a.birth_date = Some("1980-02-30".into()));
    let err = answer(&index, &bad, &Weights::default()).unwrap_err();
    assert_eq!(err.field(), Some(AttributeName::BirthDate));
    assert!(!err.to_string().contains("1980"));
}

#[test]
fn index_refuses_an_invalid_patient_by_id() {
    let err = Index::new(vec![(
        PatientId("P-BAD".into()),
        with(|a| a.ssn = Some("12-34".into())),
    )])
    .unwrap_err();
    assert_eq!(err.patient, PatientId("P-BAD".into()));
    assert_eq!(err.error, AttributeError::InvalidSsn);
}

#[test]
fn answers_are_deterministic_and_ties_need_more() {
    // Two indistinguishable records: never a Match, whatever the order.
    let a = (PatientId("P-A".into()), john());
    let b = (
        PatientId("P-B".into()),
        with(|x| x.ssn = Some("999-45-6789".into())),
    );
    let q = with(|x| x.ssn = None);
    let w = Weights::default();
    let one = answer(&Index::new(vec![a.clone(), b.clone()]).unwrap(), &q, &w).unwrap();
    let two = answer(&Index::new(vec![b, a]).unwrap(), &q, &w).unwrap();
    assert_eq!(one, two);
    match one {
        Answer::NeedMoreAttributes {
            attributes,
            candidates,
        } => {
            assert_eq!(candidates, 2);
            assert_eq!(attributes, vec![AttributeName::Ssn]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn debug_of_attributes_prints_no_value() {
    let dbg = format!("{:?} {:#?}", john(), john());
    for value in [
        "John",
        "Smith",
        "1980",
        "6789",
        "Oak",
        "62704",
        "555",
        "Male",
        "Springfield",
    ] {
        assert!(!dbg.contains(value), "{value} in {dbg}");
    }
    assert!(dbg.contains("birth_date"));
}
