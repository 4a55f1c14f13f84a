//! Windows access control lists, read and built as bytes, in safe code (so
//! that these rules are unit-tested on every OS; [`super::windows`] only
//! moves the bytes in and out of the system).
//!
//! On Windows a file's mode bits are its DACL: a list of ACEs, each granting
//! (or denying) rights to a SID. Portcullis asks the same two questions of it
//! that it asks of Unix mode bits:
//!
//! - may anyone but the user write it? (`open_private`, `is_private_dir`,
//!   like `mode & 0o022`), and
//! - may anyone but the user read it? (a signing key file, like `mode & 0o077`).
//!
//! "The user" is the trusted set: the process's user, `SYSTEM` and the
//! `Administrators` group (on Unix, root can read anything too), and `OWNER
//! RIGHTS`, which names the file's owner. Only allow ACEs that apply to the
//! object itself count (inherit-only ones are templates for children); deny
//! ACEs are ignored, which can only make the answer stricter. A NULL DACL
//! grants everyone everything.
//!
//! Private files get [`owner_only`]: one ACE granting the user full access,
//! with the DACL protected from inheritance (`icacls FILE /inheritance:r
//! /grant:r %USERNAME%:F` does the same by hand).

/// `FILE_READ_DATA` (`FILE_LIST_DIRECTORY` on a directory).
const FILE_READ_DATA: u32 = 0x1;
/// `FILE_WRITE_DATA` (`FILE_ADD_FILE`).
const FILE_WRITE_DATA: u32 = 0x2;
/// `FILE_APPEND_DATA` (`FILE_ADD_SUBDIRECTORY`).
const FILE_APPEND_DATA: u32 = 0x4;
const FILE_DELETE_CHILD: u32 = 0x40;
const WRITE_DAC: u32 = 0x4_0000;
const WRITE_OWNER: u32 = 0x8_0000;
const GENERIC_ALL: u32 = 0x1000_0000;
const GENERIC_WRITE: u32 = 0x4000_0000;
const GENERIC_READ: u32 = 0x8000_0000;
/// `FILE_ALL_ACCESS`.
pub const FULL_ACCESS: u32 = 0x1F_01FF;

/// Rights that read a file's data or list a directory.
pub const READ: u32 = FILE_READ_DATA | GENERIC_READ | GENERIC_ALL;
/// Rights that change a file's data or a directory's entries, or who may.
pub const WRITE: u32 = FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_DELETE_CHILD | WRITE_DAC | WRITE_OWNER | GENERIC_WRITE | GENERIC_ALL;

const ACL_REVISION: u8 = 2;
const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;
const OBJECT_INHERIT_ACE: u8 = 0x1;
const CONTAINER_INHERIT_ACE: u8 = 0x2;
const INHERIT_ONLY_ACE: u8 = 0x8;
/// `sizeof(ACL)` and `sizeof(ACE_HEADER) + sizeof(ACCESS_MASK)`.
const ACL_HEADER: usize = 8;
const ACE_FIXED: usize = 8;

/// The length of the binary SID at the start of `bytes`, if one is there.
pub fn sid_len(bytes: &[u8]) -> Option<usize> {
    let count = usize::from(*bytes.get(1)?);
    let len = 8 + 4 * count;
    (bytes.first() == Some(&1) && bytes.len() >= len).then_some(len)
}

/// A well-known SID: `S-1-<authority>-<subs...>`.
fn well_known(authority: u8, subs: &[u32]) -> Vec<u8> {
    let mut sid = vec![1, u8::try_from(subs.len()).expect("a few sub-authorities"), 0, 0, 0, 0, 0, authority];
    for sub in subs {
        sid.extend_from_slice(&sub.to_le_bytes());
    }
    sid
}

/// `S-1-5-18`, the local system account.
fn system() -> Vec<u8> {
    well_known(5, &[18])
}

/// `S-1-5-32-544`, the local Administrators group.
fn administrators() -> Vec<u8> {
    well_known(5, &[32, 544])
}

/// `S-1-3-4`, `OWNER RIGHTS`: whoever owns the object.
fn owner_rights() -> Vec<u8> {
    well_known(3, &[4])
}

/// `S-1-1-0`, Everyone (for tests and messages).
pub fn everyone() -> Vec<u8> {
    well_known(1, &[0])
}

/// An object's owner and DACL, as the system gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    /// The owner's binary SID.
    pub owner: Vec<u8>,
    /// The DACL's bytes; `None` for a NULL DACL (everyone has full access).
    pub dacl: Option<Vec<u8>>,
}

impl Security {
    fn trusted(&self, user: &[u8], sid: &[u8]) -> bool {
        sid == user || sid == system() || sid == administrators() || (sid == owner_rights() && self.owner_trusted(user))
    }

