//! Who may read the sensor: an optional bearer token and an optional basic-auth `user:password`,
//! each read from a file at start (`--auth-token-file`, `--auth-basic-file`). Requests are
//! checked by comparing the whole `Authorization` header with what each accepted credential
//! gives, in constant time (`subtle`), so the answer's timing tells nothing about how much of
//! a guess was right.

use std::path::Path;

use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use crate::limits::{ReadLimitedError, read_to_string_limited};

/// Largest credentials file read (a token or a `user:password` line is far smaller).
pub const MAX_CREDENTIALS_FILE: u64 = 4096;

/// Errors loading credentials.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file could not be read, is too large or is not UTF-8.
    #[error(transparent)]
    Read(#[from] ReadLimitedError),
    /// The file holds nothing (blank lines only).
    #[error("{0}: empty (it must hold {1})")]
    Empty(String, &'static str),
    /// The basic-auth file's line has no `:` between user and password.
    #[error("{0}: the line must be user:password")]
    NotUserPassword(String),
    /// The token holds a character a header cannot carry.
    #[error("{0}: the token must be printable ASCII without spaces")]
    BadToken(String),
}

/// The accepted credentials; none at all means every request is let in.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// `Bearer TOKEN`, the whole header value expected.
    bearer: Option<Vec<u8>>,
    /// `Basic BASE64(user:password)`, the whole header value expected.
    basic: Option<Vec<u8>>,
}

/// The first non-blank line of a credentials file, without its line end.
fn first_line(path: &Path, what: &'static str) -> Result<String, AuthError> {
    let text = read_to_string_limited(path, MAX_CREDENTIALS_FILE)?;
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .find(|l| !l.trim().is_empty())
        .map(str::to_string)
        .ok_or_else(|| AuthError::Empty(path.display().to_string(), what))
}

impl Auth {
    /// Reads the credentials files given.
    ///
    /// # Errors
    /// [`AuthError`] when a file cannot be read, is empty or malformed.
    pub fn load(token_file: Option<&Path>, basic_file: Option<&Path>) -> Result<Self, AuthError> {
        let mut auth = Self::default();
        if let Some(p) = token_file {
            let token = first_line(p, "a token")?.trim().to_string();
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(AuthError::BadToken(p.display().to_string()));
            }
            auth.bearer = Some(format!("Bearer {token}").into_bytes());
        }
        if let Some(p) = basic_file {
            let line = first_line(p, "a user:password line")?;
            if !line.contains(':') {
                return Err(AuthError::NotUserPassword(p.display().to_string()));
            }
            let encoded = base64::engine::general_purpose::STANDARD.encode(line.as_bytes());
            auth.basic = Some(format!("Basic {encoded}").into_bytes());
        }
        Ok(auth)
    }

    /// Whether any credential is asked for.
    pub fn required(&self) -> bool {
        self.bearer.is_some() || self.basic.is_some()
    }

    /// Whether basic auth is accepted (the browser then asks for the password).
    pub fn basic(&self) -> bool {
        self.basic.is_some()
    }

    /// Whether a request with this `Authorization` header value may read.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        if !self.required() {
            return true;
        }
        let Some(given) = authorization else {
            return false;
        };
        // Both are compared whatever the first gave, so the time taken does not say which
        // scheme is configured either.
        let bearer = self
            .bearer
            .as_ref()
            .is_some_and(|want| bool::from(want.as_slice().ct_eq(given)));
        let basic = self
            .basic
            .as_ref()
            .is_some_and(|want| bool::from(want.as_slice().ct_eq(given)));
        bearer | basic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn no_credentials_lets_everyone_in() {
        assert!(Auth::default().allows(None));
    }

    #[test]
    fn a_token_is_checked_whole() {
        let f = file("s3cret-token\n");
        let a = Auth::load(Some(f.path()), None).unwrap();
        assert!(a.allows(Some(b"Bearer s3cret-token")));
        assert!(!a.allows(Some(b"Bearer s3cret-toke")));
        assert!(!a.allows(Some(b"Bearer s3cret-token2")));
        assert!(!a.allows(None));
    }

    #[test]
    fn basic_auth_is_the_encoded_line() {
        let f = file("admin:pa:ss\n");
        let a = Auth::load(None, Some(f.path())).unwrap();
        // base64("admin:pa:ss")
        assert!(a.allows(Some(b"Basic YWRtaW46cGE6c3M=")));
        assert!(!a.allows(Some(b"Basic YWRtaW46cGE6c3N=")));
        assert!(a.basic());
    }

    #[test]
    fn empty_or_malformed_files_are_refused() {
        let empty = file("\n  \n");
        assert!(matches!(
            Auth::load(Some(empty.path()), None),
            Err(AuthError::Empty(..))
        ));
        let no_colon = file("admin\n");
        assert!(matches!(
            Auth::load(None, Some(no_colon.path())),
            Err(AuthError::NotUserPassword(_))
        ));
        let spaced = file("a token\n");
        assert!(matches!(
            Auth::load(Some(spaced.path()), None),
            Err(AuthError::BadToken(_))
        ));
        assert!(matches!(
            Auth::load(Some(Path::new("/nonexistent/atd")), None),
            Err(AuthError::Read(_))
        ));
    }
}
