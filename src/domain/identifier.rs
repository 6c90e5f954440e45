//! Typed subject identifiers, validated per identifier system.

use std::fmt;

use super::AgencyCode;
use super::agency::storage_codes;

/// Identifier systems Accord accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentifierSystem {
    /// NHS number: 10 digits, the last a modulus-11 check digit.
    NhsNumber,
    /// An agency's own reference, scoped to that agency.
    LocalReference,
    /// Police National Computer ID, with its check letter.
    PncId,
}

storage_codes!(IdentifierSystem {
    NhsNumber => "nhs_number",
    LocalReference => "local_reference",
    PncId => "pnc_id",
});

/// A validated, normalised identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identifier {
    system: IdentifierSystem,
    value: String,
    assigner: Option<AgencyCode>,
}

impl Identifier {
    /// Validates and normalises `value` in `system`. Local references need
    /// their assigning agency; national identifiers ignore it.
    pub fn parse(
        system: IdentifierSystem,
        value: &str,
        assigner: Option<&AgencyCode>,
    ) -> Result<Self, IdentifierError> {
        let (value, assigner) = match system {
            IdentifierSystem::NhsNumber => (parse_nhs_number(value)?, None),
            IdentifierSystem::PncId => (parse_pnc_id(value)?, None),
            IdentifierSystem::LocalReference => {
                let assigner = assigner.ok_or(IdentifierError::NoAssigner)?;
                (parse_local_reference(value)?, Some(assigner.clone()))
            }
        };
        Ok(Self {
            system,
            value,
            assigner,
        })
    }

    /// Rebuilds an identifier read back from storage, where it was stored
    /// only after validation.
    pub fn from_stored(
        system: IdentifierSystem,
        value: String,
        assigner: Option<AgencyCode>,
    ) -> Self {
        Self {
            system,
            value,
            assigner,
        }
    }

    /// The identifier system.
    pub fn system(&self) -> IdentifierSystem {
        self.system
    }

    /// The normalised value.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The assigning agency of a local reference.
    pub fn assigner(&self) -> Option<&AgencyCode> {
        self.assigner.as_ref()
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.assigner {
            Some(a) => write!(f, "{}:{}:{}", self.system.code(), a, self.value),
            None => write!(f, "{}:{}", self.system.code(), self.value),
        }
    }
}

/// Why a value is not an identifier of its system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("an NHS number must be 10 digits")]
    NhsForm,
    #[error("is not a valid NHS number (no check digit is possible)")]
    NhsNoCheckDigit,
    #[error("is not a valid NHS number (check digit does not match)")]
    NhsCheckDigit,
    #[error("a PNC ID must look like YY/NNNNNNNC or YYYY/NNNNNNNC")]
    PncForm,
    #[error("is not a valid PNC ID (check letter does not match)")]
    PncCheckLetter,
    #[error(
        "a local reference must be 1 to 32 letters, digits, '-' or '/', starting with a letter or digit"
    )]
    LocalForm,
    #[error("a local reference needs its assigning agency")]
    NoAssigner,
}

/// Parses an NHS number: ten digits (spaces allowed between them) whose last
/// digit is the modulus-11 check digit of the first nine. Returns the digits
/// without spaces.
pub fn parse_nhs_number(input: &str) -> Result<String, IdentifierError> {
    let digits: String = input.chars().filter(|c| *c != ' ').collect();
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdentifierError::NhsForm);
    }
    let d: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
    let sum: u32 = d[..9]
        .iter()
        .zip((2..=10).rev())
        .map(|(digit, weight)| digit * weight)
        .sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return Err(IdentifierError::NhsNoCheckDigit),
        c => c,
    };
    if check != d[9] {
        return Err(IdentifierError::NhsCheckDigit);
    }
    Ok(digits)
}

/// The PNC check letters, indexed by (year and serial) modulo 23.
const PNC_CHECK_LETTERS: &[u8; 23] = b"ZABCDEFGHJKLMNPQRTUVWXY";

