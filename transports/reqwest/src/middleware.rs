//! Middleware as boxed closures: the core's [`Middleware`] trait for std users.

use std::fmt;

use amplitude_core::middleware::{Middleware, Next, Payload};

/// The closure type of a std middleware.
type BoxedFn = Box<dyn for<'p, 'a, 'n> FnMut(&mut Payload<'p, 'a>, Next<'n, 'p, 'a>) + Send>;

/// A closure run as a core [`Middleware`]: it gets the payload (`event` to read or
/// change, `extra` data given to
/// [`Client::log_event_with`](crate::Client::log_event_with)) and `next`; calling
/// `next.run(payload)` passes the event on, returning without calling it stops the
/// event ([`LogError::Filtered`](crate::LogError::Filtered)).
///
/// Usually created by [`Client::add_event_middleware`](crate::Client::add_event_middleware).
///
/// ```
/// use amplitude_core::Event;
/// use amplitude_core::middleware::{run_chain, Middleware};
/// use amplitude_reqwest::FnMiddleware;
///
/// let mut chain = [FnMiddleware::new(|payload, next| {
///     if payload.event.event_type != "Debug" {
///         next.run(payload);
///     }
/// })];
/// let mut event: Event = Event::new("Debug").user_id("user-1234");
/// assert!(!run_chain(&mut chain, &mut event, None));
/// ```
pub struct FnMiddleware(BoxedFn);

impl FnMiddleware {
    /// Wrap a closure.
    pub fn new<F>(f: F) -> Self
    where
        F: for<'p, 'a, 'n> FnMut(&mut Payload<'p, 'a>, Next<'n, 'p, 'a>) + Send + 'static,
    {
        Self(Box::new(f))
    }
}

impl fmt::Debug for FnMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnMiddleware(..)")
    }
}

impl Middleware for FnMiddleware {
    fn run<'p, 'a>(&mut self, payload: &mut Payload<'p, 'a>, next: Next<'_, 'p, 'a>) {
        (self.0)(payload, next)
    }
}
