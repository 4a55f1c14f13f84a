//! `portcullis client-config`: the entry an MCP client needs to reach a
//! shared-key workload, and merging it into the client's config file.
//!
//! Clients that send custom headers get the URL and the key header; the
//! stdio-only Claude Desktop gets the `portcullis bridge` command, which adds
//! the key itself (so the key is not written into its config at all).

use crate::platform::{Env, Os, under, user_home};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    Vscode,
}

/// What goes into the client's config.
pub struct Target<'a> {
    pub workload: &'a str,
    /// The workload's MCP endpoint URL.
    pub url: &'a str,
    /// `(header, value)` with the key, for clients that support headers.
    pub header: (&'a str, &'a str),
    /// The bridge command line, for stdio-only clients.
    pub bridge: Vec<String>,
}

impl Client {
    /// The config key that holds servers, and this workload's entry.
    pub fn entry(self, target: &Target<'_>) -> (&'static str, Value) {
        let headers = json!({ target.header.0: target.header.1 });
        match self {
            Client::ClaudeDesktop => {
                let (command, args) = target.bridge.split_first().expect("a bridge command");
                ("mcpServers", json!({ "command": command, "args": args }))
            }
            Client::ClaudeCode => ("mcpServers", json!({ "type": "http", "url": target.url, "headers": headers })),
            Client::Cursor => ("mcpServers", json!({ "url": target.url, "headers": headers })),
            Client::Vscode => ("servers", json!({ "type": "http", "url": target.url, "headers": headers })),
        }
    }

    /// The user-level config file of this client on `os`, from the
    /// environment `env` (`HOME`; on Windows `USERPROFILE` and `APPDATA`).
    ///
    /// | client         | macOS                                                        | Windows                                     | Linux                                      |
    /// |----------------|--------------------------------------------------------------|---------------------------------------------|--------------------------------------------|
    /// | Claude Desktop | `~/Library/Application Support/Claude/claude_desktop_config.json` | `%APPDATA%\Claude\claude_desktop_config.json` | `~/.config/Claude/claude_desktop_config.json` |
    /// | Claude Code    | `~/.claude.json`                                             | `%USERPROFILE%\.claude.json`                 | `~/.claude.json`                           |
    /// | Cursor         | `~/.cursor/mcp.json`                                         | `%USERPROFILE%\.cursor\mcp.json`             | `~/.cursor/mcp.json`                       |
    /// | VS Code        | `~/Library/Application Support/Code/User/mcp.json`           | `%APPDATA%\Code\User\mcp.json`               | `~/.config/Code/User/mcp.json`             |
    pub fn config_path(self, os: Os, env: Env<'_>) -> anyhow::Result<PathBuf> {
        let home =
            || user_home(os, env).ok_or_else(|| anyhow::anyhow!("{} is not set; give --config-file", if os == Os::Windows { "USERPROFILE" } else { "HOME" }));
        // Electron's `appData`: where Claude Desktop and VS Code keep their settings.
        let app_data = || -> anyhow::Result<PathBuf> {
            match os {
                Os::MacOs => Ok(under(home()?, &["Library", "Application Support"])),
                Os::Windows => {
                    env("APPDATA").filter(|v| !v.is_empty()).map(PathBuf::from).ok_or_else(|| anyhow::anyhow!("APPDATA is not set; give --config-file"))
                }
                Os::Linux => Ok(home()?.join(".config")),
            }
        };
        Ok(match self {
            Client::ClaudeDesktop => under(app_data()?, &["Claude", "claude_desktop_config.json"]),
            Client::ClaudeCode => home()?.join(".claude.json"),
            Client::Cursor => under(home()?, &[".cursor", "mcp.json"]),
            Client::Vscode => under(app_data()?, &["Code", "User", "mcp.json"]),
        })
    }
}

/// The snippet to paste: `{ "<servers key>": { "<workload>": entry } }`.
pub fn snippet(client: Client, target: &Target<'_>) -> Value {
    let (key, entry) = client.entry(target);
    json!({ key: { target.workload: entry } })
}

