//! Sealing the upstream provider's tokens before they reach the store
//! (AES-256-GCM), so that whoever reads the store (a Redis dump, a replica's
//! operator, a backup) reads no token.
//!
//! The format is versioned: `1 byte version || 12 bytes nonce || ciphertext
//! and 16 bytes tag`. The nonce is random for every seal: a key seals few
//! enough records (one per login and refresh) that random 96-bit nonces stay
//! far below the 2^32 seals NIST SP 800-38D §8.3 allows per key.
//!
//! The associated data names what the record is (the caller passes its store
//! key, `session:{sid}:{provider}`): a sealed record copied under another
//! session's or provider's key does not open there.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// The one format so far. A new one gets a new byte; `open` refuses what it
/// does not know rather than guess.
const VERSION_1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// `plaintext` sealed under `key`, bound to `associated`.
///
/// Panics only when the runtime has no secure random source, which the
/// gateway always provides (WASI `random`): sealing with a predictable nonce
/// would be worse than not serving the request.
pub fn seal(key: &[u8; 32], associated: &str, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).expect("a secure random source (WASI random)");
    seal_with_nonce(key, associated, plaintext, nonce)
}

fn seal_with_nonce(key: &[u8; 32], associated: &str, plaintext: &[u8], nonce: [u8; NONCE_LEN]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    // Encryption fails only for inputs over GCM's 64 GiB limit; a token
    // response is bounded far below it.
    let sealed = cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: associated.as_bytes() }).expect("a plaintext under GCM's size limit");
    let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    out.push(VERSION_1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// The plaintext of a record sealed by [`seal`] with the same key and
/// associated data; `None` for anything else (another key, another
/// associated text, a changed byte, an unknown version, a short record).
pub fn open(key: &[u8; 32], associated: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    let (&version, rest) = sealed.split_first()?;
    if version != VERSION_1 || rest.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    Aes256Gcm::new(key.into()).decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: associated.as_bytes() }).ok()
}

/// The key from the secret's text: standard or URL-safe base64, padded or
/// not, of exactly 32 bytes (surrounding whitespace, such as a file's final
/// newline, is ignored). The error never repeats the text.
pub fn parse_key(base64_text: &str) -> Result<[u8; 32], String> {
    let text = base64_text.trim();
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .ok_or("the token key is not base64 (standard or URL-safe); generate one with `openssl rand -base64 32`")?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("the token key is {} bytes long; AES-256-GCM needs exactly 32 (generate one with `openssl rand -base64 32`)", bytes.len()))
}

/// The token key, named in the secret store (`token_key_secret`): read on
/// first use and kept, since it may not be stored yet when the component
/// starts (logins wait for it, the rest serves).
pub struct TokenKey {
    name: String,
    key: std::cell::OnceCell<[u8; 32]>,
}

impl TokenKey {
    /// At `init`: refuses a name the policy does not grant, or a stored key
    /// that is not one; a key not stored yet is read later.
    pub fn new(name: &str) -> Result<TokenKey, String> {
        use portcullis_plugin::secrets::{self, SecretError};
        let key = TokenKey { name: name.to_owned(), key: std::cell::OnceCell::new() };
        match secrets::get(name) {
            Err(SecretError::NotGranted) => Err(format!("`token_key_secret`: the policy does not grant the secret {name:?} to this component")),
            Ok(text) => {
                let parsed = parse_key(&text).map_err(|e| format!("`token_key_secret`: the secret {name:?} {e}"))?;
                let _ = key.key.set(parsed);
                Ok(key)
            }
            Err(e) => {
                portcullis_plugin::log::warn(&format!("the token key {name:?} is not available yet: {e}"));
                Ok(key)
            }
        }
    }

