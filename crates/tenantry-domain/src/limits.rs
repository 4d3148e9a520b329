//! A tenant's limits, declared once.
//!
//! The list inside [`tenant_limits!`] is the only place that names the limits: each entry gives the
//! typed name ([`LimitField`]), the field, its value type and what it means. From it come [`Limits`]
//! (effective values), [`LimitOverrides`] (what was set for one tenant) and access by field, which is
//! how the stores, the HTTP API, the CLI and the snapshot move limits without naming them.
//!
//! Adding a limit: one entry here, its value in each built-in tier ([`crate::Tier::builtin_catalog`]),
//! and one column in `tiers` and `tenants` per backend (a new migration each). Everything else —
//! SQL statements, request and response bodies, their OpenAPI schema, CLI flags and output — follows.

use std::fmt;

use crate::ids::Label;
use crate::invalid::Invalid;

/// The type of a limit's value, which fixes its range, its SQL column type and its JSON type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// A whole number in `1..=10^12` (zero would lock the tenant out); SQL `bigint`, JSON integer.
    Count,
    /// A fraction in `(0, 1]`; SQL double, JSON number.
    Fraction,
    /// A [`Label`]; SQL text, JSON string.
    Label,
}

/// The largest count a limit may hold.
pub const MAX_COUNT: i64 = 1_000_000_000_000;

/// One limit's value, typed by its [`LimitKind`].
#[derive(Debug, Clone, PartialEq)]
pub enum LimitValue {
    Count(i64),
    Fraction(f64),
    Label(Label),
}

impl LimitValue {
    pub fn kind(&self) -> LimitKind {
        match self {
            LimitValue::Count(_) => LimitKind::Count,
            LimitValue::Fraction(_) => LimitKind::Fraction,
            LimitValue::Label(_) => LimitKind::Label,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            LimitValue::Count(n) => serde_json::Value::from(*n),
            LimitValue::Fraction(x) => serde_json::Value::from(*x),
            LimitValue::Label(l) => serde_json::Value::from(l.as_str()),
        }
    }

    /// Parses a value of `kind` from its text form (as typed on a command line).
    pub fn parse(field: LimitField, text: &str) -> Result<Self, Invalid> {
        let bad = |what: &str| Invalid::new(format!("{field} must be {what}, got {text:?}"));
        match field.kind() {
            LimitKind::Count => text.trim().parse().map(LimitValue::Count).map_err(|_| bad("a whole number")),
            LimitKind::Fraction => text.trim().parse().map(LimitValue::Fraction).map_err(|_| bad("a number")),
            LimitKind::Label => Label::parse(text).map(LimitValue::Label).map_err(|e| Invalid::new(e.to_string())),
        }
    }

    /// Checks the range of `field`'s kind.
    fn check(&self, field: LimitField) -> Result<(), Invalid> {
        match self {
            LimitValue::Count(n) if !(1..=MAX_COUNT).contains(n) => {
                Err(Invalid::new(format!("{field} must be between 1 and 10^12, got {n}")))
            }
            LimitValue::Fraction(x) if !(*x > 0.0 && *x <= 1.0) => {
                Err(Invalid::new(format!("{field} must be a fraction in (0, 1], e.g. 0.999, got {x}")))
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for LimitValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitValue::Count(n) => write!(f, "{n}"),
            LimitValue::Fraction(x) => write!(f, "{x}"),
            LimitValue::Label(l) => f.write_str(l.as_str()),
        }
    }
}

/// The Rust types a limit can have, and their [`LimitKind`].
pub trait LimitType: Clone + Sized {
    const KIND: LimitKind;
    fn into_value(self) -> LimitValue;
    fn from_value(value: LimitValue) -> Option<Self>;
}

impl LimitType for i64 {
    const KIND: LimitKind = LimitKind::Count;
    fn into_value(self) -> LimitValue {
        LimitValue::Count(self)
    }
    fn from_value(value: LimitValue) -> Option<Self> {
        match value {
            LimitValue::Count(n) => Some(n),
            _ => None,
        }
    }
}

impl LimitType for f64 {
    const KIND: LimitKind = LimitKind::Fraction;
    fn into_value(self) -> LimitValue {
        LimitValue::Fraction(self)
    }
    fn from_value(value: LimitValue) -> Option<Self> {
        match value {
            LimitValue::Fraction(x) => Some(x),
            _ => None,
        }
    }
}

impl LimitType for Label {
    const KIND: LimitKind = LimitKind::Label;
    fn into_value(self) -> LimitValue {
        LimitValue::Label(self)
    }
    fn from_value(value: LimitValue) -> Option<Self> {
        match value {
            LimitValue::Label(l) => Some(l),
            _ => None,
        }
    }
}

fn mismatch(field: LimitField, value: &LimitValue) -> Invalid {
    Invalid::new(format!("{field} takes a {:?} value, not a {:?} one", field.kind(), value.kind()))
}

fn convert<T: LimitType>(field: LimitField, value: LimitValue) -> Result<T, Invalid> {
    let err = mismatch(field, &value);
    T::from_value(value).ok_or(err)
}

macro_rules! tenant_limits {
    ($( $(#[doc = $doc:literal])+ $variant:ident => $field:ident: $ty:ty, )+) => {
        /// The name of one limit.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum LimitField {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl LimitField {
            /// Every limit, in the fixed order used for columns, output and "explicit" lists.
            pub const ALL: &'static [LimitField] = &[$(LimitField::$variant),+];

            /// The field name, which is also the SQL column, the JSON member and (with `-`) the CLI flag.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( LimitField::$variant => stringify!($field), )+
                }
            }

            pub fn kind(self) -> LimitKind {
                match self {
                    $( LimitField::$variant => <$ty as LimitType>::KIND, )+
                }
            }

            /// What the limit means (its documentation above).
            pub fn description(self) -> &'static str {
                match self {
                    $( LimitField::$variant => concat!($($doc),+).trim().trim_end_matches('.'), )+
                }
            }
        }

