//! The value types of `pipeline.toml` that are more than a number or a
//! string: sources, device strings, cache thresholds and the small enums.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::units::{Percent, Size};

/// Where a stream's files come from: a local directory, or `host:/path`
/// fetched with rsync over ssh (the same rule rsync uses: a colon before the
/// first slash means a host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Local(PathBuf),
    Remote { host: String, path: String },
}

impl Source {
    pub fn parse(text: &str) -> Result<Source, String> {
        if text.is_empty() {
            return Err("source is empty".into());
        }
        match (text.find(':'), text.find('/')) {
            (Some(colon), slash) if slash.is_none_or(|s| colon < s) => {
                let (host, path) = (&text[..colon], &text[colon + 1..]);
                if host.is_empty() || path.is_empty() {
                    return Err(format!("remote source {text:?} must look like host:/path"));
                }
                Ok(Source::Remote {
                    host: host.to_string(),
                    path: path.to_string(),
                })
            }
            _ => Ok(Source::Local(PathBuf::from(text))),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Local(p) => write!(f, "{}", p.display()),
            Source::Remote { host, path } => write!(f, "{host}:{path}"),
        }
    }
}

/// A device string, the same in `-f`, `--drive` and `pipeline.toml`
/// (README, "Tapes, drives and libraries"): a device node (`/dev/nst0` for
/// a drive through st, `/dev/sg5` for a changer through mtx), `sg:/dev/sgN`
/// for a drive or changer reel drives itself over SG_IO (a drive may be
/// named by its st node, `sg:/dev/nst0`), or
/// `virtual:<dir>` / `virtual:<dir>#<n>` for drive `n` of a virtual library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    Node(PathBuf),
    /// A generic SCSI node reel talks to itself (SG_IO).
    Sg(PathBuf),
    Virtual {
        dir: PathBuf,
        drive: u32,
    },
}

impl Device {
    pub fn parse(text: &str) -> Result<Device, String> {
        if let Some(rest) = text.strip_prefix("virtual:") {
            let (dir, drive) = match rest.rsplit_once('#') {
                Some((dir, n)) => {
                    let n: u32 = n.parse().map_err(|_| {
                        format!("device {text:?}: the drive number after '#' must be a number")
                    })?;
                    (dir, n)
                }
                None => (rest, 0),
            };
            if dir.is_empty() {
                return Err(format!(
                    "device {text:?}: write virtual:<directory>, like virtual:./var/library"
                ));
            }
            return Ok(Device::Virtual {
                dir: PathBuf::from(dir),
                drive,
            });
        }
        if let Some(path) = text.strip_prefix("sg:") {
            if !path.starts_with('/') {
                return Err(format!(
                    "device {text:?}: write sg:/dev/sgN, the drive's or changer's generic SCSI node"
                ));
            }
            return Ok(Device::Sg(PathBuf::from(path)));
        }
        if !text.starts_with('/') {
            return Err(format!(
                "device {text:?}: expected a device path like /dev/nst0 or /dev/sg5, sg:/dev/sg5, or virtual:<directory>"
            ));
        }
        Ok(Device::Node(PathBuf::from(text)))
    }
}

impl Device {
    /// Make a relative `virtual:` directory absolute against `base`.
    pub fn resolve(self, base: &std::path::Path) -> Device {
        match self {
            Device::Virtual { dir, drive } => Device::Virtual {
                dir: crate::fsutil::normalize(base, &dir),
                drive,
            },
            other => other,
        }
    }

    /// Parse a device given on the command line: relative `virtual:`
    /// directories are taken from the current directory.
    pub fn from_arg(text: &str) -> Result<Device, String> {
        let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
        Ok(Device::parse(text)?.resolve(&cwd))
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Node(p) => write!(f, "{}", p.display()),
            Device::Sg(p) => write!(f, "sg:{}", p.display()),
            Device::Virtual { dir, drive: 0 } => write!(f, "virtual:{}", dir.display()),
            Device::Virtual { dir, drive } => write!(f, "virtual:{}#{drive}", dir.display()),
        }
    }
}

