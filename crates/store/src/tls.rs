//! TLS for connections to a remote PostgreSQL (rustls with the `ring` provider).
//!
//! tokio-postgres understands `sslmode=disable|prefer|require` only and never verifies
//! the server by itself. libpq's `verify-ca` and `verify-full` and its `sslrootcert`
//! are therefore taken out of the URL here ([`TlsParams::extract`]) and enforced by the
//! rustls configuration that [`make_connector`] builds:
//!
//! | URL asks for | root certificate given (`ca_file` or `sslrootcert`) | server is checked for |
//! | --- | --- | --- |
//! | `prefer` / `require` | no | nothing: encrypted, not authenticated (as libpq) |
//! | `prefer` / `require` | yes | a chain to that CA (libpq does the same: a root certificate makes it verify) |
//! | `verify-ca` | any | a chain to the CA (`ca_file`, else `sslrootcert`, else the system's CAs) |
//! | `verify-full` | any | that chain, and a certificate naming the host connected to |
//!
//! The trusted CAs are, in this order: `database.ca_file` from pftrack's configuration,
//! the URL's `sslrootcert`, the system's CA certificates (on Debian
//! `/etc/ssl/certs`, through rustls-native-certs; `SSL_CERT_FILE` and `SSL_CERT_DIR`
//! override). `sslrootcert=system` (libpq 16) names the system's CAs explicitly.
//!
//! This module does not do client certificates (`sslcert`, `sslkey`) or revocation
//! lists (`sslcrl`): tokio-postgres rejects those keys, so a URL using them fails
//! with a clear "unknown option" error instead of connecting with less than asked.

use std::fmt;
use std::future::Future;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::Socket;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;

/// ALPN protocol name PostgreSQL 17 expects; needed for `sslnegotiation=direct` and
/// harmless for older servers, which ignore ALPN.
const POSTGRESQL_ALPN: &[u8] = b"postgresql";

/// `sslrootcert` value that libpq 16 reads as "the system's CA certificates".
const SYSTEM_ROOTS: &str = "system";

/// What the URL asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verify {
    /// `disable`, `prefer`, `require` or no `sslmode`: encrypt when asked, and verify
    /// the server only if a root certificate is given (libpq's behaviour).
    None,
    /// `verify-ca`: the chain must lead to a trusted CA; the host name is not checked.
    Ca,
    /// `verify-full`: the chain must lead to a trusted CA and the certificate must name
    /// the host.
    Full,
}

/// TLS settings taken out of a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsParams {
    /// The URL with `verify-*` turned into `require` and `sslrootcert` removed, for
    /// tokio-postgres's parser; every other byte is as given.
    pub url_for_driver: String,
    /// Verification asked for (by the last `sslmode`, as libpq and tokio-postgres read it).
    pub verify: Verify,
    /// `sslrootcert=` from the URL (the last one), decoded.
    pub root_cert: Option<PathBuf>,
}

/// One `key=value` parameter found in a connection string.
struct Param {
    /// The key, decoded.
    key: String,
    /// The value, decoded.
    value: Vec<u8>,
    /// Bytes of the whole parameter (key through value) in the string.
    span: Range<usize>,
    /// Bytes of the value as written (with quotes or percent escapes).
    value_span: Range<usize>,
    /// Bytes to cut when the parameter is removed, separator included.
    cut: Range<usize>,
}

