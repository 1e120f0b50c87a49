//! Handlers, one module per resource.

pub mod audit;
pub mod correlate;
pub mod events;
pub mod export;
pub mod health;
pub(crate) mod params;
pub mod stats;
pub mod stream;
