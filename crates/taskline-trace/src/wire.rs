//! Protobuf wire format: a tiny encoder and a strict, bounds-checked decoder
//! for the subset of Perfetto's schema taskline writes and reads.
//!
//! The encoder writes fields in the order the caller emits them; callers emit
//! in field-number order so the official protobuf library re-serializes a
//! parsed trace to the same bytes. Repeated scalars are written unpacked
//! (proto2), one key per value.
//!
//! The decoder never panics and never allocates: it hands out sub-slices of
//! the input with their absolute byte offsets for error messages.

use crate::error::{TraceError, TraceErrorKind};

/// Wire type of a varint field.
pub(crate) const WT_VARINT: u8 = 0;
/// Wire type of a 64-bit fixed field.
pub(crate) const WT_FIXED64: u8 = 1;
/// Wire type of a length-delimited field.
pub(crate) const WT_LEN: u8 = 2;
/// Deprecated group start (skipped when unknown).
const WT_SGROUP: u8 = 3;
/// Deprecated group end.
const WT_EGROUP: u8 = 4;
/// Wire type of a 32-bit fixed field.
pub(crate) const WT_FIXED32: u8 = 5;

/// How deep unknown groups may nest before the input is rejected.
const MAX_GROUP_DEPTH: usize = 32;
/// Largest field number protobuf allows.
const MAX_FIELD: u64 = (1 << 29) - 1;

// ---------------------------------------------------------------- encoding

/// Appends `x` as a base-128 varint.
#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Appends a field key.
#[inline]
pub(crate) fn put_key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire_type));
}

/// Appends a varint field (uint32/uint64/enum/bool).
#[inline]
pub(crate) fn put_uint(out: &mut Vec<u8>, field: u32, x: u64) {
    put_key(out, field, WT_VARINT);
    put_varint(out, x);
}

/// Appends an int32 field (negative values sign-extended to 10 bytes, like protobuf).
#[inline]
pub(crate) fn put_int32(out: &mut Vec<u8>, field: u32, x: i32) {
    put_uint(out, field, i64::from(x) as u64);
}

/// Appends a length-delimited field holding `bytes`.
#[inline]
pub(crate) fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, WT_LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Starts a nested message: writes the key and a one-byte length placeholder.
/// Returns the placeholder's position for [`end_nested`].
#[inline]
pub(crate) fn begin_nested(out: &mut Vec<u8>, field: u32) -> usize {
    put_key(out, field, WT_LEN);
    out.push(0);
    out.len() - 1
}

/// Finishes a nested message started at `mark`, fixing up its length
/// (moving the body when the length needs more than one byte).
#[inline]
pub(crate) fn end_nested(out: &mut Vec<u8>, mark: usize) {
    let len = out.len() - mark - 1;
    if len < 0x80 {
        out[mark] = len as u8;
        return;
    }
    end_nested_long(out, mark, len);
}

#[cold]
#[inline(never)]
fn end_nested_long(out: &mut Vec<u8>, mark: usize, len: usize) {
    let mut tmp = Vec::with_capacity(10);
    put_varint(&mut tmp, len as u64);
    out[mark] = tmp[0];
    // Insert the remaining length bytes right after the first one.
    let extra = &tmp[1..];
    let at = mark + 1;
    out.splice(at..at, extra.iter().copied());
}

// ---------------------------------------------------------------- decoding

/// A decoded field value. Length-delimited values carry their absolute offset.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Value<'a> {
    /// A varint.
    Varint(u64),
    /// A fixed64.
    Fixed64(u64),
    /// A fixed32 (taskline reads none; its value is skipped).
    Fixed32,
    /// Length-delimited bytes and the absolute offset of their first byte.
    Bytes(&'a [u8], usize),
}

