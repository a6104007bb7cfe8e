//! Middleware: an ordered chain that sees every event before validation.
//!
//! Each middleware gets the payload `{event, extra}` and a [`Next`]. Calling
//! `next.run(payload)` passes the (possibly modified) event on; returning without calling
//! it stops the event, which is then counted as filtered. A middleware may also copy the
//! event somewhere else before or instead of passing it on.

use core::any::Any;

use crate::event::{DEFAULT_PROPERTIES, Event};

/// What a middleware sees: the event and the caller's extra data.
pub struct Payload<'p, 'a, const N: usize = DEFAULT_PROPERTIES> {
    /// The event, to read or modify.
    pub event: &'p mut Event<'a, N>,
    /// Extra data given to `log_event_with` (any `'static` type), if any.
    pub extra: Option<&'p dyn Any>,
}

/// The rest of the chain.
pub struct Next<'n, 'p, 'a, const N: usize = DEFAULT_PROPERTIES> {
    rest: &'n mut dyn FnMut(&mut Payload<'p, 'a, N>),
}

impl<'p, 'a, const N: usize> Next<'_, 'p, 'a, N> {
    /// Pass the payload to the rest of the chain.
    pub fn run(self, payload: &mut Payload<'p, 'a, N>) {
        (self.rest)(payload)
    }
}

/// One step of the chain.
///
/// ```
/// use amplitude_core::middleware::{run_chain, Middleware, Next, Payload};
/// use amplitude_core::{Event, event::Target};
///
/// /// Drops events of one type, tags the others.
/// struct Filter;
/// impl Middleware for Filter {
///     fn run<'p, 'a>(&mut self, payload: &mut Payload<'p, 'a>, next: Next<'_, 'p, 'a>) {
///         if payload.event.event_type == "Debug" {
///             return; // not calling next: filtered
///         }
///         payload.event.push(Target::Event, "source", "middleware".into());
///         next.run(payload);
///     }
/// }
///
/// let mut chain: [&mut dyn Middleware; 1] = [&mut Filter];
/// let mut ev: Event = Event::new("Debug").user_id("user-1234");
/// assert!(!run_chain(&mut chain, &mut ev, None));
/// let mut ev: Event = Event::new("Click").user_id("user-1234");
/// assert!(run_chain(&mut chain, &mut ev, None));
/// assert_eq!(ev.properties().len(), 1);
/// ```
pub trait Middleware<const N: usize = DEFAULT_PROPERTIES> {
    /// Handle the payload; call `next.run(payload)` to pass it on.
    fn run<'p, 'a>(&mut self, payload: &mut Payload<'p, 'a, N>, next: Next<'_, 'p, 'a, N>);
}

impl<const N: usize, M: Middleware<N> + ?Sized> Middleware<N> for &mut M {
    fn run<'p, 'a>(&mut self, payload: &mut Payload<'p, 'a, N>, next: Next<'_, 'p, 'a, N>) {
        (**self).run(payload, next)
    }
}

/// Anything that can be run as a chain: a slice of middleware.
pub trait Chain<const N: usize = DEFAULT_PROPERTIES> {
    /// Run the chain on `event`; `true` when the event came out of the end (not filtered).
    fn run_all<'a>(&mut self, event: &mut Event<'a, N>, extra: Option<&dyn Any>) -> bool;
}

impl<const N: usize, M: Middleware<N>> Chain<N> for [M] {
    fn run_all<'a>(&mut self, event: &mut Event<'a, N>, extra: Option<&dyn Any>) -> bool {
        let mut payload = Payload { event, extra };
        let mut reached = false;
        step(self, &mut payload, &mut reached);
        reached
    }
}

impl<const N: usize> Chain<N> for () {
    fn run_all<'a>(&mut self, _event: &mut Event<'a, N>, _extra: Option<&dyn Any>) -> bool {
        true
    }
}

fn step<'p, 'a, const N: usize, M: Middleware<N>>(
    chain: &mut [M],
    payload: &mut Payload<'p, 'a, N>,
    reached: &mut bool,
) {
    match chain.split_first_mut() {
        None => *reached = true,
        Some((first, rest)) => {
            let mut continue_with = |p: &mut Payload<'p, 'a, N>| step(rest, p, reached);
            first.run(
                payload,
                Next {
                    rest: &mut continue_with,
                },
            );
        }
    }
}

/// Run `chain` over `event`; `true` when it was passed all the way through.
pub fn run_chain<'a, const N: usize, M: Middleware<N>>(
    chain: &mut [M],
    event: &mut Event<'a, N>,
    extra: Option<&dyn Any>,
) -> bool {
    chain.run_all(event, extra)
}
