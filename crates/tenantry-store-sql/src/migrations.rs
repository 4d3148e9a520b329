//! Migration history, the same rule for both backends: the files are applied in order, each once,
//! and a database whose applied history does not match the files this binary carries — a file
//! edited after it was applied, a migration this binary does not know, a history out of order —
//! is refused before anything runs, with the reason. Each backend keeps only its SQL and its
//! locking; the decision is [`pending`].

use sha2::{Digest, Sha256};

/// One migration file, embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    /// SHA-256 of the file's bytes, lowercase hex: what `schema_migrations.checksum` records.
    pub fn checksum(&self) -> String {
        Sha256::digest(self.sql.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A row of `schema_migrations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: i64,
    pub name: String,
    pub checksum: String,
}

/// Why a database's migration history is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HistoryError {
    #[error(
        "migration {version} ({name}) was changed after it was applied to this database \
         (recorded checksum {recorded}, this binary's {expected}); applied migrations are never edited: \
         restore the file or add a new migration"
    )]
    Edited { version: i64, name: String, recorded: String, expected: String },
    #[error(
        "this database has migration {version} ({name}), which this binary does not know: it was \
         written by a newer or a different build of tenantry"
    )]
    Unknown { version: i64, name: String },
    #[error("migration {version} is recorded as {recorded:?} but this binary names it {expected:?}")]
    Renamed { version: i64, recorded: String, expected: String },
}

/// The migrations still to apply, in order, or why the database's history is refused. `known`
/// is in ascending version order; `applied` in any order.
pub fn pending<'a>(known: &'a [Migration], applied: &[Applied]) -> Result<Vec<&'a Migration>, HistoryError> {
    debug_assert!(known.windows(2).all(|w| w[0].version < w[1].version), "migrations out of order");
    for row in applied {
        let Some(migration) = known.iter().find(|m| m.version == row.version) else {
            return Err(HistoryError::Unknown { version: row.version, name: row.name.clone() });
        };
        if migration.name != row.name {
            return Err(HistoryError::Renamed {
                version: row.version,
                recorded: row.name.clone(),
                expected: migration.name.to_owned(),
            });
        }
        let expected = migration.checksum();
        if expected != row.checksum {
            return Err(HistoryError::Edited {
                version: row.version,
                name: row.name.clone(),
                recorded: row.checksum.clone(),
                expected,
            });
        }
    }
    Ok(known.iter().filter(|m| !applied.iter().any(|a| a.version == m.version)).collect())
}

/// What to say when `schema_migrations` cannot be read in this shape: a database made before
/// migrations carried checksums (pre-release builds, whose migrations were squashed).
pub const PRE_CHECKSUM_HISTORY: &str = "read schema_migrations (version, name, checksum); a database created \
     by a pre-release build of tenantry (before migrations carried checksums) cannot be upgraded: create a \
     new database or data directory";

#[cfg(test)]
mod tests {
    use super::*;

    const A: Migration = Migration { version: 1, name: "baseline", sql: "create table a (x int);" };
    const B: Migration = Migration { version: 2, name: "more", sql: "create table b (x int);" };

    fn applied(m: &Migration) -> Applied {
        Applied { version: m.version, name: m.name.to_owned(), checksum: m.checksum() }
    }

    #[test]
    fn the_checksum_is_sha256_of_the_file() {
        // known answer: SHA-256 of the empty file
        let m = Migration { version: 1, name: "x", sql: "" };
        assert_eq!(m.checksum(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(A.checksum().len(), 64);
        assert_ne!(A.checksum(), B.checksum());
    }

    #[test]
    fn pending_applies_what_is_missing_in_order() {
        let known = [A, B];
        let versions = |p: Vec<&Migration>| p.iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(versions(pending(&known, &[]).unwrap()), [1, 2]);
        assert_eq!(versions(pending(&known, &[applied(&A)]).unwrap()), [2]);
        assert_eq!(versions(pending(&known, &[applied(&B), applied(&A)]).unwrap()), Vec::<i64>::new());
    }

    #[test]
    fn an_edited_unknown_or_renamed_migration_is_refused() {
        let known = [A, B];
        let mut edited = applied(&A);
        edited.checksum = "0".repeat(64);
        assert!(matches!(pending(&known, &[edited]), Err(HistoryError::Edited { version: 1, .. })));
        let newer = Applied { version: 3, name: "future".into(), checksum: "0".repeat(64) };
        assert!(matches!(pending(&known, &[applied(&A), newer]), Err(HistoryError::Unknown { version: 3, .. })));
        let mut renamed = applied(&B);
        renamed.name = "other".into();
        let err = pending(&known, &[applied(&A), renamed]).unwrap_err();
        assert!(matches!(err, HistoryError::Renamed { version: 2, .. }));
        assert!(err.to_string().contains("\"other\""), "{err}");
    }
}
