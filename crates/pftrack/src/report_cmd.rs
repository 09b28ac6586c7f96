//! `pftrack report`: a pflogsumm-class summary of a period from the database, as text,
//! JSON or HTML, printed, written to a file or mailed through the local sendmail;
//! `--auth`: the SASL authentication failures alone.

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
    /// Only the SASL authentication failures (top client addresses, usernames,
    /// countries, ASNs; the last day and the whole period).
    #[arg(long)]
    auth: bool,
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
    let (title, render): (String, Box<dyn Fn(Format) -> String>) = if args.auth {
        let report = pftrack_report::build_auth(&store, &opts).await?;
        (report.title(), Box::new(move |f| report.render(f)))
    } else {
        let report = pftrack_report::build(&store, &opts).await?;
        (report.title(), Box::new(move |f| report.render(f)))
    };

    if !args.mail_to.is_empty() {
        let mail = pftrack_report::mime_message(
            &title,
            args.mail_from.as_deref(),
            &args.mail_to,
            &render(Format::Text),
            &render(Format::Html),
        );
        send(&args.sendmail, &mail, args.mail_from.as_deref())?;
        eprintln!("report mailed to {}", args.mail_to.join(", "));
        return Ok(ExitCode::SUCCESS);
    }
    let body = render(args.format.into());
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
