//! A test PKI for the L7 scenarios: a root CA, an intermediate below it,
//! and leaf certificates (chain, key, leaf-only) written to a directory.

use std::path::{Path, PathBuf};

type Issuer = rcgen::Issuer<'static, rcgen::KeyPair>;

fn ca_params(cn: &str) -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p
}

/// A test CA, an intermediate below it, and leaf certificates on disk.
pub(crate) struct Pki {
    dir: PathBuf,
    ca_path: PathBuf,
    intermediate_pem: String,
    intermediate: Issuer,
}

impl Pki {
    pub(crate) fn new(dir: &Path) -> Self {
        let key = rcgen::KeyPair::generate().expect("key");
        let root = ca_params("l7 test root").self_signed(&key).expect("root");
        let root_issuer = rcgen::Issuer::new(ca_params("l7 test root"), key);
        let ikey = rcgen::KeyPair::generate().expect("key");
        let inter = ca_params("l7 test intermediate")
            .signed_by(&ikey, &root_issuer)
            .expect("intermediate");
        let ca_path = dir.join("ca.pem");
        std::fs::write(&ca_path, root.pem()).expect("ca.pem");
        Self {
            dir: dir.to_owned(),
            ca_path,
            intermediate_pem: inter.pem(),
            intermediate: rcgen::Issuer::new(ca_params("l7 test intermediate"), ikey),
        }
    }

    /// Writes `<stem>.pem` (leaf + intermediate) and `<stem>.key`; returns
    /// (chain path, key path, leaf-only path).
    pub(crate) fn leaf(&self, stem: &str, names: &[&str]) -> (String, String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(
            names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
        )
        .expect("params");
        p.distinguished_name
            .push(rcgen::DnType::CommonName, format!("{stem} leaf"));
        let cert = p.signed_by(&key, &self.intermediate).expect("leaf");
        let chain = self.dir.join(format!("{stem}.pem"));
        let only = self.dir.join(format!("{stem}-leaf-only.pem"));
        let keyf = self.dir.join(format!("{stem}.key"));
        std::fs::write(&chain, format!("{}{}", cert.pem(), self.intermediate_pem)).expect("pem");
        std::fs::write(&only, cert.pem()).expect("pem");
        std::fs::write(&keyf, key.serialize_pem()).expect("key");
        let s = |p: PathBuf| p.display().to_string();
        (s(chain), s(keyf), s(only))
    }

    pub(crate) fn ca(&self) -> String {
        self.ca_path.display().to_string()
    }
}
