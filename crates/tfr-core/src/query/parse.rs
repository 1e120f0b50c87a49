//! A hand-written parser for the query language. It never panics, on any input: it is fuzzed.

use super::ast::{Field, Matcher, Query, Term, TextPattern, ValuePattern};
use crate::time::{parse_duration, parse_time_bound};

/// Queries longer than this are refused: nobody types them, and they cost the store.
pub const MAX_QUERY_CHARS: usize = 4096;
/// At most this many terms in one query.
pub const MAX_TERMS: usize = 64;
/// At most this many values in one `field:a,b,...` term...
pub const MAX_VALUES_PER_TERM: usize = 100;
/// ...and in the whole query.
pub const MAX_VALUES: usize = 256;

/// Why a query could not be parsed, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct QueryError {
    /// Character offset, 0-based, where the problem is.
    pub position: usize,
    pub message: String,
}

impl QueryError {
    fn new(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
        }
    }
}

type Result<T> = std::result::Result<T, QueryError>;

/// Parses a query. The empty query (or only whitespace) matches everything.
pub fn parse(text: &str) -> Result<Query> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() > MAX_QUERY_CHARS {
        return Err(QueryError::new(
            MAX_QUERY_CHARS,
            format!("the query is longer than {MAX_QUERY_CHARS} characters"),
        ));
    }
    // NUL has no business in a query; SQLite's full-text syntax and PostgreSQL text refuse it.
    if let Some(position) = chars.iter().position(|&c| c == '\0') {
        return Err(QueryError::new(
            position,
            "the query contains a NUL character",
        ));
    }
    let mut parser = Parser {
        chars,
        at: 0,
        values: 0,
    };
    let mut terms = Vec::new();
    loop {
        parser.skip_whitespace();
        if parser.at_end() {
            break;
        }
        if terms.len() == MAX_TERMS {
            return Err(QueryError::new(
                parser.at,
                format!("a query has at most {MAX_TERMS} terms"),
            ));
        }
        terms.push(parser.term()?);
    }
    Ok(Query { terms })
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    /// Field values read so far, across terms.
    values: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn at_end(&self) -> bool {
        self.at >= self.chars.len()
    }

    fn at_boundary(&self) -> bool {
        self.peek().is_none_or(char::is_whitespace)
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn term(&mut self) -> Result<Term> {
        let position = self.at;
        let negated = self.peek() == Some('-');
        if negated {
            self.at += 1;
            if self.at_boundary() || self.peek() == Some('-') {
                return Err(QueryError::new(
                    self.at,
                    "expected a term after '-' (write -word, -field:value or -\"phrase\")",
                ));
            }
        }
        let matcher = if self.peek() == Some('"') {
            let (phrase, prefix) = self.quoted()?;
            self.expect_boundary("after the closing quote")?;
            text_pattern(phrase, prefix, position)?
        } else {
            self.bare_term(position)?
        };
        Ok(Term {
            negated,
            matcher,
            position,
        })
    }

    /// A term not starting with a quote: `word`, `word*` or `field:values`.
    fn bare_term(&mut self, position: usize) -> Result<Matcher> {
        let start = self.at;
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == ':' || c == '"' {
                break;
            }
            self.at += 1;
        }
        let name: String = self.chars[start..self.at].iter().collect();
        match self.peek() {
            Some(':') => {
                self.at += 1;
                self.field_term(&name, start)
            }
            Some('"') => Err(QueryError::new(
                self.at,
                "unexpected '\"' inside a word; put spaces around a quoted phrase",
            )),
            _ => {
                let (word, prefix) = match name.strip_suffix('*') {
                    Some(word) => (word.to_owned(), true),
                    None => (name, false),
                };
                if word.contains('*') {
                    return Err(QueryError::new(
                        start + word.chars().position(|c| c == '*').unwrap_or(0),
                        "'*' is only allowed at the end of a word, for a prefix search",
                    ));
                }
                text_pattern(word, prefix, position)
            }
        }
    }

    fn field_term(&mut self, name: &str, name_at: usize) -> Result<Matcher> {
        let value_at = self.at;
        let lowered = name.to_ascii_lowercase();
        if matches!(lowered.as_str(), "after" | "before" | "since") {
            let (value, prefix) = self.value(&lowered)?;
            self.expect_boundary("after the value")?;
            if prefix {
                return Err(QueryError::new(
                    value_at,
                    format!("{lowered}: takes no '*'"),
                ));
            }
            let time_error =
                |message: String| QueryError::new(value_at, format!("{lowered}: {message}"));
            return Ok(match lowered.as_str() {
                "after" => Matcher::After(parse_time_bound(&value).map_err(time_error)?),
                "before" => Matcher::Before(parse_time_bound(&value).map_err(time_error)?),
                _ => Matcher::Since(parse_duration(&value).map_err(time_error)?),
            });
        }
        let Some(field) = Field::from_name(name) else {
            let known: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
            return Err(QueryError::new(
                name_at,
                format!(
                    "unknown field '{}'; the fields are {}, after, before, since (to search text containing ':', quote it)",
                    crate::clip(name),
                    known.join(", ")
                ),
            ));
        };
        let mut values = Vec::new();
        loop {
            let value_at = self.at;
            if values.len() == MAX_VALUES_PER_TERM || self.values == MAX_VALUES {
                return Err(QueryError::new(
                    value_at,
                    format!(
                        "too many values: at most {MAX_VALUES_PER_TERM} in one term and {MAX_VALUES} in a query"
                    ),
                ));
            }
            self.values += 1;
            let (value, prefix) = self.value(field.name())?;
            values.push(if prefix {
                ValuePattern::Prefix(value)
            } else {
                ValuePattern::Exact(value)
            });
            if self.peek() == Some(',') {
                self.at += 1;
                continue;
            }
            self.expect_boundary("after the value")?;
            return Ok(Matcher::Field { field, values });
        }
    }

    /// One value: quoted, or bare up to a comma or whitespace; a trailing `*` makes it a prefix.
    fn value(&mut self, field: &str) -> Result<(String, bool)> {
        let start = self.at;
        if self.peek() == Some('"') {
            let (value, prefix) = self.quoted()?;
            if value.is_empty() && !prefix {
                return Err(QueryError::new(start, format!("{field}: empty value")));
            }
            return Ok((value, prefix));
        }
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == ',' {
                break;
            }
            if c == '"' {
                return Err(QueryError::new(
                    self.at,
                    "unexpected '\"' inside a value; quote the whole value",
                ));
            }
            self.at += 1;
        }
        let raw: String = self.chars[start..self.at].iter().collect();
        let (value, prefix) = match raw.strip_suffix('*') {
            Some(value) => (value.to_owned(), true),
            None => (raw, false),
        };
        if value.is_empty() && !prefix {
            return Err(QueryError::new(
                start,
                format!("expected a value after '{field}:'"),
            ));
        }
        if value.contains('*') {
            return Err(QueryError::new(
                start,
                "'*' is only allowed at the end of a value, for a prefix match",
            ));
        }
        Ok((value, prefix))
    }

    /// A double-quoted string; `\"` and `\\` escape. Returns the text and whether a `*` follows.
    fn quoted(&mut self) -> Result<(String, bool)> {
        let open = self.at;
        self.at += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(QueryError::new(
                        open,
                        "unterminated quote: add the closing '\"'",
                    ));
                }
                Some('"') => {
                    self.at += 1;
                    break;
                }
                Some('\\') if matches!(self.chars.get(self.at + 1), Some('"' | '\\')) => {
                    text.push(self.chars[self.at + 1]);
                    self.at += 2;
                }
                Some(c) => {
                    text.push(c);
                    self.at += 1;
                }
            }
        }
        let prefix = self.peek() == Some('*');
        if prefix {
            self.at += 1;
        }
        Ok((text, prefix))
    }

    fn expect_boundary(&self, context: &str) -> Result<()> {
        if self.at_boundary() {
            Ok(())
        } else {
            Err(QueryError::new(
                self.at,
                format!("expected a space or the end of the query {context}"),
            ))
        }
    }
}

