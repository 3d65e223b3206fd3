//! A seeded synthetic population to measure the matcher: enrolled patients (with twins and
//! near twins), one query per enrolled patient with variants applied at the [`Rates`], and
//! queries for people who are not enrolled. [`evaluate`] runs every query and tallies a
//! [`Report`].
//!
//! The generator and the [`Rates`] were fixed before [`Weights::default`] was tuned, and
//! were not changed while tuning.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::attributes::{days_in_month, Address, Attributes, Sex};
use crate::index::{answer_detail, Answer, Index, PatientId};
use crate::names::{nickname_groups, nicknames_of};
use crate::score::{Grade, Weights};

/// The fixed seed of [`Population::default`].
pub const SEED: u64 = 0x00E4_8A7C_4D41_7443;

/// The rates of the population's twins and of the query variants. Each is drawn
/// independently per query, except the ones on the same field, which are exclusive
/// (`ssn_missing` then `ssn_last4_only`; `address_missing` then `address_moved`).
/// Fixed before the weights were tuned; the defaults are the brief's.
#[derive(Clone, Debug, PartialEq)]
pub struct Rates {
    /// Share of generated patients who get a twin enrolled too: same family name, birth
    /// date, address and phone; a different given name (not a nickname of the other) and
    /// SSN; the same sex half of the time.
    pub twin: f64,
    /// Share of generated patients who get a "near twin" enrolled too, who is not a twin:
    /// same given and family name, same birth year and month, another day; their own SSN,
    /// address and phone.
    pub near_twin: f64,
    /// One edit (substitution, deletion or adjacent transposition) in the given name.
    pub given_typo: f64,
    /// One edit in the family name.
    pub family_typo: f64,
    /// The given name replaced by one of its nicknames (only names that have one; the typo,
    /// when drawn too, then applies to the nickname).
    pub nickname: f64,
    /// Day and month swapped (only when both are ≤ 12 and differ).
    pub swap_day_month: f64,
    /// No SSN at all.
    pub ssn_missing: f64,
    /// Only the last 4 digits of the SSN.
    pub ssn_last4_only: f64,
    /// No address.
    pub address_missing: f64,
    /// A new address (the patient moved).
    pub address_moved: f64,
    /// No phone.
    pub phone_missing: f64,
    /// No sex.
    pub sex_missing: f64,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            twin: 0.03,
            near_twin: 0.01,
            given_typo: 0.08,
            family_typo: 0.06,
            nickname: 0.07,
            swap_day_month: 0.03,
            ssn_missing: 0.25,
            ssn_last4_only: 0.10,
            address_missing: 0.20,
            address_moved: 0.05,
            phone_missing: 0.30,
            sex_missing: 0.10,
        }
    }
}

impl Rates {
    /// The rates as a markdown list.
    pub fn to_markdown(&self) -> String {
        let rows = [
            ("twin (enrolled patient with an enrolled twin)", self.twin),
            ("near twin (same names + birth year/month)", self.near_twin),
            ("typo in given name", self.given_typo),
            ("typo in family name", self.family_typo),
            ("nickname for given name", self.nickname),
            ("day and month swapped (both <= 12)", self.swap_day_month),
            ("SSN missing", self.ssn_missing),
            ("SSN last 4 only", self.ssn_last4_only),
            ("address missing", self.address_missing),
            ("address moved", self.address_moved),
            ("phone missing", self.phone_missing),
            ("sex missing", self.sex_missing),
        ];
        let mut s = String::from("| rate | value |\n|---|---|\n");
        for (name, v) in rows {
            let _ = writeln!(s, "| {name} | {:.0}% |", v * 100.0);
        }
        s
    }
}