/// Merges the entry into `path`, keeping every other entry. An existing file is
/// copied to `<path>.bak` first; a file that is not a JSON object is left alone.
/// Returns the backup's path, if one was made.
pub fn write(client: Client, target: &Target<'_>, path: &Path) -> anyhow::Result<Option<PathBuf>> {
    let (key, entry) = client.entry(target);
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    };
    let mut config = match &existing {
        Some(text) if text.trim().is_empty() => json!({}),
        Some(text) => {
            serde_json::from_str::<Value>(text).map_err(|e| anyhow::anyhow!("{} is not valid JSON ({e}); fix it or add the entry by hand", path.display()))?
        }
        None => json!({}),
    };
    let Some(root) = config.as_object_mut() else {
        anyhow::bail!("{} does not hold a JSON object; add the entry by hand", path.display());
    };
    let servers = root.entry(key).or_insert_with(|| json!({}));
    let Some(servers) = servers.as_object_mut() else {
        anyhow::bail!("`{key}` in {} is not an object; add the entry by hand", path.display());
    };
    servers.insert(target.workload.to_owned(), entry);

    // Both files may hold a key: written private from the start, never through
    // a symlink planted at their (predictable) names.
    let backup = match existing {
        Some(text) => {
            let backup = path.with_extension("json.bak");
            crate::home::write_private_atomically(&backup, text.as_bytes())?;
            Some(backup)
        }
        None => None,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::home::write_private_atomically(path, (serde_json::to_string_pretty(&config)? + "\n").as_bytes())?;
    Ok(backup)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target<'static> {
        Target {
            workload: "demo",
            url: "http://127.0.0.1:8080/mcp",
            header: ("x-portcullis-key", "KEY"),
            bridge: vec!["/usr/bin/portcullis".into(), "bridge".into(), "demo".into()],
        }
    }

    #[test]
    fn merge_keeps_other_entries_and_backs_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp.json");
        std::fs::write(&path, r#"{"mcpServers":{"other":{"url":"x"}},"theme":"dark"}"#).unwrap();
        let backup = write(Client::Cursor, &target(), &path).unwrap().unwrap();
        let merged: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(merged["mcpServers"]["other"]["url"], "x");
        assert_eq!(merged["theme"], "dark");
        assert_eq!(merged["mcpServers"]["demo"]["headers"]["x-portcullis-key"], "KEY");
        assert!(std::fs::read_to_string(backup).unwrap().contains("other"));
    }

    #[test]
    fn invalid_files_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp.json");
        std::fs::write(&path, "{ not json").unwrap();
        assert!(write(Client::Vscode, &target(), &path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ not json");
    }

    #[test]
    fn config_files_per_os() {
        use std::ffi::OsString;
        let env = |name: &str| match name {
            "HOME" => Some(OsString::from("/Users/u")),
            "USERPROFILE" => Some(OsString::from(r"C:\Users\u")),
            "APPDATA" => Some(OsString::from(r"C:\Users\u\AppData\Roaming")),
            _ => None,
        };
        let path = |client: Client, os| client.config_path(os, &env).unwrap();
        let mac = |rest: &str| PathBuf::from(format!("/Users/u/{rest}"));
        assert_eq!(path(Client::ClaudeDesktop, Os::MacOs), mac("Library/Application Support/Claude/claude_desktop_config.json"));
        assert_eq!(path(Client::ClaudeCode, Os::MacOs), mac(".claude.json"));
        assert_eq!(path(Client::Cursor, Os::MacOs), mac(".cursor/mcp.json"));
        assert_eq!(path(Client::Vscode, Os::MacOs), mac("Library/Application Support/Code/User/mcp.json"));
        assert_eq!(path(Client::ClaudeDesktop, Os::Linux), mac(".config/Claude/claude_desktop_config.json"));
        assert_eq!(path(Client::ClaudeCode, Os::Linux), mac(".claude.json"));
        assert_eq!(path(Client::Cursor, Os::Linux), mac(".cursor/mcp.json"));
        assert_eq!(path(Client::Vscode, Os::Linux), mac(".config/Code/User/mcp.json"));
        // Windows, built from its components so the test reads the same on every OS.
        let roaming = || PathBuf::from(r"C:\Users\u\AppData\Roaming");
        let profile = || PathBuf::from(r"C:\Users\u");
        assert_eq!(path(Client::ClaudeDesktop, Os::Windows), roaming().join("Claude").join("claude_desktop_config.json"));
        assert_eq!(path(Client::ClaudeCode, Os::Windows), profile().join(".claude.json"));
        assert_eq!(path(Client::Cursor, Os::Windows), profile().join(".cursor").join("mcp.json"));
        assert_eq!(path(Client::Vscode, Os::Windows), roaming().join("Code").join("User").join("mcp.json"));
        // What is missing is named.
        let bare = |_: &str| None;
        let error = Client::Vscode.config_path(Os::Windows, &bare).unwrap_err().to_string();
        assert!(error.contains("APPDATA"), "{error}");
        let error = Client::Cursor.config_path(Os::Windows, &bare).unwrap_err().to_string();
        assert!(error.contains("USERPROFILE"), "{error}");
        assert!(Client::Cursor.config_path(Os::MacOs, &bare).unwrap_err().to_string().contains("HOME"));
    }

    #[test]
    fn stdio_clients_get_the_bridge() {
        let v = snippet(Client::ClaudeDesktop, &target());
        assert_eq!(v["mcpServers"]["demo"]["command"], "/usr/bin/portcullis");
        assert_eq!(v["mcpServers"]["demo"]["args"][0], "bridge");
        assert!(!v.to_string().contains("KEY"), "the key stays in the secret store");
    }
}
