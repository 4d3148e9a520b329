//! The directory use-cases: users, their memberships in tenants, API keys, and authenticating a
//! bearer token into a [`Principal`]. Every change and every read by a principal is audited.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;

use tenantry_domain::{Invitation, KeyId, Membership, Permission, Role, TenantId, User, UserId};

use crate::access::{Authority, PlatformScope, TenantScope};
use crate::auth::{MIN_BOOTSTRAP_TOKEN_LEN, Principal, generate_key, token_digest};
use crate::cache::{ConfigCache, InvalidationTarget};
use crate::error::{AppError, StoreError};
use crate::operations::{AuditOp, PlatformRead};
use crate::ports::{ApiKey, AuditRecord, Clock, KeyOwner, Store};

/// What [`Directory::put_member`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberChange {
    /// The user is a member with the role (added, or their role changed).
    Added(Membership),
    /// The user was invited and becomes a member when they accept.
    Invited(Invitation),
}

/// A key as shown right after creation: the only time the token is visible.
pub struct IssuedKey {
    pub key: ApiKey,
    pub token: String,
}

#[derive(Clone)]
pub struct Directory {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cache: ConfigCache,
}

impl Directory {
    /// Remembers authenticated principals in `cache` (no store round trip per request); every
    /// change to users, memberships or keys invalidates them on every replica.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, cache: ConfigCache) -> Self {
        Self { store, clock, cache }
    }

    async fn changed(&self) {
        self.cache.invalidate(InvalidationTarget::All).await;
    }

    fn audit(
        &self,
        (actor, request_id): (&tenantry_domain::Actor, Option<&str>),
        tenant: Option<&TenantId>,
        operation: crate::AuditOp,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> AuditRecord {
        AuditRecord::by(actor, request_id, tenant, self.clock.now(), operation).change(before, after)
    }

    // ---- users ---------------------------------------------------------------------------------

    pub async fn create_user(&self, access: &PlatformScope, id: UserId, display_name: &str) -> Result<User, AppError> {
        let user = User::new(id, display_name, self.clock.now())?;
        let audit = self.audit(
            (access.actor(), access.request_id()),
            None,
            AuditOp::UserCreate,
            None,
            Some(serde_json::json!({"user_id": user.id.as_str(), "display_name": user.display_name})),
        );
        self.store.insert_user(access, &user, &audit).await.map_err(|e| match e {
            StoreError::AlreadyExists(_) => AppError::AlreadyExists(format!("user {}", user.id)),
            other => other.into(),
        })?;
        self.changed().await;
        Ok(user)
    }

    pub async fn get_user(&self, access: &PlatformScope, id: &UserId) -> Result<User, AppError> {
        let user = self.store.get_user(access, id).await?.ok_or_else(|| AppError::UserNotFound(id.clone()))?;
        let audit = self.audit(
            (access.actor(), access.request_id()),
            None,
            AuditOp::PlatformRead(PlatformRead::User),
            None,
            Some(serde_json::json!({"user_id": id.as_str()})),
        );
        self.store.append_audit(access, &audit).await?;
        Ok(user)
    }

    pub async fn list_users(&self, access: &PlatformScope) -> Result<Vec<User>, AppError> {
        let users = self.store.list_users(access).await?;
        let audit = self.audit(
            (access.actor(), access.request_id()),
            None,
            AuditOp::PlatformRead(PlatformRead::Users),
            None,
            Some(serde_json::json!({"returned": users.len()})),
        );
        self.store.append_audit(access, &audit).await?;
        Ok(users)
    }

    /// Every tenant a user belongs to, with the role (platform view of any user).
    pub async fn memberships_of(&self, access: &PlatformScope, user: &UserId) -> Result<Vec<Membership>, AppError> {
        read_memberships(self.store.as_ref(), self.clock.now(), access, user).await
    }

    // ---- memberships ---------------------------------------------------------------------------

    /// Adds `user` to the scope's tenant with `role`, or changes their role.
    /// Adds a user to the scope's tenant or changes their role. A platform principal adds
    /// directly; a tenant's admin changes the role of an existing member directly, and otherwise
    /// records an invitation the user must accept — the same answer whether or not the user
    /// exists. Refused for an archived or deleted tenant.
    pub async fn put_member(&self, scope: &TenantScope, user: &UserId, role: Role) -> Result<MemberChange, AppError> {
        scope.require(Permission::ManageMembers)?;
        let tenant =
            self.store.get_tenant(scope).await?.ok_or_else(|| AppError::TenantNotFound(scope.tenant().clone()))?;
        tenant.ensure_modifiable("member changes")?;
        let now = self.clock.now();
        let direct = scope.authority() == Authority::Platform
            || self.store.list_members(scope).await?.iter().any(|m| m.user == *user);
        if !direct {
            let invitation = Invitation::new(tenant.id, user.clone(), role, &scope.actor().id, now);
            let audit = self.audit(
                (scope.actor(), scope.request_id()),
                Some(scope.tenant()),
                AuditOp::MemberInvite,
                None,
                Some(serde_json::json!({
                    "user_id": user.as_str(),
                    "role": role.as_str(),
                    "expires_at": tenantry_domain::tenant::format_time(invitation.expires_at),
                })),
            );
            self.store.put_invitation(scope, &invitation, &audit).await?;
            return Ok(MemberChange::Invited(invitation));
        }
        let audit = self.audit(
            (scope.actor(), scope.request_id()),
            Some(scope.tenant()),
            AuditOp::MemberPut,
            None,
            Some(serde_json::json!({"user_id": user.as_str(), "role": role.as_str()})),
        );
        self.store.put_membership(scope, user, role, now, tenant.limits.max_users, &audit).await?;
        self.changed().await;
        Ok(MemberChange::Added(Membership {
            tenant: scope.tenant().clone(),
            user: user.clone(),
            role,
            created_at: now,
        }))
    }

    /// The principal's open invitations, in every tenant.
    pub async fn invitations(&self, principal: &Principal) -> Result<Vec<Invitation>, AppError> {
        let system = PlatformScope::system("invitations");
        Ok(self.store.invitations_of(&system, principal.id(), self.clock.now()).await?)
    }

    /// The principal takes up their invitation to `tenant` and becomes a member with the role it
    /// names. A missing, expired or already used invitation, and an unknown tenant, all answer
    /// `invitation_not_found`.
    pub async fn accept_invitation(&self, principal: &Principal, tenant: &TenantId) -> Result<Membership, AppError> {
        let not_found = || AppError::InvitationNotFound { tenant: tenant.clone(), user: principal.id().clone() };
        // the principal is not a member yet: Tenantry acts in the tenant on their behalf, and the
        // audit entry names them
        let scope = PlatformScope::system("invitations").act_in(tenant.clone());
        let current = self.store.get_tenant(&scope).await?.ok_or_else(not_found)?;
        current.ensure_modifiable("joining")?;
        let actor = principal.actor();
        let audit = self.audit(
            (&actor, principal.request_id()),
            Some(tenant),
            AuditOp::MemberAccept,
            None,
            Some(serde_json::json!({"user_id": principal.id().as_str()})),
        );
        let max_members = current.limits.max_users;
        let membership =
            self.store.accept_invitation(&scope, principal.id(), self.clock.now(), max_members, &audit).await?;
        self.changed().await;
        Ok(membership)
    }

    /// Removes a member. Allowed in every lifecycle state: taking access away is always safe.
    pub async fn remove_member(&self, scope: &TenantScope, user: &UserId) -> Result<(), AppError> {
        scope.require(Permission::ManageMembers)?;
        let audit = self.audit(
            (scope.actor(), scope.request_id()),
            Some(scope.tenant()),
            AuditOp::MemberRemove,
            Some(serde_json::json!({"user_id": user.as_str()})),
            None,
        );
        self.store.delete_membership(scope, user, &audit).await?;
        self.changed().await;
        Ok(())
    }

    pub async fn list_members(&self, scope: &TenantScope) -> Result<Vec<Membership>, AppError> {
        scope.require(Permission::ManageMembers)?;
        let members = self.store.list_members(scope).await?;
        let audit = self.audit(
            (scope.actor(), scope.request_id()),
            Some(scope.tenant()),
            AuditOp::MemberRead,
            None,
            Some(serde_json::json!({"returned": members.len()})),
        );
        self.store.append_tenant_audit(scope, &audit).await?;
        Ok(members)
    }

    // ---- keys ----------------------------------------------------------------------------------

    /// Issues a key for `owner`; the token in the answer is never stored and never shown again.
    pub async fn create_key(
        &self,
        access: &PlatformScope,
        owner: KeyOwner,
        name: &str,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<IssuedKey, AppError> {
        let name = name.trim();
        if name.chars().count() > 200 {
            return Err(AppError::Invalid("a key name must be at most 200 characters".to_owned()));
        }
        let now = self.clock.now();
        if expires_at.is_some_and(|at| at <= now) {
            return Err(AppError::Invalid("a key's expiry must be in the future".to_owned()));
        }
        if let KeyOwner::User(user) = &owner {
            self.store.get_user(access, user).await?.ok_or_else(|| AppError::UserNotFound(user.clone()))?;
        }
        let secret = generate_key()?;
        let key = ApiKey {
            id: secret.id,
            digest: secret.digest,
            owner,
            name: name.to_owned(),
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        self.insert_key(access, &key).await?;
        Ok(IssuedKey { key, token: secret.token })
    }

    async fn insert_key(&self, access: &PlatformScope, key: &ApiKey) -> Result<(), AppError> {
        let audit =
            self.audit((access.actor(), access.request_id()), None, AuditOp::KeyCreate, None, Some(key_snapshot(key)));
        self.store.insert_key(access, key, &audit).await.map_err(|e| match e {
            StoreError::AlreadyExists(_) => AppError::AlreadyExists(format!("API key {}", key.id)),
            other => other.into(),
        })?;
        self.changed().await;
        Ok(())
    }

    /// Makes `token` a platform-admin key if no key has that token yet (deployments set the first
    /// key through `TENANTRY_BOOTSTRAP_ADMIN_KEY`). Returns whether a key was created.
    pub async fn bootstrap_admin_key(&self, token: &str) -> Result<bool, AppError> {
        if token.len() < MIN_BOOTSTRAP_TOKEN_LEN || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AppError::Invalid(format!(
                "the bootstrap admin key must be at least {MIN_BOOTSTRAP_TOKEN_LEN} characters without spaces; \
                 generate one with `tenantry keys create --platform-admin`"
            )));
        }
        let access = PlatformScope::system("bootstrap");
        let digest = token_digest(token);
        if self.store.find_key_by_digest(&access, &digest).await?.is_some() {
            return Ok(false);
        }
        let id = KeyId::parse(&format!("bootstrap-{}", &digest[..12])).map_err(|e| AppError::Unexpected(e.into()))?;
        let key = ApiKey {
            id,
            digest,
            owner: KeyOwner::PlatformAdmin(
                UserId::parse("bootstrap-admin").map_err(|e| AppError::Unexpected(e.into()))?,
            ),
            name: "TENANTRY_BOOTSTRAP_ADMIN_KEY".to_owned(),
            created_at: self.clock.now(),
            expires_at: None,
            revoked_at: None,
        };
        self.insert_key(&access, &key).await?;
        Ok(true)
    }

    pub async fn list_keys(&self, access: &PlatformScope, owner: Option<&UserId>) -> Result<Vec<ApiKey>, AppError> {
        let keys = self.store.list_keys(access, owner).await?;
        let audit = self.audit(
            (access.actor(), access.request_id()),
            None,
            AuditOp::PlatformRead(PlatformRead::Keys),
            None,
            Some(serde_json::json!({"owner": owner.map(UserId::as_str), "returned": keys.len()})),
        );
        self.store.append_audit(access, &audit).await?;
        Ok(keys)
    }

    pub async fn revoke_key(&self, access: &PlatformScope, id: &KeyId) -> Result<(), AppError> {
        let audit = self.audit(
            (access.actor(), access.request_id()),
            None,
            AuditOp::KeyRevoke,
            Some(serde_json::json!({"key_id": id.as_str()})),
            None,
        );
        self.store.revoke_key(access, id, self.clock.now(), &audit).await?;
        self.changed().await;
        Ok(())
    }

    // ---- authentication ------------------------------------------------------------------------

    /// Turns a bearer token into the principal it belongs to. Unknown, revoked and expired keys
    /// are all `unauthenticated`, each with its own sentence.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AppError> {
        let digest = token_digest(token);
        if let Some(principal) = self.cache.principal(&digest, self.clock.now()) {
            return Ok(principal);
        }
        let generation = self.cache.principal_generation();
        let access = PlatformScope::system("authenticator");
        let key = match self.store.find_key_by_digest(&access, &digest).await {
            Ok(key) => key.ok_or_else(|| AppError::Unauthenticated("the API key is not valid".to_owned()))?,
            // the store is down: a principal known before the outage keeps working (stale-if-error)
            Err(StoreError::Unavailable(e)) => {
                return self.cache.stale_principal(&digest, self.clock.now()).ok_or(AppError::Unavailable(e));
            }
            Err(e) => return Err(e.into()),
        };
        if key.revoked_at.is_some() {
            return Err(AppError::Unauthenticated(format!("API key {} was revoked", key.id)));
        }
        if key.expires_at.is_some_and(|at| at <= self.clock.now()) {
            return Err(AppError::Unauthenticated(format!("API key {} has expired", key.id)));
        }
        let expires_at = key.expires_at;
        let principal = match key.owner {
            KeyOwner::PlatformAdmin(id) => Principal::platform_admin(id, key.id),
            KeyOwner::User(id) => {
                let memberships: BTreeMap<TenantId, Role> =
                    self.store.memberships_of(&access, &id).await?.into_iter().map(|m| (m.tenant, m.role)).collect();
                Principal::user(id, key.id, memberships)
            }
        };
        self.cache.put_principal(digest, principal.clone(), expires_at, generation);
        Ok(principal)
    }
}

/// What the audit log records of a key: never the token, never the digest.
fn key_snapshot(key: &ApiKey) -> serde_json::Value {
    serde_json::json!({
        "key_id": key.id.as_str(), "owner_kind": key.owner.kind(), "owner_id": key.owner.id().as_str(),
        "name": key.name, "expires_at": key.expires_at.map(tenantry_domain::tenant::format_time),
    })
}

/// A user's memberships, read on the platform path and recorded as a platform read; refused
/// with `user_not_found` for an unknown user. (`Directory::memberships_of`, and
/// `Registry::tenants_of_user` for a platform administrator.)
pub(crate) async fn read_memberships(
    store: &dyn Store,
    now: time::OffsetDateTime,
    access: &PlatformScope,
    user: &UserId,
) -> Result<Vec<Membership>, AppError> {
    store.get_user(access, user).await?.ok_or_else(|| AppError::UserNotFound(user.clone()))?;
    let memberships = store.memberships_of(access, user).await?;
    let detail = serde_json::json!({"user_id": user.as_str(), "returned": memberships.len()});
    let audit = AuditRecord::platform_read(access, now, AuditOp::PlatformRead(PlatformRead::Memberships), detail);
    store.append_audit(access, &audit).await?;
    Ok(memberships)
}