const MALE: &[&str] = &[
    "James",
    "John",
    "Robert",
    "Michael",
    "William",
    "David",
    "Richard",
    "Joseph",
    "Thomas",
    "Charles",
    "Christopher",
    "Daniel",
    "Matthew",
    "Anthony",
    "Mark",
    "Donald",
    "Steven",
    "Paul",
    "Andrew",
    "Joshua",
    "Kenneth",
    "Kevin",
    "Brian",
    "George",
    "Timothy",
    "Ronald",
    "Edward",
    "Jason",
    "Jeffrey",
    "Ryan",
    "Jacob",
    "Gary",
    "Nicholas",
    "Eric",
    "Jonathan",
    "Larry",
    "Justin",
    "Scott",
    "Brandon",
    "Benjamin",
    "Samuel",
    "Gregory",
    "Alexander",
    "Frank",
    "Patrick",
    "Raymond",
    "Dennis",
    "Jerry",
    "Tyler",
    "Aaron",
    "Jose",
    "Adam",
    "Nathan",
    "Henry",
    "Douglas",
    "Zachary",
    "Peter",
    "Kyle",
    "Noah",
    "Ethan",
    "Jeremy",
    "Walter",
    "Christian",
    "Keith",
    "Roger",
    "Austin",
    "Sean",
    "Gerald",
    "Carl",
    "Harold",
    "Dylan",
    "Arthur",
    "Lawrence",
    "Jordan",
    "Jesse",
    "Bryan",
    "Bruce",
    "Gabriel",
    "Logan",
    "Albert",
    "Alan",
    "Juan",
    "Wayne",
    "Elijah",
    "Randy",
    "Roy",
    "Vincent",
    "Ralph",
    "Eugene",
    "Russell",
    "Mason",
    "Philip",
    "Louis",
    "Howard",
    "Carlos",
    "Luis",
    "Wei",
    "Mohammed",
    "Darnell",
    "Hiroshi",
];

const FEMALE: &[&str] = &[
    "Mary",
    "Patricia",
    "Jennifer",
    "Linda",
    "Elizabeth",
    "Barbara",
    "Susan",
    "Jessica",
    "Sarah",
    "Karen",
    "Lisa",
    "Nancy",
    "Sandra",
    "Margaret",
    "Ashley",
    "Kimberly",
    "Emily",
    "Donna",
    "Michelle",
    "Carol",
    "Amanda",
    "Melissa",
    "Deborah",
    "Stephanie",
    "Dorothy",
    "Rebecca",
    "Sharon",
    "Laura",
    "Cynthia",
    "Amy",
    "Kathleen",
    "Angela",
    "Shirley",
    "Brenda",
    "Emma",
    "Anna",
    "Pamela",
    "Nicole",
    "Samantha",
    "Katherine",
    "Helen",
    "Rachel",
    "Carolyn",
    "Janet",
    "Maria",
    "Heather",
    "Diane",
    "Olivia",
    "Julie",
    "Joyce",
    "Victoria",
    "Ruth",
    "Virginia",
    "Lauren",
    "Kelly",
    "Christina",
    "Joan",
    "Evelyn",
    "Judith",
    "Andrea",
    "Hannah",
    "Megan",
    "Cheryl",
    "Jacqueline",
    "Martha",
    "Madison",
    "Teresa",
    "Gloria",
    "Janice",
    "Abigail",
    "Sophia",
    "Frances",
    "Jean",
    "Alice",
    "Isabella",
    "Julia",
    "Grace",
    "Amber",
    "Denise",
    "Danielle",
    "Marilyn",
    "Beverly",
    "Charlotte",
    "Natalie",
    "Diana",
    "Brittany",
    "Doris",
    "Kayla",
    "Alexis",
    "Lori",
    "Marie",
    "Tiffany",
    "Rose",
    "Guadalupe",
    "Mei",
    "Fatima",
    "Aaliyah",
    "Zoë",
    "Renée",
    "Chloe",
];

