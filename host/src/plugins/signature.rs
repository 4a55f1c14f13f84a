//! Module signatures: minisign (Ed25519), verified offline against the public
//! keys the policy trusts.
//!
//! Why minisign and not cosign: verification needs nothing but the key (no
//! transparency log, no certificate authority, no network at load), the keys
//! and signatures are short text an operator can paste into a policy, the
//! verifier is a small dependency-free crate (`minisign-verify`), and authors
//! sign with one command (`minisign -S -s KEY -m FILE`, Debian's `minisign`).
//!
//! A signature also binds what its *trusted comment* says (minisign signs it
//! with the module: `minisign -S -s KEY -m FILE.wasm -t "name:NAME version:1.2.0"`):
//! `name:` is the only name the module may be installed under, and `version:`
//! (a semantic version) is the floor `plugin update` does not go below without
//! `--allow-downgrade`. Other fields (minisign's default `timestamp:`, `file:`) are ignored.

/// The keys a policy trusts, parsed at load.
#[derive(Debug, Default)]
pub struct TrustedKeys {
    keys: Vec<(String, minisign_verify::PublicKey)>,
}

/// What a signature from a trusted key vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The trusted key (base64) that made it.
    pub key: String,
    /// The trusted comment's `name:`: the module is for this name only.
    pub name: Option<String>,
    /// The trusted comment's `version:`.
    pub version: Option<semver::Version>,
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

    /// The policy's rule for the module installed as `name`, at `plugin add|update`
    /// and at load alike. A signature that is present must verify against a
    /// trusted key and bind no other name, required or not: a broken or foreign
    /// signature is never taken for "unsigned". A module without one passes
    /// unless `required`. With no trusted keys nothing can be verified, and a
    /// signature is not read (`required` needs keys; the loader says so).
    pub fn check(&self, module: &[u8], signature: Option<&str>, required: bool, name: &str) -> Result<Option<Signed>, String> {
        if !required && (signature.is_none() || self.is_empty()) {
            return Ok(None);
        }
        let signed = self.verify(module, signature)?;
        if let Some(signed_name) = &signed.name
            && signed_name != name
        {
            return Err(format!("it is signed for the name `{signed_name}`, not `{name}`"));
        }
        Ok(Some(signed))
    }

    /// Which trusted key made `signature` (the text of a `.minisig` file) over
    /// `module`, and what its trusted comment binds; or why none did.
    pub fn verify(&self, module: &[u8], signature: Option<&str>) -> Result<Signed, String> {
        let signature = signature.ok_or("the module has no signature")?;
        let signature = minisign_verify::Signature::decode(signature).map_err(|e| format!("the signature is malformed: {e}"))?;
        let mut tampered = false;
        for (text, key) in &self.keys {
            match key.verify(module, &signature, false) {
                Ok(()) => {
                    let (name, version) = bound(signature.trusted_comment())?;
                    return Ok(Signed { key: text.clone(), name, version });
                }
                Err(minisign_verify::Error::UnexpectedKeyId) => {}
                Err(_) => tampered = true,
            }
        }
        Err(if tampered {
            "its signature, by a trusted key's id, does not verify: the module or its trusted comment changed after signing".to_owned()
        } else {
            "no trusted key made its signature".to_owned()
        })
    }
}

/// The `name:` and `version:` fields of a trusted comment (whitespace-separated `key:value` fields).
fn bound(comment: &str) -> Result<(Option<String>, Option<semver::Version>), String> {
    let (mut name, mut version) = (None, None);
    for field in comment.split_whitespace() {
        let (slot, value) = match field.split_once(':') {
            Some(("name", value)) => (&mut name, value),
            Some(("version", value)) => (&mut version, value),
            _ => continue,
        };
        if slot.replace(value.to_owned()).is_some() {
            return Err(format!("its trusted comment {comment:?} binds two values of one field"));
        }
    }
    let version = match version {
        Some(text) => Some(semver::Version::parse(&text).map_err(|e| format!("its trusted comment's version {text:?} is not a semantic version: {e}"))?),
        None => None,
    };
    Ok((name, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_comments_bind_a_name_and_a_version() {
        assert_eq!(bound("timestamp:1733400000\tfile:api.wasm\thashed").unwrap(), (None, None));
        let (name, version) = bound("name:api-key version:1.10.0").unwrap();
        assert_eq!(name.as_deref(), Some("api-key"));
        assert!(version.unwrap() > semver::Version::new(1, 9, 0), "versions, not strings");
        assert!(bound("name:a name:b").is_err());
        assert!(bound("version:latest").is_err());
    }
}
