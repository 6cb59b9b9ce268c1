//! Throwaway PKI for local brokers: a CA, server certificates it signs, and the broken
//! variants (unknown CA, wrong host name, expired) that the verification tests need.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Names every local server certificate carries.
pub const LOOPBACK_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// Why certificate generation or writing failed.
#[derive(Debug)]
pub enum PkiError {
    /// rcgen rejected the parameters or failed to sign.
    Generate(rcgen::Error),
    /// A PEM file could not be written.
    Write(io::Error),
}

impl fmt::Display for PkiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PkiError::Generate(e) => write!(f, "certificate generation: {e}"),
            PkiError::Write(e) => write!(f, "writing PEM file: {e}"),
        }
    }
}

impl std::error::Error for PkiError {}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError::Generate(e)
    }
}

impl From<io::Error> for PkiError {
    fn from(e: io::Error) -> Self {
        PkiError::Write(e)
    }
}

/// A self-signed certificate authority that can issue server certificates.
pub struct CertificateAuthority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Generates a new CA (ECDSA P-256) with the given common name.
    pub fn new(common_name: &str) -> Result<Self, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(CertificateAuthority { issuer })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// Writes the CA certificate as PEM to `path`.
    pub fn write_cert(&self, path: &Path) -> Result<(), PkiError> {
        fs::write(path, self.cert_pem())?;
        Ok(())
    }

    /// Issues a server certificate for `names` (DNS names or IP literals), valid from yesterday
    /// for ten years.
    pub fn issue_server(&self, names: &[&str]) -> Result<ServerIdentity, PkiError> {
        self.issue(names, Validity::Current)
    }

    /// Issues a server certificate for `names` that expired a year ago.
    pub fn issue_expired_server(&self, names: &[&str]) -> Result<ServerIdentity, PkiError> {
        self.issue(names, Validity::Expired)
    }

    fn issue(&self, names: &[&str], validity: Validity) -> Result<ServerIdentity, PkiError> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone())?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        let day = time::Duration::days(1);
        match validity {
            Validity::Current => {
                params.not_before = now - day;
                params.not_after = now + day * 3650;
            }
            Validity::Expired => {
                params.not_before = now - day * 730;
                params.not_after = now - day * 365;
            }
        }
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerIdentity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        })
    }
}

enum Validity {
    Current,
    Expired,
}

/// A server certificate (leaf only) and its private key.
#[derive(Clone)]
pub struct ServerIdentity {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// PKCS#8 private key, PEM.
    pub key_pem: String,
    /// Certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// PKCS#8 private key, DER.
    pub key_der: Vec<u8>,
}

impl fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.debug_struct("ServerIdentity").finish_non_exhaustive()
    }
}

impl ServerIdentity {
    /// The private key in the form rustls servers take.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// Writes `<stem>.crt` and `<stem>.key` into `dir`.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<ServerFiles, PkiError> {
        let cert_file = dir.join(format!("{stem}.crt"));
        let key_file = dir.join(format!("{stem}.key"));
        fs::write(&cert_file, &self.cert_pem)?;
        fs::write(&key_file, &self.key_pem)?;
        Ok(ServerFiles {
            cert_file,
            key_file,
        })
    }
}

/// Paths of a server certificate and key written as PEM.
#[derive(Debug, Clone)]
pub struct ServerFiles {
    /// Certificate (PEM).
    pub cert_file: PathBuf,
    /// PKCS#8 private key (PEM).
    pub key_file: PathBuf,
}

/// A CA plus a server certificate for the loopback names, written to a directory as
/// `ca.crt`, `server.crt` and `server.key`.
#[derive(Debug)]
pub struct TestPki {
    /// The issuing CA.
    pub ca: CertificateAuthority,
    /// The server certificate for `localhost`, `127.0.0.1` and any extra names.
    pub server: ServerIdentity,
    /// Where `ca.crt` was written.
    pub ca_file: PathBuf,
    /// Where `server.crt` / `server.key` were written.
    pub server_files: ServerFiles,
    dir: PathBuf,
}

impl TestPki {
    /// Generates the CA and server certificate (SANs: [`LOOPBACK_NAMES`] + `extra_names`) and
    /// writes them into `dir`, which must exist.
    pub fn generate(dir: &Path, extra_names: &[&str]) -> Result<Self, PkiError> {
        let ca = CertificateAuthority::new("mqtts-sim test CA")?;
        let mut names: Vec<&str> = LOOPBACK_NAMES.to_vec();
        names.extend_from_slice(extra_names);
        let server = ca.issue_server(&names)?;
        let ca_file = dir.join("ca.crt");
        ca.write_cert(&ca_file)?;
        let server_files = server.write(dir, "server")?;
        Ok(TestPki {
            ca,
            server,
            ca_file,
            server_files,
            dir: dir.to_path_buf(),
        })
    }

    /// The directory the files were written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// An unrelated CA certificate written to `wrong-ca.crt`: trusting only it must make the
    /// real server fail verification (unknown issuer).
    pub fn write_wrong_ca(&self) -> Result<PathBuf, PkiError> {
        let other = CertificateAuthority::new("mqtts-sim unrelated CA")?;
        let path = self.dir.join("wrong-ca.crt");
        other.write_cert(&path)?;
        Ok(path)
    }

    /// A server certificate from the real CA that names only `host` (not the loopback names),
    /// written as `<stem>.crt/.key`: serving it must fail the host name check.
    pub fn write_server_for_other_host(
        &self,
        host: &str,
        stem: &str,
    ) -> Result<(ServerIdentity, ServerFiles), PkiError> {
        let id = self.ca.issue_server(&[host])?;
        let files = id.write(&self.dir, stem)?;
        Ok((id, files))
    }

    /// An expired server certificate for the loopback names from the real CA, written as
    /// `<stem>.crt/.key`.
    pub fn write_expired_server(
        &self,
        stem: &str,
    ) -> Result<(ServerIdentity, ServerFiles), PkiError> {
        let id = self.ca.issue_expired_server(&LOOPBACK_NAMES)?;
        let files = id.write(&self.dir, stem)?;
        Ok((id, files))
    }
}
