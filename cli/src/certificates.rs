//! `generate-certificates`: a cluster CA and a gateway certificate signed by it (rcgen), for
//! TLS on the Redis endpoints. `up` makes them in its data directory; in containers, run it
//! once into a volume the gateways mount.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Where to write ca.pem, ca.key, gateway.pem and gateway.key.
    #[arg(long, default_value = "./ferrocache-tls")]
    pub out_dir: PathBuf,
    /// Names and addresses clients reach the gateways at (the certificate's subject
    /// alternative names), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1,::1")]
    pub hosts: Vec<String>,
    /// Replace files that exist (otherwise they are kept: clients trust the CA already).
    #[arg(long)]
    pub force: bool,
}

/// The gateway's certificate and key files under `dir`.
pub fn gateway_files(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("gateway.pem"), dir.join("gateway.key"))
}

fn write_private(path: &Path, contents: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.write_all(contents.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Makes the CA and the gateway certificate in `dir` unless they exist (or `force`).
pub fn ensure(dir: &Path, hosts: &[String], force: bool) -> Result<bool, String> {
    let (cert_file, key_file) = gateway_files(dir);
    if !force && cert_file.exists() && key_file.exists() && dir.join("ca.pem").exists() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let err = |e: rcgen::Error| format!("cannot make a certificate: {e}");
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Ferrocache cluster CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let mut leaf = CertificateParams::new(hosts.to_vec()).map_err(err)?;
    leaf.distinguished_name.push(DnType::CommonName, "ferrocache gateway");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    let leaf_key = KeyPair::generate().map_err(err)?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).map_err(err)?;
    let write = |path: PathBuf, contents: String| {
        std::fs::write(&path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(dir.join("ca.pem"), ca_cert.pem())?;
    write_private(&dir.join("ca.key"), &ca_key.serialize_pem())?;
    write(cert_file, leaf_cert.pem())?;
    write_private(&key_file, &leaf_key.serialize_pem())?;
    Ok(true)
}

pub fn generate(a: GenerateArgs) -> ExitCode {
    match ensure(&a.out_dir, &a.hosts, a.force) {
        Ok(made) => {
            let verb = if made { "Wrote" } else { "Kept the existing" };
            println!(
                "{verb} ca.pem, ca.key, gateway.pem, gateway.key in {}; give the gateways --tls-cert-file gateway.pem --tls-key-file gateway.key, and clients ca.pem (redis-cli --tls --cacert ca.pem)",
                a.out_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
