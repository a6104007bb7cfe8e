//! The event: every HTTP V2 field, typed, with borrowed strings and builders.

use crate::value::Value;

/// Default number of property entries an [`Event`] can hold (event, user and group
/// properties and groups together).
pub const DEFAULT_PROPERTIES: usize = 32;

/// The descriptive string fields of spec §3, in the order they are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(missing_docs)]
pub enum StrField {
    AppVersion,
    VersionName,
    Platform,
    OsName,
    OsVersion,
    DeviceBrand,
    DeviceManufacturer,
    DeviceModel,
    Carrier,
    Country,
    Region,
    City,
    Dma,
    Language,
    Library,
    UserAgent,
    PartnerId,
    Idfa,
    Idfv,
    Adid,
    AndroidId,
    AndroidAppSetId,
    Ip,
    ProductId,
    RevenueType,
    Currency,
}

impl StrField {
    /// How many string fields there are.
    pub const COUNT: usize = 26;
    /// All of them, in encoding order.
    pub const ALL: [StrField; Self::COUNT] = [
        StrField::AppVersion,
        StrField::VersionName,
        StrField::Platform,
        StrField::OsName,
        StrField::OsVersion,
        StrField::DeviceBrand,
        StrField::DeviceManufacturer,
        StrField::DeviceModel,
        StrField::Carrier,
        StrField::Country,
        StrField::Region,
        StrField::City,
        StrField::Dma,
        StrField::Language,
        StrField::Library,
        StrField::UserAgent,
        StrField::PartnerId,
        StrField::Idfa,
        StrField::Idfv,
        StrField::Adid,
        StrField::AndroidId,
        StrField::AndroidAppSetId,
        StrField::Ip,
        StrField::ProductId,
        StrField::RevenueType,
        StrField::Currency,
    ];

    /// The JSON key of the field.
    ///
    /// ```
    /// use amplitude_core::event::StrField;
    /// assert_eq!(StrField::ProductId.key(), "productId");
    /// ```
    pub const fn key(self) -> &'static str {
        match self {
            StrField::AppVersion => "app_version",
            StrField::VersionName => "version_name",
            StrField::Platform => "platform",
            StrField::OsName => "os_name",
            StrField::OsVersion => "os_version",
            StrField::DeviceBrand => "device_brand",
            StrField::DeviceManufacturer => "device_manufacturer",
            StrField::DeviceModel => "device_model",
            StrField::Carrier => "carrier",
            StrField::Country => "country",
            StrField::Region => "region",
            StrField::City => "city",
            StrField::Dma => "dma",
            StrField::Language => "language",
            StrField::Library => "library",
            StrField::UserAgent => "user_agent",
            StrField::PartnerId => "partner_id",
            StrField::Idfa => "idfa",
            StrField::Idfv => "idfv",
            StrField::Adid => "adid",
            StrField::AndroidId => "android_id",
            StrField::AndroidAppSetId => "android_app_set_id",
            StrField::Ip => "ip",
            StrField::ProductId => "productId",
            StrField::RevenueType => "revenueType",
            StrField::Currency => "currency",
        }
    }
}

/// A `user_properties` operation (spec §3). [`UserOp::Plain`] is a plain key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UserOp {
    /// A plain `user_properties` key (cannot be mixed with operations).
    Plain,
    /// `$set`
    Set,
    /// `$setOnce`
    SetOnce,
    /// `$add` (numbers)
    Add,
    /// `$append`
    Append,
    /// `$prepend`
    Prepend,
    /// `$preInsert`
    PreInsert,
    /// `$postInsert`
    PostInsert,
    /// `$remove`
    Remove,
    /// `$unset` (value is written as `"-"`)
    Unset,
    /// `$clearAll` (no key; written as `"$clearAll":"-"`)
    ClearAll,
}

impl UserOp {
    /// All operations in encoding order.
    pub const OPS: [UserOp; 10] = [
        UserOp::Set,
        UserOp::SetOnce,
        UserOp::Add,
        UserOp::Append,
        UserOp::Prepend,
        UserOp::PreInsert,
        UserOp::PostInsert,
        UserOp::Remove,
        UserOp::Unset,
        UserOp::ClearAll,
    ];

