//! The credentials sent to a backend: a bearer token or a basic-auth password,
//! each in a file named by a flag and read again for every request.

use std::path::{Path, PathBuf};

use super::{Access, AccessError, Backend, refuse};

/// Why a credentials file could not be used for a request (nothing was sent).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read {file}: {source}")]
    Read {
        /// The flag and the file, e.g. `--prometheus-bearer-token-file /t`.
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is empty")]
    Empty(String),
}

/// A file named by a flag, and the flag.
#[derive(Clone, Debug)]
pub(super) struct FlagFile {
    flag: String,
    path: PathBuf,
}

impl FlagFile {
    pub(super) fn new(backend: Backend, suffix: &str, path: &Path) -> Self {
        Self {
            flag: backend.flag(suffix),
            path: path.to_path_buf(),
        }
    }

    /// `--prometheus-ca-file /etc/ca.pem`
    pub(super) fn named(&self) -> String {
        format!("{} {}", self.flag, self.path.display())
    }

    pub(super) fn read(&self) -> Result<Vec<u8>, AccessError> {
        std::fs::read(&self.path).map_err(|e| refuse(self.named(), format!("cannot read it: {e}")))
    }

    /// The secret the file holds, trimmed; read again on every call.
    pub(super) async fn secret(&self) -> Result<String, SecretError> {
        let text = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|source| SecretError::Read {
                file: self.named(),
                source,
            })?;
        secret_of(&text).ok_or_else(|| SecretError::Empty(self.named()))
    }

    /// As `secret`, at start.
    pub(super) fn secret_now(&self) -> Result<String, AccessError> {
        let bytes = self.read()?;
        let text = String::from_utf8(bytes).map_err(|_| refuse(self.named(), "not UTF-8 text"))?;
        secret_of(&text).ok_or_else(|| refuse(self.named(), "the file is empty"))
    }
}

pub(super) fn secret_of(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The credentials sent with every request.
#[derive(Debug)]
pub(super) enum Credentials {
    Bearer(FlagFile),
    Basic { user: String, password: FlagFile },
}

/// The credentials `access` names, each file read once now to check it.
pub(super) fn credentials(
    backend: Backend,
    access: &Access,
) -> Result<Option<Credentials>, AccessError> {
    let b = backend;
    let basic = access.basic_auth_user.is_some() || access.basic_auth_password_file.is_some();
    if access.bearer_token_file.is_some() && basic {
        return Err(refuse(
            format!(
                "{} and {}",
                b.flag("bearer-token-file"),
                b.flag("basic-auth-user")
            ),
            "a bearer token and basic auth are both set: keep one",
        ));
    }
    if let Some(path) = &access.bearer_token_file {
        let file = FlagFile::new(b, "bearer-token-file", path);
        file.secret_now()?;
        return Ok(Some(Credentials::Bearer(file)));
    }
    match (&access.basic_auth_user, &access.basic_auth_password_file) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(refuse(
            b.flag("basic-auth-user"),
            format!("needs {}", b.flag("basic-auth-password-file")),
        )),
        (None, Some(_)) => Err(refuse(
            b.flag("basic-auth-password-file"),
            format!("needs {}", b.flag("basic-auth-user")),
        )),
        (Some(user), Some(path)) => {
            if user.is_empty() || user.contains(':') {
                return Err(refuse(
                    b.flag("basic-auth-user"),
                    "a user name is not empty and has no ':'",
                ));
            }
            let password = FlagFile::new(b, "basic-auth-password-file", path);
            password.secret_now()?;
            Ok(Some(Credentials::Basic {
                user: user.clone(),
                password,
            }))
        }
    }
}
