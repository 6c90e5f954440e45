//! Synthetic people, and copies of them corrupted as real systems corrupt
//! them, with the truth kept: what person matching is measured on. Seeded
//! (ChaCha8), so a seed always makes the same people.
//!
//! The names follow a long tail as real populations do: about 40% of
//! family names come from a list of common British ones (Zipf-weighted),
//! the rest are made from syllables, so that a million people have a few
//! hundred thousand family names; given names come from lists of common
//! ones per gender. Postcodes are well-formed (area, district, sector,
//! unit) but made up.

use chrono::{Datelike, NaiveDate};
use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::domain::Gender;

/// One record of a person, as one system holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Who the person really is: records of one person share it.
    pub truth: u32,
    pub family_name: String,
    pub given_name: String,
    pub birth_date: NaiveDate,
    pub gender: Gender,
    pub postcode: Option<String>,
    pub uprn: Option<String>,
    pub nhs_number: Option<String>,
}

/// How often each kind of error appears in a copy (each drawn
/// independently, so a copy may carry several).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorRates {
    /// A letter of the family name wrong, missing, doubled or swapped.
    pub family_typo: f64,
    /// The same for the given name.
    pub given_typo: f64,
    /// A nickname for the given name (`Bob` for `Robert`), where one is
    /// known.
    pub nickname: f64,
    /// The given name cut to its initial.
    pub initial: f64,
    /// A new family name (marriage), half of them hyphenated with the old
    /// one (`Smith-Jones`).
    pub family_change: f64,
    /// Day and month swapped (when both could be a month).
    pub day_month_swap: f64,
    /// One digit of the birth date wrong.
    pub birth_digit: f64,
    /// Moved house within the postcode district (new postcode and UPRN).
    pub moved_nearby: f64,
    /// Moved elsewhere.
    pub moved_away: f64,
    /// No postcode recorded.
    pub postcode_missing: f64,
    /// No UPRN recorded.
    pub uprn_missing: f64,
    /// No NHS number recorded.
    pub nhs_missing: f64,
    /// Names in upper or lower case, with stray spaces.
    pub case_and_spaces: f64,
    /// Gender recorded as unknown.
    pub gender_unknown: f64,
}

impl Default for ErrorRates {
    /// Rates in the range reported for administrative records in the UK
    /// (see `docs/matching.md`): NHS numbers often missing outside health,
    /// UPRNs mostly missing, a few percent of typing errors per name.
    fn default() -> Self {
        Self {
            family_typo: 0.05,
            given_typo: 0.05,
            nickname: 0.05,
            initial: 0.03,
            family_change: 0.04,
            day_month_swap: 0.03,
            birth_digit: 0.02,
            moved_nearby: 0.10,
            moved_away: 0.05,
            postcode_missing: 0.10,
            uprn_missing: 0.50,
            nhs_missing: 0.40,
            case_and_spaces: 0.15,
            gender_unknown: 0.03,
        }
    }
}

/// People registered, and records of people to match against them.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The registered people (twins and siblings among them).
    pub registered: Vec<Person>,
    /// Corrupted copies of registered people, and people not registered
    /// (half of them twins or siblings of registered people).
    pub probes: Vec<Person>,
}

/// Makes people.
#[derive(Debug)]
pub struct Generator {
    rng: ChaCha8Rng,
    next_truth: u32,
    common: WeightedIndex<f64>,
    female: WeightedIndex<f64>,
    male: WeightedIndex<f64>,
}

fn zipf(n: usize) -> WeightedIndex<f64> {
    let weights = (1..=n).map(|rank| 1.0 / (rank as f64).powf(0.7));
    // The lists are not empty and the weights positive.
    WeightedIndex::new(weights).unwrap_or_else(|_| unreachable!("positive weights"))
}