    pub fn get(&self) -> Result<[u8; 32], String> {
        if let Some(key) = self.key.get() {
            return Ok(*key);
        }
        let name = &self.name;
        let text = portcullis_plugin::secrets::get(name).map_err(|e| format!("the token key {name:?}: {e}"))?;
        let key = parse_key(&text).map_err(|e| format!("the token key {name:?}: {e}"))?;
        Ok(*self.key.get_or_init(|| key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const AAD: &str = "session:s1:corp";

    #[test]
    fn round_trip_with_a_fresh_nonce_each_time() {
        let a = seal(&KEY, AAD, b"{\"access_token\":\"at\"}");
        let b = seal(&KEY, AAD, b"{\"access_token\":\"at\"}");
        assert_ne!(a, b, "a random nonce per seal");
        assert_eq!(a[0], VERSION_1);
        assert_eq!(a.len(), 1 + NONCE_LEN + 21 + TAG_LEN);
        assert!(!a.windows(12).any(|w| w == b"access_token"), "no plaintext in the record");
        assert_eq!(open(&KEY, AAD, &a).unwrap(), b"{\"access_token\":\"at\"}");
        assert_eq!(open(&KEY, AAD, &seal(&KEY, AAD, b"")).unwrap(), b"");
    }

    #[test]
    fn anything_else_does_not_open() {
        let sealed = seal(&KEY, AAD, b"tokens");
        assert_eq!(open(&[8; 32], AAD, &sealed), None, "another key");
        assert_eq!(open(&KEY, "session:s2:corp", &sealed), None, "another session");
        assert_eq!(open(&KEY, "session:s1:other", &sealed), None, "another provider");
        for at in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[at] ^= 1;
            assert_eq!(open(&KEY, AAD, &tampered), None, "byte {at} changed");
        }
        assert_eq!(open(&KEY, AAD, &sealed[..sealed.len() - 1]), None, "truncated");
        assert_eq!(open(&KEY, AAD, &[]), None);
        assert_eq!(open(&KEY, AAD, &sealed[..1 + NONCE_LEN + TAG_LEN - 1]), None);
        let mut future = sealed.clone();
        future[0] = 2;
        assert_eq!(open(&KEY, AAD, &future), None, "an unknown version");
    }

    #[test]
    fn a_known_answer() {
        // Pins the format: version byte, nonce, then AES-256-GCM's output.
        let sealed = seal_with_nonce(&[0; 32], "", b"", [0; 12]);
        let mut expected = vec![1u8];
        expected.extend_from_slice(&[0; 12]);
        // NIST GCM test case 13 (K = 0^256, IV = 0^96, P = A = empty): the tag.
        expected.extend_from_slice(&[0x53, 0x0f, 0x8a, 0xfb, 0xc7, 0x45, 0x36, 0xb9, 0xa9, 0x63, 0xb4, 0xf1, 0xc4, 0xcb, 0x73, 0x8b]);
        assert_eq!(sealed, expected);
    }

    #[test]
    fn keys() {
        let key: Vec<u8> = (0u8..32).collect();
        for text in
            [STANDARD.encode(&key), STANDARD_NO_PAD.encode(&key), URL_SAFE.encode(&key), URL_SAFE_NO_PAD.encode(&key), format!(" {}\n", STANDARD.encode(&key))]
        {
            assert_eq!(parse_key(&text).unwrap().as_slice(), key.as_slice(), "{text}");
        }
        // 0xfb 0xff... encodes with `+`/`/` in one alphabet and `-`/`_` in the other.
        let special = [0xfbu8; 32];
        assert_eq!(parse_key(&STANDARD.encode(special)).unwrap(), special);
        assert_eq!(parse_key(&URL_SAFE.encode(special)).unwrap(), special);

        assert!(parse_key(&STANDARD.encode([1u8; 31])).unwrap_err().contains("31 bytes"));
        assert!(parse_key(&STANDARD.encode([1u8; 33])).unwrap_err().contains("33 bytes"));
        assert!(parse_key("").unwrap_err().contains("0 bytes"));
        let secret_looking = "not base64 at all: s3cr3t!";
        let error = parse_key(secret_looking).unwrap_err();
        assert!(error.contains("not base64") && !error.contains("s3cr3t"), "{error}");
    }
}
