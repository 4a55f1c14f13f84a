//! What "loopback" means, and the other rules on a URL's parts that the
//! gateway and its components share. The rules take parts the caller has
//! already parsed (with the `url` crate on both sides), never a URL string.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Whether `host` is this machine: a URL host (`url::Url::host_str()`) or a
/// `Host` header's host, without a port.
///
/// Loopback is exactly:
/// - the name `localhost`, in any case;
/// - an IPv4 address in 127.0.0.0/8 (RFC 1122 §3.2.1.3: never sent to a
///   network), in dotted-decimal form as the `url` crate writes it;
/// - the IPv6 address `::1`, with or without brackets, in any spelling
///   (`[0:0:0:0:0:0:0:1]`).
///
/// Not loopback, though some would say so:
/// - `*.localhost` and `localhost.`: RFC 6761 lets resolvers answer them with
///   loopback, but the system resolver the gateway uses (glibc) sends them to
///   DNS, where anyone can answer;
/// - IPv4-mapped (`::ffff:127.0.0.1`) and IPv4-compatible IPv6 addresses:
///   nobody needs them, and a second spelling of an address is how checks are
///   bypassed;
/// - `0.0.0.0` and `::`, which some systems route to this machine and others
///   do not;
/// - other IPv4 spellings (`127.1`, `2130706433`), which the `url` crate turns
///   into dotted decimal before a caller sees them.
///
/// Whatever is not loopback is treated as another machine: fail closed.
pub fn is_loopback_host(host: &str) -> bool {
    match host.strip_prefix('[') {
        Some(bracketed) => bracketed.strip_suffix(']').and_then(|ip| ip.parse::<Ipv6Addr>().ok()).is_some_and(|ip| ip.is_loopback()),
        None => {
            host.eq_ignore_ascii_case("localhost")
                || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
                || host.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback())
        }
    }
}

/// [`is_loopback_host`] for `host[:port]` (IPv6 in brackets), e.g. an OCI
/// registry's `127.0.0.1:5000`. A port that is not a number is not a port:
/// the whole text is then taken as the host, and is not loopback.
pub fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.rsplit_once(':') {
        // `[::1]:80`, `localhost:80`; not the colons inside `[::1]` or `::1`.
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && (host.ends_with(']') || !host.contains(':')) => host,
        _ => authority,
    };
    is_loopback_host(host)
}

/// Whether a URL with `scheme` and `host` may carry credentials or tokens:
/// `https`, or `http` to [loopback](is_loopback_host) (a server on this
/// machine, for development). Anything else would send them in the clear
/// over a network.
pub fn is_secure_or_loopback(scheme: &str, host: Option<&str>) -> bool {
    match scheme {
        "https" => host.is_some_and(|h| !h.is_empty()),
        "http" => host.is_some_and(is_loopback_host),
        _ => false,
    }
}

/// Whether a URL carries user information (`user:password@`): credentials do
/// not belong in a URL, and `https://good.example@evil.example` misleads
/// whoever reads it. Takes `url::Url::username()` and `password()`.
pub fn has_user_info(username: &str, password: Option<&str>) -> bool {
    !username.is_empty() || password.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for local in ["localhost", "LocalHost", "127.0.0.1", "127.0.0.2", "127.255.255.254", "[::1]", "::1", "[0:0:0:0:0:0:0:1]"] {
            assert!(is_loopback_host(local), "{local}");
        }
        for remote in [
            "",
            "localhost.",
            "a.localhost",
            "localhost.example.com",
            "127.0.0.1.example.com",
            "128.0.0.1",
            "126.255.255.255",
            "10.0.0.1",
            "0.0.0.0",
            "[::]",
            "[::2]",
            "[::ffff:127.0.0.1]",
            "::ffff:127.0.0.1",
            "[::127.0.0.1]",
            "[127.0.0.1]",
            "127.1",
            "2130706433",
            "[::1",
            "[::1]x",
            "localhost:80",
        ] {
            assert!(!is_loopback_host(remote), "{remote}");
        }
    }

    #[test]
    fn loopback_authorities() {
        for local in ["localhost", "localhost:80", "127.0.0.1:5000", "127.1.2.3", "[::1]", "[::1]:9", "::1"] {
            assert!(is_loopback_authority(local), "{local}");
        }
        for remote in ["registry.example.com:5000", "10.0.0.1", "localhost:", "localhost:x", "[::1]:", "[::2]:80", "a@localhost", "localhost.:80"] {
            assert!(!is_loopback_authority(remote), "{remote}");
        }
    }

    #[test]
    fn cleartext_only_to_loopback() {
        assert!(is_secure_or_loopback("https", Some("idp.example.com")));
        assert!(is_secure_or_loopback("http", Some("127.0.0.1")));
        assert!(is_secure_or_loopback("http", Some("[::1]")));
        assert!(!is_secure_or_loopback("http", Some("idp.example.com")));
        assert!(!is_secure_or_loopback("https", None));
        assert!(!is_secure_or_loopback("https", Some("")));
        assert!(!is_secure_or_loopback("ftp", Some("localhost")));
        assert!(!is_secure_or_loopback("HTTP", Some("localhost")), "schemes come lower-cased from the parser");
    }

    #[test]
    fn user_info() {
        assert!(!has_user_info("", None));
        assert!(has_user_info("user", None));
        assert!(has_user_info("", Some("pw")));
    }
}
