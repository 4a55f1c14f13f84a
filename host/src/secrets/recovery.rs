//! The key recovery file: a keychain-protected store's key, exported for the
//! user to keep outside the keychain (`portcullis secrets export-key`), so a
//! lost keychain entry does not lose the store (`portcullis secrets import-key`).
//!
//! It is JSON, so a user can tell what it is: which store it opens and the key.
//! Anyone holding it can decrypt the store file; it is written 0600 and is
//! meant for a password manager or offline storage.

use super::Key;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::zeroize::Zeroizing;
use serde::{Deserialize, Serialize};
use std::path::Path;

const FORMAT: &str = "portcullis-secrets-key";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoveryFile {
    format: String,
    /// The store the key was exported from (for the reader; the key itself is
    /// checked against the store on import).
    store: String,
    key: String,
}

/// The recovery document for `key`, the key of the store at `store`.
pub fn write(store: &Path, key: &Key) -> Zeroizing<String> {
    let file = RecoveryFile { format: FORMAT.into(), store: store.display().to_string(), key: B64.encode(key.as_ref()) };
    let text = Zeroizing::new(serde_json::to_string_pretty(&file).expect("recovery file serialises") + "\n");
    drop(Zeroizing::new(file.key));
    text
}

/// The key in a recovery document; the error says what is wrong without quoting it.
pub fn read(document: &str) -> Result<Key, String> {
    let file: RecoveryFile = serde_json::from_str(document).map_err(|_| format!("it is not a {FORMAT} JSON document"))?;
    let file_key = Zeroizing::new(file.key);
    if file.format != FORMAT {
        return Err(format!("its format is {:?}, not {FORMAT:?}", file.format));
    }
    let bytes = Zeroizing::new(B64.decode(file_key.trim()).map_err(|_| "its key is not base64".to_string())?);
    if bytes.len() != 32 {
        return Err("its key is not 32 bytes".into());
    }
    let mut key: Key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&bytes);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_reads_back() {
        let key: Key = Zeroizing::new(rand::random());
        let text = write(Path::new("/home/u/.portcullis/secrets.json"), &key);
        assert!(text.contains("/home/u/.portcullis/secrets.json"));
        assert_eq!(read(&text).unwrap().as_ref(), key.as_ref());
    }

    #[test]
    fn damaged_documents_are_refused_without_quoting_them() {
        let key: Key = Zeroizing::new([7; 32]);
        let good = write(Path::new("/s"), &key);
        for (document, why) in [
            ("not json".to_string(), "not a portcullis-secrets-key"),
            (good.replace(FORMAT, "other"), "its format is"),
            (good.replace(&B64.encode([7u8; 32]), "!!!"), "not base64"),
            (good.replace(&B64.encode([7u8; 32]), &B64.encode([7u8; 16])), "not 32 bytes"),
        ] {
            let err = read(&document).unwrap_err();
            assert!(err.contains(why), "{err}");
            assert!(!err.contains(&B64.encode([7u8; 32])));
        }
    }
}