const FAMILY: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Gomez",
    "Phillips",
    "Evans",
    "Turner",
    "Diaz",
    "Parker",
    "Cruz",
    "Edwards",
    "Collins",
    "Reyes",
    "Stewart",
    "Morris",
    "Morales",
    "Murphy",
    "Cook",
    "Rogers",
    "Gutierrez",
    "Ortiz",
    "Morgan",
    "Cooper",
    "Peterson",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Ramos",
    "Kim",
    "Cox",
    "Ward",
    "Richardson",
    "Watson",
    "Brooks",
    "Chavez",
    "Wood",
    "James",
    "Bennett",
    "Gray",
    "Mendoza",
    "Ruiz",
    "Hughes",
    "Price",
    "Alvarez",
    "Castillo",
    "Sanders",
    "Patel",
    "Myers",
    "Long",
    "Ross",
    "Foster",
    "Jimenez",
    "Powell",
    "Jenkins",
    "Perry",
    "Russell",
    "Sullivan",
    "Bell",
    "Coleman",
    "Butler",
    "Henderson",
    "Barnes",
    "Gonzales",
    "Fisher",
    "Vasquez",
    "Simmons",
    "Romero",
    "Jordan",
    "Patterson",
    "Alexander",
    "Hamilton",
    "Graham",
    "Reynolds",
    "Griffin",
    "Wallace",
    "Moreno",
    "West",
    "Cole",
    "Hayes",
    "Bryant",
    "Herrera",
    "Gibson",
    "Ellis",
    "Tran",
    "Medina",
    "Aguilar",
    "Stevens",
    "Murray",
    "Ford",
    "Castro",
    "Marshall",
    "Owens",
    "Harrison",
    "Fernandez",
    "McDonald",
    "Woods",
    "Washington",
    "Kennedy",
    "Wells",
    "Vargas",
    "Chen",
    "Freeman",
    "Webb",
    "Tucker",
    "Guzman",
    "O'Brien",
    "Núñez",
    "De la Cruz",
    "Smith-Jones",
    "Nakamura",
    "Kowalski",
];

const STREETS: &[&str] = &[
    "Oak",
    "Maple",
    "Pine",
    "Cedar",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Main",
    "Church",
    "Walnut",
    "Spring",
    "Highland",
    "Sunset",
    "Jackson",
    "Lincoln",
    "Franklin",
    "Jefferson",
    "Madison",
    "Willow",
    "Meadow",
    "River",
    "Forest",
    "Chestnut",
    "Center",
    "Mill",
    "Ridge",
    "Valley",
    "Dogwood",
    "Magnolia",
    "Cherry",
    "Birch",
    "Laurel",
    "Adams",
    "Grant",
    "Prospect",
    "Union",
    "College",
    "Broad",
];

const SUFFIXES: &[&str] = &[
    "Street",
    "Avenue",
    "Road",
    "Drive",
    "Lane",
    "Boulevard",
    "Court",
    "Way",
    "Place",
];

/// (city, first postal code, area codes).
const CITIES: &[(&str, u32, &[&str])] = &[
    ("Springfield", 62701, &["217"]),
    ("Columbus", 43201, &["614", "380"]),
    ("Austin", 78701, &["512", "737"]),
    ("Portland", 97201, &["503", "971"]),
    ("Denver", 80202, &["303", "720"]),
    ("Madison", 53703, &["608"]),
    ("Raleigh", 27601, &["919", "984"]),
    ("Boise", 83702, &["208"]),
    ("Albany", 12203, &["518"]),
    ("Tucson", 85701, &["520"]),
    ("Omaha", 68102, &["402", "531"]),
    ("Richmond", 23219, &["804"]),
    ("Spokane", 99201, &["509"]),
    ("Lexington", 40502, &["859"]),
    ("Dayton", 45402, &["937"]),
    ("Fresno", 93701, &["559"]),
    ("Tulsa", 74103, &["918"]),
    ("Worcester", 1602, &["508", "774"]),
    ("Savannah", 31401, &["912"]),
    ("Anchorage", 99501, &["907"]),
];

/// An enrolled patient's or a non-enrolled person's query, and its truth.
#[derive(Clone, Debug)]
pub struct Query {
    pub attributes: Attributes,
    /// The enrolled patient the query is for; `None` for a person who is not enrolled.
    pub truth: Option<PatientId>,
    /// The truth's twin, when it has one.
    pub twin: Option<PatientId>,
    /// The variants applied (names as in [`Rates`]).
    pub variants: Vec<&'static str>,
}

