//! Sightline's signing key for signed user tokens: the RS256 JWTs a webview
//! URL carries as `aos_signed_user_token`, which an SDK app verifies offline
//! with the public key it is given in `MENTRAOS_CLOUD_USER_TOKEN_PUBLIC_KEY`.
//!
//! Where the key comes from, in order:
//! - `SIGHTLINE_USER_TOKEN_PRIVATE_KEY`: a PEM private key (PKCS#8 or
//!   PKCS#1), or the path of a file holding one; it is checked at startup
//!   and cannot be rotated from the admin API;
//! - the file `user-token-key.pem` in the data directory, checked at
//!   startup when it exists;
//! - otherwise a new 2048-bit key is generated when first needed (the
//!   `sightline serve` command asks for it at startup) and written to that
//!   file, readable by its owner only.
//!
//! Rotating ([`UserTokenKeys::rotate`], `POST /api/admin/user-token-key`)
//! writes a new key over the file (through a temporary file and a rename)
//! and signs with it at once; apps must then be given the new public key.
//! Deleting the file while the server is stopped has the same effect.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use jsonwebtoken::EncodingKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// File name of the key in the data directory.
pub const KEY_FILE: &str = "user-token-key.pem";
/// Size of a generated key, in bits.
pub const GENERATED_KEY_BITS: usize = 2048;
/// Smallest key Sightline signs with.
pub const MIN_KEY_BITS: usize = 2048;
/// Largest key file or PEM text read.
const MAX_KEY_BYTES: u64 = 64 * 1024;

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("cannot read the user token key {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error(
        "the user token key from {source_name} is not an RSA private key in PEM (PKCS#8 or PKCS#1)"
    )]
    Malformed { source_name: String },
    #[error("the user token key from {source_name} has {bits} bits; at least {MIN_KEY_BITS} are required")]
    TooSmall { source_name: String, bits: usize },
    #[error("cannot write the user token key {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("cannot generate a user token key: {0}")]
    Generate(String),
    #[error("the user token key is given by SIGHTLINE_USER_TOKEN_PRIVATE_KEY; change that variable to rotate it")]
    Pinned,
}

/// One key pair, ready to sign.
pub struct KeyPair {
    pub encoding: EncodingKey,
    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), what the
    /// SDK's `MENTRAOS_CLOUD_USER_TOKEN_PUBLIC_KEY` takes.
    pub public_pem: String,
    /// Key id put in each token's header: the first 16 hex digits of the
    /// sha256 of the public key's DER.
    pub kid: String,
}

impl KeyPair {
    fn from_private(key: &RsaPrivateKey, source_name: &str) -> Result<KeyPair, KeyError> {
        let bits = key.size() * 8;
        if bits < MIN_KEY_BITS {
            return Err(KeyError::TooSmall {
                source_name: source_name.to_string(),
                bits,
            });
        }
        let malformed = || KeyError::Malformed {
            source_name: source_name.to_string(),
        };
        // The signer takes PKCS#1 DER.
        let der = key.to_pkcs1_der().map_err(|_| malformed())?;
        let encoding = EncodingKey::from_rsa_der(der.as_bytes());
        let public = key.to_public_key();
        let public_der = public.to_public_key_der().map_err(|_| malformed())?;
        let public_pem = public
            .to_public_key_pem(LineEnding::LF)
            .map_err(|_| malformed())?;
        let kid = hex::encode(&Sha256::digest(public_der.as_bytes())[..8]);
        Ok(KeyPair {
            encoding,
            public_pem,
            kid,
        })
    }

    fn parse(pem: &str, source_name: &str) -> Result<KeyPair, KeyError> {
        let key = RsaPrivateKey::from_pkcs8_pem(pem.trim())
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem.trim()))
            .map_err(|_| KeyError::Malformed {
                source_name: source_name.to_string(),
            })?;
        Self::from_private(&key, source_name)
    }
}

