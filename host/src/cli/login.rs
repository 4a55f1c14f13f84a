//! `portcullis login WORKLOAD` and `portcullis logout WORKLOAD`: drive the
//! `login` interface of the workload's interactive injector (such as
//! `builtin:registry-token`). The component talks to the identity provider
//! through its grants and stores tokens through `secrets.set`; the command
//! owns what a component may not touch: the loopback callback listener and
//! the browser.

use super::callback::CallbackListener;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct LoginArgs {
    /// The workload whose outbound injector logs in.
    workload: String,
    /// The policy file.
    #[arg(long, default_value = "portcullis.toml")]
    policy: PathBuf,
    /// Print the URL to open instead of opening the system browser.
    #[arg(long)]
    no_browser: bool,
    /// Log in on another device (OAuth device authorization grant, RFC 8628):
    /// for machines without a browser. Needs a provider that offers it.
    #[arg(long, conflicts_with_all = ["no_browser", "callback_port"])]
    device: bool,
    /// The loopback port of the callback (default: the entry's `callback_port`, else 8666).
    #[arg(long)]
    callback_port: Option<u16>,
    /// How long to wait for the browser to come back, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

#[derive(Args)]
pub struct LogoutArgs {
    /// The workload whose stored login is forgotten (its configuration stays).
    workload: String,
    /// The policy file.
    #[arg(long, default_value = "portcullis.toml")]
    policy: PathBuf,
}

pub fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let Some(loaded) = load(&args.policy) else {
        return Ok(ExitCode::FAILURE);
    };
    super::runtime()?.block_on(async {
        let host = host()?;
        let mut target = crate::policy::login_target(&loaded, &args.workload, &host).await?;
        if args.device {
            return device_login(&mut target.session, &args.workload).await;
        }
        // Bound before the login starts: the redirect URI names this port.
        let listener = CallbackListener::bind(args.callback_port.unwrap_or(target.callback_port)).await?;
        let start = target.session.begin(&listener.redirect_uri()).await?.map_err(|e| anyhow::anyhow!("the login could not start: {e}"))?;
        // The callback is matched by `state` alone: one a guess could hit is refused.
        anyhow::ensure!(start.state.len() >= 22, "the component's login `state` is too short to protect the callback (at least 128 random bits are needed)");
        // The component chose this URL: a person is asked to open it, and a
        // browser may open it, so it must be a web page and nothing else.
        browser_url(&start.authorize_url).map_err(|why| anyhow::anyhow!("the component's login URL is not opened or shown: {why}"))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "Open this URL in a browser to log in (workload {}):\n\n  {}\n", args.workload, start.authorize_url)?;
        out.flush()?;
        drop(out);
        if !args.no_browser {
            open_browser(&start.authorize_url);
        }
        eprintln!("Waiting up to {} s for the browser at {} ...", args.timeout, listener.redirect_uri());
        let session = &mut target.session;
        let finished = listener
            .accept(&start.state, Duration::from_secs(args.timeout), async |query| match session.finish(query).await {
                Ok(result) => result,
                Err(e) => Err(format!("{e:#}")),
            })
            .await;
        match finished {
            Ok(()) => {
                writeln!(std::io::stdout(), "Logged in: workload {} now sends its registry token upstream.", args.workload)?;
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("error: the login failed: {e}");
                Ok(ExitCode::FAILURE)
            }
        }
    })
}

