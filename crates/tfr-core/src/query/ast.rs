//! The typed form of a query: a conjunction of terms, each possibly negated.

use std::fmt;

use jiff::{SignedDuration, Timestamp};

/// A parsed query: every term must match. No terms matches every event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    pub terms: Vec<Term>,
}

impl Query {
    /// The query that matches everything.
    pub fn all() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// One term of a query, and where it started in the text (for error messages).
#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    pub negated: bool,
    pub matcher: Matcher,
    /// Character offset of the term in the query text, 0-based.
    pub position: usize,
}

/// What a term matches.
#[derive(Clone, Debug, PartialEq)]
pub enum Matcher {
    /// Full text over title, description, system, author, tags and version.
    Text(TextPattern),
    /// `field:a,b`: the field equals (or starts with) any of the values.
    Field {
        field: Field,
        values: Vec<ValuePattern>,
    },
    /// `after:T`: occurred at or after T.
    After(Timestamp),
    /// `before:T`: occurred strictly before T.
    Before(Timestamp),
    /// `since:7d`: occurred within the last duration, counted from the time of the query.
    Since(SignedDuration),
}

/// A full-text pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextPattern {
    /// `word`: the word's tokens, in order.
    Word(String),
    /// `word*`: a token starting with the word.
    Prefix(String),
    /// `"exact phrase"`.
    Phrase(String),
}

impl TextPattern {
    pub fn text(&self) -> &str {
        match self {
            Self::Word(text) | Self::Prefix(text) | Self::Phrase(text) => text,
        }
    }
}

/// A value of a field term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValuePattern {
    Exact(String),
    Prefix(String),
}

/// The fields a term can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    System,
    Author,
    Kind,
    Environment,
    Team,
    Source,
    Tag,
    Version,
    Id,
}

impl Field {
    pub const ALL: [Field; 9] = [
        Field::System,
        Field::Author,
        Field::Kind,
        Field::Environment,
        Field::Team,
        Field::Source,
        Field::Tag,
        Field::Version,
        Field::Id,
    ];

    /// The name used in queries (`env` for the environment).
    pub fn name(self) -> &'static str {
        match self {
            Field::System => "system",
            Field::Author => "author",
            Field::Kind => "kind",
            Field::Environment => "env",
            Field::Team => "team",
            Field::Source => "source",
            Field::Tag => "tag",
            Field::Version => "version",
            Field::Id => "id",
        }
    }

    /// Looks a field up by its query name; `environment` is accepted for `env`.
    pub fn from_name(name: &str) -> Option<Field> {
        let name = name.to_ascii_lowercase();
        if name == "environment" {
            return Some(Field::Environment);
        }
        Field::ALL.into_iter().find(|field| field.name() == name)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