    /// The JSON key of the operation (`""` for [`UserOp::Plain`]).
    pub const fn key(self) -> &'static str {
        match self {
            UserOp::Plain => "",
            UserOp::Set => "$set",
            UserOp::SetOnce => "$setOnce",
            UserOp::Add => "$add",
            UserOp::Append => "$append",
            UserOp::Prepend => "$prepend",
            UserOp::PreInsert => "$preInsert",
            UserOp::PostInsert => "$postInsert",
            UserOp::Remove => "$remove",
            UserOp::Unset => "$unset",
            UserOp::ClearAll => "$clearAll",
        }
    }
}

/// Which JSON object a property entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Target {
    /// `event_properties`
    Event,
    /// `user_properties`, plain or under an operation.
    User(UserOp),
    /// `groups` (value: string or list of strings)
    Group,
    /// `group_properties`, plain or under an operation.
    GroupProperty(UserOp),
}

/// One property entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prop<'a> {
    /// The object it belongs to.
    pub target: Target,
    /// The key.
    pub key: &'a str,
    /// The value.
    pub value: Value<'a>,
}

/// Tracking plan metadata (`plan`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Plan<'a> {
    pub branch: Option<&'a str>,
    pub source: Option<&'a str>,
    pub version: Option<&'a str>,
    pub version_id: Option<&'a str>,
}

/// Ingestion metadata (`ingestion_metadata`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct IngestionMetadata<'a> {
    pub source_name: Option<&'a str>,
    pub source_version: Option<&'a str>,
}

/// An Amplitude event with every HTTP V2 field (spec §3).
///
/// Strings are borrowed: building and logging an event copies nothing until it is
/// encoded into the queue. Properties live in a fixed-capacity list of `N` entries
/// shared by event properties, user properties, groups and group properties; adding
/// more than `N` is reported by validation ([`crate::ValidationError::TooManyEntries`]),
/// never dropped silently.
///
/// ```
/// use amplitude_core::Event;
/// let event: Event = Event::new("Button Clicked")
///     .user_id("datamonster@gmail.com")
///     .property("keyInt", 11)
///     .property("keyString", "value")
///     .platform("Linux");
/// assert_eq!(event.event_type, "Button Clicked");
/// assert_eq!(event.properties().len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Event<'a, const N: usize = DEFAULT_PROPERTIES> {
    /// `event_type` (required).
    pub event_type: &'a str,
    /// `user_id`
    pub user_id: Option<&'a str>,
    /// `device_id`
    pub device_id: Option<&'a str>,
    /// `time`, ms since the Unix epoch. When absent, the SDK fills it from the time the
    /// event was logged once wall-clock time is known.
    pub time: Option<i64>,
    /// `insert_id`; generated (UUID v4) when absent.
    pub insert_id: Option<&'a str>,
    /// `session_id` (ms; `-1` = no session)
    pub session_id: Option<i64>,
    /// `event_id`
    pub event_id: Option<i64>,
    /// `location_lat`
    pub location_lat: Option<f64>,
    /// `location_lng`
    pub location_lng: Option<f64>,
    /// `price`
    pub price: Option<f64>,
    /// `revenue`
    pub revenue: Option<f64>,
    /// `quantity`
    pub quantity: Option<i64>,
    /// `$skip_user_properties_sync`
    pub skip_user_properties_sync: Option<bool>,
    /// `plan`
    pub plan: Option<Plan<'a>>,
    /// `ingestion_metadata`
    pub ingestion_metadata: Option<IngestionMetadata<'a>>,
    /// A whole `event_properties` object (typed or raw) merged with [`Event::property`]
    /// entries.
    pub event_properties_object: Option<Value<'a>>,
    strings: [Option<&'a str>; StrField::COUNT],
    props: heapless::Vec<Prop<'a>, N>,
    overflow: bool,
}

macro_rules! string_setters {
    ($($name:ident => $field:ident),* $(,)?) => {$(
        #[doc = concat!("Set `", stringify!($name), "`.")]
        #[must_use]
        pub fn $name(self, value: &'a str) -> Self {
            self.string(StrField::$field, value)
        }
    )*};
}

impl<'a> Event<'a> {
    /// A new event of type `event_type` with no other fields, holding up to
    /// [`DEFAULT_PROPERTIES`] property entries.
    pub const fn new(event_type: &'a str) -> Self {
        Self::with_capacity(event_type)
    }
}

