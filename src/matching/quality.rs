//! How well the matcher finds people: precision, recall and F1 against the
//! truth of a [`Dataset`], beside an exact-identifier baseline. The
//! candidates are found as MatchSubjects finds them (the same blocking
//! keys, and the NHS number given), in memory.

use std::collections::HashMap;

use super::synthetic::{Dataset, Person};
use super::{Matcher, Profile, Verdict};
use crate::domain::{Identifier, IdentifierSystem};

/// What a run measured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Quality {
    /// Probes matched.
    pub probes: usize,
    /// Probes that are copies of a registered person: the true pairs.
    pub true_pairs: usize,
    /// Pairs found as the same person that are.
    pub true_positives: usize,
    /// Pairs found as the same person that are not.
    pub false_positives: usize,
    /// Pairs found as possible matches (for review).
    pub review_pairs: usize,
    /// True pairs whose registered person was among the candidates.
    pub true_pairs_blocked: usize,
    /// Candidates scored per probe, on average and at most.
    pub mean_candidates: f64,
    pub max_candidates: usize,
    /// The exact-identifier baseline: pairs with the same NHS number.
    pub baseline_true_positives: usize,
    pub baseline_false_positives: usize,
    /// A few pairs the matcher got wrong, explained: true pairs it did not
    /// find as the same person, and pairs it wrongly did.
    pub missed: Vec<String>,
    pub wrong: Vec<String>,
}

/// How many pairs of each kind [`Quality`] keeps as examples.
const EXAMPLES: usize = 10;