/// The generated population: the custodian's patients and the queries.
#[derive(Clone, Debug)]
pub struct Population {
    pub seed: u64,
    pub rates: Rates,
    pub enrolled: Vec<(PatientId, Attributes)>,
    pub queries: Vec<Query>,
}

impl Default for Population {
    /// [`SEED`], 2,000 enrolled patients, 500 people not enrolled, [`Rates::default`].
    fn default() -> Self {
        Population::generate(SEED, 2_000, 500, Rates::default())
    }
}

struct Gen {
    rng: ChaCha8Rng,
    ssns: HashSet<String>,
    phones: HashSet<String>,
}

/// Picks from a list with a skew towards its head (`u^skew`), as real name frequencies are.
fn skewed<'a>(rng: &mut ChaCha8Rng, list: &[&'a str], skew: f64) -> &'a str {
    let u: f64 = rng.random();
    let i = ((list.len() as f64) * u.powf(skew)) as usize;
    list[i.min(list.len() - 1)]
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = !c.is_alphabetic() && c != '\'';
    }
    out
}

impl Gen {
    fn sex(&mut self) -> Sex {
        let u: f64 = self.rng.random();
        if u < 0.49 {
            Sex::Male
        } else if u < 0.98 {
            Sex::Female
        } else if u < 0.99 {
            Sex::Other
        } else {
            Sex::Unknown
        }
    }

    fn given(&mut self, sex: Sex) -> String {
        let list = match sex {
            Sex::Male => MALE,
            Sex::Female => FEMALE,
            _ if self.rng.random_bool(0.5) => MALE,
            _ => FEMALE,
        };
        skewed(&mut self.rng, list, 1.4).to_string()
    }

    fn birth_date(&mut self) -> (u32, u32, u32) {
        let year = self.rng.random_range(1930..=2024u32);
        let month = self.rng.random_range(1..=12u32);
        let day = self.rng.random_range(1..=days_in_month(year, month));
        (year, month, day)
    }

    fn ssn(&mut self) -> String {
        loop {
            let area = self.rng.random_range(1..=899u32);
            if area == 666 {
                continue;
            }
            let group = self.rng.random_range(1..=99u32);
            let serial = self.rng.random_range(1..=9999u32);
            let s = format!("{area:03}-{group:02}-{serial:04}");
            if self.ssns.insert(s.clone()) {
                return s;
            }
        }
    }

    fn address_and_phone(&mut self) -> (Address, String) {
        let (city, zip, area_codes) = CITIES[self.rng.random_range(0..CITIES.len())];
        let number = self.rng.random_range(1..=9999u32);
        let street = STREETS[self.rng.random_range(0..STREETS.len())];
        let suffix = SUFFIXES[self.rng.random_range(0..SUFFIXES.len())];
        let mut line = format!("{number} {street} {suffix}");
        if self.rng.random_bool(0.15) {
            let _ = write!(line, " Apt {}", self.rng.random_range(1..=40u32));
        }
        let postal = zip + self.rng.random_range(0..12u32);
        let phone = loop {
            let area = area_codes[self.rng.random_range(0..area_codes.len())];
            let p = format!(
                "({area}) {}-{:04}",
                self.rng.random_range(200..=999u32),
                self.rng.random_range(0..=9999u32)
            );
            if self.phones.insert(p.clone()) {
                break p;
            }
        };
        (
            Address {
                line: Some(line),
                city: Some(city.to_string()),
                postal_code: Some(format!("{postal:05}")),
            },
            phone,
        )
    }

    fn address(&mut self) -> Address {
        self.address_and_phone().0
    }

    fn person(&mut self) -> Attributes {
        let sex = self.sex();
        let given = self.given(sex);
        let family = skewed(&mut self.rng, FAMILY, 1.6).to_string();
        let (y, m, d) = self.birth_date();
        let ssn = self.ssn();
        let (address, phone) = self.address_and_phone();
        Attributes {
            given: Some(given),
            family: Some(family),
            birth_date: Some(format!("{y:04}-{m:02}-{d:02}")),
            sex: Some(sex),
            ssn: Some(ssn),
            ssn_last4: None,
            address: Some(address),
            phone: Some(phone),
        }
    }

