//! The Ed25519 key that signs audit entries and checkpoints, and the set of public keys a verifier
//! trusts. A key id is the first 16 hex digits of SHA-256 of the public key.

use std::collections::BTreeMap;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use tenantry_domain::audit::{from_hex, to_hex};

use crate::ports::EntrySigner;

pub struct AuditKey {
    signing: SigningKey,
    key_id: String,
}

fn key_id_of(public: &VerifyingKey) -> String {
    to_hex(&Sha256::digest(public.as_bytes())[..8])
}

impl AuditKey {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&seed);
        let key_id = key_id_of(&signing.verifying_key());
        Self { signing, key_id }
    }

    /// A new key from the operating system's randomness.
    pub fn generate() -> Result<Self, String> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("the OS random source failed: {e}"))?;
        Ok(Self::from_seed(seed))
    }

    /// Parses the 64-hex-digit seed (`TENANTRY_AUDIT_KEY`, or a key file's content).
    pub fn from_hex(text: &str) -> Result<Self, String> {
        from_hex::<32>(&text.trim().to_ascii_lowercase())
            .map(Self::from_seed)
            .ok_or_else(|| "an audit signing key is 64 hex digits (a 32-byte Ed25519 seed)".to_owned())
    }

    /// Reads the key at `path`, or creates it (mode 0600) when `create` and the file is absent.
    /// Returns the key and whether it was created.
    pub fn load_or_create(path: &Path, create: bool) -> Result<(Self, bool), String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(&text).map(|k| (k, false)).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let key = Self::generate()?;
                if let Some(dir) = path.parent() {
                    let mut builder = std::fs::DirBuilder::new();
                    builder.recursive(true);
                    #[cfg(unix)]
                    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
                    builder.create(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
                }
                write_private(path, &format!("{}\n", key.seed_hex()))
                    .map_err(|e| format!("write {}: {e}", path.display()))?;
                Ok((key, true))
            }
            Err(e) => Err(format!("read audit signing key {}: {e}", path.display())),
        }
    }

    fn seed_hex(&self) -> String {
        to_hex(&self.signing.to_bytes())
    }

    pub fn public_hex(&self) -> String {
        to_hex(self.signing.verifying_key().as_bytes())
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public half, for a verifier.
    pub fn trusted(&self) -> TrustedKeys {
        let mut keys = TrustedKeys::default();
        keys.keys.insert(self.key_id.clone(), self.signing.verifying_key());
        keys
    }
}

#[cfg(unix)]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(content.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    std::fs::write(path, content)
}

impl EntrySigner for AuditKey {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn sign(&self, message: &[u8]) -> String {
        to_hex(&self.signing.sign(message).to_bytes())
    }
}

/// Public keys a verifier accepts, by key id.
#[derive(Clone, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<String, VerifyingKey>,
}

impl TrustedKeys {
    /// Adds a public key given as 64 hex digits.
    pub fn add_hex(&mut self, public_hex: &str) -> Result<String, String> {
        let bytes = from_hex::<32>(&public_hex.trim().to_ascii_lowercase()).ok_or("a public key is 64 hex digits")?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an Ed25519 public key: {e}"))?;
        let id = key_id_of(&key);
        self.keys.insert(id.clone(), key);
        Ok(id)
    }

    pub fn merge(&mut self, other: &TrustedKeys) {
        self.keys.extend(other.keys.iter().map(|(k, v)| (k.clone(), *v)));
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks `signature_hex` over `message` by the trusted key `key_id`.
    pub fn verify(&self, key_id: &str, message: &[u8], signature_hex: &str) -> Result<(), String> {
        let key = self.keys.get(key_id).ok_or_else(|| format!("signed by key {key_id}, which is not trusted"))?;
        let bytes = from_hex::<64>(signature_hex).ok_or("the signature is not 128 hex digits")?;
        key.verify(message, &Signature::from_bytes(&bytes)).map_err(|_| "the signature does not verify".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_with_trusted_keys_only() {
        let key = AuditKey::from_seed([7; 32]);
        let other = AuditKey::from_seed([8; 32]);
        let sig = key.sign(b"hello");
        assert!(key.trusted().verify(key.key_id(), b"hello", &sig).is_ok());
        assert!(key.trusted().verify(key.key_id(), b"hellO", &sig).is_err());
        assert!(other.trusted().verify(key.key_id(), b"hello", &sig).is_err(), "unknown key id");
        let mut from_hex = TrustedKeys::default();
        assert_eq!(from_hex.add_hex(&key.public_hex()).unwrap(), key.key_id());
        assert!(from_hex.verify(key.key_id(), b"hello", &sig).is_ok());
        assert!(from_hex.add_hex("zz").is_err());
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = std::env::temp_dir().join(format!("tenantry-key-{}", std::process::id()));
        let path = dir.join("audit-signing.key");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(AuditKey::load_or_create(&path, false).is_err(), "not created unless asked");
        let (a, created) = AuditKey::load_or_create(&path, true).unwrap();
        assert!(created);
        let (b, created) = AuditKey::load_or_create(&path, true).unwrap();
        assert!(!created);
        assert_eq!(a.public_hex(), b.public_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
