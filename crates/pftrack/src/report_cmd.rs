//! `pftrack report`: a pflogsumm-class summary of a period from the database, as text,
//! JSON or HTML, printed, written to a file or mailed through the local sendmail.

use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Args, ValueEnum};
use pftrack_report::{Format, Options, Period};
use pftrack_store::Store;

use crate::config::Config;

/// Where `--mail-to` hands the mail over.
const SENDMAIL: &str = "/usr/sbin/sendmail";

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Start of the period (RFC 3339, e.g. 2025-03-14T00:00:00Z); default: 24 h before --until.
    #[arg(long, value_name = "TIME", conflicts_with = "day")]
    since: Option<String>,
    /// End of the period, excluded (RFC 3339); default: now.
    #[arg(long, value_name = "TIME", conflicts_with = "day")]
    until: Option<String>,
    /// Whole days: today, yesterday, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD (both included).
    #[arg(short = 'd', long = "day", value_name = "DAY")]
    day: Option<String>,
    /// Zone of days and hours (an IANA name such as Europe/Berlin); default: UTC.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    timezone: String,
    /// Only this host (as logged); repeatable. Default: the whole fleet.
    #[arg(long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Length of the top-N lists (senders, recipients, domains, reasons' texts).
    #[arg(long, default_value_t = 10, value_name = "N")]
    top: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    format: FormatArg,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Mail the report (text and HTML alternatives) to this address through
    /// /usr/sbin/sendmail instead of printing it; repeatable.
    #[arg(long = "mail-to", value_name = "ADDR")]
    mail_to: Vec<String>,
    /// Sender address of the mail (default: sendmail's, the invoking user).
    #[arg(long = "mail-from", value_name = "ADDR", requires = "mail_to")]
    mail_from: Option<String>,
    /// The sendmail program (tests point it elsewhere).
    #[arg(long, hide = true, env = "PFTRACK_SENDMAIL", default_value = SENDMAIL)]
    sendmail: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    Json,
    Html,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
            FormatArg::Html => Format::Html,
        }
    }
}

pub async fn run(args: &ReportArgs, config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    let tz: chrono_tz::Tz = args
        .timezone
        .parse()
        .map_err(|e| anyhow::anyhow!("--timezone {}: {e}", args.timezone))?;
    let period = Period::resolve(
        args.since.as_deref(),
        args.until.as_deref(),
        args.day.as_deref(),
        tz,
        Utc::now(),
    )?;
    if !args.mail_to.is_empty() && !args.sendmail.exists() {
        bail!(
            "--mail-to: {} is missing (install Postfix or another MTA's sendmail)",
            args.sendmail.display()
        );
    }
    for a in args.mail_to.iter().chain(&args.mail_from) {
        if a.is_empty() || a.contains(['\r', '\n', ',', '<', '>']) {
            bail!("{a:?}: not a plain mail address");
        }
    }
    let store = Store::connect_with(url, config.database.ca_file.as_deref()).await?;
    let opts = Options {
        period,
        hosts: args.hosts.clone(),
        top: args.top,
    };
    let report = pftrack_report::build(&store, &opts).await?;

    if !args.mail_to.is_empty() {
        let mail = mime_message(
            &report.title(),
            args.mail_from.as_deref(),
            &args.mail_to,
            &report.render(Format::Text),
            &report.render(Format::Html),
        );
        send(&args.sendmail, &mail, args.mail_from.as_deref())?;
        eprintln!("report mailed to {}", args.mail_to.join(", "));
        return Ok(ExitCode::SUCCESS);
    }
    let body = report.render(args.format.into());
    match &args.output {
        Some(path) => {
            std::fs::write(path, body).with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(body.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A random MIME boundary (std's hasher keys are random per process).
fn boundary() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    let a = h.finish();
    let b = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("=_pftrack_{a:016x}{b:016x}")
}

/// A multipart/alternative message (text, then HTML), both parts base64 so no line is
/// longer than 76 characters whatever the report holds. Lines end in LF, as the local
/// sendmail expects (it writes CRLF on the wire).
pub(crate) fn mime_message(
    subject: &str,
    from: Option<&str>,
    to: &[String],
    text: &str,
    html: &str,
) -> String {
    let b = boundary();
    let mut m = String::new();
    if let Some(f) = from {
        m.push_str(&format!("From: {f}\n"));
    }
    m.push_str(&format!("To: {}\n", to.join(", ")));
    m.push_str(&format!("Subject: {}\n", encode_header(subject)));
    m.push_str(&format!("Date: {}\n", Utc::now().to_rfc2822()));
    m.push_str("MIME-Version: 1.0\n");
    m.push_str("Auto-Submitted: auto-generated\n");
    m.push_str(&format!(
        "Content-Type: multipart/alternative;\n boundary=\"{b}\"\n\n"
    ));
    m.push_str("This is a multi-part message in MIME format.\n");
    for (ctype, body) in [("text/plain", text), ("text/html", html)] {
        m.push_str(&format!("\n--{b}\n"));
        m.push_str(&format!("Content-Type: {ctype}; charset=utf-8\n"));
        m.push_str("Content-Transfer-Encoding: base64\n\n");
        m.push_str(&base64_lines(body.as_bytes()));
    }
    m.push_str(&format!("\n--{b}--\n"));
    m
}

/// RFC 2047 for a subject that is not plain ASCII.
fn encode_header(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        s.to_owned()
    } else {
        format!(
            "=?utf-8?B?{}?=",
            base64_lines(s.as_bytes()).replace('\n', "")
        )
    }
}

fn base64_lines(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 38 + 4);
    let mut col = 0;
    for chunk in data.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                out.push(char::from(T[((v >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
        col += 4;
        if col >= 76 {
            out.push('\n');
            col = 0;
        }
    }
    if col > 0 {
        out.push('\n');
    }
    out
}

fn send(sendmail: &Path, mail: &str, from: Option<&str>) -> anyhow::Result<()> {
    let shown = sendmail.display();
    let mut cmd = Command::new(sendmail);
    cmd.args(["-t", "-oi"]);
    if let Some(f) = from {
        cmd.args(["-f", f]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .spawn()
        .with_context(|| format!("--mail-to: running {shown}"))?;
    child
        .stdin
        .take()
        .context("sendmail's standard input")?
        .write_all(mail.as_bytes())
        .with_context(|| format!("--mail-to: writing to {shown}"))?;
    let status = child.wait()?;
    if !status.success() {
        bail!("--mail-to: {shown} -t -oi failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_known() {
        assert_eq!(base64_lines(b"Man"), "TWFu\n");
        assert_eq!(base64_lines(b"Ma"), "TWE=\n");
        assert_eq!(base64_lines(b"M"), "TQ==\n");
        let long = base64_lines(&[0u8; 200]);
        assert!(long.split("\n").all(|l| l.len() <= 76));
    }

    #[test]
    fn mime_shape() {
        let m = mime_message("r", None, &["a@example.org".into()], "t", "<p>h</p>");
        assert!(m.contains("MIME-Version: 1.0\n"));
        assert!(m.contains("Content-Type: multipart/alternative;\n boundary="));
        assert!(m.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(m.contains("Content-Type: text/html; charset=utf-8"));
        assert!(m.contains("Date: "));
        assert!(m.trim_end().ends_with("--"));
        assert_ne!(boundary(), boundary());
    }
}
