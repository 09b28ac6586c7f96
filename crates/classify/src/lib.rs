//! `pftrack-classify`: why a Postfix delivery failed.
//!
//! From one delivery attempt's `(status, dsn, reply text, relay)` the [`Classifier`]
//! returns a [`Verdict`]: a [`Reason`] (sisimai's 34 names), whether the failure is
//! hard (permanent) or soft, and the [`RuleId`] of the rule that decided, so that
//! every answer can be explained and overridden.
//!
//! Decision order, first hit wins:
//!
//! 1. the user's rules (a YAML file, in file order);
//! 2. the status alone: `sent` is `delivered`, `expired` is `expired`;
//! 3. texts Postfix writes itself (connect failures, DNS, TLS, loops, size, local and
//!    virtual delivery), recognised by the wording of Postfix's source
//!    (`docs/classification.md` lists them), source `postfix`;
//! 4. the built-in rules (`builtin-rules.yaml`, same format as user rules), source
//!    `builtin`;
//! 5. `onhold` (or `undefined` for an empty text), rule `fallback`.
//!
//! Hard/soft: the DSN class digit Postfix logged is the truth (`5` hard, `4` soft,
//! `2` none); without a DSN, the winning rule's `hard:` override, then the class of a
//! DSN or reply code found in the text, then the status (`bounced`, `rejected`,
//! `expired` hard; `deferred` soft).
//!
//! ```
//! use pftrack_classify::{Classifier, Input, Reason};
//!
//! let classifier = Classifier::builder().build()?;
//! let v = classifier.classify(&Input {
//!     status: "bounced",
//!     dsn: Some("5.1.1"),
//!     text: "host mx.example.com[192.0.2.1] said: 550 5.1.1 <a@example.com>: \
//!            Recipient address rejected: User unknown (in reply to RCPT TO command)",
//!     ..Input::default()
//! });
//! assert_eq!(v.reason, Reason::UserUnknown);
//! assert_eq!(v.hard, Some(true));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What it is not: it does no I/O (the caller reads rules files and passes their text
//! and a source name), keeps no global state (build a [`Classifier`], share it in an
//! `Arc`, swap it on reload), has no async and knows nothing of the database.
//! [`normalize`] masks the variable parts of a text for grouping the unclassified ones.

mod builtin;
mod compile;
mod normalize;
mod reason;
mod rules;

pub use compile::{Classifier, ClassifierBuilder, MAX_TEXT_BYTES};
pub use normalize::{MAX_NORMALIZED_INPUT, normalize};
pub use reason::{Reason, UnknownReason};
pub use rules::{MAX_RULES_FILE_BYTES, MAX_RULES_PER_FILE, RuleId, STATUSES};

use serde::Serialize;

/// Who wrote a failure text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// Not known: derived from the text (`host X said: …`, `host X refused to talk to
    /// me: …` or a leading reply code mean [`Origin::Remote`], anything else
    /// [`Origin::Postfix`]).
    #[default]
    Unknown,
    /// Postfix wrote it (connect failures, DNS, local delivery, …).
    Postfix,
    /// A remote server's reply, quoted by Postfix.
    Remote,
}

/// One failure (or delivery) to classify. Borrowed; nothing is copied.
#[derive(Debug, Clone, Copy, Default)]
pub struct Input<'a> {
    /// Postfix status word: `sent`, `deferred`, `bounced`, `expired`, `rejected`, …
    pub status: &'a str,
    /// The enhanced status code Postfix logged (`dsn=5.1.1`), if any.
    pub dsn: Option<&'a str>,
    /// The SMTP reply code, if the caller knows it; else taken from the text.
    pub code: Option<u16>,
    /// The failure text (inside `status=…(…)`, or a reject's text).
    pub text: &'a str,
    /// The relay (`mx.example.com[192.0.2.1]:25` or just the host); else taken from
    /// `host X[…]` in the text. Rules match the host name only.
    pub relay: Option<&'a str>,
    /// Who wrote the text.
    pub origin: Origin,
}

/// The answer: reason, hard/soft, and the rule that decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Why.
    pub reason: Reason,
    /// `Some(true)` hard (permanent), `Some(false)` soft (transient), `None` when not a
    /// failure or nothing tells.
    pub hard: Option<bool>,
    /// The rule that decided.
    pub rule: RuleId,
}

/// A rules file that cannot be loaded. Nothing of the file is used then.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Not YAML, or not the rules format (unknown key, wrong type, …).
    #[error("{file}:{line}:{column}: {message}")]
    Yaml {
        /// The source name the caller gave (usually the path).
        file: String,
        /// 1-based line (0 when unknown).
        line: u32,
        /// 1-based column (0 when unknown).
        column: u32,
        /// What is wrong.
        message: String,
    },
    /// A rule with an invalid value (unknown reason, bad regex, bad dsn, …).
    #[error("{file}:{line}:{column}: rule {rule:?}: {message}")]
    Invalid {
        /// The source name the caller gave (usually the path).
        file: String,
        /// 1-based line of the offending value (or of the rule).
        line: u32,
        /// 1-based column.
        column: u32,
        /// The rule's name (empty when the error is not about one rule).
        rule: String,
        /// What is wrong.
        message: String,
    },
    /// Every regex compiled alone, but together they exceed the set's size limit.
    #[error("{file}: the rules' regexes together are too large: {message}")]
    TooLarge {
        /// The source name the caller gave.
        file: String,
        /// The regex engine's message.
        message: String,
    },
}

impl LoadError {
    /// The source name the error is about.
    pub fn file(&self) -> &str {
        match self {
            LoadError::Yaml { file, .. }
            | LoadError::Invalid { file, .. }
            | LoadError::TooLarge { file, .. } => file,
        }
    }

    /// 1-based line, 0 when unknown.
    pub fn line(&self) -> u32 {
        match self {
            LoadError::Yaml { line, .. } | LoadError::Invalid { line, .. } => *line,
            LoadError::TooLarge { .. } => 0,
        }
    }

    /// 1-based column, 0 when unknown.
    pub fn column(&self) -> u32 {
        match self {
            LoadError::Yaml { column, .. } | LoadError::Invalid { column, .. } => *column,
            LoadError::TooLarge { .. } => 0,
        }
    }
}
