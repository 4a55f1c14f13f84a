//! Module signatures: minisign (Ed25519), verified offline against the public
//! keys the policy trusts.
//!
//! Why minisign and not cosign: verification needs nothing but the key (no
//! transparency log, no certificate authority, no network at load), the keys
//! and signatures are short text an operator can paste into a policy, the
//! verifier is a small dependency-free crate (`minisign-verify`), and authors
//! sign with one command (`minisign -S -s KEY -m FILE`, Debian's `minisign`).

/// The keys a policy trusts, parsed at load.
#[derive(Debug, Default)]
pub struct TrustedKeys {
    keys: Vec<(String, minisign_verify::PublicKey)>,
}

impl TrustedKeys {
    /// Parses base64 minisign public keys (the second line of `minisign.pub`).
    pub fn parse(keys: &[String]) -> Result<TrustedKeys, String> {
        let mut parsed = Vec::with_capacity(keys.len());
        for key in keys {
            let public = minisign_verify::PublicKey::from_base64(key.trim()).map_err(|e| format!("{key:?} is not a minisign public key: {e}"))?;
            parsed.push((key.trim().to_owned(), public));
        }
        Ok(TrustedKeys { keys: parsed })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The trusted key (base64) whose signature over `module` is `signature`
    /// (the text of a `.minisig` file), or why none is.
    pub fn verify(&self, module: &[u8], signature: Option<&str>) -> Result<String, String> {
        let signature = signature.ok_or("the module has no signature")?;
        let signature = minisign_verify::Signature::decode(signature).map_err(|e| format!("the signature is malformed: {e}"))?;
        self.keys
            .iter()
            .find(|(_, key)| key.verify(module, &signature, false).is_ok())
            .map(|(text, _)| text.clone())
            .ok_or_else(|| "no trusted key made its signature".to_owned())
    }
}
