//! Compiles a typed query into a parameterised SQLite `WHERE` clause. User text only ever
//! travels as bound parameters; the SQL text is assembled from fixed fragments.

use rusqlite::types::Value;
use tfr_core::query::{Field, Matcher, TextPattern, ValuePattern};
use tfr_store::EventFilter;

use crate::fts;

/// A `WHERE` clause (without the keyword) and its parameters, in order.
#[derive(Debug, Default)]
pub struct Condition {
    pub sql: String,
    pub params: Vec<Value>,
}

impl Condition {
    /// Adds a condition (and its parameters) that must also hold.
    pub fn and(&mut self, sql: &str, params: impl IntoIterator<Item = Value>) {
        if !self.sql.is_empty() {
            self.sql.push_str(" AND ");
        }
        self.sql.push_str(sql);
        self.params.extend(params);
    }

    /// The clause, or `1` when there is none, so it can always follow `WHERE`.
    pub fn where_sql(&self) -> &str {
        if self.sql.is_empty() { "1" } else { &self.sql }
    }
}

/// How the positive full-text terms take part in a query's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextPlan {
    /// The matches drive the query: each matching event is looked up by its row id. Best when
    /// the words are rare.
    Lookup,
    /// The match list is only probed (`+e.seq` keeps the planner from driving by it), so a
    /// page can walk an index in the order asked for and stop at its limit instead of reading
    /// and sorting every match. Best when the words are common.
    Probe,
    /// Left out: the caller reads the rows from the match list itself (a text walk).
    Omit,
}

/// The positive full-text terms of `filter`, all of which an event must match.
#[derive(Debug, Clone)]
pub struct PositiveText {
    /// One FTS5 expression (one index lookup).
    pub expression: String,
    /// The same patterns for `tfr_text_match` ([`fts::encode_patterns`]).
    pub patterns: String,
}

impl PositiveText {
    /// The parameters of [`fts::match_set`], in order.
    pub fn params(&self) -> [Value; 2] {
        [
            Value::Text(self.expression.clone()),
            Value::Text(self.patterns.clone()),
        ]
    }
}

/// The positive full-text terms of `filter`, if any.
pub fn positive_text(filter: &EventFilter) -> Option<PositiveText> {
    let patterns: Vec<&TextPattern> = filter
        .query
        .terms
        .iter()
        .filter(|term| !term.negated)
        .filter_map(|term| match &term.matcher {
            Matcher::Text(pattern) => Some(pattern),
            _ => None,
        })
        .collect();
    (!patterns.is_empty()).then(|| PositiveText {
        expression: patterns
            .iter()
            .map(|pattern| fts_expression(pattern))
            .collect::<Vec<_>>()
            .join(" AND "),
        patterns: fts::encode_patterns(patterns.iter().copied()),
    })
}

/// The `WHERE` clause selecting the events of `filter`, over the `events` table aliased `e`.
pub fn compile(filter: &EventFilter) -> Condition {
    compile_with(filter, TextPlan::Lookup)
}

/// [`compile`], with the positive full-text terms used as `plan` says.
pub fn compile_with(filter: &EventFilter, plan: TextPlan) -> Condition {
    let mut condition = Condition::default();
    if let Some(from) = filter.from {
        condition.and(
            "e.occurred_at >= ?",
            [Value::Integer(from.as_microsecond())],
        );
    }
    if let Some(to) = filter.to {
        condition.and("e.occurred_at < ?", [Value::Integer(to.as_microsecond())]);
    }
    if let Some(text) = positive_text(filter) {
        let sql = match plan {
            TextPlan::Lookup => Some(format!("e.seq IN ({})", fts::match_set(""))),
            TextPlan::Probe => Some(format!("+e.seq IN ({})", fts::match_set(""))),
            TextPlan::Omit => None,
        };
        if let Some(sql) = sql {
            condition.and(&sql, text.params());
        }
    }
    for term in &filter.query.terms {
        let (sql, params) = match &term.matcher {
            Matcher::Text(pattern) if term.negated => (
                format!("e.seq NOT IN ({})", fts::match_set("")),
                vec![
                    Value::Text(fts_expression(pattern)),
                    Value::Text(fts::encode_patterns([pattern])),
                ],
            ),
            Matcher::Text(_) => continue,
            Matcher::Field { field, values } => field_condition(*field, values),
            Matcher::After(at) => (
                "e.occurred_at >= ?".to_owned(),
                vec![Value::Integer(at.as_microsecond())],
            ),
            Matcher::Before(at) => (
                "e.occurred_at < ?".to_owned(),
                vec![Value::Integer(at.as_microsecond())],
            ),
            Matcher::Since(duration) => {
                let since = filter
                    .now
                    .as_microsecond()
                    .saturating_sub(i64::try_from(duration.as_micros()).unwrap_or(i64::MAX));
                ("e.occurred_at >= ?".to_owned(), vec![Value::Integer(since)])
            }
        };
        if term.negated && !matches!(term.matcher, Matcher::Text(_)) {
            // IFNULL: `-env:prod` keeps the events that have no environment at all.
            condition.and(&format!("NOT IFNULL(({sql}), 0)"), params);
        } else {
            condition.and(&sql, params);
        }
    }
    condition
}

