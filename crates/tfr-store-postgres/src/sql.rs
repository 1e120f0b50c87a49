//! Compiles a typed query into a parameterised PostgreSQL `WHERE` clause: the twin of the
//! SQLite store's `sql.rs`, term for term. User text only ever travels as bound parameters
//! (`$n`); the SQL text is assembled from fixed fragments.

use sqlx_core::arguments::Arguments;
use sqlx_postgres::PgArguments;
use tfr_core::query::{Field, Matcher, ValuePattern};
use tfr_store::EventFilter;
use uuid::Uuid;

use crate::fts;
use crate::rows::PgTime;

/// A bound parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Text(String),
    Texts(Vec<String>),
    Int(i64),
    Time(PgTime),
    Uuid(Uuid),
    Uuids(Vec<Uuid>),
}

/// A `WHERE` clause (without the keyword) and its parameters, numbered in order.
#[derive(Debug, Default)]
pub struct Condition {
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Condition {
    /// Binds a parameter and returns its placeholder.
    pub fn param(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    /// Adds a fragment (built with [`Condition::param`] placeholders).
    pub fn and(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// The clause, or `TRUE` when there is none, so it can always follow `WHERE`.
    pub fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            "TRUE".to_owned()
        } else {
            self.clauses.join(" AND ")
        }
    }

    /// The parameters, ready to run with the statement.
    pub fn arguments(&self) -> Result<PgArguments, sqlx_core::Error> {
        let mut arguments = PgArguments::default();
        for param in &self.params {
            let added = match param {
                Param::Text(text) => arguments.add(text.as_str()),
                Param::Texts(texts) => arguments.add(texts.as_slice()),
                Param::Int(n) => arguments.add(*n),
                Param::Time(at) => arguments.add(*at),
                Param::Uuid(id) => arguments.add(*id),
                Param::Uuids(ids) => arguments.add(ids.as_slice()),
            };
            added.map_err(sqlx_core::Error::Encode)?;
        }
        Ok(arguments)
    }
}

/// Microseconds of a duration, saturating.
pub fn micros(duration: jiff::SignedDuration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// The `WHERE` clause selecting the events of `filter`, over the `events` table aliased `e`.
pub fn compile(filter: &EventFilter) -> Condition {
    let mut condition = Condition::default();
    if let Some(from) = filter.from {
        let at = condition.param(Param::Time(PgTime::of(from)));
        condition.and(format!("e.occurred_at >= {at}"));
    }
    if let Some(to) = filter.to {
        let at = condition.param(Param::Time(PgTime::of(to)));
        condition.and(format!("e.occurred_at < {at}"));
    }
    // Positive full-text terms are combined into one tsquery: one index lookup.
    let positive_text: Vec<Option<String>> = filter
        .query
        .terms
        .iter()
        .filter(|term| !term.negated)
        .filter_map(|term| match &term.matcher {
            Matcher::Text(pattern) => Some(fts::query(pattern)),
            _ => None,
        })
        .collect();
    if !positive_text.is_empty() {
        // A pattern without any word (`--`) matches nothing, as in FTS5.
        match positive_text.into_iter().collect::<Option<Vec<String>>>() {
            Some(queries) => {
                let combined = queries
                    .iter()
                    .map(|query| format!("({query})"))
                    .collect::<Vec<_>>()
                    .join(" & ");
                let query = condition.param(Param::Text(combined));
                condition.and(format!("e.search @@ {query}::tsquery"));
            }
            None => condition.and("FALSE".to_owned()),
        }
    }
    for term in &filter.query.terms {
        let clause = match &term.matcher {
            Matcher::Text(pattern) if term.negated => match fts::query(pattern) {
                Some(query) => {
                    let query = condition.param(Param::Text(query));
                    format!("NOT (e.search @@ {query}::tsquery)")
                }
                None => "TRUE".to_owned(),
            },
            Matcher::Text(_) => continue,
            Matcher::Field { field, values } => field_condition(&mut condition, *field, values),
            Matcher::After(at) => {
                let at = condition.param(Param::Time(PgTime::of(*at)));
                format!("e.occurred_at >= {at}")
            }
            Matcher::Before(at) => {
                let at = condition.param(Param::Time(PgTime::of(*at)));
                format!("e.occurred_at < {at}")
            }
            Matcher::Since(duration) => {
                let since = filter
                    .now
                    .as_microsecond()
                    .saturating_sub(micros(*duration));
                let at = condition.param(Param::Time(PgTime::bound(since)));
                format!("e.occurred_at >= {at}")
            }
        };
        if term.negated && !matches!(term.matcher, Matcher::Text(_)) {
            // COALESCE: `-env:prod` keeps the events that have no environment at all.
            condition.and(format!("NOT COALESCE(({clause}), FALSE)"));
        } else {
            condition.and(clause);
        }
    }
    condition
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
        Field::Id => "e.id::text",
        Field::Tag => "t.tag",
    }
}

/// An exact `id:` value: matched the way the SQLite store compares ids (its lowercase,
/// hyphenated text), so only that form, in any case, names an event.
fn exact_id(value: &str) -> Option<Uuid> {
    let value = value.to_ascii_lowercase();
    let id = Uuid::parse_str(&value).ok()?;
    (id.hyphenated().to_string() == value).then_some(id)
}

/// `column = value` for one exact value, `column = ANY(values)` for several, and a range plus
/// an exact prefix test for prefix values (the range lets an index help; `starts_with` makes
/// it exact, in any script).
fn field_condition(condition: &mut Condition, field: Field, values: &[ValuePattern]) -> String {
    let column = column(field);
    let mut alternatives = Vec::new();
    let exact: Vec<&str> = values
        .iter()
        .filter_map(|value| match value {
            ValuePattern::Exact(text) => Some(text.as_str()),
            ValuePattern::Prefix(_) => None,
        })
        .collect();
    // One value is compared with `=`, not `= ANY(array)`: only then can an index on
    // (field, occurred_at, id) give a page in time order and stop at its end, instead of
    // reading every event with the value and sorting them (`system:` pages at 10M events).
    if field == Field::Id {
        let mut ids: Vec<Uuid> = exact.iter().filter_map(|value| exact_id(value)).collect();
        if ids.len() == 1 {
            let id = condition.param(Param::Uuid(ids.remove(0)));
            alternatives.push(format!("e.id = {id}"));
        } else if !ids.is_empty() {
            let ids = condition.param(Param::Uuids(ids));
            alternatives.push(format!("e.id = ANY({ids}::uuid[])"));
        }
    } else if let [only] = exact.as_slice() {
        let text = condition.param(Param::Text((*only).to_owned()));
        alternatives.push(format!("{column} = {text}"));
    } else if !exact.is_empty() {
        let texts = exact.into_iter().map(str::to_owned).collect();
        let texts = condition.param(Param::Texts(texts));
        alternatives.push(format!("{column} = ANY({texts}::text[])"));
    }
    for value in values {
        if let ValuePattern::Prefix(prefix) = value {
            let prefix = match field {
                // Ids are compared lowercase; accept them as pasted.
                Field::Id => prefix.to_ascii_lowercase(),
                _ => prefix.clone(),
            };
            let prefix = condition.param(Param::Text(prefix));
            alternatives.push(format!(
                "({column} >= {prefix} AND starts_with({column}, {prefix}))"
            ));
        }
    }
    if alternatives.is_empty() {
        return "FALSE".to_owned();
    }
    let any = alternatives.join(" OR ");
    match field {
        Field::Tag => format!("e.seq IN (SELECT t.seq FROM event_tags t WHERE {any})"),
        _ => format!("({any})"),
    }
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
        let condition = compiled("system:'';DROP -tag:a'b \"x y\" o'brien*");
        let sql = condition.where_sql();
        assert!(!sql.contains("DROP"), "{sql}");
        assert!(!sql.contains('\''), "{sql}");
        assert!(!sql.contains("brien"), "{sql}");
        assert_eq!(condition.params.len(), 3);
    }

