//! [`StoreUrl`]: where a store is, parsed from its URL.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where a store is: `sqlite:PATH` (or `sqlite://PATH`), or
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (or `postgresql://`).
///
/// `Display` shows the URL with a PostgreSQL password replaced by `***`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreUrl {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its connection URL.
    Postgres(String),
}

/// A text that is not a store URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "store url {0:?} is not supported; use sqlite:PATH (e.g. sqlite:audit.db) or postgres://USER@HOST/DATABASE"
)]
pub struct StoreUrlError(pub String);

impl FromStr for StoreUrl {
    type Err = StoreUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = text
            .strip_prefix("postgres://")
            .or_else(|| text.strip_prefix("postgresql://"))
        {
            return if rest.is_empty() {
                Err(StoreUrlError(text.to_owned()))
            } else {
                Ok(StoreUrl::Postgres(text.to_owned()))
            };
        }
        let path = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"));
        match path {
            Some(path) if !path.is_empty() => Ok(StoreUrl::Sqlite(PathBuf::from(path))),
            _ => Err(StoreUrlError(text.to_owned())),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreUrl::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

/// A PostgreSQL URL with its password (if any) replaced by `***`, for
/// messages.
fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &authority[..colon],
            &url[scheme_end + at..]
        ),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sqlite_urls() {
        for (text, path) in [
            ("sqlite:audit.db", "audit.db"),
            ("sqlite://audit.db", "audit.db"),
            ("sqlite:///var/lib/a.db", "/var/lib/a.db"),
            ("sqlite:/var/lib/a.db", "/var/lib/a.db"),
        ] {
            assert_eq!(
                text.parse::<StoreUrl>().unwrap(),
                StoreUrl::Sqlite(PathBuf::from(path))
            );
        }
        for bad in ["", "sqlite:", "sqlite://", "audit.db", "mysql://x"] {
            let err = bad.parse::<StoreUrl>().unwrap_err();
            assert!(err.to_string().contains("use sqlite:PATH"), "{err}");
        }
    }

    #[test]
    fn parses_postgres_urls_and_hides_their_passwords() {
        for text in [
            "postgres://u@db.internal:5432/audit",
            "postgresql://u:secret@db.internal/audit?sslmode=require",
        ] {
            assert_eq!(
                text.parse::<StoreUrl>().unwrap(),
                StoreUrl::Postgres(text.to_owned())
            );
        }
        assert!("postgres://".parse::<StoreUrl>().is_err());
        let url: StoreUrl = "postgres://u:secret@db:5432/audit".parse().unwrap();
        assert_eq!(url.to_string(), "postgres://u:***@db:5432/audit");
        let url: StoreUrl = "postgres://u@db:5432/audit".parse().unwrap();
        assert_eq!(url.to_string(), "postgres://u@db:5432/audit");
    }
}