fn read_limited(path: &Path) -> Result<String, KeyError> {
    let read_error = |reason: String| KeyError::Read {
        path: path.to_path_buf(),
        reason,
    };
    let len = fs::metadata(path)
        .map_err(|e| read_error(e.to_string()))?
        .len();
    if len > MAX_KEY_BYTES {
        return Err(read_error(format!("{len} bytes is too large for a key")));
    }
    fs::read_to_string(path).map_err(|e| read_error(e.to_string()))
}

/// Generates a new key and its PKCS#8 PEM. Takes a moment: call it off the
/// request threads.
fn generate() -> Result<(KeyPair, String), KeyError> {
    let mut rng = rand_core::OsRng;
    let key = RsaPrivateKey::new(&mut rng, GENERATED_KEY_BITS)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let pair = KeyPair::from_private(&key, "a new key")?;
    Ok((pair, pem.to_string()))
}

/// Writes `pem` to `path` through a temporary file in the same directory,
/// readable and writable by the owner only, then renames it into place.
fn write_private(path: &Path, pem: &str) -> Result<(), KeyError> {
    let write_error = |reason: String| KeyError::Write {
        path: path.to_path_buf(),
        reason,
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).map_err(|e| write_error(e.to_string()))?;
    let tmp = dir.join(format!(".{KEY_FILE}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(pem.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(write_error(e.to_string()));
    }
    Ok(())
}

/// Where the current key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// `SIGHTLINE_USER_TOKEN_PRIVATE_KEY`: fixed.
    Given,
    /// The data directory's key file.
    File(PathBuf),
}

/// The current signing key, shared by every worker.
pub struct UserTokenKeys {
    origin: Origin,
    current: RwLock<Option<Arc<KeyPair>>>,
    /// Held while a key is generated, so two first uses make one key.
    generating: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for UserTokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserTokenKeys")
            .field("origin", &self.origin)
            .field("kid", &self.loaded().map(|k| k.kid.clone()))
            .finish()
    }
}

impl UserTokenKeys {
    /// Opens the key given by `given` (the value of
    /// `SIGHTLINE_USER_TOKEN_PRIVATE_KEY`: PEM text or a path), else the
    /// key file in `data_dir` if it exists. A key that is there but
    /// unreadable or malformed is an error now; a missing file is created
    /// on first use.
    pub fn open(given: Option<&str>, data_dir: &Path) -> Result<UserTokenKeys, KeyError> {
        let (origin, current) = match given.map(str::trim).filter(|g| !g.is_empty()) {
            Some(pem) if pem.starts_with("-----BEGIN") => (
                Origin::Given,
                Some(KeyPair::parse(pem, "SIGHTLINE_USER_TOKEN_PRIVATE_KEY")?),
            ),
            Some(path) => {
                let path = PathBuf::from(path);
                let pem = read_limited(&path)?;
                let name = path.display().to_string();
                (Origin::Given, Some(KeyPair::parse(&pem, &name)?))
            }
            None => {
                let path = data_dir.join(KEY_FILE);
                let current = if path.exists() {
                    let pem = read_limited(&path)?;
                    Some(KeyPair::parse(&pem, &path.display().to_string())?)
                } else {
                    None
                };
                (Origin::File(path), current)
            }
        };
        Ok(UserTokenKeys {
            origin,
            current: RwLock::new(current.map(Arc::new)),
            generating: tokio::sync::Mutex::new(()),
        })
    }

    /// The key file this key lives in, when it is not given by the
    /// environment.
    pub fn file(&self) -> Option<&Path> {
        match &self.origin {
            Origin::File(p) => Some(p),
            Origin::Given => None,
        }
    }

    fn loaded(&self) -> Option<Arc<KeyPair>> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn install(&self, pair: KeyPair) -> Arc<KeyPair> {
        let pair = Arc::new(pair);
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(pair.clone());
        pair
    }

