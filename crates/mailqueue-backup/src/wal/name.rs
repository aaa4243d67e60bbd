//! WAL file names and positions, as PostgreSQL writes them: a segment is
//! `TTTTTTTTLLLLLLLLSSSSSSSS` (timeline, log, segment in hex), a timeline
//! history file `TTTTTTTT.history`, a backup history file
//! `<segment>.XXXXXXXX.backup`, and the last, incomplete segment of an old
//! timeline after a promotion `<segment>.partial`.

use crate::error::BackupError;
use std::fmt;
use std::str::FromStr;

/// PostgreSQL's default segment size; a cluster may be initialised with
/// another (a power of two, 1 MB to 1 GB), which base backups record.
pub const DEFAULT_SEGMENT_SIZE: u64 = 16 * 1024 * 1024;

/// A WAL position (`pg_lsn`), written `X/Y` in hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl FromStr for Lsn {
    type Err = BackupError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BackupError::Config(format!("`{s}` is not a WAL position (like 0/16B3748)"));
        let (hi, lo) = s.trim().split_once('/').ok_or_else(bad)?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| bad())?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| bad())?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl serde::Serialize for Lsn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Lsn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A segment: its timeline and its number since the start of WAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Segment {
    pub timeline: u32,
    pub number: u64,
}

impl Segment {
    /// The segment holding `lsn` on `timeline`.
    pub fn containing(timeline: u32, lsn: Lsn, segment_size: u64) -> Self {
        Self {
            timeline,
            number: lsn.0 / segment_size,
        }
    }

    /// The file name, for a cluster with `segment_size` segments.
    pub fn file_name(&self, segment_size: u64) -> String {
        let per_log = 0x1_0000_0000 / segment_size;
        format!(
            "{:08X}{:08X}{:08X}",
            self.timeline,
            self.number / per_log,
            self.number % per_log
        )
    }

    fn parse(name: &str, segment_size: u64) -> Option<Self> {
        if name.len() != 24 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let timeline = u32::from_str_radix(&name[0..8], 16).ok()?;
        let log = u64::from_str_radix(&name[8..16], 16).ok()?;
        let seg = u64::from_str_radix(&name[16..24], 16).ok()?;
        let per_log = 0x1_0000_0000 / segment_size;
        (seg < per_log).then_some(Self {
            timeline,
            number: log * per_log + seg,
        })
    }
}

/// A file PostgreSQL hands to `archive_command` or asks `restore_command` for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WalFileName {
    Segment(String),
    History(u32),
    /// A backup history file: its segment and its name.
    BackupHistory {
        segment: String,
        name: String,
    },
    /// The incomplete last segment of a timeline that was left.
    Partial(String),
}

impl WalFileName {
    pub fn parse(name: &str) -> Result<Self, BackupError> {
        let bad = || BackupError::Config(format!("`{name}` is not the name of a WAL file"));
        let hex24 = |s: &str| s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if hex24(name) {
            return Ok(WalFileName::Segment(name.to_ascii_uppercase()));
        }
        if let Some(tl) = name.strip_suffix(".history") {
            if tl.len() == 8 {
                return u32::from_str_radix(tl, 16)
                    .map(WalFileName::History)
                    .map_err(|_| bad());
            }
        }
        if let Some(seg) = name.strip_suffix(".partial") {
            if hex24(seg) {
                return Ok(WalFileName::Partial(seg.to_ascii_uppercase()));
            }
        }
        if let Some(rest) = name.strip_suffix(".backup") {
            if let Some((seg, offset)) = rest.split_once('.') {
                if hex24(seg) && offset.len() == 8 && offset.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Ok(WalFileName::BackupHistory {
                        segment: seg.to_ascii_uppercase(),
                        name: name.to_string(),
                    });
                }
            }
        }
        Err(bad())
    }

    /// The name PostgreSQL uses.
    pub fn file_name(&self) -> String {
        match self {
            WalFileName::Segment(s) => s.clone(),
            WalFileName::History(tl) => format!("{tl:08X}.history"),
            WalFileName::BackupHistory { name, .. } => name.clone(),
            WalFileName::Partial(s) => format!("{s}.partial"),
        }
    }

    /// The folder of the archive that holds it: one per timeline and log
    /// (at most 256 segments of 16 MB), and one for history files.
    pub fn folder(&self) -> String {
        match self {
            WalFileName::Segment(s)
            | WalFileName::Partial(s)
            | WalFileName::BackupHistory { segment: s, .. } => format!("wal/{}", &s[0..16]),
            WalFileName::History(_) => "wal/history".to_string(),
        }
    }

    /// The segment, for a segment file.
    pub fn segment(&self, segment_size: u64) -> Option<Segment> {
        match self {
            WalFileName::Segment(s) => Segment::parse(s, segment_size),
            WalFileName::History(_)
            | WalFileName::BackupHistory { .. }
            | WalFileName::Partial(_) => None,
        }
    }
}

impl fmt::Display for WalFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_segment_names_follow_postgresql() {
        let lsn: Lsn = "0/2000028".parse().unwrap();
        assert_eq!(lsn.0, 0x2000028);
        assert_eq!(lsn.to_string(), "0/2000028");
        assert_eq!("1/A0".parse::<Lsn>().unwrap().0, (1 << 32) | 0xA0);
        let seg = Segment::containing(1, lsn, DEFAULT_SEGMENT_SIZE);
        assert_eq!(
            seg.file_name(DEFAULT_SEGMENT_SIZE),
            "000000010000000000000002"
        );
        let high = Segment::containing(3, "1/FF000000".parse().unwrap(), DEFAULT_SEGMENT_SIZE);
        assert_eq!(
            high.file_name(DEFAULT_SEGMENT_SIZE),
            "0000000300000001000000FF"
        );
        assert_eq!(
            WalFileName::parse("0000000300000001000000FF")
                .unwrap()
                .segment(DEFAULT_SEGMENT_SIZE),
            Some(high)
        );
        // 64 MB segments: 64 per log.
        let big = 64 * 1024 * 1024;
        let s = Segment::containing(1, "1/4000000".parse().unwrap(), big);
        assert_eq!(s.file_name(big), "000000010000000100000001");
        assert!("nope".parse::<Lsn>().is_err());
    }

    #[test]
    fn every_kind_of_wal_file_is_recognised() {
        assert_eq!(
            WalFileName::parse("00000002.history").unwrap(),
            WalFileName::History(2)
        );
        assert_eq!(
            WalFileName::parse("000000010000000000000002.00000028.backup")
                .unwrap()
                .folder(),
            "wal/0000000100000000"
        );
        assert_eq!(
            WalFileName::parse("000000010000000000000003.partial")
                .unwrap()
                .file_name(),
            "000000010000000000000003.partial"
        );
        for bad in [
            "",
            "x.history",
            "00000001000000000000000",
            "../etc/passwd",
            "RECOVERYXLOG",
        ] {
            assert!(WalFileName::parse(bad).is_err(), "{bad}");
        }
    }
}