fn text_pattern(text: String, prefix: bool, position: usize) -> Result<Matcher> {
    if !text.chars().any(char::is_alphanumeric) {
        return Err(QueryError::new(
            position,
            if text.is_empty() {
                "empty search term".to_owned()
            } else {
                format!(
                    "'{}' has no letters or digits to search for",
                    crate::clip(&text)
                )
            },
        ));
    }
    Ok(Matcher::Text(
        match (prefix, text.contains(char::is_whitespace)) {
            (true, _) => TextPattern::Prefix(text),
            (false, true) => TextPattern::Phrase(text),
            (false, false) => TextPattern::Word(text),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn matchers(text: &str) -> Vec<(bool, Matcher)> {
        parse(text)
            .unwrap()
            .terms
            .into_iter()
            .map(|t| (t.negated, t.matcher))
            .collect()
    }

    fn one(text: &str) -> Matcher {
        let mut terms = matchers(text);
        assert_eq!(terms.len(), 1, "{text}");
        terms.remove(0).1
    }

    fn error(text: &str) -> QueryError {
        parse(text).unwrap_err()
    }

    fn exact(v: &str) -> ValuePattern {
        ValuePattern::Exact(v.to_owned())
    }

    #[test]
    fn empty_query_matches_all() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("  \t ").unwrap().is_empty());
    }

    #[test]
    fn words_prefixes_phrases() {
        assert_eq!(
            one("player"),
            Matcher::Text(TextPattern::Word("player".into()))
        );
        assert_eq!(
            one("play*"),
            Matcher::Text(TextPattern::Prefix("play".into()))
        );
        assert_eq!(
            one("\"player 5.2\""),
            Matcher::Text(TextPattern::Phrase("player 5.2".into()))
        );
        assert_eq!(
            one("\"player\""),
            Matcher::Text(TextPattern::Word("player".into()))
        );
        assert_eq!(
            one("\"new pla\"*"),
            Matcher::Text(TextPattern::Prefix("new pla".into()))
        );
        assert_eq!(
            one(r#""say \"hi\"""#),
            Matcher::Text(TextPattern::Phrase("say \"hi\"".into()))
        );
        assert_eq!(one("café"), Matcher::Text(TextPattern::Word("café".into())));
    }

    #[test]
    fn fields() {
        assert_eq!(
            one("system:player"),
            Matcher::Field {
                field: Field::System,
                values: vec![exact("player")]
            }
        );
        assert_eq!(
            one("kind:deploy,config"),
            Matcher::Field {
                field: Field::Kind,
                values: vec![exact("deploy"), exact("config")]
            }
        );
        assert_eq!(
            one("system:play*"),
            Matcher::Field {
                field: Field::System,
                values: vec![ValuePattern::Prefix("play".into())]
            }
        );
        assert_eq!(
            one("team:\"video core\",web"),
            Matcher::Field {
                field: Field::Team,
                values: vec![exact("video core"), exact("web")]
            }
        );
        assert_eq!(
            one("tag:release:5.2"),
            Matcher::Field {
                field: Field::Tag,
                values: vec![exact("release:5.2")]
            }
        );
        for (name, field) in [
            ("author", Field::Author),
            ("env", Field::Environment),
            ("environment", Field::Environment),
            ("Source", Field::Source),
            ("version", Field::Version),
            ("id", Field::Id),
        ] {
            assert_eq!(
                one(&format!("{name}:x")),
                Matcher::Field {
                    field,
                    values: vec![exact("x")]
                }
            );
        }
    }

    #[test]
    fn negation() {
        let terms = matchers("-kind:deploy player -\"old stuff\" -legacy*");
        assert_eq!(terms.len(), 4);
        assert!(terms[0].0 && !terms[1].0 && terms[2].0 && terms[3].0);
        assert_eq!(
            terms[3].1,
            Matcher::Text(TextPattern::Prefix("legacy".into()))
        );
    }

    #[test]
    fn time_terms() {
        assert_eq!(
            one("after:2026-11-01"),
            Matcher::After("2026-11-01T00:00:00Z".parse().unwrap())
        );
        assert_eq!(
            one("before:2026-11-02T14:05:00+01:00"),
            Matcher::Before("2026-11-02T13:05:00Z".parse().unwrap())
        );
        assert_eq!(
            one("since:7d"),
            Matcher::Since(SignedDuration::from_hours(168))
        );
        assert_eq!(
            one("since:30m"),
            Matcher::Since(SignedDuration::from_mins(30))
        );
    }

    #[test]
    fn positions_of_terms() {
        let query = parse("  a  system:b").unwrap();
        assert_eq!(query.terms[0].position, 2);
        assert_eq!(query.terms[1].position, 5);
    }

    #[test]
    fn errors_name_the_position() {
        let cases: &[(&str, usize, &str)] = &[
            ("a \"unclosed", 2, "unterminated quote"),
            ("system:", 7, "expected a value after 'system:'"),
            ("system:a, b", 9, "expected a value"),
            ("sytem:player", 0, "unknown field 'sytem'"),
            ("x -", 3, "expected a term after '-'"),
            ("--x", 1, "expected a term after '-'"),
            ("pl*ay", 2, "'*' is only allowed at the end"),
            ("since:7y", 6, "since:"),
            ("after:yesterday", 6, "after:"),
            ("after:2026-11-01*", 6, "takes no '*'"),
            ("\"a\"b", 3, "expected a space"),
            ("a\"b\"", 1, "unexpected '\"'"),
            ("system:a\"b\"", 8, "unexpected '\"'"),
            ("*", 0, "empty search term"),
            ("...", 0, "no letters or digits"),
            ("system:\"\"", 7, "empty value"),
        ];
        for (text, position, message) in cases {
            let err = error(text);
            assert_eq!(err.position, *position, "{text}: {err}");
            assert!(err.message.contains(message), "{text}: {err}");
        }
    }

    #[test]
    fn limits() {
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        assert!(error(&long).message.contains("longer than"));
        let many = vec!["a"; MAX_TERMS + 1].join(" ");
        assert!(error(&many).message.contains("at most"));
        assert!(parse(&vec!["a"; MAX_TERMS].join(" ")).is_ok());
    }

    #[test]
    fn value_limits() {
        let many = vec!["a*"; MAX_VALUES_PER_TERM].join(",");
        assert!(parse(&format!("system:{many}")).is_ok());
        let too_many = vec!["a*"; MAX_VALUES_PER_TERM + 1].join(",");
        assert!(
            error(&format!("system:{too_many}"))
                .message
                .contains("too many values")
        );
        let terms: Vec<String> = (0..3).map(|_| format!("system:{many}")).collect();
        assert!(error(&terms.join(" ")).message.contains("too many values"));
    }

    /// Found by the OpenAPI fuzz: `q=a%00b` reached SQLite's full-text syntax, which failed
    /// ("unterminated string") and answered 500. NUL is refused anywhere, at its position.
    #[test]
    fn nul_is_refused_where_it_is() {
        for (text, position) in [
            ("a\0b", 1),
            ("\"x \0 y\"", 3),
            ("system:a\0", 8),
            ("tag:\0*", 4),
            ("ok -\0", 4),
        ] {
            let err = error(text);
            assert_eq!(err.position, position, "{text:?}: {err}");
            assert!(err.message.contains("NUL"), "{text:?}: {err}");
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "\"", "\\", "\"\\", ":", "::", "-\"", "a:\"", "tag:,", "ü:ü", "-", "*:*", "\u{0}",
        ] {
            let _ = parse(text);
        }
    }
}