    /// A twin of `p`: a different given name that is not a nickname of p's, a new SSN.
    fn twin(&mut self, p: &Attributes) -> Attributes {
        let p_given = p.given.clone().unwrap_or_default();
        let p_groups = nickname_groups(&p_given.to_uppercase());
        let sex = if self.rng.random_bool(0.5) {
            p.sex.unwrap_or(Sex::Unknown)
        } else {
            match p.sex {
                Some(Sex::Male) => Sex::Female,
                Some(Sex::Female) => Sex::Male,
                _ => self.sex(),
            }
        };
        let given = loop {
            let g = self.given(sex);
            let groups = nickname_groups(&g.to_uppercase());
            if g != p_given && !groups.iter().any(|x| p_groups.contains(x)) {
                break g;
            }
        };
        Attributes {
            given: Some(given),
            sex: Some(sex),
            ssn: Some(self.ssn()),
            ..p.clone()
        }
    }

    /// A near twin of `p` (not a twin): same names, sex, birth year and month, another day,
    /// their own SSN, address and phone.
    fn near_twin(&mut self, p: &Attributes) -> Attributes {
        let date = p.birth_date.clone().unwrap_or_default();
        let (y, m, d): (u32, u32, u32) = (
            date[0..4].parse().unwrap_or(1970),
            date[5..7].parse().unwrap_or(1),
            date[8..10].parse().unwrap_or(1),
        );
        let day = loop {
            let x = self.rng.random_range(1..=days_in_month(y, m));
            if x != d {
                break x;
            }
        };
        let (address, phone) = self.address_and_phone();
        Attributes {
            birth_date: Some(format!("{y:04}-{m:02}-{day:02}")),
            ssn: Some(self.ssn()),
            address: Some(address),
            phone: Some(phone),
            ..p.clone()
        }
    }

    /// One edit of the letters of `name`: substitution, deletion or adjacent transposition.
    fn typo(&mut self, name: &str) -> String {
        let upper: Vec<char> = name.to_uppercase().chars().collect();
        let letters: Vec<usize> = (0..upper.len())
            .filter(|&i| upper[i].is_ascii_alphabetic())
            .collect();
        if letters.is_empty() {
            return name.to_string();
        }
        for _ in 0..20 {
            let mut out = upper.clone();
            let i = letters[self.rng.random_range(0..letters.len())];
            match self.rng.random_range(0..3u32) {
                0 => {
                    let c = char::from(b'A' + self.rng.random_range(0..26u8));
                    out[i] = c;
                }
                1 if letters.len() > 2 => {
                    out.remove(i);
                }
                2 if i + 1 < out.len() && out[i + 1].is_ascii_alphabetic() => {
                    out.swap(i, i + 1);
                }
                _ => continue,
            }
            if out != upper {
                return title(&out.into_iter().collect::<String>());
            }
        }
        name.to_string()
    }