/// A cursor over one protobuf message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, whose first byte is at absolute offset `base`.
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    /// Absolute offset of the next unread byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn err(&self, at: usize, kind: TraceErrorKind) -> TraceError {
        TraceError::new(self.base + at, kind)
    }

    fn varint(&mut self) -> Result<u64, TraceError> {
        let start = self.pos;
        let mut x: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err(start, TraceErrorKind::Truncated));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(self.err(start, TraceErrorKind::BadVarint));
            }
            x |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(x);
            }
        }
        Err(self.err(start, TraceErrorKind::BadVarint))
    }

    fn take(&mut self, n: usize, start: usize) -> Result<&'a [u8], TraceError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err(start, TraceErrorKind::Truncated))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn key(&mut self) -> Result<(u32, u8, usize), TraceError> {
        let start = self.pos;
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 || field > MAX_FIELD {
            return Err(self.err(start, TraceErrorKind::BadFieldNumber(field)));
        }
        Ok((field as u32, (key & 7) as u8, start))
    }

    /// The next field, `None` at the end of the message. Unknown groups are
    /// skipped (bounded depth) and reported as `None` values via recursion.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, TraceError> {
        loop {
            if self.pos >= self.buf.len() {
                return Ok(None);
            }
            let (field, wt, start) = self.key()?;
            let v = match wt {
                WT_VARINT => Value::Varint(self.varint()?),
                WT_FIXED64 => {
                    let b = self.take(8, start)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    Value::Fixed64(u64::from_le_bytes(a))
                }
                WT_FIXED32 => {
                    self.take(4, start)?;
                    Value::Fixed32
                }
                WT_LEN => {
                    let len_at = self.pos;
                    let len = self.varint()?;
                    let remaining = (self.buf.len() - self.pos) as u64;
                    if len > remaining {
                        return Err(
                            self.err(len_at, TraceErrorKind::LengthPastEnd { len, remaining })
                        );
                    }
                    let body_at = self.offset();
                    let b = self.take(len as usize, len_at)?;
                    Value::Bytes(b, body_at)
                }
                WT_SGROUP => {
                    self.skip_group(field, start)?;
                    continue;
                }
                other => return Err(self.err(start, TraceErrorKind::BadWireType(other))),
            };
            return Ok(Some((field, v)));
        }
    }

    /// Skips a group whose start key (for `field`) was just read.
    fn skip_group(&mut self, field: u32, start: usize) -> Result<(), TraceError> {
        let mut stack = [0u32; MAX_GROUP_DEPTH];
        let mut depth = 1;
        stack[0] = field;
        while depth > 0 {
            if self.pos >= self.buf.len() {
                return Err(self.err(start, TraceErrorKind::Truncated));
            }
            let (f, wt, at) = self.key()?;
            match wt {
                WT_VARINT => {
                    self.varint()?;
                }
                WT_FIXED64 => {
                    self.take(8, at)?;
                }
                WT_FIXED32 => {
                    self.take(4, at)?;
                }
                WT_LEN => {
                    let len_at = self.pos;
                    let len = self.varint()?;
                    let remaining = (self.buf.len() - self.pos) as u64;
                    if len > remaining {
                        return Err(
                            self.err(len_at, TraceErrorKind::LengthPastEnd { len, remaining })
                        );
                    }
                    self.take(len as usize, len_at)?;
                }
                WT_SGROUP => {
                    if depth == MAX_GROUP_DEPTH {
                        return Err(self.err(at, TraceErrorKind::TooDeep));
                    }
                    stack[depth] = f;
                    depth += 1;
                }
                WT_EGROUP => {
                    if stack[depth - 1] != f {
                        return Err(self.err(
                            at,
                            TraceErrorKind::Malformed("group end does not match its start"),
                        ));
                    }
                    depth -= 1;
                }
                other => return Err(self.err(at, TraceErrorKind::BadWireType(other))),
            }
        }
        Ok(())
    }
}

/// Expects a varint value.
pub(crate) fn as_varint(v: Value<'_>, at: usize, what: &'static str) -> Result<u64, TraceError> {
    match v {
        Value::Varint(x) => Ok(x),
        _ => Err(TraceError::new(at, TraceErrorKind::WrongType(what))),
    }
}

/// Expects a fixed64 value.
pub(crate) fn as_fixed64(v: Value<'_>, at: usize, what: &'static str) -> Result<u64, TraceError> {
    match v {
        Value::Fixed64(x) => Ok(x),
        _ => Err(TraceError::new(at, TraceErrorKind::WrongType(what))),
    }
}

/// Expects a length-delimited value.
pub(crate) fn as_bytes<'a>(
    v: Value<'a>,
    at: usize,
    what: &'static str,
) -> Result<(&'a [u8], usize), TraceError> {
    match v {
        Value::Bytes(b, off) => Ok((b, off)),
        _ => Err(TraceError::new(at, TraceErrorKind::WrongType(what))),
    }
}

/// Expects a UTF-8 string value.
pub(crate) fn as_str<'a>(
    v: Value<'a>,
    at: usize,
    what: &'static str,
) -> Result<&'a str, TraceError> {
    let (b, off) = as_bytes(v, at, what)?;
    std::str::from_utf8(b)
        .map_err(|e| TraceError::new(off + e.valid_up_to(), TraceErrorKind::BadUtf8(what)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_length_fixup_moves_long_bodies() {
        for n in [0usize, 1, 127, 128, 300, 20_000] {
            let mut out = vec![0xAA];
            let m = begin_nested(&mut out, 3);
            out.extend(std::iter::repeat_n(7u8, n));
            end_nested(&mut out, m);
            let mut r = Reader::new(&out[1..], 1);
            let (f, v) = r.next_field().unwrap().unwrap();
            assert_eq!(f, 3);
            match v {
                Value::Bytes(b, _) => assert_eq!(b.len(), n),
                other => panic!("{other:?}"),
            }
            assert!(r.next_field().unwrap().is_none());
        }
    }

    #[test]
    fn varints_round_trip_and_reject_overlong() {
        for x in [0u64, 1, 127, 128, 1 << 35, u64::MAX] {
            let mut out = Vec::new();
            put_uint(&mut out, 1, x);
            let mut r = Reader::new(&out, 0);
            assert!(matches!(r.next_field().unwrap(), Some((1, Value::Varint(y))) if y == x));
        }
        let bad = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ];
        let e = Reader::new(&bad, 0).next_field().unwrap_err();
        assert_eq!(e.kind, TraceErrorKind::BadVarint);
        assert_eq!(e.offset, 1);
    }

    #[test]
    fn groups_are_skipped_and_depth_bounded() {
        // field 5 group { field 1 varint 3 } then field 2 varint 9
        let ok = [0x2b, 0x08, 0x03, 0x2c, 0x10, 0x09];
        let mut r = Reader::new(&ok, 0);
        assert!(matches!(
            r.next_field().unwrap(),
            Some((2, Value::Varint(9)))
        ));
        let deep: Vec<u8> = std::iter::repeat_n(0x2b, 40).collect();
        let e = Reader::new(&deep, 0).next_field().unwrap_err();
        assert_eq!(e.kind, TraceErrorKind::TooDeep);
    }
}
