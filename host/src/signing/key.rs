//! One private signing key, in `ring`'s types only: ES256 (P-256) or RS256.
//!
//! The key's public half is computed once, at load: its JWK (what the JWKS
//! publishes) and its `kid`, the RFC 7638 thumbprint. Nothing here ever
//! formats private key material: [`KeyError`] says what is wrong in words, and
//! `Debug` shows the `kid` and the algorithm only.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use std::fmt;

/// How to make a PKCS#8 key from another PEM form, for error hints.
pub const CONVERT_HINT: &str = "the key must be a PEM PKCS#8 `-----BEGIN PRIVATE KEY-----` (P-256 or RSA): \
     `openssl pkcs8 -topk8 -nocrypt -in OLD.pem -out KEY.pem` converts one; \
     `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out KEY.pem` makes a new one";

/// Why a key was not usable. The text never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

/// The key pair, as `ring` holds it.
enum Pair {
    /// P-256, ES256 (RFC 7518 §3.4).
    Ec(EcdsaKeyPair),
    /// RSA, 2048 bits or more, RS256 (RFC 7518 §3.3).
    Rsa(RsaKeyPair),
}

/// A private key, its public JWK and its `kid`.
pub struct SigningKey {
    pair: Pair,
    kid: String,
    /// The public JWK with `kid`, `alg` and `use`, as published.
    jwk: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("alg", &self.alg()).field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a PEM private key: PKCS#8 (`PRIVATE KEY`, P-256 or RSA), SEC1
    /// (`EC PRIVATE KEY`, P-256) or PKCS#1 (`RSA PRIVATE KEY`).
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let der =
            PrivateKeyDer::from_pem_slice(pem).map_err(|_| KeyError("no PEM private key found (an encrypted key is not read: decrypt it first)".into()))?;
        match der {
            PrivateKeyDer::Pkcs8(der) => Self::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Sec1(der) => Self::from_pkcs8(&sec1_in_pkcs8(der.secret_sec1_der())?)
                .map_err(|_| KeyError("the `EC PRIVATE KEY` is not a P-256 key with its public key".into())),
            PrivateKeyDer::Pkcs1(der) => {
                RsaKeyPair::from_der(der.secret_pkcs1_der()).map_err(|e| KeyError(format!("the `RSA PRIVATE KEY` is not usable ({e})"))).map(Self::rsa)
            }
            _ => Err(KeyError("an unknown PEM private key type".into())),
        }
    }

    /// A PKCS#8 DER key, P-256 or RSA.
    fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let ec = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new());
        match ec {
            Ok(pair) => Ok(Self::ec(pair)),
            Err(ec_error) => match RsaKeyPair::from_pkcs8(der) {
                Ok(pair) => Ok(Self::rsa(pair)),
                // Neither: say why as a P-256 key, the form we recommend.
                Err(_) => Err(KeyError(format!("the key is neither a P-256 (ES256) nor an RSA (RS256) private key ({ec_error})"))),
            },
        }
    }

    /// A new P-256 key (for `ephemeral_keys = true`).
    pub fn generate() -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let unavailable = |_| KeyError("the system random number generator failed".into());
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(unavailable)?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    fn ec(pair: EcdsaKeyPair) -> Self {
        // An uncompressed point: 0x04 || x || y, 32 bytes each on P-256.
        let point = pair.public_key().as_ref();
        let (x, y) = (URL_SAFE_NO_PAD.encode(&point[1..33]), URL_SAFE_NO_PAD.encode(&point[33..65]));
        let kid = thumbprint(&format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#));
        let jwk = format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{y}","kid":"{kid}","alg":"ES256","use":"sig"}}"#);
        SigningKey { pair: Pair::Ec(pair), kid, jwk }
    }

    /// `ring` reads RSA keys of 2048 to 4096 bits only (RFC 7518 §3.3 asks for 2048 or more).
    fn rsa(pair: RsaKeyPair) -> Self {
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        let (n, e) = (URL_SAFE_NO_PAD.encode(&public.n), URL_SAFE_NO_PAD.encode(&public.e));
        let kid = thumbprint(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#));
        let jwk = format!(r#"{{"kty":"RSA","n":"{n}","e":"{e}","kid":"{kid}","alg":"RS256","use":"sig"}}"#);
        SigningKey { pair: Pair::Rsa(pair), kid, jwk }
    }

    /// The RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS algorithm: `ES256` or `RS256`.
    pub fn alg(&self) -> &'static str {
        match self.pair {
            Pair::Ec(_) => "ES256",
            Pair::Rsa(_) => "RS256",
        }
    }

    /// The public JWK, with `kid`, `alg` and `use`.
    pub fn jwk(&self) -> &str {
        &self.jwk
    }

    /// The JWS signature of `input` (RFC 7515 §5.1), raw bytes.
    pub(super) fn sign(&self, rng: &SystemRandom, input: &[u8]) -> Result<Vec<u8>, ring::error::Unspecified> {
        match &self.pair {
            Pair::Ec(pair) => Ok(pair.sign(rng, input)?.as_ref().to_vec()),
            Pair::Rsa(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, rng, input, &mut signature)?;
                Ok(signature)
            }
        }
    }
}

/// The RFC 7638 thumbprint of a JWK's required members, written in their
/// canonical form (lexicographic order, no whitespace): base64url SHA-256.
pub fn thumbprint(canonical_jwk: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical_jwk.as_bytes()))
}

/// A SEC1 `ECPrivateKey` (RFC 5915) wrapped as the PKCS#8 `PrivateKeyInfo`
/// of a P-256 key (RFC 5208), which is what `ring` reads.
fn sec1_in_pkcs8(sec1: &[u8]) -> Result<Vec<u8>, KeyError> {
    // version 0, AlgorithmIdentifier { id-ecPublicKey, prime256v1 }
    const HEAD: [u8; 24] =
        [0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let octets = [&[0x04][..], &der_length(sec1.len())?, sec1].concat();
    let body = [&HEAD[..], &octets].concat();
    Ok([&[0x30][..], &der_length(body.len())?, &body].concat())
}

/// A DER length (short form, or long form on up to two bytes).
fn der_length(len: usize) -> Result<Vec<u8>, KeyError> {
    match len {
        0..0x80 => Ok(vec![len as u8]),
        0x80..0x100 => Ok(vec![0x81, len as u8]),
        0x100..0x10000 => Ok(vec![0x82, (len >> 8) as u8, len as u8]),
        _ => Err(KeyError("the `EC PRIVATE KEY` is too large".into())),
    }
}

#[cfg(test)]
#[path = "key_tests.rs"]
pub(crate) mod tests;
