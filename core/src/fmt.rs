//! Logging shim: `defmt`, `log`, or nothing, chosen by feature.
#![allow(unused_macros)]

macro_rules! debug {
    ($($arg:expr),* $(,)?) => {{
        #[cfg(feature = "defmt")]
        ::defmt::debug!($($arg),*);
        #[cfg(all(feature = "log", not(feature = "defmt")))]
        ::log::debug!($($arg),*);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        let _ = ($(&$arg),*);
    }};
}

macro_rules! warn {
    ($($arg:expr),* $(,)?) => {{
        #[cfg(feature = "defmt")]
        ::defmt::warn!($($arg),*);
        #[cfg(all(feature = "log", not(feature = "defmt")))]
        ::log::warn!($($arg),*);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        let _ = ($(&$arg),*);
    }};
}
