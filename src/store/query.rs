//! Queries built from optional conditions, with numbered placeholders that
//! both backends accept.

/// A query under construction with numbered placeholders.
#[derive(Default)]
pub(super) struct Query {
    text: String,
    args: Vec<Arg>,
}

pub(super) enum Arg {
    Text(String),
    Int(i64),
}

impl Query {
    pub(super) fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            args: vec![],
        }
    }

    /// Appends `text`, where `?` stands for the placeholder of `arg`.
    pub(super) fn push(&mut self, text: &str, arg: Arg) -> &mut Self {
        self.args.push(arg);
        let placeholder = format!("${}", self.args.len());
        self.text.push_str(&text.replacen('?', &placeholder, 1));
        self
    }

    pub(super) fn raw(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    pub(super) fn build(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for arg in &self.args {
            q = match arg {
                Arg::Text(s) => q.bind(s.as_str()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}