impl TlsParams {
    /// Split `url` (`postgresql://…?sslmode=…` or libpq `key=value …`) into what
    /// tokio-postgres can parse and what this module enforces.
    ///
    /// A string this cannot tokenise is passed on unchanged: tokio-postgres then
    /// reports the error, and an unrewritten `verify-*` is refused by it rather than
    /// silently weakened.
    pub(crate) fn extract(url: &str) -> TlsParams {
        let params = if is_url(url) {
            url_params(url)
        } else {
            keyword_params(url)
        };
        let Some(params) = params else {
            return TlsParams {
                url_for_driver: url.to_owned(),
                verify: Verify::None,
                root_cert: None,
            };
        };

        let mut verify = Verify::None;
        let mut root_cert = None;
        // (range, replacement), in increasing order of position.
        let mut edits: Vec<(Range<usize>, &str)> = Vec::new();
        for p in &params {
            match p.key.as_str() {
                "sslmode" => {
                    verify = match p.value.as_slice() {
                        b"verify-ca" => Verify::Ca,
                        b"verify-full" => Verify::Full,
                        _ => Verify::None,
                    };
                    if verify != Verify::None {
                        edits.push((p.value_span.clone(), "require"));
                    }
                }
                "sslrootcert" => {
                    root_cert = Some(bytes_to_path(&p.value));
                    edits.push((p.cut.clone(), ""));
                }
                _ => {}
            }
        }

        let mut out = String::with_capacity(url.len());
        let mut at = 0;
        for (range, replacement) in edits {
            // Cuts of neighbouring parameters may share a separator: never go back.
            let start = range.start.max(at);
            out.push_str(&url[at..start]);
            out.push_str(replacement);
            at = range.end.max(at);
        }
        out.push_str(&url[at..]);
        // A query left empty by the removals: drop its '?' too.
        if is_url(url) && out.ends_with('?') && !url.ends_with('?') {
            out.pop();
        }

        TlsParams {
            url_for_driver: out,
            verify,
            root_cert,
        }
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("postgresql://") || s.starts_with("postgres://")
}

/// The query parameters of a URL, located the way tokio-postgres's URL parser does:
/// the credentials end at the first '@', the query starts at the next '?', pairs are
/// split on '&', keys and values are percent-decoded.
fn url_params(url: &str) -> Option<Vec<Param>> {
    let after_creds = url.find('@').map_or(0, |i| i + 1);
    let Some(q) = url[after_creds..].find('?') else {
        return Some(Vec::new());
    };
    let query_start = after_creds + q + 1;

    let mut pairs: Vec<Range<usize>> = Vec::new();
    let mut start = query_start;
    while start < url.len() {
        let end = url[start..].find('&').map_or(url.len(), |i| start + i);
        pairs.push(start..end);
        start = end + 1;
    }

    let mut params = Vec::with_capacity(pairs.len());
    for (i, pair) in pairs.iter().enumerate() {
        let text = &url[pair.clone()];
        let eq = text.find('=')?;
        let key = String::from_utf8(percent_decode(&text[..eq])).ok()?;
        let value_span = pair.start + eq + 1..pair.end;
        // Cut the pair with the '&' after it; the last pair with the '&' before it,
        // or, when it is alone, with the '?' (put back by the caller if needed).
        let cut = if i + 1 < pairs.len() {
            pair.start..pair.end + 1
        } else if i > 0 {
            pair.start - 1..pair.end
        } else {
            pair.clone()
        };
        params.push(Param {
            key,
            value: percent_decode(&url[value_span.clone()]),
            span: pair.clone(),
            value_span,
            cut,
        });
    }
    Some(params)
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| hex(*c)),
                b.get(i + 2).and_then(|c| hex(*c)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// The parameters of a libpq `key=value` string, tokenised exactly as tokio-postgres
/// does: whitespace around '=', values plain or in single quotes, backslash escapes.
fn keyword_params(s: &str) -> Option<Vec<Param>> {
    let mut params: Vec<Param> = Vec::new();
    let mut it = s.char_indices().peekable();
    let pos = |it: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        it.peek().map_or(s.len(), |&(i, _)| i)
    };
    loop {
        while it.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        let key_start = pos(&mut it);
        while it
            .next_if(|&(_, c)| !c.is_whitespace() && c != '=')
            .is_some()
        {}
        let key_end = pos(&mut it);
        if key_start == key_end {
            break;
        }
        while it.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        it.next_if(|&(_, c)| c == '=')?;
        while it.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        let value_start = pos(&mut it);
        let mut value = String::new();
        if it.next_if(|&(_, c)| c == '\'').is_some() {
            loop {
                match it.next()? {
                    (_, '\'') => break,
                    (_, '\\') => value.push(it.next()?.1),
                    (_, c) => value.push(c),
                }
            }
        } else {
            while let Some((_, c)) = it.next_if(|&(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some((_, c2)) = it.next() {
                        value.push(c2);
                    }
                } else {
                    value.push(c);
                }
            }
            if value.is_empty() {
                return None;
            }
        }
        let value_end = pos(&mut it);
        params.push(Param {
            key: s[key_start..key_end].to_owned(),
            value: value.into_bytes(),
            span: key_start..value_end,
            value_span: value_start..value_end,
            cut: key_start..value_end,
        });
    }
    // Cut a parameter with the whitespace up to the next one; the last one with the
    // whitespace before it, so that nothing dangles at either end.
    let n = params.len();
    for i in 0..n {
        let cut = if i + 1 < n {
            params[i].span.start..params[i + 1].span.start
        } else if i > 0 {
            params[i - 1].span.end..params[i].span.end
        } else {
            params[i].span.clone()
        };
        params[i].cut = cut;
    }
    Some(params)
}

#[cfg(unix)]
fn bytes_to_path(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

#[cfg(not(unix))]
fn bytes_to_path(b: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(b).into_owned())
}

/// Where the trusted CA certificates come from.
#[derive(Debug, Clone, Copy)]
enum Roots<'a> {
    /// A PEM file.
    File(&'a Path),
    /// The system's store.
    System,
}

impl fmt::Display for Roots<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Roots::File(p) => write!(f, "the CA file {}", p.display()),
            Roots::System => f.write_str("the system's CA certificates"),
        }
    }
}

