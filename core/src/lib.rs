#![no_std]
#![forbid(unsafe_code)]
#![doc = "Allocation-free core of an Amplitude HTTP V2 client."]

pub mod encode;
pub mod event;
pub mod identify;
pub mod json;
pub mod middleware;
pub mod outcome;
pub mod queue;
pub mod response;
pub mod retry;
mod ser;
pub mod transport;
pub mod validate;
pub mod value;

pub use event::Event;
pub use identify::{GroupIdentify, Identify, Revenue};
pub use validate::ValidationError;
pub use value::{RawJson, ToJson, Value};
