//! Builders for the special events: `$identify`, `$groupidentify`, revenue and
//! `setGroup`, following the official SDKs' conventions (spec §3).

use crate::event::{DEFAULT_PROPERTIES, Event, Target, UserOp};
use crate::value::Value;

/// Add an operation entry unless the property already has one (first operation on a
/// property wins) or `$clearAll` was set (then nothing else is sent, as the official SDKs do).
fn add_op<'a, const N: usize>(
    event: &mut Event<'a, N>,
    target: fn(UserOp) -> Target,
    op: UserOp,
    key: &'a str,
    value: Value<'a>,
) {
    let ops = || UserOp::OPS.iter().map(|&o| target(o));
    let taken = event.properties().iter().any(|p| {
        ops().any(|t| t == p.target) && (p.key == key || p.target == target(UserOp::ClearAll))
    });
    if !taken {
        event.push(target(op), key, value);
    }
}

macro_rules! op_methods {
    () => {
        /// `$set`: set the property.
        #[must_use]
        pub fn set(self, key: &'a str, value: impl Into<Value<'a>>) -> Self {
            self.op(UserOp::Set, key, value.into())
        }
        /// `$setOnce`: set the property only if it has no value yet.
        #[must_use]
        pub fn set_once(self, key: &'a str, value: impl Into<Value<'a>>) -> Self {
            self.op(UserOp::SetOnce, key, value.into())
        }
        /// `$add`: add a number to the property.
        #[must_use]
        pub fn add(self, key: &'a str, value: impl Into<Value<'a>>) -> Self {
            self.op(UserOp::Add, key, value.into())
        }
        /// `$append`: append to the property's list.
        #[must_use]
        pub fn append(self, key: &'a str, value: impl Into<Value<'a>>) -> Self {
            self.op(UserOp::Append, key, value.into())
        }
        /// `$prepend`: prepend to the property's list.
        #[must_use]
        pub fn prepend(self, key: &'a str, value: impl Into<Value<'a>>) -> Self {
            self.op(UserOp::Prepend, key, value.into())
        }
        /// `$preInsert`: prepend to the list unless already present.
        #[must_use]
        pub fn pre_insert(self, key: &'a str, value: impl Into<Value<'a>>) -> Self {
            self.op(UserOp::PreInsert, key, value.into())
        }
        /// `$postInsert`: append to the list unless already present.
        #[must_use]
        pub fn post_insert(self, key: &'a str, value: impl Into<Value<'a>>) -> Self {
            self.op(UserOp::PostInsert, key, value.into())
        }
        /// `$remove`: remove a value from the property's list.
        #[must_use]
        pub fn remove(self, key: &'a str, value: impl Into<Value<'a>>) -> Self {
            self.op(UserOp::Remove, key, value.into())
        }
        /// `$unset`: remove the property.
        #[must_use]
        pub fn unset(self, key: &'a str) -> Self {
            self.op(UserOp::Unset, key, Value::Str("-"))
        }
        /// `$clearAll`: remove every property; operations added afterwards are ignored.
        #[must_use]
        pub fn clear_all(self) -> Self {
            self.op(UserOp::ClearAll, "$clearAll", Value::Str("-"))
        }
        /// Set `user_id`.
        #[must_use]
        pub fn user_id(mut self, id: &'a str) -> Self {
            self.event = self.event.user_id(id);
            self
        }
        /// Set `device_id`.
        #[must_use]
        pub fn device_id(mut self, id: &'a str) -> Self {
            self.event = self.event.device_id(id);
            self
        }
        /// The event to log.
        pub fn into_event(self) -> Event<'a, N> {
            self.event
        }
    };
}

/// Builds an `$identify` event: user property operations for one user or device.
///
/// ```
/// use amplitude_core::Identify;
/// let ev = Identify::<16>::new()
///     .set("plan", "pro")
///     .add("logins", 1)
///     .set_once("plan", "free") // ignored: the first operation on "plan" wins
///     .user_id("user-1234")
///     .into_event();
/// assert_eq!(ev.event_type, "$identify");
/// assert_eq!(ev.properties().len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Identify<'a, const N: usize = DEFAULT_PROPERTIES> {
    event: Event<'a, N>,
}

impl<'a, const N: usize> Default for Identify<'a, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, const N: usize> Identify<'a, N> {
    /// An empty identify.
    pub const fn new() -> Self {
        Self {
            event: Event::with_capacity("$identify"),
        }
    }

    fn op(mut self, op: UserOp, key: &'a str, value: Value<'a>) -> Self {
        add_op(&mut self.event, Target::User, op, key, value);
        self
    }

    op_methods!();
}