impl<'a, const N: usize> Event<'a, N> {
    /// A new event of type `event_type` holding up to `N` property entries:
    /// `Event::<64>::with_capacity("Checkout")`.
    ///
    /// ```
    /// use amplitude_core::Event;
    /// let ev = Event::<'_, 64>::with_capacity("Checkout").user_id("user-1234");
    /// assert_eq!(ev.event_type, "Checkout");
    /// ```
    pub const fn with_capacity(event_type: &'a str) -> Self {
        Self {
            event_type,
            user_id: None,
            device_id: None,
            time: None,
            insert_id: None,
            session_id: None,
            event_id: None,
            location_lat: None,
            location_lng: None,
            price: None,
            revenue: None,
            quantity: None,
            skip_user_properties_sync: None,
            plan: None,
            ingestion_metadata: None,
            event_properties_object: None,
            strings: [None; StrField::COUNT],
            props: heapless::Vec::new(),
            overflow: false,
        }
    }

    /// Set `user_id`.
    #[must_use]
    pub fn user_id(mut self, id: &'a str) -> Self {
        self.user_id = Some(id);
        self
    }

    /// Set `device_id`.
    #[must_use]
    pub fn device_id(mut self, id: &'a str) -> Self {
        self.device_id = Some(id);
        self
    }

    /// Set `time` (ms since the Unix epoch).
    #[must_use]
    pub fn time(mut self, ms: i64) -> Self {
        self.time = Some(ms);
        self
    }

    /// Set `insert_id` (the dedup key).
    #[must_use]
    pub fn insert_id(mut self, id: &'a str) -> Self {
        self.insert_id = Some(id);
        self
    }

    /// Set `session_id`.
    #[must_use]
    pub fn session_id(mut self, id: i64) -> Self {
        self.session_id = Some(id);
        self
    }

    /// Set `event_id`.
    #[must_use]
    pub fn event_id(mut self, id: i64) -> Self {
        self.event_id = Some(id);
        self
    }

    /// Set `location_lat` and `location_lng`.
    #[must_use]
    pub fn location(mut self, lat: f64, lng: f64) -> Self {
        self.location_lat = Some(lat);
        self.location_lng = Some(lng);
        self
    }

    /// Set `price`.
    #[must_use]
    pub fn price(mut self, price: f64) -> Self {
        self.price = Some(price);
        self
    }

    /// Set `revenue`.
    #[must_use]
    pub fn revenue(mut self, revenue: f64) -> Self {
        self.revenue = Some(revenue);
        self
    }

    /// Set `quantity`.
    #[must_use]
    pub fn quantity(mut self, quantity: i64) -> Self {
        self.quantity = Some(quantity);
        self
    }

    /// Set `$skip_user_properties_sync`.
    #[must_use]
    pub fn skip_user_properties_sync(mut self, skip: bool) -> Self {
        self.skip_user_properties_sync = Some(skip);
        self
    }

    /// Set `plan`.
    #[must_use]
    pub fn plan(mut self, plan: Plan<'a>) -> Self {
        self.plan = Some(plan);
        self
    }

    /// Set `ingestion_metadata`.
    #[must_use]
    pub fn ingestion_metadata(mut self, meta: IngestionMetadata<'a>) -> Self {
        self.ingestion_metadata = Some(meta);
        self
    }

    /// Set any descriptive string field.
    #[must_use]
    pub fn string(mut self, field: StrField, value: &'a str) -> Self {
        self.strings[field as usize] = Some(value);
        self
    }

    /// Set any descriptive string field in place (no move of the event, unlike the
    /// builder methods; for loops over many fields).
    pub fn set_string(&mut self, field: StrField, value: &'a str) {
        self.strings[field as usize] = Some(value);
    }

