//! Which Confluence release the client talks to, and what that release offers.
//!
//! # How the version is detected
//!
//! 1. **The applinks manifest**, `GET /rest/applinks/1.0/manifest`. Every Atlassian Data
//!    Center product serves it, anonymously, read-only; its `<version>` element holds the
//!    release (`8.5.4`). This is an \[obs\] fact (public probes and client code read it), not
//!    an Atlassian-documented contract, so the answer is parsed leniently: XML
//!    `<version>…</version>` or a JSON `"version"` field, whichever came back.
//! 2. **Probes**, when the manifest is absent or unreadable: two read-only endpoints whose
//!    first release is documented. `GET /rest/api/admin/users/list/active` exists from 9.3
//!    (in the 9.3.1 reference, not in 9.2.2 \[doc\]); `GET /rest/api/user/list` from 8.4
//!    (CONFSERVER-87291 \[doc\]). An endpoint counts as present unless the answer is a
//!    404 without Confluence's JSON error body or a 405 — the way a release answers a path it
//!    does not know **(assumed: the emulator answers an HTML 404; a real release might
//!    differ)**. A probe therefore gives a *range*, not a release: "9.3 or later",
//!    "8.4 up to 9.2", or "below 8.4".
//!
//! The answer only lets the client skip calls that are bound to fail; every operation
//! also classifies an "endpoint absent" answer as [`TargetError::Unsupported`] on its own,
//! so a wrong detection costs one call, never a wrong result.
//!
//! [`TargetError::Unsupported`]: crate::targets::TargetError::Unsupported

use std::fmt;
use std::str::FromStr;

/// A Confluence release, `major.minor.patch` (missing parts are 0; suffixes such as `-m01`
/// are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl Version {
    /// `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A version string that does not start with a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Confluence version such as 8.5.4")]
pub struct BadVersion(String);

impl FromStr for Version {
    type Err = BadVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = [0u32; 3];
        let mut seen = 0;
        for (i, part) in s.trim().split('.').take(3).enumerate() {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            let Ok(n) = digits.parse::<u32>() else {
                break;
            };
            parts[i] = n;
            seen += 1;
            if digits.len() != part.len() {
                // `0-m12`: a suffix ends the version.
                break;
            }
        }
        if seen == 0 {
            return Err(BadVersion(s.to_owned()));
        }
        Ok(Self::new(parts[0], parts[1], parts[2]))
    }
}

/// 8.2: disable, enable, delete user; group create/delete; membership \[doc\].
pub const V8_2: Version = Version::new(8, 2, 0);
/// 8.4: create user, admin password change, `GET /rest/api/user/list` \[doc\].
pub const V8_4: Version = Version::new(8, 4, 0);
/// First 9.x: the update endpoint is absent from every 8.x reference \[doc\].
pub const V9_0: Version = Version::new(9, 0, 0);
/// 9.3: `GET /rest/api/admin/users/list/active` (9.3.1 reference) \[doc\].
pub const V9_3: Version = Version::new(9, 3, 0);
/// 9.4: `PUT /rest/api/admin/user/{username}` is in the 9.4.0 reference; whether an
/// earlier 9.x has it is a **\[gap\]**.
pub const V9_4: Version = Version::new(9, 4, 0);

/// How the version was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectionMethod {
    /// The applinks manifest named the release.
    Manifest,
    /// Read-only probes bounded it.
    Probe,
}

/// An operation whose availability depends on the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// Disable, enable, delete user; group create/delete; membership add/remove (8.2).
    AdminWrites,
    /// `POST /rest/api/admin/user` (8.4).
    CreateUser,
    /// `GET /rest/api/user/list` (8.4).
    UserList,
    /// `PUT /rest/api/admin/user/{username}`: present in 9.4, absent in 8.x, unknown in
    /// 9.0–9.3 **\[gap\]**.
    UpdateUser,
}

/// Whether a feature is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// Known present.
    Available,
    /// Known absent: calling it would fail.
    Absent,
    /// Not known: call it and classify the answer.
    Unknown,
}

/// The result of version detection: the release, or the range of releases it can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectedVersion {
    /// How it was found.
    pub method: DetectionMethod,
    /// The lowest release it can be (the release itself when `exact`).
    pub at_least: Version,
    /// The first release it cannot be any more (exclusive), when bounded.
    pub below: Option<Version>,
    /// The release named by the manifest, if any.
    pub exact: Option<Version>,
}

impl DetectedVersion {
    /// The manifest named `version`.
    pub fn from_manifest(version: Version) -> Self {
        Self {
            method: DetectionMethod::Manifest,
            at_least: version,
            below: None,
            exact: Some(version),
        }
    }

    /// Probes found the range `[at_least, below)`.
    pub fn from_probes(at_least: Version, below: Option<Version>) -> Self {
        Self {
            method: DetectionMethod::Probe,
            at_least,
            below,
            exact: None,
        }
    }

