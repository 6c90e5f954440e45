//! The match weights and thresholds: configuration, with documented
//! defaults (see `docs/matching.md` for how they were chosen and how to
//! tune them).
//!
//! Every weight is a Fellegi–Sunter log-likelihood ratio in bits,
//! `log2(m / u)`: `m` is how often the two records of one person fall into
//! that level of agreement, `u` how often two different people's do. A
//! weight of +7 says the level is 2^7 = 128 times likelier for the same
//! person; a negative weight is evidence against. A weight left out of the
//! configuration keeps its default.

use serde::{Deserialize, Serialize};

/// Weights of the levels of a name comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameWeights {
    pub exact: f64,
    pub similar: f64,
    pub shared_part: f64,
    pub sounds_alike: f64,
    pub initial: f64,
    pub different: f64,
}

/// Weights of the levels of the birth date comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateWeights {
    pub exact: f64,
    pub transposed: f64,
    pub one_digit: f64,
    pub same_year: f64,
    pub different: f64,
}

/// Weights of the levels of the postcode comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostcodeWeights {
    pub full: f64,
    pub sector: f64,
    pub district: f64,
    pub different: f64,
}

/// Weights of a field that either agrees or disagrees (gender, UPRN,
/// identifiers).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreeWeights {
    pub agrees: f64,
    pub disagrees: f64,
}

/// Every weight the matcher uses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchWeights {
    pub family_name: NameWeights,
    pub given_name: NameWeights,
    pub birth_date: DateWeights,
    pub gender: AgreeWeights,
    pub postcode: PostcodeWeights,
    pub uprn: AgreeWeights,
    pub nhs_number: AgreeWeights,
    pub pnc_id: AgreeWeights,
    pub local_reference: AgreeWeights,
}

impl Default for NameWeights {
    /// The family name's weights.
    fn default() -> Self {
        Self {
            exact: 7.5,
            similar: 5.0,
            shared_part: 4.5,
            sounds_alike: 4.0,
            initial: 0.0,
            different: -4.0,
        }
    }
}

impl NameWeights {
    /// The given name's default weights: a little less telling than the
    /// family name when it agrees (fewer distinct given names), and more
    /// when it differs (given names change less often than family names).
    pub fn given() -> Self {
        Self {
            exact: 6.0,
            similar: 4.0,
            shared_part: 4.0,
            sounds_alike: 3.0,
            initial: 1.5,
            different: -6.0,
        }
    }
}

impl Default for DateWeights {
    fn default() -> Self {
        Self {
            exact: 12.0,
            transposed: 6.0,
            one_digit: 5.0,
            same_year: 1.0,
            different: -6.0,
        }
    }
}

impl Default for PostcodeWeights {
    fn default() -> Self {
        Self {
            full: 8.0,
            sector: 5.0,
            district: 3.0,
            different: -1.0,
        }
    }
}

impl Default for MatchWeights {
    fn default() -> Self {
        Self {
            family_name: NameWeights::default(),
            given_name: NameWeights::given(),
            birth_date: DateWeights::default(),
            gender: AgreeWeights {
                agrees: 1.0,
                disagrees: -3.0,
            },
            postcode: PostcodeWeights::default(),
            // A UPRN that differs says what a postcode that differs says:
            // the person moved. Counted once, by the postcode.
            uprn: AgreeWeights {
                agrees: 8.0,
                disagrees: 0.0,
            },
            nhs_number: AgreeWeights {
                agrees: 15.0,
                disagrees: -15.0,
            },
            pnc_id: AgreeWeights {
                agrees: 12.0,
                disagrees: -10.0,
            },
            local_reference: AgreeWeights {
                agrees: 10.0,
                disagrees: -2.0,
            },
        }
    }
}

/// Where the score divides the verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// At or above: the same person (unless the given names differ
    /// outright and no NHS number or PNC ID agrees, which caps the verdict
    /// at a possible match).
    pub same_person: f64,
    /// At or above (and below `same_person`): a possible match, for a
    /// person to review. Below: different people.
    pub possible: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            same_person: 25.0,
            possible: 12.0,
        }
    }
}

impl Thresholds {
    /// Checks that the thresholds are finite and in order.
    pub fn check(&self) -> Result<(), String> {
        if !self.same_person.is_finite() || !self.possible.is_finite() {
            return Err("match thresholds must be finite numbers".to_owned());
        }
        if self.possible > self.same_person {
            return Err(format!(
                "match_thresholds.possible ({}) must not be above match_thresholds.same_person ({})",
                self.possible, self.same_person
            ));
        }
        Ok(())
    }
}

impl MatchWeights {
    /// Checks that every weight is a finite number.
    pub fn check(&self) -> Result<(), String> {
        let value = serde_json::to_value(self).map_err(|e| e.to_string())?;
        let mut bad = vec![];
        collect_non_finite(&value, String::new(), &mut bad);
        if bad.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "match weights must be finite numbers: {}",
                bad.join(", ")
            ))
        }
    }
}

/// serde_json writes a non-finite float as `null`: the paths of those.
fn collect_non_finite(value: &serde_json::Value, path: String, bad: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(fields) => {
            for (key, v) in fields {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                collect_non_finite(v, path, bad);
            }
        }
        serde_json::Value::Null => bad.push(path),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(MatchWeights::default().check(), Ok(()));
        assert_eq!(Thresholds::default().check(), Ok(()));
    }

    #[test]
    fn bad_values_are_named() {
        let mut w = MatchWeights::default();
        w.birth_date.transposed = f64::NAN;
        w.uprn.agrees = f64::INFINITY;
        let err = w.check().unwrap_err();
        assert!(err.contains("birth_date.transposed"), "{err}");
        assert!(err.contains("uprn.agrees"), "{err}");
        let t = Thresholds {
            same_person: 10.0,
            possible: 20.0,
        };
        assert!(t.check().is_err());
    }
}
