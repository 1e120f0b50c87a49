//! The query language of design §3, used by the search box, the `q=` parameter and the CLI.
//!
//! Text is parsed here into a typed [`Query`]; each store compiles that into parameterised SQL,
//! so user text never becomes SQL text.

mod ast;
mod matches;
mod parse;

pub use ast::{Field, Matcher, Query, Term, TextPattern, ValuePattern};
pub use matches::{text_matches_fields, tokens};
pub use parse::{MAX_QUERY_CHARS, MAX_TERMS, MAX_VALUES, MAX_VALUES_PER_TERM, QueryError, parse};
