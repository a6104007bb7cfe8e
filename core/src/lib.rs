#![no_std]
#![forbid(unsafe_code)]
#![doc = "Allocation-free core of an Amplitude HTTP V2 client."]

pub mod transport;
