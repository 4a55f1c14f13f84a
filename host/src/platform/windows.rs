//! The Windows system calls behind private files, a file's identity and a
//! thread's CPU time. Each one is a thin wrapper: the bytes they return are
//! read by [`super::acl`], in safe code.
//!
//! Unsafe code is allowed here only (the workspace denies it): the Win32 API
//! has no safe binding in std, and each call's contract is stated beside it.
#![allow(unsafe_code)]

use super::acl::{self, Security};
use std::fs::File;
use std::io;
use std::os::windows::io::AsRawHandle;
use std::ptr::null_mut;
use std::sync::OnceLock;
use windows_sys::Win32::Foundation::{CloseHandle, ERROR_SUCCESS, FILETIME, HANDLE, LocalFree};
use windows_sys::Win32::Security::Authorization::{GetSecurityInfo, SE_FILE_OBJECT, SetSecurityInfo};
use windows_sys::Win32::Security::{
    ACL, DACL_SECURITY_INFORMATION, GetTokenInformation, OWNER_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSID, TOKEN_QUERY, TOKEN_USER,
    TokenUser,
};
use windows_sys::Win32::Storage::FileSystem::{BY_HANDLE_FILE_INFORMATION, GetFileInformationByHandle};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetCurrentThread, GetThreadTimes, OpenProcessToken};

pub use windows_sys::Win32::Storage::FileSystem::{
    FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT, FILE_GENERIC_READ, FILE_GENERIC_WRITE, READ_CONTROL, WRITE_DAC,
};

fn handle(file: &File) -> HANDLE {
    file.as_raw_handle() as HANDLE
}

/// Copies the SID at `sid` out of memory the system owns.
///
/// # Safety
/// `sid` is null or points to a valid SID (its length is read from its header).
unsafe fn copy_sid(sid: PSID) -> Option<Vec<u8>> {
    if sid.is_null() {
        return None;
    }
    let header = sid as *const u8;
    // SAFETY: a valid SID starts with its revision and sub-authority count,
    // and is 8 + 4 * count bytes long.
    let count = usize::from(unsafe { *header.add(1) });
    let bytes = unsafe { std::slice::from_raw_parts(header, 8 + 4 * count) }.to_vec();
    acl::sid_len(&bytes).map(|_| bytes)
}

/// The SID of the user this process runs as (of its token, not a thread's impersonation).
pub fn current_user() -> io::Result<&'static [u8]> {
    static USER: OnceLock<Vec<u8>> = OnceLock::new();
    if let Some(user) = USER.get() {
        return Ok(user);
    }
    let mut token: HANDLE = null_mut();
    // SAFETY: the pseudo-handle of the current process needs no closing; `token` receives a handle we close below.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let user = (|| {
        // A TOKEN_USER and the SID it points to; 256 bytes hold any SID (at most 68 bytes) and the header.
        let mut buffer = vec![0u64; 32];
        let mut len = 0u32;
        // SAFETY: `buffer` is writable for the length given, and 8-byte aligned as TOKEN_USER needs.
        let ok = unsafe { GetTokenInformation(token, TokenUser, buffer.as_mut_ptr().cast(), (buffer.len() * 8) as u32, &mut len) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: on success the buffer starts with a TOKEN_USER whose SID points into the buffer.
        let sid = unsafe { (*(buffer.as_ptr() as *const TOKEN_USER)).User.Sid };
        unsafe { copy_sid(sid) }.ok_or_else(|| io::Error::other("the process token has no user SID"))
    })();
    // SAFETY: `token` is the handle OpenProcessToken gave us, closed once.
    unsafe { CloseHandle(token) };
    let user = user?;
    Ok(USER.get_or_init(|| user).as_slice())
}

/// The owner and DACL of an open file or directory (the handle needs `READ_CONTROL`,
/// which read access includes).
pub fn security(file: &File) -> io::Result<Security> {
    let mut owner: PSID = null_mut();
    let mut dacl: *mut ACL = null_mut();
    let mut descriptor = null_mut();
    // SAFETY: every out-pointer is valid; on success `descriptor` is a LocalAlloc'd
    // block holding the owner and DACL `owner` and `dacl` point into, freed below.
    let status = unsafe {
        GetSecurityInfo(
            handle(file),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &mut owner,
            null_mut(),
            &mut dacl,
            null_mut(),
            &mut descriptor,
        )
    };
    if status != ERROR_SUCCESS {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    // SAFETY: `owner` is null or a SID inside `descriptor`; `dacl` is null (a NULL
    // DACL) or an ACL inside it whose header gives its size.
    let owner = unsafe { copy_sid(owner) };
    let dacl = (!dacl.is_null()).then(|| unsafe { std::slice::from_raw_parts(dacl as *const u8, usize::from((*dacl).AclSize)) }.to_vec());
    // SAFETY: allocated by GetSecurityInfo, freed once, not used after.
    unsafe { LocalFree(descriptor) };
    Ok(Security { owner: owner.ok_or_else(|| io::Error::other("the file has no owner SID"))?, dacl })
}

/// Replaces the DACL of an open file or directory (the handle needs
/// `WRITE_DAC`) with one granting the current user full access and nobody
/// else anything, protected from the parent's inheritable entries. For a
/// directory, files and directories created in it inherit the same.
pub fn restrict_to_user(file: &File, directory: bool) -> io::Result<()> {
    let dacl = acl::owner_only(current_user()?, directory);
    // SAFETY: `dacl` is a well-formed ACL, 4-byte aligned, alive across the call;
    // the owner, group and SACL are left as they are (null, not in the flags).
    let status = unsafe {
        SetSecurityInfo(
            handle(file),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            null_mut(),
            null_mut(),
            dacl.as_ptr().cast(),
            std::ptr::null(),
        )
    };
    if status != ERROR_SUCCESS {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    Ok(())
}

/// The file's index on its volume: what an inode number is on Unix (a file
/// replaced by a rename has another).
pub fn file_id(file: &File) -> io::Result<u64> {
    let mut info = BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: `info` is a writable BY_HANDLE_FILE_INFORMATION; the handle is open.
    if unsafe { GetFileInformationByHandle(handle(file), &mut info) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow))
}

/// The CPU time (kernel and user) the calling thread has used, in nanoseconds; 0 if unknown.
pub fn thread_cpu_nanos() -> u64 {
    let (mut created, mut exited, mut kernel, mut user) = (FILETIME::default(), FILETIME::default(), FILETIME::default(), FILETIME::default());
    // SAFETY: the pseudo-handle of the current thread needs no closing; the four FILETIMEs are writable.
    if unsafe { GetThreadTimes(GetCurrentThread(), &mut created, &mut exited, &mut kernel, &mut user) } == 0 {
        return 0;
    }
    let ticks = |t: FILETIME| (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
    // FILETIME counts 100 ns.
    ticks(kernel).saturating_add(ticks(user)).saturating_mul(100)
}