/// The connector for the pool: rustls configured for what `params` asks, trusting
/// `ca_file` (pftrack's `database.ca_file`) before the URL's `sslrootcert`.
pub(crate) fn make_connector(
    params: &TlsParams,
    ca_file: Option<&Path>,
) -> Result<Connector, StoreError> {
    let given = ca_file.map(Roots::File).or_else(|| {
        params.root_cert.as_deref().map(|p| {
            if p == Path::new(SYSTEM_ROOTS) {
                Roots::System
            } else {
                Roots::File(p)
            }
        })
    });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;

    let (verifier, check): (Arc<dyn ServerCertVerifier>, Option<Check>) =
        match (params.verify, given) {
            (Verify::None, None) => (
                Arc::new(ChainCheck {
                    roots: None,
                    algorithms,
                }),
                None,
            ),
            (verify, given) => {
                let roots = given.unwrap_or(Roots::System);
                let store = Arc::new(load_roots(roots)?);
                let (verifier, mode): (Arc<dyn ServerCertVerifier>, _) = match verify {
                    Verify::Full => (
                        WebPkiServerVerifier::builder_with_provider(store, provider.clone())
                            .build()
                            .map_err(|e| StoreError::Tls {
                                reason: format!("building the certificate verifier: {e}"),
                            })?,
                        "sslmode=verify-full",
                    ),
                    Verify::Ca | Verify::None => (
                        Arc::new(ChainCheck {
                            roots: Some(store),
                            algorithms,
                        }),
                        if verify == Verify::Ca {
                            "sslmode=verify-ca"
                        } else {
                            "sslmode=require with a root certificate"
                        },
                    ),
                };
                let check = Check {
                    mode,
                    trusted: roots.to_string(),
                };
                (verifier, Some(check))
            }
        };
    tracing::debug!(
        check = check.as_ref().map_or("none", |c| c.mode),
        "database TLS configured"
    );

    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Tls {
            reason: format!("choosing TLS versions: {e}"),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![POSTGRESQL_ALPN.to_vec()];
    Ok(Connector {
        inner: MakeRustlsConnect::new(config),
        check: check.map(Arc::new),
    })
}

/// Trusted CA certificates from `roots`; an error naming the file when it cannot be
/// read or holds no usable certificate.
fn load_roots(roots: Roots<'_>) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            let ca_error = |reason: String| StoreError::CaFile {
                path: path.to_owned(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let mut found = 0usize;
            for (n, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
                let cert = cert.map_err(|e| {
                    ca_error(format!("certificate {} is not valid PEM: {e}", n + 1))
                })?;
                store.add(cert).map_err(|e| {
                    ca_error(format!(
                        "certificate {} is not a usable CA certificate: {e}",
                        n + 1
                    ))
                })?;
                found += 1;
            }
            if found == 0 {
                return Err(ca_error(
                    "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".to_owned(),
                ));
            }
        }
        Roots::System => {
            let loaded = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(loaded.certs);
            if added == 0 {
                let why = loaded
                    .errors
                    .first()
                    .map_or_else(|| "none found".to_owned(), ToString::to_string);
                return Err(StoreError::Tls {
                    reason: format!(
                        "no system CA certificates to verify the server with ({why}); \
                         install ca-certificates or set database.ca_file / sslrootcert"
                    ),
                });
            }
        }
    }
    Ok(store)
}