impl Generator {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            next_truth: 0,
            common: zipf(FAMILY_NAMES.len()),
            female: zipf(FEMALE_NAMES.len()),
            male: zipf(MALE_NAMES.len()),
        }
    }

    fn truth(&mut self) -> u32 {
        self.next_truth += 1;
        self.next_truth
    }

    /// A family name: common (40%) or made of syllables.
    pub fn family_name(&mut self) -> String {
        if self.rng.gen_bool(0.4) {
            FAMILY_NAMES[self.common.sample(&mut self.rng)].to_owned()
        } else {
            let parts = self.rng.gen_range(2..=3);
            let mut name = String::new();
            for i in 0..parts {
                let syllables = if i + 1 == parts { ENDINGS } else { SYLLABLES };
                name.push_str(syllables.choose(&mut self.rng).copied().unwrap_or("son"));
            }
            capitalise(&name)
        }
    }

    fn given_name(&mut self, gender: Gender) -> String {
        match gender {
            Gender::Male => MALE_NAMES[self.male.sample(&mut self.rng)],
            _ => FEMALE_NAMES[self.female.sample(&mut self.rng)],
        }
        .to_owned()
    }

    fn gender(&mut self) -> Gender {
        match self.rng.gen_range(0..100) {
            0..49 => Gender::Male,
            49..99 => Gender::Female,
            _ => Gender::Other,
        }
    }

    fn birth_date(&mut self) -> NaiveDate {
        let start = NaiveDate::from_ymd_opt(1930, 1, 1).unwrap_or_default();
        start + chrono::Days::new(self.rng.gen_range(0..(95 * 365)))
    }

    /// A postcode in a district of about a hundred: `LS14 3AB`.
    fn postcode(&mut self) -> String {
        let area = AREAS.choose(&mut self.rng).copied().unwrap_or("LS");
        let district = self.rng.gen_range(1..=30);
        self.postcode_in(&format!("{area}{district}"))
    }

    fn postcode_in(&mut self, district: &str) -> String {
        let sector = self.rng.gen_range(0..=9);
        let unit: String = (0..2)
            .map(|_| UNIT_LETTERS[self.rng.gen_range(0..UNIT_LETTERS.len())] as char)
            .collect();
        format!("{district} {sector}{unit}")
    }

    fn uprn(&mut self) -> String {
        self.rng
            .gen_range(10_000_000_000u64..100_000_000_000)
            .to_string()
    }

    /// A valid NHS number (modulus 11) of its own for the person `truth`:
    /// no two people share one.
    fn nhs_number(truth: u32) -> String {
        let block = 400_000_000 + u64::from(truth) * 11;
        (block..block + 11)
            .find_map(|base| {
                let digits = format!("{base:09}");
                let sum: u32 = digits
                    .bytes()
                    .zip((2..=10).rev())
                    .map(|(d, w)| u32::from(d - b'0') * w)
                    .sum();
                match 11 - sum % 11 {
                    10 => None,
                    11 => Some(format!("{digits}0")),
                    check => Some(format!("{digits}{check}")),
                }
            })
            .unwrap_or_default()
    }

    /// A new person, as the system that knows them best holds them.
    pub fn person(&mut self) -> Person {
        let gender = self.gender();
        let truth = self.truth();
        Person {
            truth,
            family_name: self.family_name(),
            given_name: self.given_name(gender),
            birth_date: self.birth_date(),
            gender,
            postcode: Some(self.postcode()),
            uprn: Some(self.uprn()),
            nhs_number: Some(Self::nhs_number(truth)),
        }
    }

    /// A twin of `p`: another person with the same family name, birth
    /// date and home, and another given name.
    pub fn twin(&mut self, p: &Person) -> Person {
        let gender = self.gender();
        let mut given = self.given_name(gender);
        while given == p.given_name {
            given = self.given_name(gender);
        }
        let truth = self.truth();
        Person {
            truth,
            given_name: given,
            gender,
            nhs_number: Some(Self::nhs_number(truth)),
            ..p.clone()
        }
    }

    /// A sibling of `p`: same family name and home, born another year.
    pub fn sibling(&mut self, p: &Person) -> Person {
        let mut twin = self.twin(p);
        let years = self.rng.gen_range(1..=12);
        twin.birth_date = twin
            .birth_date
            .with_year(p.birth_date.year() + years)
            .unwrap_or(twin.birth_date + chrono::Days::new(400 * u64::from(years.unsigned_abs())));
        twin
    }

    /// A copy of `p` with errors drawn at `rates`.
    pub fn copy(&mut self, p: &Person, rates: &ErrorRates) -> Person {
        let mut c = p.clone();
        if self.rng.gen_bool(rates.family_change) {
            let new = self.family_name();
            c.family_name = if self.rng.gen_bool(0.5) {
                new
            } else {
                format!("{}-{new}", c.family_name)
            };
        }
        if self.rng.gen_bool(rates.family_typo) {
            c.family_name = self.typo(&c.family_name);
        }
        if self.rng.gen_bool(rates.nickname)
            && let Some((_, nick)) = NICKNAMES.iter().find(|(name, _)| *name == c.given_name)
        {
            c.given_name = (*nick).to_owned();
        }
        if self.rng.gen_bool(rates.initial) {
            c.given_name = c.given_name.chars().take(1).collect();
        } else if self.rng.gen_bool(rates.given_typo) {
            c.given_name = self.typo(&c.given_name);
        }
        if self.rng.gen_bool(rates.day_month_swap)
            && let Some(swapped) = NaiveDate::from_ymd_opt(
                c.birth_date.year(),
                c.birth_date.day(),
                c.birth_date.month(),
            )
            && swapped != c.birth_date
        {
            c.birth_date = swapped;
        }
        if self.rng.gen_bool(rates.birth_digit) {
            c.birth_date = self.one_digit_off(c.birth_date);
        }
        if self.rng.gen_bool(rates.moved_nearby) {
            let district = c
                .postcode
                .as_deref()
                .and_then(|p| p.split_once(' '))
                .map(|(outward, _)| outward.to_owned());
            if let Some(district) = district {
                c.postcode = Some(self.postcode_in(&district));
                c.uprn = Some(self.uprn());
            }
        } else if self.rng.gen_bool(rates.moved_away) {
            c.postcode = Some(self.postcode());
            c.uprn = Some(self.uprn());
        }
        if self.rng.gen_bool(rates.postcode_missing) {
            c.postcode = None;
        }
        if self.rng.gen_bool(rates.uprn_missing) {
            c.uprn = None;
        }
        if self.rng.gen_bool(rates.nhs_missing) {
            c.nhs_number = None;
        }
        if self.rng.gen_bool(rates.gender_unknown) {
            c.gender = Gender::Unknown;
        }
        if self.rng.gen_bool(rates.case_and_spaces) {
            c.family_name = self.case_and_spaces(&c.family_name);
            c.given_name = self.case_and_spaces(&c.given_name);
        }
        c
    }

    /// One typing slip: a letter replaced, dropped, doubled, or two
    /// swapped.
    fn typo(&mut self, name: &str) -> String {
        let mut chars: Vec<char> = name.chars().collect();
        if chars.len() < 3 {
            return name.to_owned();
        }
        let i = self.rng.gen_range(1..chars.len());
        match self.rng.gen_range(0..4) {
            0 => chars[i] = (b'a' + self.rng.gen_range(0..26u8)) as char,
            1 => {
                chars.remove(i);
            }
            2 => chars.insert(i, chars[i]),
            _ => chars.swap(i - 1, i),
        }
        chars.into_iter().collect()
    }

    fn one_digit_off(&mut self, date: NaiveDate) -> NaiveDate {
        for _ in 0..20 {
            let digits = format!("{:04}{:02}{:02}", date.year(), date.month(), date.day());
            let mut bytes = digits.into_bytes();
            let i = self.rng.gen_range(2..bytes.len());
            bytes[i] = b'0' + self.rng.gen_range(0..10u8);
            let s = String::from_utf8_lossy(&bytes).into_owned();
            if let Ok(d) = NaiveDate::parse_from_str(&s, "%Y%m%d")
                && d != date
                && d.year() >= 1900
            {
                return d;
            }
        }
        date
    }

    fn case_and_spaces(&mut self, name: &str) -> String {
        let cased = if self.rng.gen_bool(0.5) {
            name.to_uppercase()
        } else {
            name.to_lowercase()
        };
        format!("{cased}{}", " ".repeat(self.rng.gen_range(0..3)))
    }

    /// `people` registered people (2% with a registered twin and 5% with a
    /// registered sibling besides), and probes: a corrupted copy of half of
    /// them, and a quarter as many people not registered, half of those
    /// twins or siblings of registered people.
    pub fn dataset(&mut self, people: usize, rates: &ErrorRates) -> Dataset {
        let mut registered = Vec::with_capacity(people * 108 / 100);
        let mut probes = Vec::with_capacity(people * 3 / 4);
        // People registered without a twin or sibling: the unregistered
        // twins and siblings are theirs (so that no two children of one
        // family share a given name).
        let mut alone = Vec::with_capacity(people);
        for _ in 0..people {
            let p = self.person();
            if self.rng.gen_bool(0.02) {
                registered.push(self.twin(&p));
            } else if self.rng.gen_bool(0.05) {
                registered.push(self.sibling(&p));
            } else {
                alone.push(registered.len());
            }
            if self.rng.gen_bool(0.5) {
                probes.push(self.copy(&p, rates));
            }
            registered.push(p);
        }
        for i in 0..people / 4 {
            let of = alone
                .get(self.rng.gen_range(0..alone.len().max(1)))
                .map(|at| registered[*at].clone());
            let stranger = match (i % 4, of) {
                (0, Some(of)) => self.twin(&of),
                (1, Some(of)) => self.sibling(&of),
                _ => self.person(),
            };
            probes.push(self.copy(&stranger, rates));
        }
        Dataset { registered, probes }
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

const UNIT_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";

const AREAS: &[&str] = &[
    "LS", "BD", "HX", "HD", "WF", "S", "M", "L", "B", "CV", "NG", "LE", "DE", "NE", "SR", "DH",
    "TS", "YO", "HU", "DN", "BS", "CF", "SA", "EH", "G", "AB", "DD", "PL", "EX", "TQ", "BN", "RH",
    "GU", "RG", "OX", "MK", "LU", "AL", "SG", "CB", "IP", "NR", "PE", "LN", "ST", "WV", "WS", "DY",
    "WR", "HR", "GL", "SN", "BA", "TA", "DT", "BH", "SO", "PO", "CT", "ME", "TN", "DA", "BR", "CR",
    "SM", "KT", "TW", "UB", "HA", "EN", "IG", "RM", "SS", "CM", "CO", "CH", "WA", "WN", "BL", "OL",
    "SK", "BB", "PR", "FY", "LA", "CA", "HG",
];

const FAMILY_NAMES: &[&str] = &[
    "Smith",
    "Jones",
    "Williams",
    "Taylor",
    "Brown",
    "Davies",
    "Evans",
    "Wilson",
    "Thomas",
    "Johnson",
    "Roberts",
    "Robinson",
    "Thompson",
    "Wright",
    "Walker",
    "White",
    "Edwards",
    "Hughes",
    "Green",
    "Hall",
    "Lewis",
    "Harris",
    "Clarke",
    "Patel",
    "Jackson",
    "Wood",
    "Turner",
    "Martin",
    "Cooper",
    "Hill",
    "Ward",
    "Morris",
    "Moore",
    "Clark",
    "Lee",
    "King",
    "Baker",
    "Harrison",
    "Morgan",
    "Allen",
    "James",
    "Scott",
    "Phillips",
    "Watson",
    "Davis",
    "Parker",
    "Price",
    "Bennett",
    "Young",
    "Griffiths",
    "Mitchell",
    "Kelly",
    "Cook",
    "Carter",
    "Richardson",
    "Bailey",
    "Collins",
    "Bell",
    "Shaw",
    "Murphy",
    "Miller",
    "Cox",
    "Richards",
    "Khan",
    "Marshall",
    "Anderson",
    "Simpson",
    "Ellis",
    "Adams",
    "Singh",
    "Begum",
    "Wilkinson",
    "Foster",
    "Chapman",
    "Powell",
    "Webb",
    "Rogers",
    "Gray",
    "Mason",
    "Ali",
    "Hunt",
    "Hussain",
    "Campbell",
    "Matthews",
    "Owen",
    "Palmer",
    "Holmes",
    "Mills",
    "Barnes",
    "Knight",
    "Lloyd",
    "Butler",
    "Russell",
    "Barker",
    "Fisher",
    "Stevens",
    "Jenkins",
    "Murray",
    "Dixon",
    "Harvey",
    "Graham",
    "Pearson",
    "Ahmed",
    "Fletcher",
    "Walsh",
    "Kaur",
    "Gibson",
    "Howard",
    "Andrews",
    "Stewart",
    "Elliott",
    "Reynolds",
    "Saunders",
    "Payne",
    "Fox",
    "Ford",
    "Pearce",
    "Day",
    "Brooks",
    "West",
    "Lawrence",
    "Cole",
    "Atkinson",
    "Bradley",
    "Spencer",
    "Gill",
    "Dawson",
    "Ball",
    "Burton",
    "O'Brien",
    "Watts",
    "Rose",
    "Booth",
    "Perry",
    "Ryan",
    "Grant",
    "Wells",
    "Armstrong",
    "Francis",
    "Rees",
    "Hayes",
    "Hart",
    "Hudson",
    "Newman",
    "Barrett",
    "Webster",
    "Hunter",
    "Gregory",
    "Carr",
    "Lowe",
    "Page",
    "Marsh",
    "Riley",
    "Dunn",
    "Woods",
    "Parsons",
    "Berry",
    "Stone",
    "Reid",
    "Holland",
    "Hawkins",
    "Harding",
    "Porter",
    "Robertson",
    "Newton",
    "Oliver",
    "Reed",
    "Kennedy",
    "Williamson",
    "Bird",
    "Gardner",
    "Shah",
    "Dean",
    "Lane",
    "Cooke",
    "Bates",
    "Henderson",
    "Parry",
    "Burgess",
    "Bishop",
    "Walton",
    "Burns",
    "Nicholson",
    "Shepherd",
    "Ross",
    "Cross",
    "Long",
    "Freeman",
    "Warren",
    "Nicholls",
    "Hamilton",
    "Byrne",
    "Sutton",
    "McDonald",
    "Yates",
    "Hodgson",
    "Robson",
    "Curtis",
    "Hopkins",
    "O'Connor",
    "Harper",
    "Coleman",
    "Watkins",
    "Moss",
    "McCarthy",
    "Chambers",
    "O'Neill",
    "Griffin",
    "Sharp",
    "Hardy",
    "Wheeler",
    "Potter",
    "Osborne",
    "Johnston",
    "Gordon",
    "Doyle",
    "Wallace",
    "George",
    "Jordan",
    "Hutchinson",
    "Rowe",
    "Burke",
    "May",
    "Pritchard",
    "Gilbert",
    "Willis",
    "Higgins",
    "Read",
    "Miah",
    "Nowak",
    "Kowalski",
    "Nguyen",
    "Okafor",
    "Mensah",
    "Rahman",
];

const SYLLABLES: &[&str] = &[
    "ash", "bar", "bel", "brad", "brom", "cal", "car", "chad", "cran", "dal", "dun", "ed", "fair",
    "far", "gar", "glen", "had", "hal", "har", "hol", "kel", "kin", "lang", "lock", "mar", "mel",
    "mor", "nor", "ox", "pen", "ral", "red", "ring", "ros", "sal", "sand", "shel", "stan", "stock",
    "tal", "thorn", "wal", "wes", "whit", "win", "wood", "yar", "ab", "al", "ber", "cor", "dor",
    "el", "fen", "gil", "hen", "il", "mal", "ol", "ter",
];

const ENDINGS: &[&str] = &[
    "by", "ford", "ton", "ley", "well", "worth", "field", "wick", "ham", "den", "hurst", "more",
    "combe", "bury", "stead", "thwaite", "dale", "shaw", "croft", "gate", "son", "er", "ett",
    "ington", "ridge", "land", "ing", "cott", "low", "brook",
];

const FEMALE_NAMES: &[&str] = &[
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Emily",
    "Sophia",
    "Grace",
    "Mia",
    "Poppy",
    "Ella",
    "Lily",
    "Evie",
    "Isabella",
    "Sophie",
    "Ivy",
    "Freya",
    "Harper",
    "Willow",
    "Charlotte",
    "Jessica",
    "Elizabeth",
    "Margaret",
    "Katherine",
    "Rebecca",
    "Jennifer",
    "Victoria",
    "Samantha",
    "Alexandra",
    "Abigail",
    "Deborah",
    "Susan",
    "Patricia",
    "Eleanor",
    "Sarah",
    "Laura",
    "Emma",
    "Hannah",
    "Lucy",
    "Amy",
    "Rachel",
    "Claire",
    "Nicola",
    "Helen",
    "Karen",
    "Julie",
    "Joanne",
    "Michelle",
    "Lisa",
    "Angela",
    "Tracey",
    "Mary",
    "Jean",
    "Anne",
    "Joan",
    "Barbara",
    "Dorothy",
    "Christine",
    "Linda",
    "Carol",
    "Sandra",
    "Amira",
    "Fatima",
    "Aisha",
    "Zainab",
    "Priya",
    "Anjali",
    "Maryam",
    "Nia",
    "Chloe",
    "Megan",
    "Zoe",
    "Holly",
    "Ruby",
    "Phoebe",
    "Matilda",
    "Erin",
    "Daisy",
    "Florence",
    "Alice",
    "Rosie",
    "Imogen",
    "Niamh",
    "Siobhan",
    "Bethan",
    "Catrin",
    "Eilidh",
    "Agnieszka",
    "Oluwaseun",
    "Ngozi",
    "Leila",
];

const MALE_NAMES: &[&str] = &[
    "Oliver",
    "George",
    "Noah",
    "Arthur",
    "Harry",
    "Leo",
    "Muhammad",
    "Jack",
    "Charlie",
    "Oscar",
    "Jacob",
    "Henry",
    "Thomas",
    "Freddie",
    "Alfie",
    "Theo",
    "William",
    "Theodore",
    "Archie",
    "Joshua",
    "Robert",
    "Richard",
    "Alexander",
    "Christopher",
    "Jonathan",
    "Matthew",
    "Michael",
    "Nicholas",
    "Samuel",
    "Daniel",
    "James",
    "Joseph",
    "Benjamin",
    "Edward",
    "Anthony",
    "David",
    "John",
    "Peter",
    "Paul",
    "Mark",
    "Andrew",
    "Stephen",
    "Gary",
    "Ian",
    "Kevin",
    "Simon",
    "Neil",
    "Lee",
    "Craig",
    "Darren",
    "Wayne",
    "Dean",
    "Kenneth",
    "Brian",
    "Ronald",
    "Keith",
    "Colin",
    "Graham",
    "Ahmed",
    "Ali",
    "Omar",
    "Yusuf",
    "Ibrahim",
    "Hamza",
    "Arjun",
    "Rohan",
    "Kwame",
    "Chukwuemeka",
    "Tomasz",
    "Piotr",
    "Callum",
    "Connor",
    "Kieran",
    "Liam",
    "Ethan",
    "Lewis",
    "Ryan",
    "Jamie",
    "Luke",
    "Adam",
    "Nathan",
    "Owen",
    "Rhys",
    "Dylan",
    "Gareth",
    "Euan",
    "Angus",
    "Ciaran",
    "Declan",
    "Finn",
];

const NICKNAMES: &[(&str, &str)] = &[
    ("Robert", "Bob"),
    ("William", "Bill"),
    ("Richard", "Dick"),
    ("Elizabeth", "Liz"),
    ("Margaret", "Maggie"),
    ("Katherine", "Kate"),
    ("Alexander", "Alex"),
    ("Christopher", "Chris"),
    ("Jonathan", "Jon"),
    ("Matthew", "Matt"),
    ("Michael", "Mike"),
    ("Nicholas", "Nick"),
    ("Samuel", "Sam"),
    ("Thomas", "Tom"),
    ("Daniel", "Dan"),
    ("James", "Jim"),
    ("Joseph", "Joe"),
    ("Benjamin", "Ben"),
    ("Edward", "Ted"),
    ("Anthony", "Tony"),
    ("Rebecca", "Becky"),
    ("Jennifer", "Jen"),
    ("Victoria", "Vicky"),
    ("Samantha", "Sam"),
    ("Alexandra", "Sasha"),
    ("Charlotte", "Lottie"),
    ("Abigail", "Abby"),
    ("Deborah", "Debbie"),
    ("Susan", "Sue"),
    ("Patricia", "Pat"),
    ("Jessica", "Jess"),
    ("Eleanor", "Ellie"),
    ("Kenneth", "Ken"),
    ("Ronald", "Ron"),
    ("Stephen", "Steve"),
    ("Andrew", "Andy"),
    ("Peter", "Pete"),
    ("Theodore", "Theo"),
    ("Frederick", "Fred"),
    ("Henry", "Harry"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::subject::parse_postcode;

    #[test]
    fn a_seed_makes_the_same_people() {
        let rates = ErrorRates::default();
        let a = Generator::new(7).dataset(200, &rates);
        let b = Generator::new(7).dataset(200, &rates);
        assert_eq!(a.registered, b.registered);
        assert_eq!(a.probes, b.probes);
        let c = Generator::new(8).dataset(200, &rates);
        assert_ne!(a.registered, c.registered);
    }

    #[test]
    fn nhs_numbers_are_valid_and_never_shared() {
        let numbers: std::collections::HashSet<String> =
            (1..=50_000).map(Generator::nhs_number).collect();
        assert_eq!(numbers.len(), 50_000);
        for n in numbers.iter().take(500) {
            assert!(
                crate::domain::identifier::parse_nhs_number(n).is_ok(),
                "{n}"
            );
        }
    }

    #[test]
    fn people_are_well_formed() {
        let mut g = Generator::new(1);
        for _ in 0..2000 {
            let p = g.person();
            let postcode = p.postcode.clone().unwrap();
            assert_eq!(parse_postcode(&postcode).unwrap(), postcode);
            let nhs = p.nhs_number.clone().unwrap();
            assert!(
                crate::domain::identifier::parse_nhs_number(&nhs).is_ok(),
                "{nhs}"
            );
            let copy = g.copy(&p, &ErrorRates::default());
            assert_eq!(copy.truth, p.truth);
            if let Some(pc) = copy.postcode {
                assert!(parse_postcode(&pc).is_ok(), "{pc}");
            }
        }
    }

    #[test]
    fn copies_carry_the_errors_asked_for() {
        let mut g = Generator::new(3);
        let p = g.person();
        let all = ErrorRates {
            family_typo: 0.0,
            given_typo: 0.0,
            nickname: 0.0,
            initial: 1.0,
            family_change: 0.0,
            day_month_swap: 0.0,
            birth_digit: 1.0,
            moved_nearby: 1.0,
            moved_away: 0.0,
            postcode_missing: 0.0,
            uprn_missing: 1.0,
            nhs_missing: 1.0,
            case_and_spaces: 0.0,
            gender_unknown: 0.0,
        };
        let c = g.copy(&p, &all);
        assert_eq!(c.given_name.chars().count(), 1);
        assert_ne!(c.birth_date, p.birth_date);
        assert_eq!(
            c.postcode
                .as_deref()
                .and_then(|x| x.split_once(' '))
                .map(|x| x.0),
            p.postcode
                .as_deref()
                .and_then(|x| x.split_once(' '))
                .map(|x| x.0)
        );
        assert_eq!((c.uprn, c.nhs_number), (None, None));
    }
}
