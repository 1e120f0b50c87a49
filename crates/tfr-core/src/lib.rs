//! The domain of tfr: what a technical fact is, what makes one valid, and the query language
//! used to find facts again. Nothing here does I/O, so every rule can be unit-tested and fuzzed
//! and is shared by the server, the stores and the CLI.

pub mod correlate;
pub mod event;
pub mod query;
pub mod stats;
pub mod time;
pub mod validate;

pub use event::{Event, EventId, EventPatch, Link, NewEvent};
pub use validate::{Limits, ValidationError};