    #[test]
    fn one_value_is_compared_with_equals_so_an_index_gives_time_order() {
        let condition = compiled("system:api kind:deploy,config");
        assert_eq!(
            condition.where_sql(),
            "(e.system = $1) AND (e.kind = ANY($2::text[]))"
        );
        assert_eq!(condition.params[0], Param::Text("api".into()));
    }

    #[test]
    fn text_terms_become_one_tsquery() {
        let condition = compiled("player \"new ui\" play* -old");
        assert_eq!(
            condition.params[0],
            Param::Text("('player') & ('new' <-> 'ui') & ('play':*)".into())
        );
        assert_eq!(condition.params[1], Param::Text("'old'".into()));
        assert_eq!(
            condition.where_sql(),
            "e.search @@ $1::tsquery AND NOT (e.search @@ $2::tsquery)"
        );
    }

    #[test]
    fn ids_are_compared_as_the_sqlite_store_does() {
        let id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        assert!(exact_id(id).is_some());
        assert!(exact_id(&id.to_uppercase()).is_some());
        assert_eq!(exact_id(&id.replace('-', "")), None);
        assert_eq!(exact_id("not-a-uuid"), None);
        assert_eq!(compiled("id:not-a-uuid").where_sql(), "FALSE");
        assert_eq!(
            compiled("-id:nope").where_sql(),
            "NOT COALESCE((FALSE), FALSE)"
        );
    }
}