/// Builds a `$groupidentify` event: group property operations for one group.
///
/// ```
/// use amplitude_core::GroupIdentify;
/// let ev = GroupIdentify::<16>::new("org", "Acme")
///     .set("seats", 40)
///     .device_id("gateway-0042")
///     .into_event();
/// assert_eq!(ev.event_type, "$groupidentify");
/// ```
#[derive(Debug, Clone)]
pub struct GroupIdentify<'a, const N: usize = DEFAULT_PROPERTIES> {
    event: Event<'a, N>,
}

impl<'a, const N: usize> GroupIdentify<'a, N> {
    /// A group identify for `group_type` = `group_name`.
    pub fn new(group_type: &'a str, group_name: &'a str) -> Self {
        Self {
            event: Event::with_capacity("$groupidentify").group(group_type, group_name),
        }
    }

    fn op(mut self, op: UserOp, key: &'a str, value: Value<'a>) -> Self {
        add_op(&mut self.event, Target::GroupProperty, op, key, value);
        self
    }

    op_methods!();
}

/// `setGroup`: put the user in a group (or several groups of one type), as an `$identify`
/// event carrying `groups` and `$set` of the same user property.
///
/// ```
/// use amplitude_core::{identify::set_group, Value};
/// let ev = set_group::<8>("org", Value::Str("Acme")).user_id("user-1234");
/// assert_eq!(ev.event_type, "$identify");
/// ```
pub fn set_group<'a, const N: usize>(group_type: &'a str, group_name: Value<'a>) -> Event<'a, N> {
    let mut ev = Event::with_capacity("$identify").group(group_type, group_name);
    ev.push(Target::User(UserOp::Set), group_type, group_name);
    ev
}

/// Builds a revenue event with the official SDKs' convention: event type
/// `revenue_amount` and event properties `$productId`, `$quantity`, `$price`,
/// `$revenueType`, `$currency`, `$revenue`, `$receipt`, `$receiptSig`.
///
/// ```
/// use amplitude_core::Revenue;
/// let ev = Revenue::<16>::new(9.99).product_id("sku-1").quantity(2).user_id("user-1234").into_event();
/// assert_eq!(ev.event_type, "revenue_amount");
/// ```
#[derive(Debug, Clone)]
pub struct Revenue<'a, const N: usize = DEFAULT_PROPERTIES> {
    event: Event<'a, N>,
    price: f64,
    quantity: i64,
}

impl<'a, const N: usize> Revenue<'a, N> {
    /// Revenue at `price` per unit (negative for refunds), quantity 1.
    pub fn new(price: f64) -> Self {
        Self {
            event: Event::with_capacity("revenue_amount"),
            price,
            quantity: 1,
        }
    }

    /// `$productId`
    #[must_use]
    pub fn product_id(mut self, id: &'a str) -> Self {
        self.event.push(Target::Event, "$productId", Value::Str(id));
        self
    }

    /// `$quantity` (default 1)
    #[must_use]
    pub fn quantity(mut self, quantity: i64) -> Self {
        self.quantity = quantity;
        self
    }

    /// `$revenueType`
    #[must_use]
    pub fn revenue_type(mut self, kind: &'a str) -> Self {
        self.event
            .push(Target::Event, "$revenueType", Value::Str(kind));
        self
    }

    /// `$currency` (ISO-4217, upper case)
    #[must_use]
    pub fn currency(mut self, code: &'a str) -> Self {
        self.event
            .push(Target::Event, "$currency", Value::Str(code));
        self
    }

    /// `$receipt` and `$receiptSig`
    #[must_use]
    pub fn receipt(mut self, receipt: &'a str, signature: &'a str) -> Self {
        self.event
            .push(Target::Event, "$receipt", Value::Str(receipt));
        self.event
            .push(Target::Event, "$receiptSig", Value::Str(signature));
        self
    }

    /// Any other event property.
    #[must_use]
    pub fn property(mut self, key: &'a str, value: impl Into<Value<'a>>) -> Self {
        self.event.push(Target::Event, key, value.into());
        self
    }

    /// Set `user_id`.
    #[must_use]
    pub fn user_id(mut self, id: &'a str) -> Self {
        self.event = self.event.user_id(id);
        self
    }

    /// Set `device_id`.
    #[must_use]
    pub fn device_id(mut self, id: &'a str) -> Self {
        self.event = self.event.device_id(id);
        self
    }

    /// The event to log: adds `$price`, `$quantity` and `$revenue` (= price × quantity).
    pub fn into_event(mut self) -> Event<'a, N> {
        self.event
            .push(Target::Event, "$price", Value::Float(self.price));
        self.event
            .push(Target::Event, "$quantity", Value::Int(self.quantity));
        self.event.push(
            Target::Event,
            "$revenue",
            Value::Float(self.price * self.quantity as f64),
        );
        self.event
    }
}