    fn query(&mut self, p: &Attributes, rates: &Rates) -> (Attributes, Vec<&'static str>) {
        let mut q = p.clone();
        let mut variants = Vec::new();
        // Every draw is made, in this order, whether or not it applies: each variant is
        // independent of the others and of the patient.
        let draws: [f64; 9] = std::array::from_fn(|_| self.rng.random());
        let [nick, given_typo, family_typo, swap, ssn, addr, phone, sex, pick] = draws;

        if nick < rates.nickname {
            let formal = p.given.clone().unwrap_or_default().to_uppercase();
            let nicks = nicknames_of(&formal);
            if !nicks.is_empty() {
                let n = nicks[((pick * nicks.len() as f64) as usize).min(nicks.len() - 1)];
                q.given = Some(title(n));
                variants.push("nickname");
            }
        }
        if given_typo < rates.given_typo {
            let g = q.given.clone().unwrap_or_default();
            q.given = Some(self.typo(&g));
            variants.push("given_typo");
        }
        if family_typo < rates.family_typo {
            let f = q.family.clone().unwrap_or_default();
            q.family = Some(self.typo(&f));
            variants.push("family_typo");
        }
        if swap < rates.swap_day_month {
            if let Some(d) = q.birth_date.clone() {
                let (m, day) = (&d[5..7], &d[8..10]);
                let (mn, dn): (u32, u32) = (m.parse().unwrap_or(0), day.parse().unwrap_or(0));
                if mn <= 12 && dn <= 12 && mn != dn {
                    q.birth_date = Some(format!("{}-{day}-{m}", &d[0..4]));
                    variants.push("swap_day_month");
                }
            }
        }
        if ssn < rates.ssn_missing {
            q.ssn = None;
            q.ssn_last4 = None;
            variants.push("ssn_missing");
        } else if ssn < rates.ssn_missing + rates.ssn_last4_only {
            let full = q.ssn.take().unwrap_or_default();
            q.ssn_last4 = Some(full[full.len() - 4..].to_string());
            variants.push("ssn_last4_only");
        }
        if addr < rates.address_missing {
            q.address = None;
            variants.push("address_missing");
        } else if addr < rates.address_missing + rates.address_moved {
            q.address = Some(self.address());
            variants.push("address_moved");
        }
        if phone < rates.phone_missing {
            q.phone = None;
            variants.push("phone_missing");
        }
        if sex < rates.sex_missing {
            q.sex = None;
            variants.push("sex_missing");
        }
        (q, variants)
    }
}

impl Population {
    /// Generates `enrolled` patients and `non_enrolled` other people from `seed`.
    pub fn generate(seed: u64, enrolled: usize, non_enrolled: usize, rates: Rates) -> Population {
        let mut g = Gen {
            rng: ChaCha8Rng::seed_from_u64(seed),
            ssns: HashSet::new(),
            phones: HashSet::new(),
        };
        let mut people: Vec<Attributes> = Vec::with_capacity(enrolled + 16);
        let mut twin_of: BTreeMap<usize, usize> = BTreeMap::new();
        while people.len() < enrolled {
            let p = g.person();
            let i = people.len();
            people.push(p.clone());
            if g.rng.random_bool(rates.twin) {
                let t = g.twin(&p);
                people.push(t);
                twin_of.insert(i, i + 1);
                twin_of.insert(i + 1, i);
            }
            if g.rng.random_bool(rates.near_twin) {
                let n = g.near_twin(&p);
                people.push(n);
            }
        }
        people.truncate(enrolled);
        twin_of.retain(|a, b| *a < enrolled && *b < enrolled);
        let id = |i: usize| PatientId(format!("P{:06}", i + 1));
        let mut queries = Vec::with_capacity(enrolled + non_enrolled);
        for (i, p) in people.iter().enumerate() {
            let (attributes, variants) = g.query(p, &rates);
            queries.push(Query {
                attributes,
                truth: Some(id(i)),
                twin: twin_of.get(&i).map(|&t| id(t)),
                variants,
            });
        }
        for _ in 0..non_enrolled {
            let p = g.person();
            let (attributes, variants) = g.query(&p, &rates);
            queries.push(Query {
                attributes,
                truth: None,
                twin: None,
                variants,
            });
        }
        Population {
            seed,
            rates,
            enrolled: people
                .into_iter()
                .enumerate()
                .map(|(i, p)| (id(i), p))
                .collect(),
            queries,
        }
    }

    /// The custodian's index of the enrolled patients.
    pub fn index(&self) -> Index {
        Index::new(self.enrolled.clone()).expect("the generator produces valid attributes")
    }
}

/// One row per grade, by the grade of the Match answer or of the best candidate.
#[derive(Clone, Debug, PartialEq)]
pub struct GradeRow {
    pub grade: Grade,
    /// Enrolled queries whose best candidate has this grade.
    pub best_enrolled: usize,
    /// ... and that best candidate is the true patient.
    pub best_true: usize,
    /// Non-enrolled queries whose best candidate has this grade.
    pub best_non_enrolled: usize,
    /// Match answers at this grade (all queries).
    pub matches: usize,
    /// Match answers at this grade naming the true patient.
    pub matches_true: usize,
    /// `matches_true / matches` (`None` without a match at this grade).
    pub precision: Option<f64>,
    /// True patients returned as Match at this grade or better / enrolled queries.
    pub recall: f64,
}

