//! Explainable probabilistic person matching (Fellegi–Sunter).
//!
//! A candidate is compared with an existing subject field by field; each
//! comparison falls into a level of agreement whose weight (a
//! log-likelihood ratio in bits, [`MatchWeights`]) is added to the score.
//! The score is read against two [`Thresholds`]: the same person, a
//! possible match for review, different people. Every field's level and
//! weight is kept, so a score always comes with its reasons. Pure
//! functions: candidates are found by [`blocking::keys`] in the store.

pub mod blocking;
pub mod compare;
#[cfg(feature = "dev")]
pub mod quality;
#[cfg(feature = "dev")]
pub mod synthetic;
mod weights;

use std::fmt;

use chrono::NaiveDate;

pub use self::weights::{
    AgreeWeights, DateWeights, MatchWeights, NameWeights, PostcodeWeights, Thresholds,
};
use crate::domain::{Gender, Identifier, IdentifierSystem, Subject};
use compare::{DateLevel, Name, NameLevel, PostcodeLevel};

/// What is compared of a person: a probe or a registered subject.
#[derive(Debug, Clone, Copy)]
pub struct Profile<'a> {
    pub family_name: &'a str,
    pub given_name: Option<&'a str>,
    pub birth_date: NaiveDate,
    /// `None` when not known (`Unknown` counts as not known).
    pub gender: Option<Gender>,
    pub postcode: Option<&'a str>,
    pub uprn: Option<&'a str>,
    pub identifiers: &'a [Identifier],
}

impl<'a> Profile<'a> {
    /// A registered subject's profile.
    pub fn of(subject: &'a Subject) -> Self {
        let d = &subject.demographics;
        Self {
            family_name: &d.family_name,
            given_name: Some(d.given_name.as_str()),
            birth_date: d.birth_date,
            gender: Some(d.gender),
            postcode: d.postcode.as_deref(),
            uprn: d.uprn.as_deref(),
            identifiers: &subject.identifiers,
        }
    }

    /// The blocking keys this profile is found by, and finds others by.
    pub fn blocking_keys(&self) -> Vec<String> {
        blocking::keys(
            self.family_name,
            self.given_name.unwrap_or_default(),
            self.birth_date,
            self.postcode,
        )
    }
}

/// A compared field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    FamilyName,
    GivenName,
    BirthDate,
    Gender,
    Postcode,
    Uprn,
    NhsNumber,
    PncId,
    LocalReference,
}

impl Field {
    /// The field's name in the API, e.g. `family_name`.
    pub fn name(self) -> &'static str {
        match self {
            Self::FamilyName => "family_name",
            Self::GivenName => "given_name",
            Self::BirthDate => "birth_date",
            Self::Gender => "gender",
            Self::Postcode => "postcode",
            Self::Uprn => "uprn",
            Self::NhsNumber => "nhs_number",
            Self::PncId => "pnc_id",
            Self::LocalReference => "local_reference",
        }
    }

    /// The field in plain words, e.g. `family name`.
    pub fn label(self) -> &'static str {
        match self {
            Self::FamilyName => "family name",
            Self::GivenName => "given name",
            Self::BirthDate => "birth date",
            Self::Gender => "gender",
            Self::Postcode => "postcode",
            Self::Uprn => "UPRN",
            Self::NhsNumber => "NHS number",
            Self::PncId => "PNC ID",
            Self::LocalReference => "local reference",
        }
    }
}

/// How one field compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Level {
    /// The same value (after normalising).
    Exact,
    /// Names: similar spelling, with the Jaro–Winkler similarity.
    Similar(f64),
    /// Names: one is part of the other, or they share a part.
    SharedPart,
    /// Names: spelt differently, sound alike.
    SoundsAlike,
    /// Names: an initial agreeing with the other's first letter.
    Initial,
    /// Birth date: day and month swapped.
    Transposed,
    /// Birth date: one digit different.
    OneDigit,
    /// Birth date: only the year agrees.
    SameYear,
    /// Postcode: the same sector.
    Sector,
    /// Postcode: the same district.
    District,
    /// Both have values and they disagree.
    Different,
    /// One side or both have no value: no evidence either way.
    Absent,
}

