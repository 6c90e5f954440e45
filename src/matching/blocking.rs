//! Blocking keys: the few indexed values through which a person's possible
//! duplicates are found without looking at every subject. Two records of
//! one person share at least one key unless several of their fields are
//! wrong at once.

use chrono::{Datelike, NaiveDate};

use super::compare::{Name, postcode_parts, sounds};

/// The keys of a person, sorted and without repeats:
///
/// - `f:{sound of the family name}:{birth year}`: survives typing slips in
///   the names, a swapped day and month, a move;
/// - `m:{sound of the family name}:{birth month and day}`: survives a
///   wrong birth year;
/// - `g:{sound of the first given name}:{birth date}`: survives a change of
///   family name;
/// - `p:{postcode district}:{birth date}`: survives both names recorded
///   differently.
///
/// A family name's sounds are its Double Metaphone codes, whole and for
/// each part of a hyphenated or double-barrelled name, so that
/// `Smith-Jones` shares keys with `Smith` and with `Jones`. A name with no
/// Latin letters stands for itself.
pub fn keys(
    family_name: &str,
    given_name: &str,
    birth_date: NaiveDate,
    postcode: Option<&str>,
) -> Vec<String> {
    let mut keys = vec![];
    let year = birth_date.year();
    let (month, day) = (birth_date.month(), birth_date.day());
    for code in family_codes(&Name::new(family_name)) {
        keys.push(format!("f:{code}:{year:04}"));
        keys.push(format!("m:{code}:{month:02}{day:02}"));
    }
    let given = Name::new(given_name);
    if let Some(first) = given.parts.first() {
        for code in codes_of(first) {
            keys.push(format!("g:{code}:{birth_date}"));
        }
    }
    if let Some((outward, _)) = postcode.and_then(postcode_parts) {
        keys.push(format!("p:{outward}:{birth_date}"));
    }
    keys.sort();
    keys.dedup();
    keys
}

/// The codes a family name is found by: of the whole, and of each part
/// of two or more letters when there are several.
fn family_codes(name: &Name) -> Vec<String> {
    let mut codes = codes_of(&name.letters);
    if name.parts.len() > 1 {
        for part in name.parts.iter().filter(|p| p.chars().count() > 1).take(4) {
            codes.extend(codes_of(part));
        }
    }
    codes
}

/// The sounds of `letters`, or the letters themselves when they have none.
fn codes_of(letters: &str) -> Vec<String> {
    if letters.is_empty() {
        return vec![];
    }
    let codes = sounds(letters);
    if codes.is_empty() {
        vec![format!("={letters}")]
    } else {
        codes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn shared(a: &[String], b: &[String]) -> Vec<String> {
        a.iter().filter(|k| b.contains(k)).cloned().collect()
    }

    #[test]
    fn keys_cover_each_field() {
        let k = keys("Khan", "Amira", date("2012-05-04"), Some("ls1 4ap"));
        assert_eq!(
            k,
            [
                "f:KN:2012",
                "g:AMR:2012-05-04",
                "m:KN:0504",
                "p:LS1:2012-05-04"
            ]
        );
    }

    #[test]
    fn copies_of_one_person_share_a_key() {
        let born = date("1984-03-09");
        let original = keys("Smith", "Joanne", born, Some("LS6 2AB"));
        let copies = [
            keys("Smyth", "Jo", born, None),
            keys("Smith-Jones", "Joanne", date("1984-09-03"), None),
            keys("Smith", "Joanne", date("1985-03-09"), None),
            keys("Clarke", "Joanne", born, None),
            keys("Clarke", "Jo", born, Some("ls6 3zz")),
        ];
        for copy in &copies {
            assert!(
                !shared(&original, copy).is_empty(),
                "{original:?} vs {copy:?}"
            );
        }
        let stranger = keys("Clarke", "Joanne", date("1990-03-09"), Some("M1 1AE"));
        assert!(shared(&original, &stranger).is_empty());
    }

    #[test]
    fn names_in_other_scripts_stand_for_themselves() {
        let k = keys("李", "小龙", date("1940-11-27"), None);
        assert!(k.contains(&"f:=李:1940".to_owned()), "{k:?}");
        assert!(k.contains(&"g:=小龙:1940-11-27".to_owned()), "{k:?}");
    }
}