/// One row per answer kind.
#[derive(Clone, Debug, PartialEq)]
pub struct AnswerRow {
    pub kind: &'static str,
    pub enrolled: usize,
    pub non_enrolled: usize,
}

/// The tallies of [`evaluate`].
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub patients: usize,
    pub enrolled_queries: usize,
    pub non_enrolled_queries: usize,
    pub grades: Vec<GradeRow>,
    pub answers: Vec<AnswerRow>,
    /// Match answers naming someone else than the true patient (or any patient, for a
    /// person not enrolled).
    pub false_matches: usize,
    /// Match answers for non-enrolled people.
    pub non_enrolled_matches: usize,
    /// Queries for a patient who has an enrolled twin.
    pub twin_queries: usize,
    /// ... answered Match naming the twin.
    pub twin_matched_to_twin: usize,
    /// ... whose best candidate is the twin.
    pub twin_best_is_twin: usize,
    /// ... answered Match naming the right twin.
    pub twin_matched_true: usize,
    /// Mean number of patients compared per query after blocking.
    pub mean_compared: f64,
    /// Per variant: (name, enrolled queries with it, of which answered Match with the truth).
    pub variants: Vec<(&'static str, usize, usize)>,
}

/// Runs every query of the population against its index.
pub fn evaluate(population: &Population, weights: &Weights) -> Report {
    let index = population.index();
    let order = [Grade::Certain, Grade::Probable, Grade::Possible];
    let mut best = BTreeMap::<Grade, (usize, usize, usize)>::new();
    let mut matches = BTreeMap::<Grade, (usize, usize)>::new();
    let (mut kinds_e, mut kinds_n) = ([0usize; 3], [0usize; 3]);
    let mut r = Report {
        patients: index.len(),
        enrolled_queries: 0,
        non_enrolled_queries: 0,
        grades: Vec::new(),
        answers: Vec::new(),
        false_matches: 0,
        non_enrolled_matches: 0,
        twin_queries: 0,
        twin_matched_to_twin: 0,
        twin_best_is_twin: 0,
        twin_matched_true: 0,
        mean_compared: 0.0,
        variants: Vec::new(),
    };
    let mut variants = BTreeMap::<&'static str, (usize, usize)>::new();
    let mut compared = 0usize;
    for q in &population.queries {
        let (ans, cands) = answer_detail(&index, &q.attributes, weights)
            .expect("the generator produces valid queries");
        compared += index.compared(&q.attributes).unwrap_or(0);
        let enrolled = q.truth.is_some();
        if enrolled {
            r.enrolled_queries += 1;
        } else {
            r.non_enrolled_queries += 1;
        }
        if let Some(b) = cands.first() {
            let g = b.scored.grade.expect("candidates have a grade");
            let e = best.entry(g).or_default();
            if enrolled {
                e.0 += 1;
                if Some(&b.patient) == q.truth.as_ref() {
                    e.1 += 1;
                }
            } else {
                e.2 += 1;
            }
        }
        let kind = match &ans {
            Answer::Match { .. } => 0,
            Answer::NeedMoreAttributes { .. } => 1,
            Answer::NoMatch => 2,
        };
        if enrolled {
            kinds_e[kind] += 1;
        } else {
            kinds_n[kind] += 1;
        }
        let matched_true = match &ans {
            Answer::Match { patient, grade, .. } => {
                let right = Some(patient) == q.truth.as_ref();
                let m = matches.entry(*grade).or_default();
                m.0 += 1;
                if right {
                    m.1 += 1;
                } else {
                    r.false_matches += 1;
                }
                if !enrolled {
                    r.non_enrolled_matches += 1;
                }
                if q.twin.as_ref() == Some(patient) {
                    r.twin_matched_to_twin += 1;
                }
                right
            }
            _ => false,
        };
        if let Some(twin) = &q.twin {
            r.twin_queries += 1;
            if cands.first().map(|c| &c.patient) == Some(twin) {
                r.twin_best_is_twin += 1;
            }
            if matched_true {
                r.twin_matched_true += 1;
            }
        }
        if enrolled {
            for v in &q.variants {
                let e = variants.entry(v).or_default();
                e.0 += 1;
                if matched_true {
                    e.1 += 1;
                }
            }
        }
    }
    let mut cumulative_true = 0;
    for g in order {
        let (be, bt, bn) = best.get(&g).copied().unwrap_or_default();
        let (m, mt) = matches.get(&g).copied().unwrap_or_default();
        cumulative_true += mt;
        r.grades.push(GradeRow {
            grade: g,
            best_enrolled: be,
            best_true: bt,
            best_non_enrolled: bn,
            matches: m,
            matches_true: mt,
            precision: (m > 0).then(|| mt as f64 / m as f64),
            recall: cumulative_true as f64 / r.enrolled_queries.max(1) as f64,
        });
    }
    for (i, kind) in ["match", "need_more_attributes", "no_match"]
        .iter()
        .enumerate()
    {
        r.answers.push(AnswerRow {
            kind,
            enrolled: kinds_e[i],
            non_enrolled: kinds_n[i],
        });
    }
    r.mean_compared = compared as f64 / population.queries.len().max(1) as f64;
    r.variants = variants.into_iter().map(|(k, (n, m))| (k, n, m)).collect();
    r
}