    /// Read a descriptive string field.
    pub fn get_string(&self, field: StrField) -> Option<&'a str> {
        self.strings[field as usize]
    }

    /// Clear a descriptive string field.
    pub fn clear_string(&mut self, field: StrField) {
        self.strings[field as usize] = None;
    }

    string_setters! {
        app_version => AppVersion, version_name => VersionName, platform => Platform,
        os_name => OsName, os_version => OsVersion, device_brand => DeviceBrand,
        device_manufacturer => DeviceManufacturer, device_model => DeviceModel,
        carrier => Carrier, country => Country, region => Region, city => City, dma => Dma,
        language => Language, library => Library, user_agent => UserAgent,
        partner_id => PartnerId, idfa => Idfa, idfv => Idfv, adid => Adid,
        android_id => AndroidId, android_app_set_id => AndroidAppSetId, ip => Ip,
        product_id => ProductId, revenue_type => RevenueType, currency => Currency,
    }

    /// Add an `event_properties` entry.
    #[must_use]
    pub fn property(mut self, key: &'a str, value: impl Into<Value<'a>>) -> Self {
        self.push(Target::Event, key, value.into());
        self
    }

    /// Use a whole object (typed via [`Value::serde`], or [`Value::Raw`]) as
    /// `event_properties`; [`Event::property`] entries are merged into it.
    #[must_use]
    pub fn event_properties(mut self, object: Value<'a>) -> Self {
        self.event_properties_object = Some(object);
        self
    }

    /// Add a plain `user_properties` entry.
    #[must_use]
    pub fn user_property(mut self, key: &'a str, value: impl Into<Value<'a>>) -> Self {
        self.push(Target::User(UserOp::Plain), key, value.into());
        self
    }

    /// Add a `groups` entry: a group type and its value (a string or a list of strings).
    #[must_use]
    pub fn group(mut self, group_type: &'a str, value: impl Into<Value<'a>>) -> Self {
        self.push(Target::Group, group_type, value.into());
        self
    }

    /// Add a plain `group_properties` entry.
    #[must_use]
    pub fn group_property(mut self, key: &'a str, value: impl Into<Value<'a>>) -> Self {
        self.push(Target::GroupProperty(UserOp::Plain), key, value.into());
        self
    }

    /// Add an entry to any target (used by middleware and the Identify builders).
    /// Returns `false` when the event is full (validation will then report it).
    pub fn push(&mut self, target: Target, key: &'a str, value: Value<'a>) -> bool {
        if self.props.push(Prop { target, key, value }).is_err() {
            self.overflow = true;
            return false;
        }
        true
    }

    /// Remove every entry of `target` with `key`; returns how many were removed.
    pub fn remove(&mut self, target: Target, key: &str) -> usize {
        let before = self.props.len();
        self.props.retain(|p| !(p.target == target && p.key == key));
        before - self.props.len()
    }

    /// Look up the first entry of `target` with `key`.
    pub fn get(&self, target: Target, key: &str) -> Option<&Value<'a>> {
        self.props
            .iter()
            .find(|p| p.target == target && p.key == key)
            .map(|p| &p.value)
    }

    /// All property entries, in the order they were added.
    pub fn properties(&self) -> &[Prop<'a>] {
        &self.props
    }

    /// Whether more entries were added than the event can hold.
    pub fn overflowed(&self) -> bool {
        self.overflow
    }
}

/// An event type with typed properties, like the events Amplitude's Ampli generates: a
/// `#[derive(Serialize)]` struct whose fields are the event properties.
///
/// It logs directly, through `From<&T> for Event`; ids and other fields are added with
/// the usual builders. The built-in dynamic [`Event`] is what every typed event becomes.
///
/// ```
/// use amplitude_core::{Event, event::TypedEvent};
///
/// #[derive(serde::Serialize)]
/// struct ButtonClicked<'a> {
///     button_color: &'a str,
///     clicks: u32,
/// }
/// impl TypedEvent for ButtonClicked<'_> {
///     const EVENT_TYPE: &'static str = "Button Clicked";
/// }
///
/// let clicked = ButtonClicked { button_color: "red", clicks: 2 };
/// let ev = Event::from(&clicked).user_id("user-1234");
/// assert_eq!(ev.event_type, "Button Clicked");
/// ```
pub trait TypedEvent: serde::Serialize + Sync {
    /// The `event_type`.
    const EVENT_TYPE: &'static str;

    /// The dynamic event carrying these properties.
    fn to_event(&self) -> Event<'_>
    where
        Self: Sized,
    {
        Event::new(Self::EVENT_TYPE).event_properties(Value::Serde(self))
    }
}

impl<'a, T: TypedEvent> From<&'a T> for Event<'a> {
    fn from(typed: &'a T) -> Self {
        typed.to_event()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn events_can_cross_threads_and_awaits() {
        assert_send_sync::<Event<'static>>();
        assert_send_sync::<Value<'static>>();
    }
}