        /// Effective limits of a tenant (or a tier's defaults). Invariant (checked by
        /// [`Limits::validate`] and mirrored by CHECK constraints in every store): every value is in
        /// its kind's range.
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct Limits {
            $( $(#[doc = $doc])+ pub $field: $ty, )+
        }

        impl Limits {
            pub fn get(&self, field: LimitField) -> LimitValue {
                match field {
                    $( LimitField::$variant => self.$field.clone().into_value(), )+
                }
            }

            /// Builds limits from one value per field (in [`LimitField::ALL`] order); a value of the
            /// wrong kind is refused.
            pub fn try_from_fn<E: From<Invalid>>(
                mut value: impl FnMut(LimitField) -> Result<LimitValue, E>,
            ) -> Result<Self, E> {
                Ok(Limits {
                    $( $field: convert(LimitField::$variant, value(LimitField::$variant)?)?, )+
                })
            }
        }

        /// Limits given explicitly for one tenant. `None` means "follow the tier's default" — also
        /// after a tier change, so an upgraded tenant gets the new tier's limits unless it has its own.
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct LimitOverrides {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )+
        }

        impl LimitOverrides {
            pub fn get(&self, field: LimitField) -> Option<LimitValue> {
                match field {
                    $( LimitField::$variant => self.$field.clone().map(LimitType::into_value), )+
                }
            }

            /// Sets (or with `None` clears) one field; a value of the wrong kind is refused.
            pub fn set(&mut self, field: LimitField, value: Option<LimitValue>) -> Result<(), Invalid> {
                match field {
                    $( LimitField::$variant => self.$field = value.map(|v| convert(field, v)).transpose()?, )+
                }
                Ok(())
            }

            /// Effective limits: the explicit value, else the default.
            pub fn resolve_over(&self, defaults: &Limits) -> Limits {
                Limits {
                    $( $field: self.$field.clone().unwrap_or_else(|| defaults.$field.clone()), )+
                }
            }

            /// Applies `other` on top of `self` (fields set in `other` win).
            pub fn merged(&self, other: &LimitOverrides) -> LimitOverrides {
                LimitOverrides {
                    $( $field: other.$field.clone().or_else(|| self.$field.clone()), )+
                }
            }

            /// Rebuilds overrides from effective limits and the fields set explicitly (as stored).
            pub fn from_explicit(limits: &Limits, explicit: &[LimitField]) -> Self {
                LimitOverrides {
                    $( $field: explicit.contains(&LimitField::$variant).then(|| limits.$field.clone()), )+
                }
            }
        }
    };
}

tenant_limits! {
    /// Users who may be members of the tenant.
    MaxUsers => max_users: i64,
    /// Documents the tenant may store.
    MaxDocuments => max_documents: i64,
    /// Queries per UTC day.
    MaxQueriesPerDay => max_queries_per_day: i64,
    /// Stored bytes, in GiB.
    MaxStorageGb => max_storage_gb: i64,
    /// Requests per minute.
    RateLimitPerMinute => rate_limit_per_minute: i64,
    /// Availability the tenant is promised, e.g. 0.999.
    SlaTarget => sla_target: f64,
    /// Support level, e.g. `24/7`.
    SupportLevel => support_level: Label,
    /// Documents ingested per second, sustained (bursts up to ten seconds' worth).
    IngestDocumentsPerSecond => ingest_documents_per_second: i64,
    /// Bytes of text ingested per second, sustained (bursts up to ten seconds' worth).
    IngestBytesPerSecond => ingest_bytes_per_second: i64,
}

