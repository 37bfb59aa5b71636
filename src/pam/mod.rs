//! Everything that touches libpam: the module's hooks and the
//! application-side client used by tests. The only place with `unsafe`.

#[cfg(feature = "test-client")]
pub mod client;
mod ffi;
pub mod fleet;
mod module;
pub mod sys;

pub use module::verdict_code;
