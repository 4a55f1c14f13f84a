//! What a [`Server`](crate::Server) answers on its routes, and the routes it declares.

use crate::__private::wit;

/// One route a server declares: an exact path under the workload's origin
/// and the methods it answers (the gateway answers 405 to others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub path: String,
    pub methods: Vec<String>,
}

impl Route {
    /// `path` (starting with `/`, matched exactly: no prefix, no query) for `methods`.
    pub fn new(path: impl Into<String>, methods: &[&str]) -> Self {
        Route { path: path.into(), methods: methods.iter().map(|m| (*m).to_owned()).collect() }
    }

    /// `path` for `GET` only.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(path, &["GET"])
    }

    /// `path` for `POST` only.
    pub fn post(path: impl Into<String>) -> Self {
        Self::new(path, &["POST"])
    }
}

/// A response being built: `Response::new(200).json(&body)`,
/// `Response::redirect(url)`. The gateway sets `content-length` and the
/// hop-by-hop headers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    /// `302 Found` to `location` (an absolute URL the component built; the
    /// SDK does not check where it points: that is the component's job).
    pub fn redirect(location: impl Into<String>) -> Self {
        Self::new(302).header("location", location).no_store()
    }

    /// Adds a header (names are lower-cased; a name may repeat).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Replaces every header named `name` by one with `value`.
    pub fn set_header(mut self, name: &str, value: impl Into<String>) -> Self {
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }

    /// `cache-control: no-store`: for anything that carries a token or a
    /// per-request answer (RFC 6749 §5.1 asks it of token responses).
    pub fn no_store(self) -> Self {
        self.set_header("cache-control", "no-store")
    }

    /// The body as given, with `content_type`.
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.set_header("content-type", content_type)
    }

    /// A JSON body (`application/json`).
    pub fn json(self, body: &serde_json::Value) -> Self {
        self.body("application/json", body.to_string())
    }

    /// A plain-text body for a person (`text/plain; charset=utf-8`). Text,
    /// not HTML, so nothing in it can be markup.
    pub fn text(self, body: impl Into<String>) -> Self {
        self.body("text/plain; charset=utf-8", body.into()).set_header("x-content-type-options", "nosniff")
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of header `name` (any case).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// The parts of the contract's `serve.response` (the record itself is
    /// generated in the component's crate, so the export macro builds it).
    #[doc(hidden)]
    pub fn into_wit_parts(self) -> (u16, Vec<wit::Header>, Vec<u8>) {
        let headers = self.headers.into_iter().map(|(name, value)| wit::Header { name, value }).collect();
        (self.status, headers, self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders() {
        let r = Response::new(400).json(&serde_json::json!({"error": "invalid_request"})).no_store();
        assert_eq!(r.status(), 400);
        assert_eq!(r.header_value("Content-Type"), Some("application/json"));
        assert_eq!(r.body_bytes(), br#"{"error":"invalid_request"}"#);
        let (_, headers, _) = r.text("x").into_wit_parts();
        let names: Vec<_> = headers.iter().map(|h| (h.name.as_str(), h.value.as_str())).collect();
        assert_eq!(names, [("cache-control", "no-store"), ("content-type", "text/plain; charset=utf-8"), ("x-content-type-options", "nosniff")]);

        let r = Response::redirect("https://client.example/cb?code=1");
        assert_eq!((r.status(), r.header_value("location")), (302, Some("https://client.example/cb?code=1")));
        assert_eq!(r.header_value("cache-control"), Some("no-store"));
        assert_eq!(Route::get("/x"), Route { path: "/x".into(), methods: vec!["GET".into()] });
    }
}
