//! Field-by-field comparisons: each pair of values falls into one level of
//! agreement, from exact to different. Pure functions.

use chrono::{Datelike, NaiveDate};
use rphonetic::DoubleMetaphone;

/// Jaro–Winkler similarity at or above which two names are "similar".
pub const SIMILAR_NAMES: f64 = 0.90;

/// Two names that share a Double Metaphone code "sound alike" only if they
/// also start with the same letter or have at least this Jaro–Winkler
/// similarity: short names, and names starting with a vowel, share codes
/// far more often than they sound alike (`Olivia` and `Alfie`, `Owen` and
/// `Wayne`), while `Lee` and `Leigh` or `Catherine` and `Kathryn` do.
pub const SOUNDS_ALIKE_SIMILARITY: f64 = 0.75;

/// How two names compare, best level first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NameLevel {
    /// The same letters, ignoring case, accents, spaces, hyphens and
    /// apostrophes.
    Exact,
    /// Jaro–Winkler similarity (of the letters) at or above
    /// [`SIMILAR_NAMES`]: a typing slip.
    Similar(f64),
    /// One name is a part of the other (a hyphenated or double-barrelled
    /// family name, one of several given names), or they share a part.
    SharedPart,
    /// Different spellings of one sound (a Double Metaphone code in
    /// common, and the same first letter or a Jaro–Winkler similarity of
    /// at least [`SOUNDS_ALIKE_SIMILARITY`]).
    SoundsAlike,
    /// One is an initial (or initials), and the other starts with it.
    Initial,
    /// None of the above.
    Different,
}

/// A name reduced to what matching compares: its parts, lower case, letters
/// only (the accented Latin letters common in names folded to ASCII;
/// apostrophes, digits and punctuation dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The parts, in order: split at spaces, hyphens and full stops.
    pub parts: Vec<String>,
    /// Every part run together.
    pub letters: String,
}

impl Name {
    /// Normalises `raw`.
    pub fn new(raw: &str) -> Self {
        let parts: Vec<String> = raw
            .split(|c: char| c.is_whitespace() || matches!(c, '-' | '.' | '_' | ','))
            .map(fold)
            .filter(|p| !p.is_empty())
            .collect();
        let letters = parts.concat();
        Self { parts, letters }
    }

    /// Whether nothing comparable is left.
    pub fn is_empty(&self) -> bool {
        self.letters.is_empty()
    }

    /// The Double Metaphone codes (primary, and alternate where it
    /// differs) of the whole name, at most two.
    pub fn sounds(&self) -> Vec<String> {
        sounds(&self.letters)
    }
}

/// The Double Metaphone codes of the ASCII letters of `letters`: primary,
/// then the alternate if it differs. Empty when there are none (a name
/// written only in another script).
pub fn sounds(letters: &str) -> Vec<String> {
    let ascii: String = letters.chars().filter(char::is_ascii_alphabetic).collect();
    if ascii.is_empty() {
        return vec![];
    }
    let codes = DoubleMetaphone::default().double_metaphone(&ascii);
    let (primary, alternate) = (codes.primary(), codes.alternate());
    let mut out = vec![];
    if !primary.is_empty() {
        out.push(primary.clone());
    }
    if !alternate.is_empty() && alternate != primary {
        out.push(alternate);
    }
    out
}

/// The lower-case letters of `part`, with the accented Latin letters common
/// in names folded to their base letter; apostrophes and anything else
/// that is not a letter dropped.
fn fold(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for c in part.chars().flat_map(char::to_lowercase) {
        let base = match c {
            'a'..='z' => c,
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => 'a',
            'ç' | 'č' | 'ć' => 'c',
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' => 'e',
            'ì' | 'í' | 'î' | 'ï' | 'ī' => 'i',
            'ñ' | 'ń' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => 'o',
            'ù' | 'ú' | 'û' | 'ü' | 'ū' => 'u',
            'ý' | 'ÿ' => 'y',
            'š' | 'ś' => 's',
            'ž' | 'ź' | 'ż' => 'z',
            'ł' => 'l',
            c if c.is_alphabetic() => c,
            _ => continue,
        };
        out.push(base);
    }
    out
}