/// The server-certificate check for libpq's `sslmode=require` and `verify-ca`
/// (`verify-full` uses rustls's own WebPki verifier, which also checks the host name).
///
/// - `roots: None` — `require` without a root certificate: the connection is encrypted
///   but the server is not authenticated, so any certificate chain is accepted.
/// - `roots: Some(..)` — `verify-ca` (and `require` with a root certificate): the chain
///   must lead to a trusted CA (validity dates and the server-authentication purpose
///   included); the host name is not checked.
///
/// Either way the handshake signatures are verified with the provider's algorithms, so
/// the server must hold the private key of the certificate it shows.
#[derive(Debug)]
struct ChainCheck {
    roots: Option<Arc<RootCertStore>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// What a verifying connector checks, for its error messages.
#[derive(Debug)]
struct Check {
    /// The mode, as the user wrote it (`sslmode=verify-full`, …).
    mode: &'static str,
    /// Which CAs are trusted (`the CA file /etc/pftrack/ca.pem`, …).
    trusted: String,
}

impl Check {
    /// rustls's certificate errors, with what was checked against what, so that
    /// "UnknownIssuer" becomes something an operator can act on. Other errors
    /// (I/O, protocol) are returned as they are.
    fn explain(&self, e: io::Error) -> io::Error {
        let cause = match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::InvalidCertificate(cause)) => cause,
            _ => return e,
        };
        let what = match cause {
            CertificateError::UnknownIssuer => {
                "the server's certificate was not issued by a trusted CA (UnknownIssuer)".to_owned()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "{cause}; the host name is checked by sslmode=verify-full, not by \
                 sslmode=verify-ca: connect by a name the certificate lists"
                )
            }
            other => format!("the server's certificate was refused: {other}"),
        };
        io::Error::new(
            e.kind(),
            format!("{what} ({}, trusting {})", self.mode, self.trusted),
        )
    }
}

/// The pool's TLS connector: tokio-postgres-rustls's, with certificate errors that
/// say what was checked against which CAs.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: MakeRustlsConnect,
    /// `None` when the server is not verified.
    check: Option<Arc<Check>>,
}

type InnerConnect = <MakeRustlsConnect as MakeTlsConnect<Socket>>::TlsConnect;
type InnerStream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;

impl MakeTlsConnect<Socket> for Connector {
    type Stream = InnerStream;
    type TlsConnect = ConnectOne;
    type Error = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<ConnectOne, Self::Error> {
        let inner = <MakeRustlsConnect as MakeTlsConnect<Socket>>::make_tls_connect(
            &mut self.inner,
            domain,
        )?;
        Ok(ConnectOne {
            inner,
            check: self.check.clone(),
        })
    }
}

/// One TLS handshake to one host.
pub(crate) struct ConnectOne {
    inner: InnerConnect,
    check: Option<Arc<Check>>,
}