/// An FTS5 string for one pattern. Every pattern is a quoted FTS5 string (inner quotes
/// doubled), so user text can never be read as FTS5 syntax; the tokenizer splits it into the
/// same tokens as the indexed text, and `*` after the string makes the last token a prefix.
fn fts_expression(pattern: &TextPattern) -> String {
    let quoted = format!("\"{}\"", pattern.text().replace('"', "\"\""));
    match pattern {
        TextPattern::Prefix(_) => format!("{quoted} *"),
        TextPattern::Word(_) | TextPattern::Phrase(_) => quoted,
    }
}

fn column(field: Field) -> &'static str {
    match field {
        Field::System => "e.system",
        Field::Author => "e.author",
        Field::Kind => "e.kind",
        Field::Environment => "e.environment",
        Field::Team => "e.team",
        Field::Source => "e.source",
        Field::Version => "e.version",
        Field::Id => "e.id",
        Field::Tag => "t.tag",
    }
}

/// `column = value` for exact values (one `IN` list) and a range plus an exact prefix test
/// for prefix values (the range lets an index help; `substr` makes it exact).
fn field_condition(field: Field, values: &[ValuePattern]) -> (String, Vec<Value>) {
    let column = column(field);
    let normalize = |value: &str| -> String {
        match field {
            // Ids are stored hyphenated and lowercase; accept any form of a whole id as
            // pasted (upper case, or the hyphen-less form cursors use).
            Field::Id => value
                .parse::<tfr_core::EventId>()
                .map_or_else(|_| value.to_ascii_lowercase(), |id| id.to_string()),
            _ => value.to_owned(),
        }
    };
    let mut alternatives = Vec::new();
    let mut params = Vec::new();
    let exact: Vec<String> = values
        .iter()
        .filter_map(|value| match value {
            ValuePattern::Exact(text) => Some(normalize(text)),
            ValuePattern::Prefix(_) => None,
        })
        .collect();
    if !exact.is_empty() {
        let placeholders = vec!["?"; exact.len()].join(", ");
        alternatives.push(format!("{column} IN ({placeholders})"));
        params.extend(exact.into_iter().map(Value::Text));
    }
    for value in values {
        if let ValuePattern::Prefix(prefix) = value {
            let prefix = normalize(prefix);
            alternatives.push(format!("({column} >= ? AND substr({column}, 1, ?) = ?)"));
            params.push(Value::Text(prefix.clone()));
            params.push(Value::Integer(
                i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX),
            ));
            params.push(Value::Text(prefix));
        }
    }
    let any = alternatives.join(" OR ");
    let sql = match field {
        Field::Tag => format!("e.seq IN (SELECT t.seq FROM event_tags t WHERE {any})"),
        _ => format!("({any})"),
    };
    (sql, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfr_core::query::parse;

    fn compiled(query: &str) -> Condition {
        let filter = EventFilter {
            query: parse(query).unwrap(),
            from: None,
            to: None,
            now: "2026-11-26T00:00:00Z".parse().unwrap(),
        };
        compile(&filter)
    }

    #[test]
    fn user_text_is_never_sql() {
        let condition = compiled("system:'';DROP -tag:a'b \"x y\"");
        assert!(!condition.sql.contains("DROP"));
        assert!(!condition.sql.contains('\''));
        // system, tag, and the words twice: as FTS5 text and as patterns for the tail.
        assert_eq!(condition.params.len(), 4);
    }

    #[test]
    fn text_terms_are_quoted_fts_strings() {
        let condition = compiled("player \"new ui\" play* -old");
        assert_eq!(
            condition.params[0],
            Value::Text("\"player\" AND \"new ui\" AND \"play\" *".into())
        );
        assert_eq!(
            condition.params[1],
            Value::Text("w6:playerh6:new uip4:play".into())
        );
        assert_eq!(condition.params[2], Value::Text("\"old\"".into()));
        assert_eq!(condition.params[3], Value::Text("w3:old".into()));
    }

    #[test]
    fn empty_query_selects_all() {
        assert_eq!(compiled("").where_sql(), "1");
    }
}
