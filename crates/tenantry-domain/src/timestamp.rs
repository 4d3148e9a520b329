//! Times given as text (RFC 3339), range-checked once: every time a request or a command line
//! carries is parsed here, so a value whose UTC form falls outside what the registry can store
//! and print (years 1970–9999) is refused with a sentence instead of overflowing later.

use time::{Duration, OffsetDateTime, UtcOffset};

use crate::invalid::Invalid;

/// The longest span a retention period or an expiry may be given in: 100 years.
pub const MAX_DAYS: u32 = 36_500;

const FIRST_YEAR: i32 = 1970;
const LAST_YEAR: i32 = 9999;

fn in_range(field: &str, t: OffsetDateTime) -> Result<OffsetDateTime, Invalid> {
    let utc = t.checked_to_offset(UtcOffset::UTC).filter(|u| (FIRST_YEAR..=LAST_YEAR).contains(&u.year()));
    utc.ok_or_else(|| Invalid::new(format!("{field} must fall between the years {FIRST_YEAR} and {LAST_YEAR} in UTC")))
}

/// Parses an RFC 3339 time and returns it in UTC.
pub fn parse_time(field: &str, text: &str) -> Result<OffsetDateTime, Invalid> {
    let t = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| Invalid::new(format!("{field} must be an RFC 3339 time such as 2027-01-31T00:00:00Z: {e}")))?;
    in_range(field, t)
}

/// `now` plus `days` (at most [`MAX_DAYS`]).
pub fn days_after(field: &str, now: OffsetDateTime, days: u32) -> Result<OffsetDateTime, Invalid> {
    if days > MAX_DAYS {
        return Err(Invalid::new(format!("{field} must be at most {MAX_DAYS} days (100 years), got {days}")));
    }
    let t = now
        .checked_add(Duration::days(i64::from(days)))
        .ok_or_else(|| Invalid::new(format!("{field} is too far ahead")))?;
    in_range(field, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_that_carries_the_time_past_9999_is_refused() {
        let err = parse_time("expires_at", "9999-12-31T23:59:59-23:59").unwrap_err();
        assert!(err.reason().contains("between the years 1970 and 9999"), "{err}");
        assert!(parse_time("since", "0000-01-01T00:00:00+23:59").is_err());
        assert!(parse_time("since", "1969-12-31T23:59:59Z").is_err());
    }

    #[test]
    fn valid_times_come_back_in_utc() {
        let t = parse_time("expires_at", "2027-01-31T10:00:00+02:00").unwrap();
        assert_eq!(t.offset(), UtcOffset::UTC);
        assert_eq!(t.hour(), 8);
        assert!(parse_time("x", "9999-12-31T23:59:59Z").is_ok());
        assert!(parse_time("x", "tomorrow").unwrap_err().reason().starts_with("x must be an RFC 3339 time"));
    }

    #[test]
    fn day_spans_are_bounded() {
        let now = OffsetDateTime::UNIX_EPOCH;
        assert!(days_after("retention_days", now, MAX_DAYS).is_ok());
        assert!(days_after("retention_days", now, MAX_DAYS + 1).is_err());
        assert!(days_after("retention_days", now, u32::MAX).is_err());
        let late = parse_time("t", "9990-01-01T00:00:00Z").unwrap();
        assert!(days_after("expires_in_days", late, MAX_DAYS).is_err());
    }
}

/// Property tests over the parsers that take text from requests and command lines: times,
/// money, identifiers and limits never panic, whatever the input, and what they accept holds
/// its invariants.
#[cfg(test)]
mod parsers_never_panic {
    use proptest::prelude::*;

    use super::*;
    use crate::{Currency, FlagKey, Label, LimitField, LimitValue, Money, TenantId, TierName, UserId};

    fn rfc3339_like() -> impl Strategy<Value = String> {
        (0i32..=10_000, 1u8..=13, 0u8..=32, 0u8..=24, 0u8..=60, -24i8..=24, 0u8..=60, any::<bool>()).prop_map(
            |(y, mo, d, h, mi, oh, om, z)| {
                let offset = if z {
                    "Z".to_owned()
                } else {
                    format!("{}{:02}:{om:02}", if oh < 0 { '-' } else { '+' }, oh.abs())
                };
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:59{offset}")
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        #[test]
        fn times(text in prop_oneof![rfc3339_like(), ".{0,40}"]) {
            if let Ok(t) = parse_time("t", &text) {
                prop_assert_eq!(t.offset(), time::UtcOffset::UTC);
                prop_assert!((FIRST_YEAR..=LAST_YEAR).contains(&t.year()));
                let _ = crate::tenant::format_time(t);
            }
        }

        #[test]
        fn day_spans(days in any::<u32>(), secs in -62_135_596_800i64..=253_402_300_799) {
            let now = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            if let Ok(t) = days_after("d", now, days) {
                prop_assert!(days <= MAX_DAYS && t.year() <= LAST_YEAR);
            }
        }

        #[test]
        fn money(amount in prop_oneof!["-?[0-9]{0,25}(\\.[0-9]{0,5})?", ".{0,30}"], code in "[A-Z]{3}|.{0,5}") {
            if let Ok(currency) = Currency::parse(&code) {
                let _ = Money::parse_decimal(&amount, currency).map(|m| m.to_string());
            }
        }

        #[test]
        fn identifiers(text in ".{0,80}") {
            let _ = TenantId::parse(&text);
            let _ = TierName::parse(&text);
            let _ = UserId::parse(&text);
            let _ = FlagKey::parse(&text);
            let _ = Label::parse(&text);
            let _ = LimitField::parse(&text);
        }

        #[test]
        fn limit_values(text in prop_oneof!["-?[0-9]{1,25}(\\.[0-9]{1,20})?(e-?[0-9]{1,4})?", ".{0,30}"]) {
            for field in LimitField::ALL {
                let _ = LimitValue::parse(*field, &text);
            }
        }
    }
}