impl Level {
    /// The level in plain words.
    pub fn describe(self) -> String {
        match self {
            Self::Exact => "same".to_owned(),
            Self::Similar(s) => format!("similar ({s:.2})"),
            Self::SharedPart => "shares a part".to_owned(),
            Self::SoundsAlike => "sounds alike".to_owned(),
            Self::Initial => "initial agrees".to_owned(),
            Self::Transposed => "day and month swapped".to_owned(),
            Self::OneDigit => "one digit different".to_owned(),
            Self::SameYear => "same year only".to_owned(),
            Self::Sector => "same sector".to_owned(),
            Self::District => "same district".to_owned(),
            Self::Different => "different".to_owned(),
            Self::Absent => "absent".to_owned(),
        }
    }
}

/// One field's part in a score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contribution {
    pub field: Field,
    pub level: Level,
    /// The weight added to the score (0 when absent).
    pub weight: f64,
}

impl fmt::Display for Contribution {
    /// E.g. `family name: similar (0.93) +5.0`, `NHS number: absent`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field.label(), self.level.describe())?;
        if self.level != Level::Absent {
            write!(f, " {:+.1}", self.weight)?;
        }
        Ok(())
    }
}

/// What the score says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Below the possible-match threshold.
    Different,
    /// Between the thresholds, or above with the given names disagreeing
    /// and no national identifier agreeing: for a person to review.
    Possible,
    /// At or above the same-person threshold.
    SamePerson,
}

/// A scored comparison with its reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The sum of the contributions' weights, in bits.
    pub score: f64,
    pub verdict: Verdict,
    /// Every field compared, in a fixed order.
    pub contributions: Vec<Contribution>,
}

impl Explanation {
    /// The contributions in plain words, separated by `; `.
    pub fn summary(&self) -> String {
        self.contributions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The fields that counted for the match.
    pub fn agreeing_fields(&self) -> Vec<&'static str> {
        self.contributions
            .iter()
            .filter(|c| c.weight > 0.0)
            .map(|c| c.field.name())
            .collect()
    }

    /// Whether an identifier of a national system, or a local reference of
    /// one agency, is held by both sides with the same value.
    pub fn identifier_agrees(&self) -> bool {
        self.contributions.iter().any(|c| {
            matches!(
                c.field,
                Field::NhsNumber | Field::PncId | Field::LocalReference
            ) && c.level == Level::Exact
        })
    }
}

/// The matcher: weights and thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Matcher {
    pub weights: MatchWeights,
    pub thresholds: Thresholds,
}

impl Matcher {
    /// Compares `probe` with `candidate`.
    pub fn explain(&self, probe: &Profile<'_>, candidate: &Profile<'_>) -> Explanation {
        let w = &self.weights;
        let mut contributions = Vec::with_capacity(9);
        let mut push = |field, level, weight| {
            contributions.push(Contribution {
                field,
                level,
                weight: if level == Level::Absent { 0.0 } else { weight },
            });
        };
        let (level, weight) = name(
            Some(probe.family_name),
            Some(candidate.family_name),
            &w.family_name,
        );
        push(Field::FamilyName, level, weight);
        let (given_level, weight) = name(probe.given_name, candidate.given_name, &w.given_name);
        push(Field::GivenName, given_level, weight);
        let (level, weight) = date(probe.birth_date, candidate.birth_date, &w.birth_date);
        push(Field::BirthDate, level, weight);
        let known = |g: Option<Gender>| g.filter(|g| *g != Gender::Unknown);
        let (level, weight) = agree(
            known(probe.gender)
                .zip(known(candidate.gender))
                .map(|(a, b)| a == b),
            &w.gender,
        );
        push(Field::Gender, level, weight);
        let (level, weight) = postcode(probe.postcode, candidate.postcode, &w.postcode);
        push(Field::Postcode, level, weight);
        let (level, weight) = agree(probe.uprn.zip(candidate.uprn).map(|(a, b)| a == b), &w.uprn);
        push(Field::Uprn, level, weight);
        for (field, system, weights) in [
            (Field::NhsNumber, IdentifierSystem::NhsNumber, &w.nhs_number),
            (Field::PncId, IdentifierSystem::PncId, &w.pnc_id),
            (
                Field::LocalReference,
                IdentifierSystem::LocalReference,
                &w.local_reference,
            ),
        ] {
            let (level, weight) = agree(
                identifiers(probe.identifiers, candidate.identifiers, system),
                weights,
            );
            push(field, level, weight);
        }
        let score = contributions.iter().map(|c| c.weight).sum::<f64>();
        let proven = contributions
            .iter()
            .any(|c| matches!(c.field, Field::NhsNumber | Field::PncId) && c.level == Level::Exact);
        let t = &self.thresholds;
        let verdict = if score >= t.same_person && (given_level != Level::Different || proven) {
            Verdict::SamePerson
        } else if score >= t.possible {
            Verdict::Possible
        } else {
            Verdict::Different
        };
        Explanation {
            score,
            verdict,
            contributions,
        }
    }