impl TlsConnect<Socket> for ConnectOne {
    type Stream = InnerStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<InnerStream, io::Error>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        let handshake = self.inner.connect(stream);
        let check = self.check;
        Box::pin(async move {
            handshake.await.map_err(|e| match &check {
                Some(c) => c.explain(e),
                None => e,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(url: &str) -> (String, Verify, Option<String>) {
        let p = TlsParams::extract(url);
        (
            p.url_for_driver,
            p.verify,
            p.root_cert.map(|r| r.display().to_string()),
        )
    }

    #[test]
    fn url_verify_full_with_root_cert() {
        assert_eq!(
            ex("postgresql://u:p@host:5432/db?sslmode=verify-full&sslrootcert=/x.pem"),
            (
                "postgresql://u:p@host:5432/db?sslmode=require".to_owned(),
                Verify::Full,
                Some("/x.pem".to_owned())
            )
        );
        assert_eq!(
            ex("postgres://h/db?sslrootcert=/x.pem&sslmode=verify-ca&application_name=a%20b"),
            (
                "postgres://h/db?sslmode=require&application_name=a%20b".to_owned(),
                Verify::Ca,
                Some("/x.pem".to_owned())
            )
        );
    }

    #[test]
    fn url_root_cert_alone_drops_the_query() {
        assert_eq!(
            ex("postgresql://h/db?sslrootcert=%2Fetc%2Fca%20dir%2Fca.pem"),
            (
                "postgresql://h/db".to_owned(),
                Verify::None,
                Some("/etc/ca dir/ca.pem".to_owned())
            )
        );
        // The middle one of three, and the last one.
        assert_eq!(
            ex("postgresql://h/db?a=1&sslrootcert=/c&b=2").0,
            "postgresql://h/db?a=1&b=2"
        );
        assert_eq!(
            ex("postgresql://h/db?a=1&b=2&sslrootcert=/c").0,
            "postgresql://h/db?a=1&b=2"
        );
    }

    #[test]
    fn url_other_modes_untouched() {
        for url in [
            "postgresql://u:p@h/db",
            "postgresql://u:p@h/db?sslmode=require",
            "postgresql://u:p@h/db?sslmode=prefer&connect_timeout=5",
            "postgresql://u:p@h/db?sslmode=disable",
            "postgresql://h",
            "postgresql://h?",
            "postgresql://%2Fvar%2Frun%2Fpostgresql/db",
        ] {
            assert_eq!(ex(url), (url.to_owned(), Verify::None, None), "{url}");
        }
    }

    #[test]
    fn url_password_with_question_mark_and_encoded_key() {
        // tokio-postgres takes the credentials up to the first '@'.
        assert_eq!(
            ex("postgresql://u:p?sslmode=verify-full@h/db?ssl%6Dode=verify-full"),
            (
                "postgresql://u:p?sslmode=verify-full@h/db?ssl%6Dode=require".to_owned(),
                Verify::Full,
                None
            )
        );
    }

    #[test]
    fn last_sslmode_wins() {
        let (url, verify, _) = ex("postgresql://h/db?sslmode=verify-full&sslmode=disable");
        assert_eq!(url, "postgresql://h/db?sslmode=require&sslmode=disable");
        assert_eq!(verify, Verify::None);
        let (url, verify, _) = ex("host=h sslmode=require sslmode=verify-ca");
        assert_eq!(url, "host=h sslmode=require sslmode=require");
        assert_eq!(verify, Verify::Ca);
    }

    #[test]
    fn keyword_form() {
        assert_eq!(
            ex("host=h sslmode=verify-full sslrootcert=/x.pem"),
            (
                "host=h sslmode=require".to_owned(),
                Verify::Full,
                Some("/x.pem".to_owned())
            )
        );
        assert_eq!(
            ex("sslrootcert=/x.pem host=h  user=u sslmode=verify-ca"),
            (
                "host=h  user=u sslmode=require".to_owned(),
                Verify::Ca,
                Some("/x.pem".to_owned())
            )
        );
        assert_eq!(
            ex("host=h sslrootcert = '/a dir/it\\'s.pem'\tdbname=pf password='x y'"),
            (
                "host=h dbname=pf password='x y'".to_owned(),
                Verify::None,
                Some("/a dir/it's.pem".to_owned())
            )
        );
        assert_eq!(
            ex("host=h sslmode = 'verify-full' port=5433"),
            (
                "host=h sslmode = require port=5433".to_owned(),
                Verify::Full,
                None
            )
        );
        assert_eq!(ex("sslrootcert=/x.pem").0, "");
        let plain = "host=/var/run/postgresql user=root dbname=postgres";
        assert_eq!(ex(plain), (plain.to_owned(), Verify::None, None));
    }

    #[test]
    fn repeated_root_certs_are_all_removed() {
        assert_eq!(
            ex("postgresql://h/db?a=1&sslrootcert=/x&sslrootcert=/y"),
            (
                "postgresql://h/db?a=1&".to_owned(),
                Verify::None,
                Some("/y".to_owned())
            )
        );
        assert_eq!(
            ex("postgresql://h/db?sslrootcert=/x&sslrootcert=/y").0,
            "postgresql://h/db"
        );
        assert_eq!(ex("a=1 sslrootcert=x sslrootcert=y").0, "a=1 ");
        assert_eq!(ex("sslrootcert=x sslrootcert=y a=1").0, "a=1");
        for s in [
            "postgresql://h/db?connect_timeout=5&sslrootcert=/x&sslrootcert=/y",
            "host=h sslrootcert=x sslrootcert=y",
        ] {
            let p = TlsParams::extract(s);
            assert!(
                p.url_for_driver.parse::<tokio_postgres::Config>().is_ok(),
                "{s}"
            );
        }
    }

    proptest::proptest! {
        /// Never panics, and leaves strings without the two keys exactly as they are.
        #[test]
        fn extract_never_panics(
            s in "(postgresql://)?[a-z=&?@ '\\\\%0-9/é]{0,40}(sslmode|sslrootcert)?[=a-z' &-]{0,20}"
        ) {
            let p = TlsParams::extract(&s);
            if !s.contains("sslmode") && !s.contains("sslrootcert") {
                proptest::prop_assert_eq!(p.url_for_driver, s);
            }
        }
    }

    #[test]
    fn untokenisable_strings_pass_through() {
        for s in [
            "host=h sslmode=verify-full sslrootcert='/unterminated",
            "host sslmode=verify-full",
            "host= ",
        ] {
            assert_eq!(ex(s), (s.to_owned(), Verify::None, None), "{s}");
        }
    }

    #[test]
    fn rewritten_urls_parse_for_the_driver() {
        for url in [
            "postgresql://u:p@host:5432/db?sslmode=verify-full&sslrootcert=/x.pem",
            "host=h sslmode=verify-ca sslrootcert='/a b.pem' user=u",
            "host=h sslmode = 'verify-full' port=5433",
        ] {
            let p = TlsParams::extract(url);
            let config: tokio_postgres::Config = p.url_for_driver.parse().unwrap();
            assert_eq!(
                config.get_ssl_mode(),
                tokio_postgres::config::SslMode::Require
            );
        }
    }

    fn params(verify: Verify, root: Option<&str>) -> TlsParams {
        TlsParams {
            url_for_driver: String::new(),
            verify,
            root_cert: root.map(PathBuf::from),
        }
    }

    fn connector_err(p: &TlsParams, ca_file: Option<&Path>) -> StoreError {
        match make_connector(p, ca_file) {
            Ok(_) => panic!("make_connector accepted {p:?} with {ca_file:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn unreadable_or_empty_ca_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = connector_err(&params(Verify::Full, None), Some(&missing));
        let text = err.to_string();
        assert!(matches!(err, StoreError::CaFile { .. }), "{err:?}");
        assert!(text.contains("missing.pem"), "{text}");
        assert!(!err.is_transient());

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        // Through sslrootcert this time.
        let p = params(Verify::Ca, Some(empty.to_str().unwrap()));
        let text = connector_err(&p, None).to_string();
        assert!(
            text.contains("empty.pem") && text.contains("no PEM certificate"),
            "{text}"
        );

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let text = connector_err(&params(Verify::Full, None), Some(&garbage)).to_string();
        assert!(
            text.contains("garbage.pem") && text.contains("certificate 1"),
            "{text}"
        );

        // require with a root certificate verifies (libpq), so the file must be good too.
        let text = connector_err(&params(Verify::None, None), Some(&missing)).to_string();
        assert!(text.contains("missing.pem"), "{text}");
    }

    #[test]
    fn require_without_root_needs_no_ca() {
        assert!(make_connector(&params(Verify::None, None), None).is_ok());
    }
}