/// A cache threshold: a share of the cache file system (`"90%"`) or an
/// amount of used space (`"8T"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Water {
    Percent(Percent),
    Used(Size),
}

impl Water {
    /// The threshold in bytes for a file system of `total` bytes.
    pub fn bytes(self, total: u64) -> u64 {
        match self {
            Water::Percent(p) => p.of(total),
            Water::Used(s) => s.0,
        }
    }
}

impl fmt::Display for Water {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Water::Percent(p) => p.fmt(f),
            Water::Used(s) => s.fmt(f),
        }
    }
}

macro_rules! string_serde {
    ($ty:ty, $parse:expr, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        $parse(v).map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

string_serde!(
    Source,
    Source::parse,
    "a directory, or host:/path for rsync over ssh"
);
string_serde!(
    Device,
    Device::parse,
    "a device like \"/dev/nst0\" or \"virtual:<directory>\""
);
string_serde!(
    Water,
    |v: &str| -> Result<Water, String> {
        if v.trim_end().ends_with('%') {
            v.parse()
                .map(Water::Percent)
                .map_err(|e: crate::units::UnitError| e.to_string())
        } else {
            v.parse()
                .map(Water::Used)
                .map_err(|e: crate::units::UnitError| e.to_string())
        }
    },
    "a share of the cache like \"90%\", or a size like \"8T\""
);

/// The order of members inside an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackOrder {
    /// Sorted by path: a directory's files lie together on tape.
    #[default]
    Path,
    /// As scanned.
    Scan,
    /// Largest first.
    Size,
}

/// When reel-verify reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyWhen {
    /// Right after each archive.
    #[default]
    Archive,
    /// Once the tape is full or closed.
    Tape,
}

/// How much reel-verify checks: both levels check every member's headers
/// and its data against the digest taken from the source. `Quick` once
/// compared only the archive's digest as reel-write had streamed it (which
/// proves nothing of an archive spoiled in the cache before it was
/// written), for no saving: it read and hashed as many bytes. It is kept so
/// that existing configurations load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyLevel {
    Quick,
    #[default]
    Full,
}

/// A command to run, as an argument vector (never through a shell). A
/// plain string is one program path without arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command(pub Vec<String>);

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Argv(Vec<String>),
        }
        let argv = match Raw::deserialize(d).map_err(|_| {
            de::Error::custom(
                "expected a program path or an array like [\"/usr/local/bin/notify\", \"--mail\"]",
            )
        })? {
            Raw::One(s) => vec![s],
            Raw::Argv(v) => v,
        };
        if argv.first().is_none_or(|p| p.is_empty()) {
            return Err(de::Error::custom("the command is empty"));
        }
        Ok(Command(argv))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(Source::parse("/data"), Ok(Source::Local("/data".into())));
        assert_eq!(Source::parse("./a:b"), Ok(Source::Local("./a:b".into())));
        assert_eq!(
            Source::parse("nas:/export/home"),
            Ok(Source::Remote {
                host: "nas".into(),
                path: "/export/home".into()
            })
        );
        assert!(Source::parse(":/x").is_err());
        assert!(Source::parse("").is_err());
    }

    #[test]
    fn devices() {
        assert_eq!(
            Device::parse("/dev/nst0"),
            Ok(Device::Node("/dev/nst0".into()))
        );
        assert_eq!(
            Device::parse("virtual:./var/lib#2"),
            Ok(Device::Virtual {
                dir: "./var/lib".into(),
                drive: 2
            })
        );
        assert_eq!(Device::parse("virtual:x").unwrap().to_string(), "virtual:x");
        for bad in ["nst0", "virtual:", "virtual:x#y", ""] {
            assert!(Device::parse(bad).is_err(), "{bad:?}");
        }
    }
}