fn describe(p: &Person) -> String {
    format!(
        "{:?} {:?} {} {:?} {:?} {:?} {:?}",
        p.given_name, p.family_name, p.birth_date, p.gender, p.postcode, p.uprn, p.nhs_number
    )
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

impl Quality {
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    pub fn recall(&self) -> f64 {
        ratio(self.true_positives, self.true_pairs)
    }

    pub fn f1(&self) -> f64 {
        f1(self.precision(), self.recall())
    }

    /// Possible matches sent for review, per probe.
    pub fn review_share(&self) -> f64 {
        ratio(self.review_pairs, self.probes)
    }

    /// The share of true pairs the blocking keys (and identifiers) put
    /// before the matcher: recall can be no higher.
    pub fn blocking_recall(&self) -> f64 {
        ratio(self.true_pairs_blocked, self.true_pairs)
    }

    pub fn baseline_precision(&self) -> f64 {
        ratio(
            self.baseline_true_positives,
            self.baseline_true_positives + self.baseline_false_positives,
        )
    }

    pub fn baseline_recall(&self) -> f64 {
        ratio(self.baseline_true_positives, self.true_pairs)
    }

    pub fn baseline_f1(&self) -> f64 {
        f1(self.baseline_precision(), self.baseline_recall())
    }
}

/// A person's identifiers, as a subject would hold them.
pub fn identifiers(p: &Person) -> Vec<Identifier> {
    p.nhs_number
        .iter()
        .filter_map(|n| Identifier::parse(IdentifierSystem::NhsNumber, n, None).ok())
        .collect()
}

/// A person's profile, over `identifiers` (theirs).
pub fn profile<'a>(p: &'a Person, identifiers: &'a [Identifier]) -> Profile<'a> {
    Profile {
        family_name: &p.family_name,
        given_name: Some(p.given_name.as_str()),
        birth_date: p.birth_date,
        gender: Some(p.gender),
        postcode: p.postcode.as_deref(),
        uprn: p.uprn.as_deref(),
        identifiers,
    }
}

/// Matches every probe of `data` against its registered people with
/// `matcher`, and counts.
pub fn evaluate(data: &Dataset, matcher: &Matcher) -> Quality {
    let ids: Vec<Vec<Identifier>> = data.registered.iter().map(identifiers).collect();
    let mut blocks: HashMap<String, Vec<usize>> = HashMap::new();
    let mut by_nhs: HashMap<&str, usize> = HashMap::new();
    let mut truths: HashMap<u32, usize> = HashMap::new();
    for (i, p) in data.registered.iter().enumerate() {
        for key in profile(p, &ids[i]).blocking_keys() {
            blocks.entry(key).or_default().push(i);
        }
        if let Some(n) = &p.nhs_number {
            by_nhs.insert(n.as_str(), i);
        }
        *truths.entry(p.truth).or_default() += 1;
    }
    let mut q = Quality {
        probes: data.probes.len(),
        ..Quality::default()
    };
    let mut scored = 0usize;
    for probe in &data.probes {
        let probe_ids = identifiers(probe);
        let probe_profile = profile(probe, &probe_ids);
        let registered = truths.contains_key(&probe.truth);
        if registered {
            q.true_pairs += 1;
        }
        let mut candidates: Vec<usize> = probe_profile
            .blocking_keys()
            .iter()
            .filter_map(|k| blocks.get(k))
            .flatten()
            .copied()
            .collect();
        if let Some(i) = probe.nhs_number.as_deref().and_then(|n| by_nhs.get(n)) {
            candidates.push(*i);
            q.baseline_true_positives += usize::from(data.registered[*i].truth == probe.truth);
            q.baseline_false_positives += usize::from(data.registered[*i].truth != probe.truth);
        }
        candidates.sort_unstable();
        candidates.dedup();
        scored += candidates.len();
        q.max_candidates = q.max_candidates.max(candidates.len());
        if candidates
            .iter()
            .any(|i| data.registered[*i].truth == probe.truth)
        {
            q.true_pairs_blocked += 1;
        }
        for i in candidates {
            let candidate = &data.registered[i];
            let e = matcher.explain(&probe_profile, &profile(candidate, &ids[i]));
            let same = candidate.truth == probe.truth;
            let example = || {
                format!(
                    "{}\n  vs {}\n  {:.1}: {}",
                    describe(probe),
                    describe(candidate),
                    e.score,
                    e.summary()
                )
            };
            match e.verdict {
                Verdict::SamePerson if same => q.true_positives += 1,
                Verdict::SamePerson => {
                    q.false_positives += 1;
                    if q.wrong.len() < EXAMPLES {
                        q.wrong.push(example());
                    }
                }
                Verdict::Possible | Verdict::Different => {
                    q.review_pairs += usize::from(e.verdict == Verdict::Possible);
                    if same && q.missed.len() < EXAMPLES {
                        q.missed.push(example());
                    }
                }
            }
        }
    }
    q.mean_candidates = ratio(scored, q.probes);
    q
}

#[cfg(test)]
mod tests {
    use super::super::synthetic::{ErrorRates, Generator};
    use super::*;

    #[test]
    fn a_perfect_copy_is_found_and_a_stranger_is_not() {
        let mut g = Generator::new(11);
        let p = g.person();
        let stranger = g.person();
        let data = Dataset {
            registered: vec![p.clone()],
            probes: vec![p.clone(), stranger],
        };
        let q = evaluate(&data, &Matcher::default());
        assert_eq!(
            (q.true_pairs, q.true_positives, q.false_positives),
            (1, 1, 0)
        );
        assert_eq!(q.f1(), 1.0);
        assert_eq!(q.baseline_true_positives, 1);
    }

    #[test]
    fn the_default_matcher_finds_people_on_synthetic_data() {
        let data = Generator::new(1).dataset(3000, &ErrorRates::default());
        let q = evaluate(&data, &Matcher::default());
        assert!(q.true_pairs > 1000, "{q:?}");
        assert!(q.f1() >= 0.95, "F1 {:.4}: {q:?}", q.f1());
        assert!(
            q.precision() >= 0.99,
            "precision {:.4}: {q:?}",
            q.precision()
        );
        assert!(q.f1() > q.baseline_f1(), "{q:?}");
        assert!(q.blocking_recall() >= 0.99, "{q:?}");
    }
}