/// Parses a PNC ID, `YY/N…NC` or `YYYY/N…NC` (serial of 1 to 7 digits, then
/// the check letter). The check letter is the letter at position
/// `(YY * 10^7 + serial) mod 23` of `ZABCDEFGHJKLMNPQRTUVWXY`. Returns
/// `YY/NNNNNNNC` with the serial zero-padded to seven digits.
pub fn parse_pnc_id(input: &str) -> Result<String, IdentifierError> {
    use IdentifierError::PncForm;
    let upper = input.trim().to_ascii_uppercase();
    let (year, rest) = upper.split_once('/').ok_or(PncForm)?;
    if !(year.len() == 2 || year.len() == 4) || !year.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PncForm);
    }
    let Some((&check, serial)) = rest.as_bytes().split_last() else {
        return Err(PncForm);
    };
    if serial.is_empty() || serial.len() > 7 || !serial.iter().all(u8::is_ascii_digit) {
        return Err(PncForm);
    }
    let yy: u64 = year[year.len() - 2..].parse().map_err(|_| PncForm)?;
    let serial_str = String::from_utf8_lossy(serial);
    let serial_n: u64 = serial_str.parse().map_err(|_| PncForm)?;
    let index = usize::try_from((yy * 10_000_000 + serial_n) % 23).map_err(|_| PncForm)?;
    if PNC_CHECK_LETTERS.get(index) != Some(&check) {
        return Err(IdentifierError::PncCheckLetter);
    }
    Ok(format!("{yy:02}/{serial_n:07}{}", char::from(check)))
}

/// Parses an agency's local reference: 1 to 32 ASCII letters, digits, `-`
/// or `/`, starting with a letter or digit. Returns it in upper case.
pub fn parse_local_reference(input: &str) -> Result<String, IdentifierError> {
    let value = input.trim();
    let ok = !value.is_empty()
        && value.len() <= 32
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'/');
    if ok {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(IdentifierError::LocalForm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_nhs_numbers_are_normalised() {
        assert_eq!(parse_nhs_number("943 476 5919").unwrap(), "9434765919");
        assert_eq!(parse_nhs_number("4010232137").unwrap(), "4010232137");
        // Check digit 0 comes from a remainder of 0 (11 - 0 = 11 -> 0).
        assert_eq!(parse_nhs_number("0000000000").unwrap(), "0000000000");
    }

    #[test]
    fn invalid_nhs_numbers_are_refused_with_the_reason() {
        assert_eq!(
            parse_nhs_number("9434765918"),
            Err(IdentifierError::NhsCheckDigit)
        );
        // 6 * 2 = 12, 12 mod 11 = 1: the check digit would be 10.
        assert_eq!(
            parse_nhs_number("0000000060"),
            Err(IdentifierError::NhsNoCheckDigit)
        );
        for bad in ["943476591", "94347659190", "94347659a9", "", "943-476-5919"] {
            assert_eq!(
                parse_nhs_number(bad),
                Err(IdentifierError::NhsForm),
                "{bad:?}"
            );
        }
    }

    fn pnc_with_check(yy: u64, serial: u64) -> String {
        let letter = PNC_CHECK_LETTERS[((yy * 10_000_000 + serial) % 23) as usize];
        format!("{yy:02}/{serial}{}", char::from(letter))
    }

    #[test]
    fn pnc_ids_are_checked_and_normalised() {
        // (98 * 10^7 + 12345) mod 23 = 980012345 mod 23.
        let id = pnc_with_check(98, 12345);
        let normal = parse_pnc_id(&id.to_lowercase()).unwrap();
        assert_eq!(&normal[..10], "98/0012345");
        assert_eq!(normal.len(), 11);
        assert_eq!(parse_pnc_id(&format!("19{id}")).unwrap(), normal);
        let mut wrong = normal.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'Z' { 'A' } else { 'Z' });
        assert_eq!(parse_pnc_id(&wrong), Err(IdentifierError::PncCheckLetter));
        for bad in ["98-0012345A", "98/A", "9/1234567A", "98/12345678A"] {
            assert_eq!(parse_pnc_id(bad), Err(IdentifierError::PncForm), "{bad:?}");
        }
    }

    #[test]
    fn local_references_need_an_assigner() {
        let leeds = AgencyCode::parse("leeds-cc").unwrap();
        let id = Identifier::parse(IdentifierSystem::LocalReference, "sc-2024/77", Some(&leeds))
            .unwrap();
        assert_eq!(id.value(), "SC-2024/77");
        assert_eq!(id.assigner(), Some(&leeds));
        assert!(Identifier::parse(IdentifierSystem::LocalReference, "SC-1", None).is_err());
        assert!(parse_local_reference("-x").is_err());
        assert!(parse_local_reference(&"A".repeat(33)).is_err());
    }
}
