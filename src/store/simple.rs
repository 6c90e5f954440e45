//! Statements sent together as one simple query on PostgreSQL, so that
//! several of them cost one round trip.
//!
//! The protocol's prepared statements take one statement per round trip
//! (the driver waits for each one's answer before it sends the next); a
//! simple query may hold many statements, but no parameters. The
//! sequencer's statements that take parameters are therefore prepared by
//! name on its connection, with `PREPARE` (sent with their first use), and
//! run with `EXECUTE`, their
//! values written into the text as literals: numbers as digits, bytes as
//! hexadecimal digits, and text between dollar quotes whose tag does not
//! occur in it, so that no value can end its literal early however it was
//! made (the values are JSON of entries and records, which callers fill).

use super::StoreError;

/// One value of an `EXECUTE`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Literal<'a> {
    Text(&'a str),
    Int(i64),
    Bytes(&'a [u8]),
}

/// The statements prepared by name on one connection, as far as the text
/// sent on it says: a name counts as prepared once its `PREPARE` is
/// written into a statement for the connection. A trip that fails leaves
/// this unknown, so the connection is then dropped with it (as the write
/// path does after any failed batch).
#[derive(Debug, Default)]
pub(super) struct Prepared(Vec<&'static str>);

/// A statement run by name: its name, its parameters' types and its text.
#[derive(Debug, Clone, Copy)]
pub(super) struct Named<'a> {
    pub(super) name: &'static str,
    pub(super) types: &'a str,
    pub(super) text: &'a str,
}

impl Prepared {
    /// Appends to `sql` `EXECUTE name(values…)`, which runs `statement`
    /// with `values` as its parameters; preceded, the first time on the
    /// connection, by the statement's `PREPARE`. Prepared on first use
    /// rather than when the connection opens, so that a batch that does
    /// not run a statement does not depend on it.
    pub(super) fn execute(
        &mut self,
        sql: &mut String,
        statement: Named<'_>,
        values: &[Literal<'_>],
    ) -> Result<(), StoreError> {
        let Named { name, types, text } = statement;
        if !self.0.contains(&name) {
            sql.push_str(&format!("PREPARE {name} ({types}) AS {text};\n"));
            self.0.push(name);
        }
        sql.push_str("EXECUTE ");
        sql.push_str(name);
        sql.push('(');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            match value {
                Literal::Text(text) => push_quoted(sql, text)?,
                Literal::Int(n) => sql.push_str(&n.to_string()),
                Literal::Bytes(bytes) => {
                    sql.push_str("decode('");
                    sql.push_str(&hex::encode(bytes));
                    sql.push_str("', 'hex')");
                }
            }
        }
        sql.push(')');
        Ok(())
    }
}

/// Appends `text` to `sql` as a dollar-quoted literal (`$q0$…$q0$`), with
/// the first tag that the scanner cannot meet before the closing one (see
/// [`closes_at_end`]). Of the `len + 1` tags tried, each starting position
/// in `text` rules out one at most, so one always fits.
fn push_quoted(sql: &mut String, text: &str) -> Result<(), StoreError> {
    for n in 0..=text.len() {
        let tag = format!("$q{n}$");
        if closes_at_end(text, &tag) {
            sql.reserve(text.len() + 2 * tag.len());
            sql.push_str(&tag);
            sql.push_str(text);
            sql.push_str(&tag);
            return Ok(());
        }
    }
    Err(StoreError::Corrupt(
        "no dollar-quote tag fits a value".to_owned(),
    ))
}

/// Whether `tag` first occurs in `text` followed by `tag` at the end: it
/// does not occur in `text`, nor across its end, where the end of `text`
/// would be the tag's first `k` bytes and the closing tag would begin
/// with the rest (possible only where the tag's last bytes repeat its
/// first ones). `tag` is ASCII.
fn closes_at_end(text: &str, tag: &str) -> bool {
    let n = tag.len();
    !text.contains(tag) && (1..n).all(|k| !(text.ends_with(&tag[..k]) && tag[k..] == tag[..n - k]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What PostgreSQL's scanner takes as the literal's content: from the
    /// opening tag to the first occurrence of the same tag after it.
    fn scanned(literal: &str) -> (&str, &str) {
        let open = literal[1..].find('$').map(|i| i + 2).unwrap_or_default();
        let tag = &literal[..open];
        let end = literal[open..]
            .find(tag)
            .map(|i| i + open)
            .unwrap_or_default();
        (&literal[open..end], &literal[end + tag.len()..])
    }

    #[test]
    fn a_literal_holds_its_text_whole() {
        let texts = [
            "",
            "plain",
            "$q0$",
            "x$q0$y",
            "$q0$q1$q2$q3$",
            "ends with $q",
            "ends with $q0",
            "$q0$ $q1$ ends with $q2",
            "$",
            "$$",
            "'; DROP TABLE ledger_entries; --",
            "{\"reason\":\"$q0$); COMMIT; DELETE FROM records; --\"}",
            "ünïcødé $q0$ ✓",
        ];
        for text in texts {
            let mut literal = String::new();
            push_quoted(&mut literal, text).expect("a tag fits");
            let (content, rest) = scanned(&literal);
            assert_eq!(content, text, "literal {literal}");
            assert_eq!(rest, "", "literal {literal}");
        }
    }

    #[test]
    fn an_execute_writes_each_kind_of_value_and_prepares_once() {
        let statement = Named {
            name: "accord_test",
            types: "json, bigint, bytea",
            text: "SELECT $1, $2, $3",
        };
        let values = [
            Literal::Text("[1]"),
            Literal::Int(-42),
            Literal::Bytes(&[0xab, 0x01]),
        ];
        let mut prepared = Prepared::default();
        let execute = "EXECUTE accord_test($q0$[1]$q0$, -42, decode('ab01', 'hex'))";
        let mut first = String::new();
        prepared
            .execute(&mut first, statement, &values)
            .expect("written");
        assert_eq!(
            first,
            format!("PREPARE accord_test (json, bigint, bytea) AS SELECT $1, $2, $3;\n{execute}")
        );
        let mut again = String::new();
        prepared
            .execute(&mut again, statement, &values)
            .expect("written");
        assert_eq!(again, execute);
    }
}
