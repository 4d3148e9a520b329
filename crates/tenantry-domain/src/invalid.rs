//! The domain's refusal of a value it was given: a typed error carrying a sentence a person can
//! act on (what was wrong and what is accepted). Shells show the sentence; the application turns
//! it into `invalid_input`.

/// A value the domain refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(String);

impl Invalid {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }

    /// The sentence.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

impl From<String> for Invalid {
    fn from(reason: String) -> Self {
        Self(reason)
    }
}

impl From<&str> for Invalid {
    fn from(reason: &str) -> Self {
        Self(reason.to_owned())
    }
}
