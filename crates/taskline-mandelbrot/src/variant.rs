//! The names of the Tokio variants and the non-Tokio peers.

use std::fmt;
use std::str::FromStr;

/// A way to render the image on Tokio, numbered like the Go tutorial's v1..v5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// v1: one task computes every pixel in a loop.
    Serial,
    /// v2: one `tokio::spawn` per pixel, all spawned, then all awaited.
    TaskPerPixel,
    /// v3: one `tokio::spawn` per column.
    TaskPerColumn,
    /// v4: `workers` tasks receive single pixels over an mpsc channel of capacity 1.
    WorkerPoolPixels,
    /// v5: `workers` tasks receive column indices over an mpsc channel buffered to the width.
    WorkerPoolColumns,
}

impl Variant {
    /// Every variant, in the tutorial's order (v1..v5).
    pub const ALL: [Variant; 5] = [
        Variant::Serial,
        Variant::TaskPerPixel,
        Variant::TaskPerColumn,
        Variant::WorkerPoolPixels,
        Variant::WorkerPoolColumns,
    ];

    /// The stable name used by `Display`/`FromStr`, CLIs and benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Serial => "serial",
            Variant::TaskPerPixel => "task-per-pixel",
            Variant::TaskPerColumn => "task-per-column",
            Variant::WorkerPoolPixels => "pool-pixels",
            Variant::WorkerPoolColumns => "pool-columns",
        }
    }

    /// One-line description.
    pub fn description(self) -> &'static str {
        match self {
            Variant::Serial => "v1: one task renders every pixel; the other workers idle",
            Variant::TaskPerPixel => {
                "v2: one task per pixel; floods the scheduler with width*height tiny tasks"
            }
            Variant::TaskPerColumn => "v3: one task per column; coarse enough, well balanced",
            Variant::WorkerPoolPixels => {
                "v4: N workers fed single pixels over a capacity-1 channel; mostly blocked on it"
            }
            Variant::WorkerPoolColumns => {
                "v5: N workers fed columns over a channel buffered to the width; the tutorial's best"
            }
        }
    }
}

/// A non-Tokio renderer used as a yardstick for the Tokio variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// Rayon's work-stealing pool, one item per column (`par_chunks_mut`).
    Rayon,
    /// `std::thread::scope` threads taking the next column from an atomic counter.
    ThreadScope,
}

impl Peer {
    /// Every peer.
    pub const ALL: [Peer; 2] = [Peer::Rayon, Peer::ThreadScope];

    /// The stable name used by `Display`/`FromStr`, CLIs and benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Rayon => "rayon",
            Peer::ThreadScope => "thread-scope",
        }
    }

    /// One-line description.
    pub fn description(self) -> &'static str {
        match self {
            Peer::Rayon => "not Tokio: rayon work stealing over columns",
            Peer::ThreadScope => {
                "not Tokio: scoped OS threads pulling columns off an atomic counter"
            }
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a known [`Variant`] or [`Peer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    name: String,
    expected: Vec<&'static str>,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Cap what is echoed back so hostile input cannot flood a terminal or log.
        let shown: String = self.name.chars().take(64).collect();
        write!(
            f,
            "unknown name {shown:?}; expected one of: {}",
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for UnknownName {}

impl FromStr for Variant {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| UnknownName {
                name: s.to_owned(),
                expected: Variant::ALL.iter().map(|v| v.name()).collect(),
            })
    }
}

impl FromStr for Peer {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Peer::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownName {
                name: s.to_owned(),
                expected: Peer::ALL.iter().map(|p| p.name()).collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in Variant::ALL {
            assert_eq!(v.to_string().parse::<Variant>(), Ok(v));
            assert!(!v.description().is_empty());
        }
        for p in Peer::ALL {
            assert_eq!(p.to_string().parse::<Peer>(), Ok(p));
            assert!(!p.description().is_empty());
        }
        let names: Vec<String> = Variant::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "serial",
                "task-per-pixel",
                "task-per-column",
                "pool-pixels",
                "pool-columns"
            ]
        );
    }

    #[test]
    fn unknown_names_are_clear_errors() {
        let err = "v9".parse::<Variant>().expect_err("not a variant");
        let msg = err.to_string();
        assert!(
            msg.contains("\"v9\"") && msg.contains("pool-columns"),
            "{msg}"
        );
        let long = "x".repeat(10_000);
        let msg = long.parse::<Peer>().expect_err("not a peer").to_string();
        assert!(msg.len() < 200, "{msg}");
        assert!("Serial".parse::<Variant>().is_err());
    }
}
