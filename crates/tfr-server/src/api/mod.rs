//! Handlers, one module per resource.

pub mod events;
pub mod export;
pub mod health;
mod params;
