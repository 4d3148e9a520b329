//! Column mapping of users, memberships and API keys, shared by the SQL adapters. Each adapter
//! selects the columns in the documented order as a tuple and converts it here.

use time::OffsetDateTime;

use tenantry_app::{ApiKey, KeyOwner, StoreError};
use tenantry_domain::{Invitation, KeyId, Membership, Role, TenantId, User, UserId};

fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("stored {what} is not valid: {err}"))
}

/// The user columns in [`UserColumns`] order.
#[macro_export]
macro_rules! user_columns {
    () => {
        "user_id, display_name, created_at"
    };
}
pub type UserColumns = (String, String, OffsetDateTime);

pub fn user_from_columns((id, display_name, created_at): UserColumns) -> Result<User, StoreError> {
    Ok(User { id: UserId::parse(&id).map_err(|e| corrupt("user id", e))?, display_name, created_at })
}

/// The membership columns in [`MembershipColumns`] order.
#[macro_export]
macro_rules! membership_columns {
    () => {
        "tenant_id, user_id, role, created_at"
    };
}
pub type MembershipColumns = (String, String, String, OffsetDateTime);

pub fn membership_from_columns((tenant, user, role, created_at): MembershipColumns) -> Result<Membership, StoreError> {
    Ok(Membership {
        tenant: TenantId::parse(&tenant).map_err(|e| corrupt("membership tenant", e))?,
        user: UserId::parse(&user).map_err(|e| corrupt("membership user", e))?,
        role: Role::parse(&role).map_err(|e| corrupt("membership role", e))?,
        created_at,
    })
}

/// The invitation columns in [`InvitationColumns`] order.
#[macro_export]
macro_rules! invitation_columns {
    () => {
        "tenant_id, user_id, role, invited_by, created_at, expires_at"
    };
}
pub type InvitationColumns = (String, String, String, String, OffsetDateTime, OffsetDateTime);

pub fn invitation_from_columns(
    (tenant, user, role, invited_by, created_at, expires_at): InvitationColumns,
) -> Result<Invitation, StoreError> {
    Ok(Invitation {
        tenant: TenantId::parse(&tenant).map_err(|e| corrupt("invitation tenant", e))?,
        user: UserId::parse(&user).map_err(|e| corrupt("invitation user", e))?,
        role: Role::parse(&role).map_err(|e| corrupt("invitation role", e))?,
        invited_by,
        created_at,
        expires_at,
    })
}

/// The API key columns in [`KeyColumns`] order.
#[macro_export]
macro_rules! key_columns {
    () => {
        "key_id, digest, owner_kind, owner_id, name, created_at, expires_at, revoked_at"
    };
}
pub type KeyColumns =
    (String, String, String, String, String, OffsetDateTime, Option<OffsetDateTime>, Option<OffsetDateTime>);

pub fn key_from_columns(
    (id, digest, owner_kind, owner_id, name, created_at, expires_at, revoked_at): KeyColumns,
) -> Result<ApiKey, StoreError> {
    let owner_id = UserId::parse(&owner_id).map_err(|e| corrupt("key owner", e))?;
    let owner = match owner_kind.as_str() {
        "platform_admin" => KeyOwner::PlatformAdmin(owner_id),
        "user" => KeyOwner::User(owner_id),
        other => return Err(corrupt("key owner kind", other)),
    };
    Ok(ApiKey {
        id: KeyId::parse(&id).map_err(|e| corrupt("key id", e))?,
        digest,
        owner,
        name,
        created_at,
        expires_at,
        revoked_at,
    })
}

/// A foreign-key violation (what the row refers to does not exist) as `NotFound(missing)`.
pub fn reference_error(e: sqlx::Error, missing: tenantry_app::Missing, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound(missing),
        _ => crate::store_error(e, what),
    }
}
