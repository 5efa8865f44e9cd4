//! TLS on the Redis endpoints (ElastiCache's in-transit encryption). A group's
//! `transit_encryption` says what its endpoints accept: plain text only, TLS and plain text
//! ("preferred", for moving clients over), or TLS only ("required"). Both arrive on the same
//! port: a TLS client's first byte is a handshake record (0x16), which no RESP request
//! starts with.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

/// What a group's endpoints accept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TransitEncryption {
    #[default]
    Off,
    Preferred,
    Required,
}

impl TransitEncryption {
    pub fn from_proto(s: &str) -> TransitEncryption {
        match s {
            "preferred" => TransitEncryption::Preferred,
            "required" => TransitEncryption::Required,
            _ => TransitEncryption::Off,
        }
    }
}

/// The first bytes of a TLS connection: a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// How long a new connection may take to send its first byte, and to finish a handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server side of TLS, from PEM files (a certificate chain and its private key).
pub fn acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|it| it.collect())
        .map_err(|e| format!("cannot read certificates from {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("cannot read a private key from {}: {e}", key_file.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not make a TLS identity: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// How a new connection is to be served.
pub enum Accepted {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Refused (plain text to a TLS-only endpoint, no certificate, failed handshake).
    Refused(&'static str),
}

/// Decides, from the client's first byte, whether it speaks TLS, and completes the handshake.
pub async fn accept(socket: TcpStream, mode: TransitEncryption, acceptor: Option<&TlsAcceptor>) -> Accepted {
    if mode == TransitEncryption::Off {
        return Accepted::Plain(socket);
    }
    let mut first = [0u8; 1];
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, socket.peek(&mut first)).await {
        Ok(Ok(1)) => first[0] == TLS_HANDSHAKE,
        _ => return Accepted::Refused("no first byte"),
    };
    if !tls {
        return match mode {
            TransitEncryption::Required => Accepted::Refused("plain text to a TLS-only endpoint"),
            _ => Accepted::Plain(socket),
        };
    }
    let Some(acceptor) = acceptor else { return Accepted::Refused("TLS without a certificate (--tls-cert-file)") };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
        Ok(Ok(stream)) => Accepted::Tls(Box::new(stream)),
        _ => Accepted::Refused("TLS handshake failed"),
    }
}
