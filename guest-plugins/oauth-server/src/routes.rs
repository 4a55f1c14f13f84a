//! The paths this server answers under the workload's origin.

pub const JWKS: &str = "/oauth/jwks";
pub const AUTHORIZE: &str = "/oauth/authorize";
pub const TOKEN: &str = "/oauth/token";
pub const REGISTER: &str = "/oauth/register";
pub const REVOKE: &str = "/oauth/revoke";
pub const CALLBACK: &str = "/oauth/callback";
