//! Patient matching with grades (IHE PDQm `$match` style): deterministic, weighted, private.
//!
//! (Full documentation below, written after tuning.)

mod attributes;
pub mod generate;
mod index;
mod names;
mod score;

pub use attributes::{Address, AttributeError, AttributeName, Attributes, Sex};
pub use index::{answer, Answer, Candidate, Index, IndexError, PatientId};
pub use score::{score, Agreement, Grade, Scored, Weights};