/// Compares two normalised names.
pub fn names(a: &Name, b: &Name) -> NameLevel {
    if a.letters == b.letters {
        return NameLevel::Exact;
    }
    let long = |n: &Name| {
        n.parts
            .iter()
            .filter(|p| p.len() > 1)
            .cloned()
            .collect::<Vec<_>>()
    };
    let (pa, pb) = (long(a), long(b));
    if (a.parts.len() > 1 || b.parts.len() > 1) && pa.iter().any(|p| pb.contains(p)) {
        return NameLevel::SharedPart;
    }
    let similarity = strsim::jaro_winkler(&a.letters, &b.letters);
    if similarity >= SIMILAR_NAMES {
        return NameLevel::Similar(similarity);
    }
    let initials = |n: &Name| n.parts.iter().all(|p| p.chars().count() == 1);
    if initials(a) || initials(b) {
        let first = |n: &Name| n.letters.chars().next();
        return if first(a) == first(b) {
            NameLevel::Initial
        } else {
            NameLevel::Different
        };
    }
    let (sa, sb) = (a.sounds(), b.sounds());
    let alike_spelling = similarity >= SOUNDS_ALIKE_SIMILARITY
        || a.letters.chars().next() == b.letters.chars().next();
    if alike_spelling && sa.iter().any(|s| sb.contains(s)) {
        return NameLevel::SoundsAlike;
    }
    NameLevel::Different
}

/// How two birth dates compare, best level first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateLevel {
    Exact,
    /// Day and month swapped (same year).
    Transposed,
    /// One digit of `YYYYMMDD` differs.
    OneDigit,
    /// Only the year agrees.
    SameYear,
    Different,
}

/// Compares two birth dates.
pub fn dates(a: NaiveDate, b: NaiveDate) -> DateLevel {
    if a == b {
        return DateLevel::Exact;
    }
    if a.year() == b.year() && a.day() == b.month() && a.month() == b.day() {
        return DateLevel::Transposed;
    }
    let digits = |d: NaiveDate| format!("{:04}{:02}{:02}", d.year(), d.month(), d.day());
    let (da, db) = (digits(a), digits(b));
    let differing = da.bytes().zip(db.bytes()).filter(|(x, y)| x != y).count();
    if da.len() == db.len() && differing == 1 {
        return DateLevel::OneDigit;
    }
    if a.year() == b.year() {
        return DateLevel::SameYear;
    }
    DateLevel::Different
}

/// How two postcodes compare, best level first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostcodeLevel {
    /// The same postcode.
    Full,
    /// The same sector (`LS1 4`): the same few streets.
    Sector,
    /// The same district (`LS1`).
    District,
    Different,
}