    /// Whether `feature` is available on this release (or range).
    pub fn supports(&self, feature: Feature) -> Availability {
        // (known present from, known absent below)
        let (present_from, absent_below) = match feature {
            Feature::AdminWrites => (V8_2, V8_2),
            Feature::CreateUser | Feature::UserList => (V8_4, V8_4),
            Feature::UpdateUser => (V9_4, V9_0),
        };
        if let Some(exact) = self.exact {
            return if exact >= present_from {
                Availability::Available
            } else if exact < absent_below {
                Availability::Absent
            } else {
                Availability::Unknown
            };
        }
        if self.at_least >= present_from {
            Availability::Available
        } else if self.below.is_some_and(|below| below <= absent_below) {
            Availability::Absent
        } else {
            Availability::Unknown
        }
    }
}

impl fmt::Display for DetectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.exact, self.below) {
            (Some(v), _) => write!(f, "{v} (applinks manifest)"),
            (None, Some(below)) if self.at_least == Version::new(0, 0, 0) => {
                write!(f, "below {below} (probed)")
            }
            (None, Some(below)) => write!(f, "{} up to before {below} (probed)", self.at_least),
            (None, None) => write!(f, "{} or later (probed)", self.at_least),
        }
    }
}

/// Reads the release from a manifest body: the first `<version>` element of an XML answer,
/// or the `version` field of a JSON one.
pub fn parse_manifest(body: &str) -> Option<Version> {
    let trimmed = body.trim_start();
    if trimmed.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(trimmed).ok()?;
        return value.get("version")?.as_str()?.parse().ok();
    }
    let start = body.find("<version>")? + "<version>".len();
    let end = start + body[start..].find("</version>")?;
    body[start..end].trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_with_missing_parts_and_suffixes() {
        assert_eq!("8.5.4".parse(), Ok(Version::new(8, 5, 4)));
        assert_eq!("10.2".parse(), Ok(Version::new(10, 2, 0)));
        assert_eq!(" 9 ".parse(), Ok(Version::new(9, 0, 0)));
        assert_eq!("7.19.0-m01".parse(), Ok(Version::new(7, 19, 0)));
        assert_eq!("9.4-rc1".parse(), Ok(Version::new(9, 4, 0)));
        assert!("v9".parse::<Version>().is_err());
        assert!("".parse::<Version>().is_err());
        assert!(Version::new(10, 0, 0) > Version::new(9, 4, 2));
    }

    #[test]
    fn the_manifest_version_is_read_from_xml_or_json() {
        let xml = "<?xml version=\"1.0\"?><manifest><typeId>confluence</typeId>\
                   <version>8.5.16</version><buildNumber>8804</buildNumber></manifest>";
        assert_eq!(parse_manifest(xml), Some(Version::new(8, 5, 16)));
        assert_eq!(
            parse_manifest(r#"{"typeId":"confluence","version":"10.2.0"}"#),
            Some(Version::new(10, 2, 0))
        );
        assert_eq!(parse_manifest("<html>Page Not Found</html>"), None);
        assert_eq!(parse_manifest("<manifest><version>x</version>"), None);
    }

    #[test]
    fn an_exact_release_decides_every_feature_but_the_update_in_early_9_x() {
        let on = |v: Version, f: Feature| DetectedVersion::from_manifest(v).supports(f);
        assert_eq!(on(V8_2, Feature::AdminWrites), Availability::Available);
        assert_eq!(on(V8_2, Feature::CreateUser), Availability::Absent);
        assert_eq!(
            on(Version::new(7, 19, 0), Feature::AdminWrites),
            Availability::Absent
        );
        assert_eq!(
            on(Version::new(8, 5, 4), Feature::CreateUser),
            Availability::Available
        );
        assert_eq!(
            on(Version::new(8, 5, 4), Feature::UpdateUser),
            Availability::Absent
        );
        assert_eq!(
            on(Version::new(9, 2, 1), Feature::UpdateUser),
            Availability::Unknown
        );
        assert_eq!(on(V9_4, Feature::UpdateUser), Availability::Available);
        assert_eq!(
            on(Version::new(10, 2, 0), Feature::UpdateUser),
            Availability::Available
        );
    }

    #[test]
    fn a_probed_range_decides_only_what_it_bounds() {
        let from_9_3 = DetectedVersion::from_probes(V9_3, None);
        assert_eq!(
            from_9_3.supports(Feature::CreateUser),
            Availability::Available
        );
        assert_eq!(
            from_9_3.supports(Feature::UpdateUser),
            Availability::Unknown
        );
        let from_8_4 = DetectedVersion::from_probes(V8_4, Some(V9_3));
        assert_eq!(
            from_8_4.supports(Feature::UserList),
            Availability::Available
        );
        assert_eq!(
            from_8_4.supports(Feature::UpdateUser),
            Availability::Unknown
        );
        let old = DetectedVersion::from_probes(Version::new(0, 0, 0), Some(V8_4));
        assert_eq!(old.supports(Feature::CreateUser), Availability::Absent);
        assert_eq!(old.supports(Feature::UpdateUser), Availability::Absent);
        assert_eq!(old.supports(Feature::AdminWrites), Availability::Unknown);
        assert_eq!(old.to_string(), "below 8.4.0 (probed)");
        assert_eq!(from_9_3.to_string(), "9.3.0 or later (probed)");
    }
}