    /// Whether the object is owned by `user` (or by `SYSTEM` or Administrators:
    /// an elevated administrator's files belong to the group).
    pub fn owner_trusted(&self, user: &[u8]) -> bool {
        self.owner == user || self.owner == system() || self.owner == administrators()
    }

    /// The rights the DACL grants to anyone outside the trusted set (every
    /// right for a NULL DACL or one that cannot be read).
    pub fn others_rights(&self, user: &[u8]) -> u32 {
        let Some(dacl) = &self.dacl else { return u32::MAX };
        match aces(dacl) {
            Some(aces) => aces
                .iter()
                .filter(|ace| ace.kind == ACCESS_ALLOWED_ACE_TYPE && ace.flags & INHERIT_ONLY_ACE == 0 && !self.trusted(user, ace.sid))
                .fold(0, |rights, ace| rights | ace.mask),
            None => u32::MAX,
        }
    }
}

/// One ACE of the kinds that carry a mask and a SID right after it.
struct Ace<'a> {
    kind: u8,
    flags: u8,
    mask: u32,
    sid: &'a [u8],
}

/// The ACEs of a DACL; `None` if the bytes are not a well-formed ACL.
fn aces(acl: &[u8]) -> Option<Vec<Ace<'_>>> {
    let size = usize::from(u16::from_le_bytes([*acl.get(2)?, *acl.get(3)?]));
    let count = usize::from(u16::from_le_bytes([*acl.get(4)?, *acl.get(5)?]));
    let acl = acl.get(..size)?;
    let mut at = ACL_HEADER;
    let mut found = Vec::with_capacity(count);
    for _ in 0..count {
        let ace = acl.get(at..)?;
        let (kind, flags) = (*ace.first()?, *ace.get(1)?);
        let ace_size = usize::from(u16::from_le_bytes([*ace.get(2)?, *ace.get(3)?]));
        let ace = ace.get(..ace_size)?;
        // Allowed (0), denied (1), audit (2), alarm (3): mask then SID. Other
        // types (object ACEs) have more before the SID; their type says so.
        if kind <= 3 {
            let mask = u32::from_le_bytes(ace.get(4..8)?.try_into().ok()?);
            let sid = ace.get(ACE_FIXED..)?;
            found.push(Ace { kind, flags, mask, sid: &sid[..sid_len(sid)?] });
        } else {
            // An ACE this reader does not know could grant anything.
            found.push(Ace { kind: ACCESS_ALLOWED_ACE_TYPE, flags, mask: u32::MAX, sid: &[] });
        }
        at += ace_size.max(4);
    }
    Some(found)
}

/// A DACL with one ACE granting `user` full access; for a directory
/// (`inherit`), the ACE is inherited by the files and directories made in it.
/// Returned as 32-bit words, the alignment an `ACL` needs.
pub fn owner_only(user: &[u8], inherit: bool) -> Vec<u32> {
    let ace_size = ACE_FIXED + user.len();
    let acl_size = ACL_HEADER + ace_size;
    let mut bytes = Vec::with_capacity(acl_size);
    bytes.extend_from_slice(&[ACL_REVISION, 0]);
    bytes.extend_from_slice(&u16::try_from(acl_size).expect("a small ACL").to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&[0, 0]);
    let flags = if inherit { OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE } else { 0 };
    bytes.extend_from_slice(&[ACCESS_ALLOWED_ACE_TYPE, flags]);
    bytes.extend_from_slice(&u16::try_from(ace_size).expect("a small ACE").to_le_bytes());
    bytes.extend_from_slice(&FULL_ACCESS.to_le_bytes());
    bytes.extend_from_slice(user);
    // SIDs are 8 + 4n bytes long, so the ACL is a whole number of words.
    bytes.chunks(4).map(|w| u32::from_le_bytes(w.try_into().expect("whole words"))).collect()
}