/// A postcode's outward code and inward code, from any spacing or case:
/// `ls14ap` -> (`LS1`, `4AP`). `None` for too short a value.
pub fn postcode_parts(postcode: &str) -> Option<(String, String)> {
    let compact: String = postcode
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if compact.len() < 5 || !compact.is_ascii() {
        return None;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    Some((outward.to_owned(), inward.to_owned()))
}

/// Compares two postcodes (in any spacing or case).
pub fn postcodes(a: &str, b: &str) -> PostcodeLevel {
    match (postcode_parts(a), postcode_parts(b)) {
        (Some((oa, ia)), Some((ob, ib))) if oa == ob => {
            if ia == ib {
                PostcodeLevel::Full
            } else if ia.get(..1) == ib.get(..1) {
                PostcodeLevel::Sector
            } else {
                PostcodeLevel::District
            }
        }
        _ => PostcodeLevel::Different,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn names_compare_by_level() {
        let cases: &[(&str, &str, &str)] = &[
            ("Khan", "KHAN ", "exact"),
            ("O'Brien", "obrien", "exact"),
            ("Smith-Jones", "Smith Jones", "exact"),
            ("Zoë", "Zoe", "exact"),
            ("Johnson", "Jonson", "similar"),
            ("Catherine", "Catharine", "similar"),
            ("Smith-Jones", "Jones", "shared part"),
            ("Mary Ann", "Mary", "shared part"),
            ("Smith-Jones", "Smith", "shared part"),
            ("Anne Marie", "Marie", "shared part"),
            ("Stephen", "Steven", "sounds alike"),
            ("Philips", "Fillips", "sounds alike"),
            ("J", "James", "initial"),
            ("J. R.", "John", "initial"),
            ("N", "Noah", "initial"),
            ("N", "Amira", "different"),
            ("Catherine", "Kathryn", "sounds alike"),
            ("Lee", "Leigh", "sounds alike"),
            ("Anne", "Ian", "different"),
            ("Olivia", "Alfie", "different"),
            ("Owen", "Wayne", "different"),
            ("Julie", "Isla", "different"),
            ("Robert", "Bob", "different"),
            ("Khan", "Smith", "different"),
        ];
        for (a, b, want) in cases {
            let level = names(&Name::new(a), &Name::new(b));
            let got = match level {
                NameLevel::Exact => "exact",
                NameLevel::Similar(_) => "similar",
                NameLevel::SharedPart => "shared part",
                NameLevel::SoundsAlike => "sounds alike",
                NameLevel::Initial => "initial",
                NameLevel::Different => "different",
            };
            assert_eq!(got, *want, "{a:?} vs {b:?}: {level:?}");
            assert_eq!(
                names(&Name::new(b), &Name::new(a)),
                level,
                "{a:?} vs {b:?} is not symmetric"
            );
        }
    }

    #[test]
    fn names_are_normalised() {
        let n = Name::new("  de la Cruz-O'Neill ");
        assert_eq!(n.parts, ["de", "la", "cruz", "oneill"]);
        assert_eq!(n.letters, "delacruzoneill");
        assert!(Name::new(" '- 42").is_empty());
        assert_eq!(
            Name::new("李 小龙").letters,
            "李小龙",
            "other scripts are kept"
        );
        assert!(
            Name::new("李").sounds().is_empty(),
            "but have no sound code"
        );
    }

    #[test]
    fn birth_dates_compare_by_level() {
        let cases: &[(&str, &str, DateLevel)] = &[
            ("2012-05-04", "2012-05-04", DateLevel::Exact),
            ("2012-05-04", "2012-04-05", DateLevel::Transposed),
            ("2012-05-04", "2012-05-07", DateLevel::OneDigit),
            ("1985-05-04", "1986-05-04", DateLevel::OneDigit),
            ("2012-05-04", "2012-11-23", DateLevel::SameYear),
            ("2012-05-04", "1971-05-04", DateLevel::Different),
            ("2012-05-04", "2013-04-05", DateLevel::Different),
        ];
        for (a, b, want) in cases {
            assert_eq!(dates(date(a), date(b)), *want, "{a} vs {b}");
            assert_eq!(dates(date(b), date(a)), *want, "{b} vs {a}");
        }
    }

    #[test]
    fn postcodes_compare_with_or_without_spaces() {
        let cases: &[(&str, &str, PostcodeLevel)] = &[
            ("LS1 4AP", "ls14ap", PostcodeLevel::Full),
            ("LS1 4AP", "LS1  4AP", PostcodeLevel::Full),
            ("LS1 4AP", "LS1 4BB", PostcodeLevel::Sector),
            ("LS1 4AP", "LS1 5AP", PostcodeLevel::District),
            ("SW1A 1AA", "SW1A2AA", PostcodeLevel::District),
            ("LS1 4AP", "LS11 4AP", PostcodeLevel::Different),
            ("LS1 4AP", "M1 1AE", PostcodeLevel::Different),
            ("LS1 4AP", "LS1", PostcodeLevel::Different),
        ];
        for (a, b, want) in cases {
            assert_eq!(postcodes(a, b), *want, "{a} vs {b}");
            assert_eq!(postcodes(b, a), *want, "{b} vs {a}");
        }
    }

    #[test]
    fn sounds_are_double_metaphone_codes() {
        assert_eq!(sounds("smith"), ["SM0", "XMT"]);
        assert_eq!(sounds("schmidt"), ["XMT", "SMT"]);
        assert!(sounds("").is_empty());
    }
}
