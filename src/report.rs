//! Subject access reports as files an information-governance officer can
//! hand to the citizen: CSV (one access per row) or JSON.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::domain::{Purpose, SubjectId};
use crate::service::SubjectAccess;

/// The file format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Comma-separated values with a header row; lists joined with "; ".
    Csv,
    /// One JSON document: the subject, when the report was made, and the
    /// accesses.
    Json,
}

/// One access as written.
#[derive(Debug, Serialize)]
struct Access<'a> {
    time: String,
    agency: &'a str,
    staff_member: &'a str,
    roles: Vec<&'a str>,
    activity: &'a str,
    purpose: String,
    agreements: Vec<&'a str>,
    lawful_bases: Vec<&'a str>,
    consent: &'a str,
    emergency_reason: &'a str,
    records: Vec<&'a str>,
    fields: Vec<&'a str>,
    outcome: &'static str,
    reason: &'a str,
    ledger_entry: i64,
}

impl<'a> Access<'a> {
    fn new(a: &'a SubjectAccess) -> Self {
        let strs = |v: &'a [String]| v.iter().map(String::as_str).collect();
        Self {
            time: a.time.to_rfc3339_opts(SecondsFormat::Secs, true),
            agency: &a.agency,
            staff_member: &a.principal,
            roles: strs(&a.roles),
            activity: &a.activity,
            purpose: a
                .purpose
                .map(Purpose::code)
                .unwrap_or_default()
                .replace('_', " "),
            agreements: strs(&a.grounds.agreements),
            lawful_bases: strs(&a.grounds.lawful_bases),
            consent: &a.grounds.consent,
            emergency_reason: &a.grounds.break_glass,
            records: strs(&a.records),
            fields: strs(&a.fields),
            outcome: a.outcome.code(),
            reason: &a.reason,
            ledger_entry: a.entry_index,
        }
    }
}

/// The whole report as JSON.
#[derive(Debug, Serialize)]
struct Report<'a> {
    subject: String,
    generated: String,
    accesses: Vec<Access<'a>>,
}

/// Writes the report of `accesses` to `subject`, made at `generated`.
pub fn write_report(
    subject: &SubjectId,
    generated: DateTime<Utc>,
    accesses: &[SubjectAccess],
    format: ReportFormat,
    out: impl Write,
) -> std::io::Result<()> {
    let rows = accesses.iter().map(Access::new);
    match format {
        ReportFormat::Json => {
            let report = Report {
                subject: subject.resource_name(),
                generated: generated.to_rfc3339_opts(SecondsFormat::Secs, true),
                accesses: rows.collect(),
            };
            serde_json::to_writer_pretty(out, &report)?;
        }
        ReportFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "time",
                "agency",
                "staff_member",
                "roles",
                "activity",
                "purpose",
                "agreements",
                "lawful_bases",
                "consent",
                "emergency_reason",
                "records",
                "fields",
                "outcome",
                "reason",
                "ledger_entry",
            ])?;
            for r in rows {
                let text = [
                    r.time.as_str(),
                    r.agency,
                    r.staff_member,
                    &r.roles.join("; "),
                    r.activity,
                    &r.purpose,
                    &r.agreements.join("; "),
                    &r.lawful_bases.join("; "),
                    r.consent,
                    r.emergency_reason,
                    &r.records.join("; "),
                    &r.fields.join("; "),
                    r.outcome,
                    r.reason,
                ]
                .map(inert_cell);
                w.write_record(text.iter().chain([&r.ledger_entry.to_string()]))?;
            }
            w.flush()?;
        }
    }
    Ok(())
}

/// A text cell a spreadsheet will show as text: a cell that starts with a
/// character spreadsheets read as the start of a formula (`=`, `+`, `-`,
/// `@`, tab, carriage return) gets a leading apostrophe, so free text such
/// as an emergency reason cannot run as a formula when the report is opened.
pub fn inert_cell(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Grounds, Outcome};

    fn access() -> SubjectAccess {
        SubjectAccess {
            time: DateTime::from_timestamp(1_764_000_000, 0).unwrap(),
            agency: "wy-police".into(),
            principal: "pc-9".into(),
            roles: vec!["officer".into(), "custody".into()],
            activity: "viewed a record".into(),
            purpose: Some(Purpose::CrimePrevention),
            records: vec!["records/a@1".into()],
            fields: vec![],
            outcome: Outcome::Denied,
            reason: "not the controller, \"sorry\"".into(),
            grounds: Grounds {
                agreements: vec!["agreements/x@2".into()],
                lawful_bases: vec![],
                consent: String::new(),
                break_glass: String::new(),
            },
            entry_index: 7,
        }
    }

    #[test]
    fn csv_rows_are_quoted_and_lists_joined() {
        let subject =
            SubjectId::parse_name("subjects/6f1c0c7e-3b1a-4d5e-9a52-2f1d3c4b5a69").unwrap();
        let mut out = Vec::new();
        write_report(
            &subject,
            Utc::now(),
            &[access()],
            ReportFormat::Csv,
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("time,agency,staff_member,roles,activity"));
        assert_eq!(
            lines[1],
            "2025-11-24T16:00:00Z,wy-police,pc-9,officer; custody,viewed a record,crime prevention,agreements/x@2,,,,records/a@1,,denied,\"not the controller, \"\"sorry\"\"\",7"
        );
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        let subject =
            SubjectId::parse_name("subjects/6f1c0c7e-3b1a-4d5e-9a52-2f1d3c4b5a69").unwrap();
        let mut a = access();
        a.grounds.break_glass = "=HYPERLINK(\"http://x\",\"y\")".into();
        a.reason = "+1".into();
        a.principal = "@SUM(A1)".into();
        a.activity = "-2+3".into();
        a.grounds.consent = "\tcmd".into();
        a.agency = "\r=1".into();
        let mut out = Vec::new();
        write_report(&subject, Utc::now(), &[a], ReportFormat::Csv, &mut out).unwrap();
        let mut reader = csv::Reader::from_reader(&out[..]);
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(&row[1], "'\r=1");
        assert_eq!(&row[2], "'@SUM(A1)");
        assert_eq!(&row[4], "'-2+3");
        assert_eq!(&row[8], "'\tcmd");
        assert_eq!(&row[9], "'=HYPERLINK(\"http://x\",\"y\")");
        assert_eq!(&row[13], "'+1");
        // Numbers and ordinary text are left as they are.
        assert_eq!(&row[14], "7");
        assert_eq!(&row[3], "officer; custody");
    }

    #[test]
    fn json_keeps_lists() {
        let subject =
            SubjectId::parse_name("subjects/6f1c0c7e-3b1a-4d5e-9a52-2f1d3c4b5a69").unwrap();
        let mut out = Vec::new();
        write_report(
            &subject,
            Utc::now(),
            &[access()],
            ReportFormat::Json,
            &mut out,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["subject"], subject.resource_name());
        assert_eq!(v["accesses"][0]["roles"][1], "custody");
        assert_eq!(v["accesses"][0]["ledger_entry"], 7);
    }
}