impl Report {
    /// Precision of Certain matches (1.0 when there is none).
    pub fn certain_precision(&self) -> f64 {
        self.grades
            .iter()
            .find(|g| g.grade == Grade::Certain)
            .and_then(|g| g.precision)
            .unwrap_or(1.0)
    }

    /// Recall of Match answers: true patients answered Match / enrolled queries.
    pub fn match_recall(&self) -> f64 {
        self.grades.last().map_or(0.0, |g| g.recall)
    }

    /// The report as markdown tables.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} patients indexed; {} queries for enrolled patients, {} for people not enrolled; \
             {:.1} patients compared per query after blocking.\n",
            self.patients, self.enrolled_queries, self.non_enrolled_queries, self.mean_compared
        );
        s.push_str(
            "| grade | best candidate: enrolled queries | best is the true patient | best candidate: non-enrolled queries | Match answers | true Match | false Match | precision | recall (Match at >= grade) |\n\
             |---|---|---|---|---|---|---|---|---|\n",
        );
        for g in &self.grades {
            let _ = writeln!(
                s,
                "| {:?} | {} | {} | {} | {} | {} | {} | {} | {:.4} |",
                g.grade,
                g.best_enrolled,
                g.best_true,
                g.best_non_enrolled,
                g.matches,
                g.matches_true,
                g.matches - g.matches_true,
                g.precision.map_or("n/a".to_string(), |p| format!("{p:.4}")),
                g.recall
            );
        }
        s.push_str("\n| answer | enrolled queries | non-enrolled queries |\n|---|---|---|\n");
        for a in &self.answers {
            let _ = writeln!(s, "| {} | {} | {} |", a.kind, a.enrolled, a.non_enrolled);
        }
        let _ = writeln!(
            s,
            "\nFalse matches: {} (of which for people not enrolled: {}).\n\
             Twin queries: {}; answered Match with the twin: {}; twin ranked first: {}; \
             answered Match with the right patient: {}.\n",
            self.false_matches,
            self.non_enrolled_matches,
            self.twin_queries,
            self.twin_matched_to_twin,
            self.twin_best_is_twin,
            self.twin_matched_true
        );
        s.push_str(
            "| variant (enrolled queries) | queries | answered Match (true) | share |\n|---|---|---|---|\n",
        );
        for (v, n, m) in &self.variants {
            let _ = writeln!(
                s,
                "| {v} | {n} | {m} | {:.3} |",
                *m as f64 / (*n).max(1) as f64
            );
        }
        s
    }
}
