//! Name normalisation, American Soundex and the embedded nickname table.

use std::collections::HashMap;
use std::sync::OnceLock;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// NFKD, combining marks stripped, letters uppercased (a few non-decomposing Latin letters
/// folded to ASCII), hyphens and whitespace collapsed into one space, anything else
/// (apostrophes, periods, digits) dropped. `None` when no letter is left.
pub(crate) fn normalize_name(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    for c in raw.nfkd().filter(|c| !is_combining_mark(*c)) {
        let folded: Option<&str> = match c {
            'ß' => Some("SS"),
            'æ' | 'Æ' => Some("AE"),
            'œ' | 'Œ' => Some("OE"),
            'ø' | 'Ø' => Some("O"),
            'ł' | 'Ł' => Some("L"),
            'đ' | 'Đ' | 'ð' | 'Ð' => Some("D"),
            'þ' | 'Þ' => Some("TH"),
            'ı' => Some("I"),
            _ => None,
        };
        let upper: String;
        let letters: &str = if let Some(s) = folded {
            s
        } else if c.is_alphabetic() {
            // ASCII letters, and letters NFKD did not decompose (Greek, Cyrillic, ...):
            // kept, uppercased, so that such names still compare exactly.
            upper = c.to_uppercase().collect();
            &upper
        } else {
            ""
        };
        if !letters.is_empty() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push_str(letters);
        } else if c == '-' || c == '\u{2010}' || c.is_whitespace() {
            pending_space = true;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// American Soundex (the census rules: H and W do not separate equal codes, vowels do) of
/// the letters of `name`, ignoring spaces. Non-ASCII letters are skipped.
pub(crate) fn soundex(name: &str) -> Option<[u8; 4]> {
    fn code(c: u8) -> u8 {
        match c {
            b'B' | b'F' | b'P' | b'V' => b'1',
            b'C' | b'G' | b'J' | b'K' | b'Q' | b'S' | b'X' | b'Z' => b'2',
            b'D' | b'T' => b'3',
            b'L' => b'4',
            b'M' | b'N' => b'5',
            b'R' => b'6',
            b'H' | b'W' => b'h',
            _ => b'0', // vowels and Y
        }
    }
    let mut letters = name.bytes().filter(u8::is_ascii_uppercase);
    let first = letters.next()?;
    let mut out = [first, b'0', b'0', b'0'];
    let mut n = 1;
    let mut last = code(first);
    for c in letters {
        let k = code(c);
        if k == b'h' {
            continue; // H, W: transparent
        }
        if k != b'0' && k != last {
            out[n] = k;
            n += 1;
            if n == 4 {
                break;
            }
        }
        last = k;
    }
    Some(out)
}

/// Common US nicknames, one group per formal name; the first entry is the formal name.
/// A name may sit in several groups (PAT: PATRICIA and PATRICK; JON: JOHN and JONATHAN).
/// Two given names are "nicknames of each other" when they share a group.
pub(crate) const NICKNAMES: &[&[&str]] = &[
    &["JOHN", "JON", "JOHNNY", "JOHNNIE", "JACK"],
    &["JONATHAN", "JON", "JONNY", "NATE"],
    &[
        "WILLIAM", "BILL", "WILL", "BILLY", "LIAM", "WILLY", "WILLIE",
    ],
    &["ROBERT", "BOB", "ROB", "BOBBY", "ROBBIE", "BERT"],
    &[
        "ELIZABETH",
        "LIZ",
        "BETH",
        "BETTY",
        "ELIZA",
        "LIZZIE",
        "LIBBY",
    ],
    &[
        "KATHERINE",
        "KATE",
        "KATIE",
        "KATHY",
        "KAT",
        "CATHERINE",
        "KATHRYN",
    ],
    &["MARGARET", "MAGGIE", "PEGGY", "MEG", "MARGE"],
    &["JAMES", "JIM", "JIMMY", "JAMIE"],
    &["RICHARD", "RICK", "DICK", "RICH", "RICKY"],
    &["MICHAEL", "MIKE", "MICKEY"],
    &["CHRISTOPHER", "CHRIS", "KIT"],
    &["JENNIFER", "JEN", "JENNY"],
    &["PATRICIA", "PAT", "TRISH", "PATTY", "TRICIA"],
    &["PATRICK", "PAT", "PADDY"],
    &["THOMAS", "TOM", "TOMMY"],
    &["JOSEPH", "JOE", "JOEY"],
    &["CHARLES", "CHARLIE", "CHUCK"],
    &["DANIEL", "DAN", "DANNY"],
    &["MATTHEW", "MATT"],
    &["ANTHONY", "TONY"],
    &["DAVID", "DAVE"],
    &["STEVEN", "STEVE", "STEPHEN"],
    &["EDWARD", "ED", "EDDIE", "TED", "NED"],
    &["ANDREW", "ANDY", "DREW"],
    &["JOSHUA", "JOSH"],
    &["BENJAMIN", "BEN", "BENNY"],
    &["SAMUEL", "SAM", "SAMMY"],
    &["ALEXANDER", "ALEX", "AL", "XANDER"],
    &["NICHOLAS", "NICK", "NICKY"],
    &["TIMOTHY", "TIM", "TIMMY"],
    &["GREGORY", "GREG"],
    &["ZACHARY", "ZACH"],
    &["KENNETH", "KEN", "KENNY"],
    &["RONALD", "RON", "RONNIE"],
    &["DONALD", "DON", "DONNIE"],
    &["DEBORAH", "DEB", "DEBBIE", "DEBRA"],
    &["SUSAN", "SUE", "SUSIE"],
    &["BARBARA", "BARB", "BABS"],
    &["REBECCA", "BECKY", "BECCA"],
    &["VICTORIA", "VICKY", "TORI"],
    &["ABIGAIL", "ABBY"],
    &["SAMANTHA", "SAM", "SAMMY"],
    &["CHRISTINA", "CHRIS", "TINA", "CHRISTINE"],
    &["JESSICA", "JESS", "JESSIE"],
    &["KIMBERLY", "KIM"],
    &["PAMELA", "PAM"],
    &["CYNTHIA", "CINDY"],
    &["DOROTHY", "DOT", "DOTTIE"],
    &["JUDITH", "JUDY"],
    &["TERESA", "TERRY", "TESS", "THERESA"],
    &["MARY", "MOLLY", "POLLY", "MAE"],
    &["ANNA", "ANN", "ANNE", "ANNIE"],
    &["SARAH", "SALLY", "SADIE", "SARA"],
];

fn nickname_map() -> &'static HashMap<&'static str, Vec<u16>> {
    static MAP: OnceLock<HashMap<&'static str, Vec<u16>>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut map: HashMap<&'static str, Vec<u16>> = HashMap::new();
        for (i, group) in NICKNAMES.iter().enumerate() {
            for name in group.iter() {
                map.entry(name).or_default().push(i as u16);
            }
        }
        map
    })
}