/// `words` as the bytes they are in memory (little-endian: Windows).
pub fn words_as_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Vec<u8> {
        // S-1-5-21-1-2-3-1001, a local account.
        well_known(5, &[21, 1, 2, 3, 1001])
    }

    fn ace(kind: u8, flags: u8, mask: u32, sid: &[u8]) -> Vec<u8> {
        let mut ace = vec![kind, flags];
        ace.extend_from_slice(&u16::try_from(ACE_FIXED + sid.len()).unwrap().to_le_bytes());
        ace.extend_from_slice(&mask.to_le_bytes());
        ace.extend_from_slice(sid);
        ace
    }

    fn acl(aces: &[Vec<u8>]) -> Vec<u8> {
        let size = ACL_HEADER + aces.iter().map(Vec::len).sum::<usize>();
        let mut acl = vec![ACL_REVISION, 0];
        acl.extend_from_slice(&u16::try_from(size).unwrap().to_le_bytes());
        acl.extend_from_slice(&u16::try_from(aces.len()).unwrap().to_le_bytes());
        acl.extend_from_slice(&[0, 0]);
        for ace in aces {
            acl.extend_from_slice(ace);
        }
        acl
    }

    fn owned(dacl: Vec<u8>) -> Security {
        Security { owner: user(), dacl: Some(dacl) }
    }

    #[test]
    fn an_owner_only_dacl_grants_nobody_else_anything() {
        let dacl = words_as_bytes(&owner_only(&user(), false));
        let security = owned(dacl.clone());
        assert_eq!(security.others_rights(&user()), 0);
        assert!(security.owner_trusted(&user()));
        // The same ACL seen by another user: everything is someone else's.
        let other = well_known(5, &[21, 1, 2, 3, 1002]);
        assert_eq!(security.others_rights(&other) & READ, READ & FULL_ACCESS);
        assert!(!security.owner_trusted(&other));
        // Byte for byte what the system would build: header, one ACE, the SID.
        assert_eq!(dacl.len(), 8 + 8 + user().len());
        assert_eq!(&dacl[..8], &[2, 0, 44, 0, 1, 0, 0, 0]);
        assert_eq!(dacl[9], 0, "a file's ACE is not inherited");
        assert_eq!(words_as_bytes(&owner_only(&user(), true))[9], OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE);
    }

    /// What a file under `%LOCALAPPDATA%` inherits: SYSTEM, Administrators and the user.
    fn profile_dacl(extra: Option<Vec<u8>>) -> Vec<u8> {
        let mut aces = vec![ace(0, 0x10, FULL_ACCESS, &system()), ace(0, 0x10, FULL_ACCESS, &administrators()), ace(0, 0x10, FULL_ACCESS, &user())];
        aces.extend(extra);
        acl(&aces)
    }

    #[test]
    fn a_profile_file_is_private_and_a_shared_one_is_not() {
        assert_eq!(owned(profile_dacl(None)).others_rights(&user()), 0);
        // `C:\` grants Users read (and Authenticated Users modify): files under it are not private.
        let users = well_known(5, &[32, 545]);
        let readable = owned(profile_dacl(Some(ace(0, 0x10, 0x1200A9, &users))));
        assert_ne!(readable.others_rights(&user()) & READ, 0);
        assert_eq!(readable.others_rights(&user()) & WRITE, 0);
        let writable = owned(profile_dacl(Some(ace(0, 0, GENERIC_WRITE, &everyone()))));
        assert_ne!(writable.others_rights(&user()) & WRITE, 0);
    }

    #[test]
    fn templates_and_denials_grant_nothing() {
        // An inherit-only ACE applies to children, not to the object.
        let template = owned(profile_dacl(Some(ace(0, INHERIT_ONLY_ACE | OBJECT_INHERIT_ACE, GENERIC_ALL, &everyone()))));
        assert_eq!(template.others_rights(&user()), 0);
        let denied = owned(profile_dacl(Some(ace(1, 0, GENERIC_ALL, &everyone()))));
        assert_eq!(denied.others_rights(&user()), 0);
        // OWNER RIGHTS counts as the owner only when the owner is trusted.
        let owner_rights_ace = profile_dacl(Some(ace(0, 0, FULL_ACCESS, &owner_rights())));
        assert_eq!(owned(owner_rights_ace.clone()).others_rights(&user()), 0);
        let someone_elses = Security { owner: everyone(), dacl: Some(owner_rights_ace) };
        assert_ne!(someone_elses.others_rights(&user()), 0);
    }

    #[test]
    fn a_null_or_unreadable_dacl_grants_everything() {
        assert_eq!(Security { owner: user(), dacl: None }.others_rights(&user()), u32::MAX);
        let mut truncated = profile_dacl(None);
        truncated.truncate(20);
        assert_eq!(owned(truncated).others_rights(&user()), u32::MAX);
        // An ACE type this reader does not parse counts as granting everything.
        let object_ace = owned(profile_dacl(Some(ace(5, 0, 0, &everyone()))));
        assert_eq!(object_ace.others_rights(&user()), u32::MAX);
    }

    #[test]
    fn sids_are_measured_from_their_count() {
        assert_eq!(sid_len(&user()), Some(28));
        assert_eq!(sid_len(&system()), Some(12));
        assert_eq!(sid_len(&user()[..20]), None);
        assert_eq!(sid_len(&[]), None);
    }
}
