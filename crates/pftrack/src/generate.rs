//! `pftrack generate`: man pages and shell completions from the clap definitions.
//!
//! Hidden: it is for packagers (scripts/package runs it), not for operators. It reads no
//! configuration file, so it works on a build machine without /etc/pftrack.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use clap_complete::Shell;

/// Arguments of `pftrack generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Write pftrack.1 and pftrack-<subcommand>.1 for every visible subcommand into DIR.
    Man {
        /// Output directory (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print the completion script for SHELL on standard output.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_name = "SHELL")]
        shell: Shell,
    },
}

/// Runs `pftrack generate`; `cmd` is the whole CLI (`Cli::command()`).
pub fn run(args: &GenerateArgs, cmd: clap::Command) -> anyhow::Result<ExitCode> {
    match &args.what {
        What::Man { dir } => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for path in man_pages(cmd, dir)? {
                println!("{}", path.display());
            }
        }
        What::Completions { shell } => {
            let mut cmd = without_hidden(&cmd);
            let mut out = std::io::stdout().lock();
            clap_complete::generate(*shell, &mut cmd, "pftrack", &mut out);
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The top-level command without its hidden subcommands: clap_complete's bash script
/// would otherwise offer `generate` after `pftrack <TAB>`.
fn without_hidden(cmd: &clap::Command) -> clap::Command {
    let visible: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut out = clap::Command::new("pftrack")
        .version(env!("CARGO_PKG_VERSION"))
        .args(cmd.get_arguments().cloned())
        .subcommands(visible)
        .subcommand_required(cmd.is_subcommand_required_set());
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    out
}

/// Writes one page per visible command (the top level, its subcommands and theirs) into
/// `dir`; returns the paths written.
fn man_pages(cmd: clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    // Built, the subcommands carry display names such as "pftrack-backfill" and the
    // global options; without the help subcommand there is no pftrack-help page.
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    write_page(&cmd, dir, &mut written)?;
    Ok(written)
}

fn write_page(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let visible: Vec<&clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    let man = clap_mangen::Man::new(cmd.clone())
        .manual("pftrack Manual")
        .source(format!("pftrack {}", env!("CARGO_PKG_VERSION")));
    let path = dir.join(man.get_filename());
    let mut roff = Vec::new();
    man.render(&mut roff)?;
    // SEE ALSO: the top page points to every subcommand's page, each subcommand's page
    // back to its parent's.
    let mut see_also: Vec<String> = visible.iter().map(|s| page_name(s)).collect();
    if let Some(parent) = page_name(cmd).rsplit_once('-').map(|(p, _)| p.to_owned()) {
        see_also.insert(0, parent);
    }
    if !see_also.is_empty() {
        roff.extend_from_slice(b".SH \"SEE ALSO\"\n");
        let refs: Vec<String> = see_also.iter().map(|n| format!(".BR {n} (1)")).collect();
        // Commas between the references, as man-pages(7) asks.
        roff.extend_from_slice(refs.join(",\n").as_bytes());
        roff.push(b'\n');
    }
    std::fs::write(&path, roff).with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path);
    for sub in visible {
        write_page(sub, dir, written)?;
    }
    Ok(())
}

/// The page name of a built command: "pftrack" or "pftrack-backfill".
fn page_name(cmd: &clap::Command) -> String {
    cmd.get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_owned()
}
