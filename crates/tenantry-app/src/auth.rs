//! Authenticated principals and API key secrets.
//!
//! A key is `tnt_<key id>_<64 hex chars of randomness>`: 256 bits from the OS, shown once. The
//! store keeps only the SHA-256 digest of the whole token and looks keys up by it (a fast hash is
//! right for high-entropy secrets; a password hash would add tens of milliseconds per request).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use tenantry_domain::{Actor, ActorKind, KeyId, Role, TenantId, UserId};

use crate::access::{PlatformScope, TenantScope};
use crate::error::AppError;

pub const TOKEN_PREFIX: &str = "tnt_";
/// Shortest token `TENANTRY_BOOTSTRAP_ADMIN_KEY` may set (generated keys are 81 characters).
pub const MIN_BOOTSTRAP_TOKEN_LEN: usize = 32;

/// Who an authenticated request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    id: UserId,
    key: KeyId,
    kind: PrincipalKind,
    request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PrincipalKind {
    PlatformAdmin,
    User { memberships: BTreeMap<TenantId, Role> },
}

impl Principal {
    pub(crate) fn platform_admin(id: UserId, key: KeyId) -> Self {
        Self { id, key, kind: PrincipalKind::PlatformAdmin, request_id: None }
    }

    pub(crate) fn user(id: UserId, key: KeyId, memberships: BTreeMap<TenantId, Role>) -> Self {
        Self { id, key, kind: PrincipalKind::User { memberships }, request_id: None }
    }

    /// Ties what this principal does to a request id (recorded in every audit entry it causes).
    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id.map(|id| id.chars().filter(|c| !c.is_control()).take(128).collect());
        self
    }

    pub fn id(&self) -> &UserId {
        &self.id
    }
    pub fn key(&self) -> &KeyId {
        &self.key
    }
    pub fn is_platform_admin(&self) -> bool {
        matches!(self.kind, PrincipalKind::PlatformAdmin)
    }

    /// The request this principal is serving (recorded in audit entries).
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    pub fn actor(&self) -> Actor {
        let kind = if self.is_platform_admin() { ActorKind::PlatformAdmin } else { ActorKind::User };
        Actor::new(kind, self.id.as_str())
    }

    /// The user's memberships (empty for a platform admin, who acts in every tenant).
    pub fn memberships(&self) -> Vec<(TenantId, Role)> {
        match &self.kind {
            PrincipalKind::PlatformAdmin => Vec::new(),
            PrincipalKind::User { memberships } => memberships.iter().map(|(t, r)| (t.clone(), *r)).collect(),
        }
    }

    /// The platform path, for platform administrators only.
    pub fn platform(&self) -> Result<PlatformScope, AppError> {
        match self.kind {
            PrincipalKind::PlatformAdmin => {
                Ok(PlatformScope::platform_admin(self.id.as_str(), self.request_id.clone()))
            }
            PrincipalKind::User { .. } => {
                Err(AppError::Forbidden("this operation is reserved to platform administrators".to_owned()))
            }
        }
    }

    /// A scope in `tenant`: any tenant for a platform admin, a member's own tenants for a user.
    /// A non-member learns nothing about the tenant, not even whether it exists.
    pub fn tenant(&self, tenant: &TenantId) -> Result<TenantScope, AppError> {
        match &self.kind {
            PrincipalKind::PlatformAdmin => {
                Ok(PlatformScope::platform_admin(self.id.as_str(), self.request_id.clone()).act_in(tenant.clone()))
            }
            PrincipalKind::User { memberships } => match memberships.get(tenant) {
                Some(role) => Ok(TenantScope::member(tenant.clone(), self.actor(), *role, self.request_id.clone())),
                None => Err(AppError::Forbidden(format!("you have no access to tenant {tenant}"))),
            },
        }
    }
}

/// A freshly generated key: the token (shown once) and what the store keeps.
pub struct NewKeySecret {
    pub id: KeyId,
    pub token: String,
    pub digest: String,
}

/// Generates a key from the operating system's randomness.
pub fn generate_key() -> Result<NewKeySecret, AppError> {
    let mut bytes = [0u8; 38];
    getrandom::fill(&mut bytes)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("the OS random source failed: {e}")))?;
    let id = KeyId::parse(&hex(&bytes[..6])).map_err(|e| AppError::Unexpected(e.into()))?;
    let token = format!("{TOKEN_PREFIX}{id}_{}", hex(&bytes[6..]));
    let digest = token_digest(&token);
    Ok(NewKeySecret { id, token, digest })
}

/// The SHA-256 digest of a token, lowercase hex.
pub fn token_digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Splits an `Authorization` header value into its bearer token.
pub fn bearer_token(header: &str) -> Result<&str, AppError> {
    let (scheme, token) = header
        .trim()
        .split_once(' ')
        .ok_or_else(|| AppError::Unauthenticated("the Authorization header must be `Bearer <api key>`".to_owned()))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AppError::Unauthenticated(format!(
            "the Authorization scheme must be Bearer, not {:?}",
            scheme.chars().take(20).collect::<String>()
        )));
    }
    let token = token.trim();
    if token.is_empty() || token.len() > 512 {
        return Err(AppError::Unauthenticated("the bearer token is empty or too long".to_owned()));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn generated_keys_are_distinct_and_digest_stable() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_ne!(a.token, b.token);
        assert!(a.token.starts_with(&format!("tnt_{}_", a.id)));
        assert_eq!(a.token.len(), 4 + 12 + 1 + 64);
        assert_eq!(a.digest, token_digest(&a.token));
        assert_eq!(a.digest.len(), 64);
        // known-answer test for the digest
        assert_eq!(token_digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer abc").unwrap(), "abc");
        assert_eq!(bearer_token("bearer  abc ").unwrap(), "abc");
        assert!(bearer_token("Basic abc").is_err());
        assert!(bearer_token("Bearer").is_err());
        assert!(bearer_token("Bearer  ").is_err());
    }

    #[test]
    fn a_user_reaches_only_their_tenants_with_their_role() {
        let finance = TenantId::parse("finance").unwrap();
        let legal = TenantId::parse("legal").unwrap();
        let hr = TenantId::parse("hr").unwrap();
        let memberships = BTreeMap::from([(finance.clone(), Role::Analyst), (legal.clone(), Role::Reviewer)]);
        let alice = Principal::user(UserId::parse("alice").unwrap(), KeyId::parse("k1").unwrap(), memberships);
        assert_eq!(alice.tenant(&finance).unwrap().authority(), crate::access::Authority::Member(Role::Analyst));
        assert_eq!(alice.tenant(&legal).unwrap().authority(), crate::access::Authority::Member(Role::Reviewer));
        assert_eq!(alice.tenant(&hr).unwrap_err().code(), ErrorCode::Forbidden);
        assert_eq!(alice.platform().unwrap_err().code(), ErrorCode::Forbidden);
        let admin = Principal::platform_admin(UserId::parse("ops").unwrap(), KeyId::parse("k2").unwrap());
        assert!(admin.tenant(&hr).is_ok());
        assert!(admin.platform().is_ok());
    }
}