    async fn generate_into(&self, path: PathBuf) -> Result<Arc<KeyPair>, KeyError> {
        let pair = tokio::task::spawn_blocking(move || {
            let (pair, pem) = generate()?;
            write_private(&path, &pem)?;
            Ok::<_, KeyError>(pair)
        })
        .await
        .map_err(|e| KeyError::Generate(e.to_string()))??;
        Ok(self.install(pair))
    }

    /// The current key, generated and written to the key file on first use.
    pub async fn get(&self) -> Result<Arc<KeyPair>, KeyError> {
        if let Some(k) = self.loaded() {
            return Ok(k);
        }
        let _one = self.generating.lock().await;
        if let Some(k) = self.loaded() {
            return Ok(k);
        }
        match &self.origin {
            Origin::Given => Err(KeyError::Pinned),
            Origin::File(path) => {
                let pair = self.generate_into(path.clone()).await?;
                tracing::info!(file = %path.display(), kid = %pair.kid, "generated the user token signing key");
                Ok(pair)
            }
        }
    }

    /// Replaces the key with a new one, written over the key file. Tokens
    /// signed before stay valid only for apps that still hold the old
    /// public key.
    pub async fn rotate(&self) -> Result<Arc<KeyPair>, KeyError> {
        let Origin::File(path) = &self.origin else {
            return Err(KeyError::Pinned);
        };
        let _one = self.generating.lock().await;
        let pair = self.generate_into(path.clone()).await?;
        tracing::info!(file = %path.display(), kid = %pair.kid, "rotated the user token signing key");
        Ok(pair)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn a_key_is_generated_once_kept_private_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let keys = UserTokenKeys::open(None, dir.path()).unwrap();
        let first = keys.get().await.unwrap();
        assert!(first.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(keys.get().await.unwrap().kid, first.kid);
        let file = dir.path().join(KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A restart reads the same key.
        let again = UserTokenKeys::open(None, dir.path()).unwrap();
        assert_eq!(again.get().await.unwrap().kid, first.kid);
        let rotated = keys.rotate().await.unwrap();
        assert_ne!(rotated.kid, first.kid);
        assert_eq!(keys.get().await.unwrap().kid, rotated.kid);
        let reopened = UserTokenKeys::open(None, dir.path()).unwrap();
        assert_eq!(reopened.get().await.unwrap().kid, rotated.kid);

        // The same key given as PEM text or as a path; it cannot be rotated.
        let pem = fs::read_to_string(&file).unwrap();
        let given = UserTokenKeys::open(Some(&pem), dir.path()).unwrap();
        assert_eq!(given.get().await.unwrap().kid, rotated.kid);
        assert!(matches!(given.rotate().await, Err(KeyError::Pinned)));
        let by_path = UserTokenKeys::open(file.to_str(), dir.path()).unwrap();
        assert_eq!(by_path.get().await.unwrap().kid, rotated.kid);
    }

    #[actix_rt::test]
    async fn tokens_signed_with_the_key_verify_with_its_public_pem() {
        let dir = tempfile::tempdir().unwrap();
        let key = UserTokenKeys::open(None, dir.path())
            .unwrap()
            .get()
            .await
            .unwrap();
        let claims = serde_json::json!({"sub": "a@b.c", "exp": 4_000_000_000u64});
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_rsa_pem(key.public_pem.as_bytes()).unwrap();
        let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        let data =
            jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(data.claims["sub"], "a@b.c");
    }

    #[test]
    fn a_malformed_key_is_an_error_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let e =
            UserTokenKeys::open(Some("-----BEGIN PRIVATE KEY-----\nxx\n"), dir.path()).unwrap_err();
        assert!(matches!(e, KeyError::Malformed { .. }), "{e}");
        fs::write(dir.path().join(KEY_FILE), "garbage").unwrap();
        let e = UserTokenKeys::open(None, dir.path()).unwrap_err();
        assert!(e.to_string().contains(KEY_FILE), "{e}");
        let e = UserTokenKeys::open(Some("/no/such/key.pem"), dir.path()).unwrap_err();
        assert!(matches!(e, KeyError::Read { .. }), "{e}");
    }
}
