//! PostgreSQL connection settings: the owner URL (migrations), the application role and its
//! connection, pool sizing and timeouts.

use anyhow::{Context, bail};

pub const DEFAULT_APP_ROLE: &str = "tenantry_app";

#[derive(Debug, Clone)]
pub struct PgConfig {
    /// `DATABASE_URL`: connects as the schema owner; used to migrate and, unless `app_url` is
    /// given, as the template for the application connection.
    pub owner_url: String,
    /// `TENANTRY_APP_DATABASE_URL`: the application role's own URL, when it differs from the
    /// owner URL by more than the user name (another host, a password from a secret store).
    pub app_url: Option<String>,
    /// The application role's name (`--app-role`, default `tenantry_app`).
    pub app_role: String,
    /// `TENANTRY_APP_PASSWORD`: set on the role by `migrate` and used to connect as it.
    pub app_password: Option<String>,
    pub pool_size: u32,
    pub statement_timeout_ms: u64,
    pub acquire_timeout_ms: u64,
    /// Apply migrations when connecting.
    pub migrate: bool,
}

impl PgConfig {
    pub fn new(owner_url: impl Into<String>) -> Self {
        Self {
            owner_url: owner_url.into(),
            app_url: None,
            app_role: DEFAULT_APP_ROLE.to_owned(),
            app_password: None,
            pool_size: 10,
            statement_timeout_ms: 5_000,
            acquire_timeout_ms: 5_000,
            migrate: true,
        }
    }

    /// The role name, checked to be a plain lowercase identifier (it is spliced into GRANTs).
    pub fn checked_role(&self) -> anyhow::Result<&str> {
        let r = self.app_role.as_str();
        let ok = !r.is_empty()
            && r.len() <= 63
            && r.as_bytes()[0].is_ascii_lowercase()
            && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            bail!("application role {r:?} is not valid: use a lowercase identifier such as tenantry_app");
        }
        Ok(r)
    }

    /// The URL the service connects with: `app_url`, else the owner URL with the application
    /// role as user (and its password, if configured).
    pub fn app_url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.app_url {
            return Ok(url.clone());
        }
        let mut url = url::Url::parse(&self.owner_url).context("DATABASE_URL is not a valid URL")?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            bail!("DATABASE_URL must start with postgres:// or postgresql://");
        }
        url.set_username(self.checked_role()?).map_err(|_| anyhow::anyhow!("DATABASE_URL cannot carry a user name"))?;
        url.set_password(self.app_password.as_deref())
            .map_err(|_| anyhow::anyhow!("DATABASE_URL cannot carry a password"))?;
        Ok(url.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_url_swaps_user_and_password() {
        let mut c = PgConfig::new("postgres://owner:secret@db.internal:5432/tenantry?sslmode=require");
        assert_eq!(c.app_url().unwrap(), "postgres://tenantry_app@db.internal:5432/tenantry?sslmode=require");
        c.app_password = Some("p@ss".into());
        assert_eq!(c.app_url().unwrap(), "postgres://tenantry_app:p%40ss@db.internal:5432/tenantry?sslmode=require");
        c.app_role = "Robert'); drop table".into();
        assert!(c.app_url().is_err());
        assert!(PgConfig::new("mysql://x/y").app_url().is_err());
    }
}
