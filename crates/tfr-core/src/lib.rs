//! The domain of tfr: what a technical fact is, what makes one valid, and the query language
//! used to find facts again. Nothing here does I/O, so every rule can be unit-tested and fuzzed
//! and is shared by the server, the stores and the CLI.

pub mod correlate;
pub mod event;
pub mod query;
pub mod stats;
pub mod time;
pub mod token;
pub mod validate;

pub use event::{Event, EventId, EventPatch, Link, NewEvent};

/// User text quoted in an error message, cut to 64 characters: errors name what was wrong
/// without echoing (possibly megabytes of) input back.
pub fn clip(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
pub use validate::{Limits, ValidationError};
