//! The consent page: before a client that anyone could have brought here (a
//! registered one, or one described by a metadata document) is sent a code,
//! the person is shown who asks and where the code will go, and decides.
//! Without it, a link to `/oauth/authorize` for an attacker's client, opened
//! by someone already logged in at the identity provider, would deliver that
//! person's code to the attacker without a page ever showing (the "confused
//! deputy" of the MCP security guidance). Clients listed in the policy are
//! the operator's and are not asked about.
//!
//! The page posts back to `/oauth/authorize` with the request's id; the post
//! counts only with the browser's binding cookie (`browser`), which another
//! site's form cannot send (`SameSite=Lax`), and from this origin.

use crate::authorize::Pending;
use crate::config::Config;
use crate::register::Client;
use crate::routes;
use portcullis_plugin::Response;

/// Whether the person must be asked about `client`.
pub fn needed(config: &Config, client: &Client) -> bool {
    !config.clients.iter().any(|listed| listed.client_id == client.client_id)
}

/// What the person decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn parse(value: Option<&str>) -> Option<Decision> {
        match value {
            Some("allow") => Some(Decision::Allow),
            Some("deny") => Some(Decision::Deny),
            _ => None,
        }
    }
}

/// The page asking about `pending` for `client`.
pub fn page(client: &Client, pending: &Pending, pending_id: &str) -> Response {
    let who = match &client.client_name {
        Some(name) => format!("<strong>{}</strong>", escape(name)),
        None => "An application".into(),
    };
    let origin = if crate::cimd::is_cimd_client_id(&client.client_id) {
        format!("It describes itself at <code>{}</code>; its name is its own claim.", escape(&client.client_id))
    } else {
        "It registered itself with this server; its name is its own claim, not verified.".into()
    };
    let destination = pending.redirect_uri.split(['?', '#']).next().unwrap_or_default();
    let this_computer = if crate::redirect::kind(destination) == Ok(crate::redirect::Kind::Loopback) { " (an application on this computer)" } else { "" };
    let scopes = if pending.scope.is_empty() { "(none)".to_owned() } else { escape(&pending.scope) };
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Allow access?</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}code{{word-break:break-all}}button{{font-size:1rem;padding:.4rem 1.2rem;margin-right:.6rem}}</style>
</head><body><main>
<h1>Allow access?</h1>
<p>{who} wants to use <code>{resource}</code> as you.</p>
<p>{origin}</p>
<p>After you log in, your access goes to <code>{destination}</code>{this_computer}.</p>
<p>Scopes: <code>{scopes}</code></p>
<p>Allow it only if you started this from that application just now.</p>
<form method="post" action="{action}">
<input type="hidden" name="pending" value="{pending_id}">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
</main></body></html>
"#,
        resource = escape(&pending.resource),
        destination = escape(destination),
        action = routes::AUTHORIZE,
        pending_id = escape(pending_id),
    );
    Response::new(200)
        .body("text/html; charset=utf-8", html.into_bytes())
        .no_store()
        // Not in a frame (a page that lured the click would sit around it),
        // no script, nothing loaded, no referrer to another site (`same-origin`:
        // `no-referrer` would make the form's `Origin` "null", refused above).
        .header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
        .header("x-frame-options", "DENY")
        .header("referrer-policy", "same-origin")
}

/// `text` for HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Whether a post to `/oauth/authorize` comes from this server's own page:
/// a browser names the page's origin (`Origin`) and marks a form sent from
/// another site (`Sec-Fetch-Site`); either one that is not this origin refuses.
pub fn same_origin(origin: Option<&str>, fetch_site: Option<&str>, issuer: &str) -> bool {
    origin.is_none_or(|o| o.eq_ignore_ascii_case(issuer)) && fetch_site.is_none_or(|s| s.eq_ignore_ascii_case("same-origin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: Option<&str>, id: &str) -> Client {
        Client { client_id: id.into(), redirect_uris: vec![], application_type: None, client_name: name.map(str::to_owned) }
    }

    fn pending(redirect_uri: &str) -> Pending {
        Pending {
            client_id: "c".into(),
            redirect_uri: redirect_uri.into(),
            code_challenge: "x".into(),
            scope: "mcp".into(),
            resource: "https://gw.example/mcp".into(),
            state: Some("s".into()),
            ..Pending::default()
        }
    }

    fn html(response: &Response) -> String {
        String::from_utf8(response.body_bytes().to_vec()).unwrap()
    }

    #[test]
    fn the_page_names_the_client_and_where_the_code_goes() {
        let response = page(&client(Some("Tool <b>\"x\"</b>"), "abc"), &pending("https://evil.example/cb?q=1"), "P1");
        let html = html(&response);
        assert!(html.contains("<strong>Tool &lt;b&gt;&quot;x&quot;&lt;/b&gt;</strong>"), "{html}");
        assert!(html.contains("<code>https://evil.example/cb</code>."), "no query, not loopback: {html}");
        assert!(html.contains(r#"name="pending" value="P1""#) && html.contains(r#"action="/oauth/authorize""#));
        assert!(html.contains("not verified"));
        assert!(response.header_value("content-security-policy").is_some_and(|v| v.contains("frame-ancestors 'none'")));
        assert_eq!(response.header_value("x-frame-options"), Some("DENY"));

        let html = self::html(&page(&client(None, "https://app.example/client.json"), &pending("http://127.0.0.1:5000/cb"), "P2"));
        assert!(html.contains("An application wants"), "{html}");
        assert!(html.contains("<code>https://app.example/client.json</code>"));
        assert!(html.contains("(an application on this computer)"));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a&b<c>'\"\u{7}"), "a&amp;b&lt;c&gt;&#39;&quot;\u{FFFD}");
    }

    #[test]
    fn only_this_origin_may_post() {
        let issuer = "https://gw.example";
        assert!(same_origin(Some("https://gw.example"), Some("same-origin"), issuer));
        assert!(same_origin(None, None, issuer), "an old browser sends neither; the cookie still binds");
        assert!(!same_origin(Some("https://evil.example"), None, issuer));
        assert!(!same_origin(Some("null"), None, issuer));
        assert!(!same_origin(None, Some("cross-site"), issuer));
        assert!(!same_origin(None, Some("same-site"), issuer));
        assert_eq!(Decision::parse(Some("allow")), Some(Decision::Allow));
        assert_eq!(Decision::parse(Some("Allow")), None);
    }
}