impl LimitField {
    /// Parses a field name; the error lists the valid ones.
    pub fn parse(name: &str) -> Result<Self, Invalid> {
        Self::ALL.iter().copied().find(|f| f.as_str() == name).ok_or_else(|| {
            Invalid::new(format!(
                "{name:?} is not a limit: limit fields are {}",
                Self::ALL.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

impl serde::Serialize for LimitField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for LimitField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        LimitField::parse(&name).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for LimitField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Limits {
    /// Every limit with its value, in [`LimitField::ALL`] order.
    pub fn entries(&self) -> impl Iterator<Item = (LimitField, LimitValue)> + '_ {
        LimitField::ALL.iter().map(|f| (*f, self.get(*f)))
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        self.entries().try_for_each(|(field, value)| value.check(field))
    }
}

impl LimitOverrides {
    /// The fields that are set, in [`LimitField::ALL`] order.
    pub fn explicit_fields(&self) -> Vec<LimitField> {
        LimitField::ALL.iter().copied().filter(|f| self.get(*f).is_some()).collect()
    }

    /// Every field that is set, with its value.
    pub fn entries(&self) -> impl Iterator<Item = (LimitField, LimitValue)> + '_ {
        LimitField::ALL.iter().filter_map(|f| self.get(*f).map(|v| (*f, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Limits {
        crate::Tier::builtin_catalog().remove(0).default_limits
    }

    #[test]
    fn field_names_are_unique_and_parse_back() {
        let names: std::collections::BTreeSet<_> = LimitField::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(names.len(), LimitField::ALL.len());
        for f in LimitField::ALL {
            assert_eq!(LimitField::parse(f.as_str()).unwrap(), *f);
            assert!(!f.description().is_empty());
        }
        let err = LimitField::parse("max_cats").unwrap_err();
        assert!(err.reason().contains("max_users, max_documents"), "{err}");
    }

    #[test]
    fn generic_access_round_trips_every_field() {
        let limits = sample();
        let rebuilt = Limits::try_from_fn::<Invalid>(|f| Ok(limits.get(f))).unwrap();
        assert_eq!(rebuilt, limits);
        let mut o = LimitOverrides::default();
        for (f, v) in limits.entries() {
            o.set(f, Some(v)).unwrap();
        }
        assert_eq!(o.explicit_fields(), LimitField::ALL);
        assert_eq!(o.resolve_over(&sample()), limits);
        o.set(LimitField::MaxUsers, None).unwrap();
        assert_eq!(o.max_users, None);
    }

    #[test]
    fn a_value_of_the_wrong_kind_is_refused() {
        let mut o = LimitOverrides::default();
        assert!(o.set(LimitField::SlaTarget, Some(LimitValue::Count(1))).is_err());
        let err =
            Limits::try_from_fn::<Invalid>(|f| Ok(LimitValue::Count(if f == LimitField::SlaTarget { 1 } else { 5 })));
        assert!(err.is_err());
    }

    #[test]
    fn ranges_follow_the_kind() {
        let mut l = sample();
        l.max_storage_gb = 0;
        assert!(l.validate().unwrap_err().reason().starts_with("max_storage_gb must be between 1 and 10^12"));
        let mut l = sample();
        l.sla_target = 1.5;
        assert!(l.validate().unwrap_err().reason().starts_with("sla_target must be a fraction"));
        let mut l = sample();
        l.sla_target = f64::NAN;
        assert!(l.validate().is_err());
        assert!(sample().validate().is_ok());
    }

    #[test]
    fn text_values_parse_by_kind() {
        assert_eq!(LimitValue::parse(LimitField::MaxUsers, "7").unwrap(), LimitValue::Count(7));
        assert_eq!(LimitValue::parse(LimitField::SlaTarget, "0.5").unwrap(), LimitValue::Fraction(0.5));
        assert!(LimitValue::parse(LimitField::MaxUsers, "seven").is_err());
        assert!(LimitValue::parse(LimitField::SupportLevel, "24/7").is_ok());
    }

    #[test]
    fn overrides_deserialize_only_known_fields() {
        let o: LimitOverrides = serde_json::from_str(r#"{"max_users": 3, "support_level": "24/7"}"#).unwrap();
        assert_eq!(o.explicit_fields(), [LimitField::MaxUsers, LimitField::SupportLevel]);
        assert!(serde_json::from_str::<LimitOverrides>(r#"{"max_cats": 3}"#).is_err());
    }
}