/// The device grant: show the code, then poll at the pace the provider asks
/// for until the person is done, refuses, or the code expires.
async fn device_login(session: &mut crate::runtime::login::LoginSession, workload: &str) -> anyhow::Result<ExitCode> {
    let start = session.begin_device().await?.map_err(|e| anyhow::anyhow!("the login could not start: {e}"))?;
    let verification_uri = browser_url(&start.verification_uri).map_err(|why| anyhow::anyhow!("the component's verification URL is not shown: {why}"))?;
    let complete = start.verification_uri_complete.as_deref().filter(|url| match browser_url(url) {
        Ok(_) => true,
        Err(why) => {
            eprintln!("warning: the verification URL that carries the code is not shown: {why}");
            false
        }
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "To log in (workload {workload}), open {verification_uri} on any device and enter the code {}", start.user_code)?;
    if let Some(complete) = complete {
        writeln!(out, "or open this URL, which carries the code:\n\n  {complete}\n")?;
    }
    out.flush()?;
    drop(out);
    let until = tokio::time::Instant::now() + start.expires_in;
    let mut wait = start.interval.max(Duration::from_secs(1));
    eprintln!("Waiting up to {} s for the login on the other device ...", start.expires_in.as_secs());
    loop {
        tokio::time::sleep(wait).await;
        if tokio::time::Instant::now() >= until {
            eprintln!("error: the login failed: the code expired before the login was finished; run the command again");
            return Ok(ExitCode::FAILURE);
        }
        match session.poll_device().await? {
            // At least a second apart, whatever the provider says.
            Ok(Some(next)) => wait = next.max(Duration::from_secs(1)),
            Ok(None) => {
                writeln!(std::io::stdout(), "Logged in: workload {workload} now sends its registry token upstream.")?;
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => {
                eprintln!("error: the login failed: {e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
}

pub fn logout(args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let Some(loaded) = load(&args.policy) else {
        return Ok(ExitCode::FAILURE);
    };
    super::runtime()?.block_on(async {
        let host = host()?;
        let mut target = crate::policy::login_target(&loaded, &args.workload, &host).await?;
        target.session.logout().await?.map_err(|e| anyhow::anyhow!("the logout failed: {e}"))?;
        writeln!(std::io::stdout(), "Logged out: workload {}'s stored tokens are deleted; its configuration is kept.", args.workload)?;
        Ok(ExitCode::SUCCESS)
    })
}

fn load(policy: &std::path::Path) -> Option<crate::policy::Policy> {
    crate::policy::load_file(policy).map_err(|errors| eprintln!("{errors}")).ok()
}

/// The host of a login: secret store writes allowed, nothing served.
fn host() -> anyhow::Result<crate::runtime::setup::Host> {
    crate::runtime::setup::Host::assemble(crate::runtime::setup::Purpose::Login { home: &crate::home::dir()? })
}

/// Opens `url` in the system browser: `$BROWSER`, else the desktop's opener
/// (`open` on macOS, `explorer` on Windows, which hands a URL to the default
/// browser without a shell to interpret it, `xdg-open` elsewhere).
/// The URL is printed either way, so a failure here only costs a copy and paste.
fn open_browser(url: &str) {
    let opener = std::env::var("BROWSER").ok().filter(|b| !b.trim().is_empty()).unwrap_or_else(|| {
        if cfg!(target_os = "macos") {
            "open"
        } else if cfg!(windows) {
            "explorer"
        } else {
            "xdg-open"
        }
        .to_owned()
    });
    if let Err(e) = open_with(&opener, url) {
        eprintln!("could not start a browser with `{opener}` ({e}); open the URL above by hand");
    }
}

/// Starts `opener` with `url` as its one argument, if `url` is one to open
/// (see [`browser_url`]). The browser gets the user's environment without the
/// gateway's secrets: a browser (or the opener, or whatever it hands the URL
/// to) has no use for them, and may write its environment to crash reports.
fn open_with(opener: &str, url: &str) -> Result<std::process::Child, String> {
    let url = browser_url(url)?;
    std::process::Command::new(opener)
        .arg(url)
        .env_remove(crate::secrets::PASSWORD_ENV)
        .env_remove(crate::policy::builtins::STATIC_TOKEN_ENV)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())
}

/// `url` if it is a web page to show a person or open in a browser: `https`,
/// or `http` on a loopback address (a provider on this machine), with no
/// control characters or spaces (which could forge terminal output or split
/// an argument) and no user information (`https://good@evil` misleads). A
/// component chooses these URLs; any other scheme (`file:`, `javascript:`,
/// `smb:`, an application's own handler) could make the desktop's opener do
/// something else than show a page.
fn browser_url(url: &str) -> Result<&str, String> {
    let shown = || url.chars().filter(|c| !c.is_control()).take(100).collect::<String>();
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("{:?} holds control characters or spaces", shown()));
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("{:?} is not an absolute URL ({e})", shown()))?;
    if portcullis_contract::net::has_user_info(parsed.username(), parsed.password()) {
        return Err(format!("{:?} carries user information", shown()));
    }
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(url),
        "http" if portcullis_contract::net::is_loopback_host(parsed.host_str().unwrap_or_default()) => Ok(url),
        "http" => Err(format!("{:?} is plain http to another machine; only https (or http on 127.0.0.0/8, [::1] or localhost) is opened", shown())),
        _ => Err(format!("{:?} is not an https URL", shown())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A browser that records the URL it was given.
    fn recording_browser(dir: &std::path::Path) -> (String, std::path::PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let script = dir.join("browser.sh");
        std::fs::write(&script, "#!/bin/sh\nprintf '%s' \"$1\" > \"$0.url\"\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        (script.display().to_string(), dir.join("browser.sh.url"))
    }

    fn opened(url: &str) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let (browser, record) = recording_browser(dir.path());
        if let Ok(mut child) = open_with(&browser, url) {
            child.wait().unwrap();
        }
        std::fs::read_to_string(record).ok()
    }

    // Issue 22, item 9: a component chooses the URL; only web pages are opened.
    #[test]
    fn only_https_or_loopback_http_urls_are_opened() {
        for good in [
            "https://idp.example.com/auth?client_id=a&state=s",
            "http://127.0.0.1:9000/auth?x=1",
            "http://localhost:9000/auth",
            "http://[::1]:9000/auth",
            "http://127.0.0.2:9000/auth",
        ] {
            assert_eq!(opened(good).as_deref(), Some(good), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "file:///etc/passwd",
            "data:text/html,<script>alert(1)</script>",
            "smb://attacker.example/share",
            "ms-settings:",
            "http://idp.example.com/auth",
            "http://127.0.0.1.nip.io/auth",
            "http://a.localhost/auth",
            "https://idp.example.com/auth\n--new-window",
            "https://idp.example.com/auth\u{1b}]8;;x",
            "https://idp.example.com/a b",
            "--help",
            "",
        ] {
            assert_eq!(opened(bad), None, "{bad:?} was opened");
        }
    }
}
