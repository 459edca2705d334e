//! Weir's resource model: the types every other crate speaks, and the
//! validation rules that decide what a valid resource is.
//!
//! Nothing here does I/O. Rules that need the state of other resources
//! (a subnet inside its VPC, a port free on its LB) take those resources
//! as arguments, so the caller decides where they come from (the store)
//! and this crate decides what is allowed.

pub mod account;
pub mod alarm;
pub mod backend;
pub mod certificate;
pub mod error;
pub mod ids;
pub mod lb;
pub mod network;
pub mod resource;
pub mod rule;
pub mod validate;
pub mod vserver;

pub use error::{Error, ErrorKind, Result};
pub use resource::{Kind, Resource};
