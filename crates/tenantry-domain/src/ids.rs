//! Parsed identifiers. A raw string never travels through the core: it is parsed once at the edge.

use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {value:?} is not valid: {rule}")]
pub struct IdError {
    pub kind: &'static str,
    pub value: String,
    pub rule: &'static str,
}

fn check_token(
    kind: &'static str,
    value: &str,
    min_len: usize,
    max_len: usize,
    extra: &[u8],
    rule: &'static str,
) -> Result<(), IdError> {
    let bytes = value.as_bytes();
    let ok = bytes.len() >= min_len
        && bytes.len() <= max_len
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(b));
    if ok {
        Ok(())
    } else {
        let shown: String = value.chars().take(80).collect();
        Err(IdError { kind, value: shown, rule })
    }
}

macro_rules! token_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $min:expr, $max:expr, $extra:expr, $rule:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Parses `value`, refusing anything outside the documented alphabet and length.
            pub fn parse(value: &str) -> Result<Self, IdError> {
                check_token($kind, value, $min, $max, $extra, $rule)?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        /// Deserializing parses: a stored or cached value that breaks the invariant is refused.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

token_type!(
    /// A tenant's identifier. Invariant: matches `[a-z0-9][a-z0-9_-]{1,62}` — safe to use in object
    /// keys, index names and log fields without escaping.
    TenantId,
    "tenant id",
    2,
    63,
    b"_-",
    "use 2 to 63 lowercase letters, digits, '_' or '-', starting with a letter or digit"
);

token_type!(
    /// A tier's name in the tier catalog (tiers are data, not an enum). Invariant: `[a-z0-9][a-z0-9_-]{0,31}`.
    TierName,
    "tier name",
    1,
    32,
    b"_-",
    "use 1 to 32 lowercase letters, digits, '_' or '-', starting with a letter or digit"
);

token_type!(
    /// A feature flag's key. Invariant: `[a-z0-9][a-z0-9_.-]{0,127}`.
    FlagKey,
    "flag key",
    1,
    128,
    b"_.-",
    "use 1 to 128 lowercase letters, digits, '_', '.' or '-', starting with a letter or digit"
);

token_type!(
    /// A short classification token: compliance tags (`gdpr`, `hipaa`), data regions (`eu-west-1`),
    /// support levels (`24x7`). Invariant: `[a-z0-9][a-z0-9_./:-]{0,63}`.
    Label,
    "label",
    1,
    64,
    b"_-./:",
    "use 1 to 64 lowercase letters, digits or '_-./:', starting with a letter or digit"
);

token_type!(
    /// A physical vector index's name (`shared-3`, `dedicated-finance`). Invariant:
    /// `[a-z0-9][a-z0-9_-]{1,79}` — safe as a table or index name suffix without quoting.
    IndexName,
    "index name",
    2,
    80,
    b"_-",
    "use 2 to 80 lowercase letters, digits, '_' or '-', starting with a letter or digit"
);

token_type!(
    /// A user's identifier (a person who belongs to tenants). Invariant: `[a-z0-9][a-z0-9_.@-]{1,127}`,
    /// so an e-mail-like id works.
    UserId,
    "user id",
    2,
    128,
    b"_.@-",
    "use 2 to 128 lowercase letters, digits or '_.@-', starting with a letter or digit"
);

token_type!(
    /// The public identifier of an API key (the part of a key that may be shown and logged).
    /// Invariant: `[a-z0-9][a-z0-9_-]{1,63}`.
    KeyId,
    "key id",
    2,
    64,
    b"_-",
    "use 2 to 64 lowercase letters, digits, '_' or '-', starting with a letter or digit"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, ok: bool) {
        assert_eq!(TenantId::parse(input).is_ok(), ok, "{input:?}");
    }

    #[test]
    fn tenant_id_alphabet_and_length() {
        for (input, ok) in [
            ("finance_dept", true),
            ("a1", true),
            ("0-tenant", true),
            ("a", false),
            ("", false),
            ("Finance", false),
            ("_lead", false),
            ("-lead", false),
            ("has space", false),
            ("../etc", false),
            ("ünicode", false),
            (&"a".repeat(63), true),
            (&"a".repeat(64), false),
        ] {
            check(input, ok);
        }
    }

    #[test]
    fn error_names_the_rule() {
        let err = TenantId::parse("Bad!").unwrap_err();
        assert!(err.to_string().contains("lowercase"), "{err}");
    }
}
