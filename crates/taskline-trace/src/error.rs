//! [`TraceError`]: why a trace file could not be read, and where.

use std::fmt;

/// A trace file could not be read. `offset` is the byte offset in the file
/// where the problem was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    /// What is wrong.
    pub kind: TraceErrorKind,
}

/// What is wrong with a trace file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceErrorKind {
    /// The input ends in the middle of a value or a message.
    Truncated,
    /// A varint longer than 10 bytes or overflowing 64 bits.
    BadVarint,
    /// A field number of 0 or above 2^29-1.
    BadFieldNumber(u64),
    /// A wire type protobuf does not define (or a stray group end).
    BadWireType(u8),
    /// A length prefix pointing past the end of its enclosing message.
    LengthPastEnd {
        /// The declared length.
        len: u64,
        /// The bytes actually left.
        remaining: u64,
    },
    /// Groups nested deeper than the reader allows.
    TooDeep,
    /// A known field holds the wrong wire type.
    WrongType(&'static str),
    /// A string field is not UTF-8.
    BadUtf8(&'static str),
    /// The input is a protobuf trace, but not one taskline wrote.
    NotTaskline(&'static str),
    /// An interned id is used before (or without) being defined.
    UnknownIid {
        /// Which interning table.
        table: &'static str,
        /// The id.
        iid: u64,
    },
    /// An event refers to a track that was never described.
    UnknownTrack(u64),
    /// The trace ends without the end marker the writer appends on finish.
    Unfinished,
    /// Something else violates the taskline trace layout.
    Malformed(&'static str),
}

impl TraceError {
    /// An error of `kind` at byte `offset`.
    pub fn new(offset: usize, kind: TraceErrorKind) -> Self {
        TraceError { offset, kind }
    }
}

impl fmt::Display for TraceErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceErrorKind::Truncated => write!(f, "input ends in the middle of a value"),
            TraceErrorKind::BadVarint => write!(f, "malformed varint"),
            TraceErrorKind::BadFieldNumber(n) => write!(f, "invalid field number {n}"),
            TraceErrorKind::BadWireType(t) => write!(f, "invalid wire type {t}"),
            TraceErrorKind::LengthPastEnd { len, remaining } => {
                write!(f, "length {len} runs past the end ({remaining} bytes left)")
            }
            TraceErrorKind::TooDeep => write!(f, "messages nested too deep"),
            TraceErrorKind::WrongType(w) => write!(f, "{w} has the wrong wire type"),
            TraceErrorKind::BadUtf8(w) => write!(f, "{w} is not valid UTF-8"),
            TraceErrorKind::NotTaskline(w) => write!(f, "not a taskline trace: {w}"),
            TraceErrorKind::UnknownIid { table, iid } => {
                write!(f, "{table} id {iid} used before it was defined")
            }
            TraceErrorKind::UnknownTrack(u) => write!(f, "event on undescribed track {u}"),
            TraceErrorKind::Unfinished => {
                write!(
                    f,
                    "trace has no end marker (truncated, or the writer was never finished)"
                )
            }
            TraceErrorKind::Malformed(w) => write!(f, "{w}"),
        }
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid trace at byte {}: {}", self.offset, self.kind)
    }
}

impl std::error::Error for TraceError {}