    /// A score as a probability from 0 to 1, taking the possible-match
    /// threshold as even odds: `1 / (1 + 2^-(score - possible))`.
    pub fn probability(&self, score: f64) -> f64 {
        1.0 / (1.0 + (self.thresholds.possible - score).exp2())
    }
}

fn name(a: Option<&str>, b: Option<&str>, w: &NameWeights) -> (Level, f64) {
    let (Some(a), Some(b)) = (a.map(Name::new), b.map(Name::new)) else {
        return (Level::Absent, 0.0);
    };
    if a.is_empty() || b.is_empty() {
        return (Level::Absent, 0.0);
    }
    match compare::names(&a, &b) {
        NameLevel::Exact => (Level::Exact, w.exact),
        NameLevel::Similar(s) => (Level::Similar(s), w.similar),
        NameLevel::SharedPart => (Level::SharedPart, w.shared_part),
        NameLevel::SoundsAlike => (Level::SoundsAlike, w.sounds_alike),
        NameLevel::Initial => (Level::Initial, w.initial),
        NameLevel::Different => (Level::Different, w.different),
    }
}

fn date(a: NaiveDate, b: NaiveDate, w: &DateWeights) -> (Level, f64) {
    match compare::dates(a, b) {
        DateLevel::Exact => (Level::Exact, w.exact),
        DateLevel::Transposed => (Level::Transposed, w.transposed),
        DateLevel::OneDigit => (Level::OneDigit, w.one_digit),
        DateLevel::SameYear => (Level::SameYear, w.same_year),
        DateLevel::Different => (Level::Different, w.different),
    }
}

fn postcode(a: Option<&str>, b: Option<&str>, w: &PostcodeWeights) -> (Level, f64) {
    match a.zip(b).map(|(a, b)| compare::postcodes(a, b)) {
        None => (Level::Absent, 0.0),
        Some(PostcodeLevel::Full) => (Level::Exact, w.full),
        Some(PostcodeLevel::Sector) => (Level::Sector, w.sector),
        Some(PostcodeLevel::District) => (Level::District, w.district),
        Some(PostcodeLevel::Different) => (Level::Different, w.different),
    }
}

fn agree(same: Option<bool>, w: &AgreeWeights) -> (Level, f64) {
    match same {
        None => (Level::Absent, 0.0),
        Some(true) => (Level::Exact, w.agrees),
        Some(false) => (Level::Different, w.disagrees),
    }
}

