//! TLS termination: when an operator gives Sightline a certificate and its
//! private key (`SIGHTLINE_TLS_CERT`, `SIGHTLINE_TLS_KEY`, PEM files), the
//! server speaks HTTPS and `wss://` itself, so SDK apps (which always call
//! the cloud over `https://`) and glasses reach it without a proxy in front.
//!
//! The files are read once, at startup; a missing or malformed file stops
//! the start with an error naming the file. Only TLS 1.2 and 1.3 with the
//! `ring` provider are offered, and ALPN announces HTTP/1.1 (WebSocket
//! upgrades need it).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

/// Largest certificate or key file read, in bytes.
pub const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} {path}: {reason}")]
    Read {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("the TLS {what} {path} holds no {expected}")]
    Empty {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error(
        "the TLS certificate {cert} and key {key} do not make a server configuration: {reason}"
    )]
    Config {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// Where the certificate chain and its private key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first (`SIGHTLINE_TLS_CERT`).
    pub cert: PathBuf,
    /// PEM private key: PKCS#8, PKCS#1 or SEC1 (`SIGHTLINE_TLS_KEY`).
    pub key: PathBuf,
}

fn open(what: &'static str, path: &Path) -> Result<BufReader<std::io::Take<File>>, TlsError> {
    let read_error = |reason: String| TlsError::Read {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(|e| read_error(e.to_string()))?;
    let len = file
        .metadata()
        .map_err(|e| read_error(e.to_string()))?
        .len();
    if len > MAX_PEM_FILE_BYTES {
        return Err(read_error(format!(
            "{len} bytes, more than the {MAX_PEM_FILE_BYTES} a PEM file may have"
        )));
    }
    Ok(BufReader::new(std::io::Read::take(
        file,
        MAX_PEM_FILE_BYTES,
    )))
}

impl TlsFiles {
    /// Reads both files and builds the rustls server configuration.
    pub fn load(&self) -> Result<rustls::ServerConfig, TlsError> {
        let mut reader = open("certificate", &self.cert)?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_reader_iter(&mut reader)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::Read {
                what: "certificate",
                path: self.cert.clone(),
                reason: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::Empty {
                what: "certificate",
                path: self.cert.clone(),
                expected: "CERTIFICATE block",
            });
        }
        let mut reader = open("key", &self.key)?;
        let key = PrivateKeyDer::from_pem_reader(&mut reader).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => TlsError::Empty {
                what: "key",
                path: self.key.clone(),
                expected: "PRIVATE KEY block",
            },
            other => TlsError::Read {
                what: "key",
                path: self.key.clone(),
                reason: other.to_string(),
            },
        })?;
        let config_error = |reason: String| TlsError::Config {
            cert: self.cert.clone(),
            key: self.key.clone(),
            reason,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| config_error(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("nope.pem"),
            key: dir.path().join("key.pem"),
        };
        let e = files.load().unwrap_err().to_string();
        assert!(e.contains("certificate") && e.contains("nope.pem"), "{e}");
        std::fs::write(&files.key, "not a key").unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "no pem here").unwrap();
        let files = TlsFiles {
            cert,
            key: files.key,
        };
        let e = files.load().unwrap_err().to_string();
        assert!(e.contains("holds no CERTIFICATE"), "{e}");
    }
}