/// The nickname groups `name` (normalised) belongs to; empty when none.
pub(crate) fn nickname_groups(name: &str) -> Vec<u16> {
    nickname_map().get(name).cloned().unwrap_or_default()
}

/// The nicknames of a formal name (its group minus itself), for the query generator.
pub(crate) fn nicknames_of(formal: &str) -> Vec<&'static str> {
    NICKNAMES
        .iter()
        .filter(|g| g[0] == formal)
        .flat_map(|g| g[1..].iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_names() {
        assert_eq!(
            normalize_name("  José-María ").as_deref(),
            Some("JOSE MARIA")
        );
        assert_eq!(normalize_name("O'Brien").as_deref(), Some("OBRIEN"));
        assert_eq!(
            normalize_name("smith -  jones").as_deref(),
            Some("SMITH JONES")
        );
        assert_eq!(normalize_name("Straße").as_deref(), Some("STRASSE"));
        assert_eq!(normalize_name(" - ' "), None);
    }

    #[test]
    fn soundex_matches_reference_codes() {
        for (name, code) in [
            ("ROBERT", "R163"),
            ("RUPERT", "R163"),
            ("RUBIN", "R150"),
            ("ASHCRAFT", "A261"),
            ("TYMCZAK", "T522"),
            ("PFISTER", "P236"),
            ("HONEYMAN", "H555"),
            ("LEE", "L000"),
        ] {
            assert_eq!(soundex(name).unwrap(), code.as_bytes(), "{name}");
        }
        assert_eq!(soundex(""), None);
    }

    #[test]
    fn nickname_groups_are_shared() {
        let jon = nickname_groups("JON");
        let john = nickname_groups("JOHN");
        assert!(jon.iter().any(|g| john.contains(g)));
        assert!(nickname_groups("ZEBEDEE").is_empty());
        assert!(nicknames_of("WILLIAM").contains(&"BILL"));
        assert!(NICKNAMES.len() >= 40);
    }
}