/// Whether two sets of identifiers agree in `system`: `None` unless both
/// hold one (for local references: one of the same agency); then whether
/// a value is in both.
fn identifiers(a: &[Identifier], b: &[Identifier], system: IdentifierSystem) -> Option<bool> {
    let mut comparable = false;
    for x in a.iter().filter(|i| i.system() == system) {
        for y in b.iter().filter(|i| i.system() == system) {
            if x.assigner() == y.assigner() {
                if x.value() == y.value() {
                    return Some(true);
                }
                comparable = true;
            }
        }
    }
    comparable.then_some(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AgencyCode;

    fn nhs(value: &str) -> Identifier {
        Identifier::parse(IdentifierSystem::NhsNumber, value, None).unwrap()
    }

    fn reference(value: &str, agency: &str) -> Identifier {
        let agency = AgencyCode::parse(agency).unwrap();
        Identifier::parse(IdentifierSystem::LocalReference, value, Some(&agency)).unwrap()
    }

    fn profile<'a>(
        family: &'a str,
        given: &'a str,
        born: &str,
        postcode: Option<&'a str>,
        identifiers: &'a [Identifier],
    ) -> Profile<'a> {
        Profile {
            family_name: family,
            given_name: Some(given),
            birth_date: NaiveDate::parse_from_str(born, "%Y-%m-%d").unwrap(),
            gender: Some(Gender::Female),
            postcode,
            uprn: None,
            identifiers,
        }
    }

    #[test]
    fn every_field_is_explained() {
        let m = Matcher::default();
        let a = profile("Khan", "Amira", "2012-05-04", Some("LS1 4AP"), &[]);
        let b = profile("Kahn", "Amira", "2012-04-05", Some("LS1 9ZZ"), &[]);
        let e = m.explain(&a, &b);
        assert_eq!(
            e.summary(),
            "family name: similar (0.92) +5.0; given name: same +6.0; \
             birth date: day and month swapped +6.0; gender: same +1.0; \
             postcode: same district +3.0; UPRN: absent; NHS number: absent; \
             PNC ID: absent; local reference: absent"
        );
        assert!((e.score - 21.0).abs() < 1e-9);
        assert_eq!(e.verdict, Verdict::Possible);
        assert_eq!(
            e.agreeing_fields(),
            [
                "family_name",
                "given_name",
                "birth_date",
                "gender",
                "postcode"
            ]
        );
    }

    #[test]
    fn identifiers_are_near_certain_either_way() {
        let m = Matcher::default();
        let (one, other) = ([nhs("9434765919")], [nhs("4010232137")]);
        let a = profile("Khan", "Amira", "2012-05-04", None, &one);
        let same = profile("Khan", "Amira", "2012-05-04", None, &one);
        let twin = profile("Khan", "Amira", "2012-05-04", None, &other);
        assert_eq!(m.explain(&a, &same).verdict, Verdict::SamePerson);
        assert!(m.explain(&a, &same).identifier_agrees());
        let e = m.explain(&a, &twin);
        assert_eq!(e.verdict, Verdict::Different, "{}", e.summary());
        assert!(e.summary().contains("NHS number: different -15.0"));
    }

    #[test]
    fn local_references_compare_within_one_agency() {
        let m = Matcher::default();
        let (council, police) = (
            [reference("SC-1", "leeds-cc")],
            [reference("SC-1", "wy-police")],
        );
        let a = profile("Khan", "Amira", "2012-05-04", None, &council);
        let b = profile("Khan", "Amira", "2012-05-04", None, &police);
        let e = m.explain(&a, &b);
        assert!(
            e.summary().contains("local reference: absent"),
            "{}",
            e.summary()
        );
        let c = profile("Khan", "Amira", "2012-05-04", None, &council);
        assert!(
            m.explain(&a, &c)
                .summary()
                .contains("local reference: same +10.0")
        );
    }

    #[test]
    fn different_given_names_are_at_most_possible() {
        let m = Matcher::default();
        let mut a = profile("Khan", "Amira", "2012-05-04", Some("LS1 4AP"), &[]);
        let mut twin = profile("Khan", "Leila", "2012-05-04", Some("LS1 4AP"), &[]);
        a.uprn = Some("100");
        twin.uprn = Some("100");
        let e = m.explain(&a, &twin);
        assert!(e.score >= m.thresholds.same_person, "{}", e.summary());
        assert_eq!(e.verdict, Verdict::Possible);
        // An NHS number that agrees proves it, whatever the given name.
        let one = [nhs("9434765919")];
        let (mut a, mut renamed) = (a, twin);
        a.identifiers = &one;
        renamed.identifiers = &one;
        assert_eq!(m.explain(&a, &renamed).verdict, Verdict::SamePerson);
    }

    #[test]
    fn probability_is_even_at_the_review_threshold() {
        let m = Matcher::default();
        assert!((m.probability(m.thresholds.possible) - 0.5).abs() < 1e-12);
        assert!(m.probability(m.thresholds.same_person) > 0.99);
        assert!(m.probability(0.0) < 0.001);
    }
}
