//! Who did something: every state change carries an actor and a reason.

use std::fmt;

/// The kind of principal behind a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// A person at the `tenantry` CLI with direct store access (an operator of the platform).
    Operator,
    /// A platform administrator authenticated by API key.
    PlatformAdmin,
    /// A tenant user authenticated by API key.
    User,
    /// Tenantry itself (scheduled jobs, cascades).
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Operator => "operator",
            ActorKind::PlatformAdmin => "platform_admin",
            ActorKind::User => "user",
            ActorKind::System => "system",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "operator" => ActorKind::Operator,
            "platform_admin" => ActorKind::PlatformAdmin,
            "user" => ActorKind::User,
            "system" => ActorKind::System,
            _ => return None,
        })
    }
}

/// An identified principal. `id` is free text chosen by the authenticating layer (a user id, an
/// OS user name for the CLI); it is recorded, never interpreted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
}

impl Actor {
    pub fn new(kind: ActorKind, id: impl Into<String>) -> Self {
        Self { kind, id: id.into() }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}
